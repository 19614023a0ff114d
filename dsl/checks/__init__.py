"""Syntax tree to diagnostics: every check is a plain function listed in `CHECKS`.

Each check takes a `Context` and yields `Diagnostic`s; `run_checks` runs them
all and returns every problem, so a marketer sees the whole list at once.
`CODES` names every diagnostic code with a one-line description.

The checks live in themed modules: `names` (top-level items, settings),
`templates` (channels, templates, subjects), `conditions` (fields, comparisons),
`counts` (counting conditions), `timing` (durations, windows, caps, lifetime),
`flow` (enrollment, messages, reachability, loops, splits), `definitions`
(scoring, fields) and `routing` (teams, routing rules, the SLA);
`base` holds the `Context` and the helpers they share.
"""

from __future__ import annotations

from dsl import ast
from dsl import vocabulary as voc
from dsl.checks.base import Check, Context
from dsl.checks.conditions import (
    check_comparisons,
    check_condition_fields,
    check_condition_size,
)
from dsl.checks.counts import check_counts
from dsl.checks.definitions import check_field_decls, check_scoring
from dsl.checks.flow import (
    check_engagement_order,
    check_enrollment,
    check_loops,
    check_messages,
    check_splits,
    check_triggers,
    check_unreachable,
)
from dsl.checks.names import check_duplicate_items, check_empty_names, check_settings
from dsl.checks.routing import check_routing, check_teams, check_unused_teams
from dsl.checks.templates import check_channels, check_subjects, check_templates
from dsl.checks.timing import (
    check_caps,
    check_durations,
    check_lifetime,
    check_over_cap,
    check_wait_until,
    check_windows,
)
from dsl.errors import Diagnostic
from dsl.templates import TemplateSource

__all__ = ["CHECKS", "CODES", "Check", "Context", "run_checks"]

CODES: dict[str, str] = {
    "duplicate-campaign": "Two campaigns have one name, in one file or across files.",
    "duplicate-segment": "Two segments have one name.",
    "duplicate-scoring": "The program has more than one `scoring` block.",
    "duplicate-routing": "The program has more than one `routing` block.",
    "duplicate-field": "A `fields` block declares one field twice.",
    "duplicate-setting": "A campaign repeats a setting it may have only once.",
    "setting-after-step": "A campaign setting is written below the campaign's first step.",
    "unknown-channel": "A `send` or `notify by` names a channel that does not exist.",
    "unknown-template": "The template file for a `send`, `notify sales` or `notify by` is missing.",
    "template-error": "A template file or a `subject` text is not valid Jinja.",
    "unknown-variable": "A template or subject uses a variable that templates do not get.",
    "missing-subject": "An email has no `subject` and its template no subject block.",
    "empty-name": "A template name, tag, campaign or other name is empty.",
    "unknown-field": "A condition or template reads a lead field that is not declared.",
    "unknown-unit": "A duration's unit is not minutes, hours, days or weeks.",
    "zero-duration": "A wait or a time limit is zero long.",
    "long-duration": "A wait or a time limit is longer than 100 years.",
    "unknown-weekday": "A `wait until` or `window` names a day that does not exist.",
    "bad-time": "A time of day is not between 00:00 and 23:59.",
    "bad-date": "A date does not exist in the calendar.",
    "unknown-stage": "`stage` is compared with something that is not a lifecycle stage.",
    "unknown-grade": "A grade is not one of the grade letters.",
    "unknown-list": "A bare word in a comparison is no stage, grade, true/false or named list.",
    "type-mismatch": "A comparison mixes numbers, text, lists and true/false.",
    "bad-regex": "A `matches` pattern is not a valid regular expression.",
    "slow-regex": "A `matches` pattern can take exponential time: `(a+)+`, `(a|ab)*`.",
    "large-condition": "A condition (or a segment's lines together) joins over 100 comparisons.",
    "count-pointless": "A `count` holds always or never, asks for none, or enrolls on the first.",
    "count-plain": "A `count` asks for at least one event, as the condition alone does.",
    "count-without-window": "A `count` in the trigger of a re-entering campaign has no `within`.",
    "unknown-campaign": "`enroll` names a campaign that does not exist.",
    "self-enroll": "A campaign enrolls leads into itself.",
    "unknown-segment": "`enroll when segment` names a segment that does not exist.",
    "no-trigger": "A campaign has no `enroll when` and no campaign enrolls it.",
    "unknown-message": "An engagement check names no earlier `send ... as NAME`.",
    "duplicate-message": "Two sends in one campaign have one `as` name.",
    "engagement-before-send": "`opened`/`clicked`/`replied`/`bounced` comes before any send.",
    "unreachable": "A step can never run: every path to it has ended in `exit`.",
    "loop-without-wait": "A `repeat` has no wait in it, so all its rounds run at once.",
    "within-beyond-lifetime": "A wait or `within` is longer than the campaign's `end after`.",
    "split-total": "The shares of a `split` do not add up to 100%.",
    "duplicate-split-label": "Two arms of one `split` have one label.",
    "bad-window": "A send window is empty or backwards, or lists a day twice.",
    "bad-zone": "A send window names a time zone that does not exist.",
    "bad-cap": "A frequency cap is zero, has an unknown period or contradicts another.",
    "over-cap": "A path sends more touches in a period than the campaign's cap allows.",
    "unknown-activity": "An interest rule counts an activity that does not exist.",
    "event-in-fit": "A fit rule asks about events, which fit (the lead's profile) never sees.",
    "bad-decay": "An interest decay is not above 0% and at most 100%.",
    "too-many-points": "A scoring rule gives or takes more than 10,000 points.",
    "bad-grade": "A grade rule is out of order, lacks an `else`, or grades an unknown score.",
    "unknown-sla-action": "A routing SLA names an action that does not exist.",
    "duplicate-team": "Two teams have one name.",
    "empty-team": "A team has no members.",
    "duplicate-member": "A team lists one member twice.",
    "bad-member": "A member's weight or daily cap is below 1 or too large, or is given twice.",
    "unknown-team": "A routing rule names a team that is not declared.",
    "unknown-member": "`to user` or `escalate to user` names someone who is in no team.",
    "rule-after-otherwise": "A routing rule comes after an `otherwise` rule, so it never runs.",
    "sla-without-target": "The SLA reassigns or escalates, but names nobody to hand the MQL to.",
    "bad-remind": "A `remind ... before` is not shorter than `accept within`, or has no SLA.",
    "duplicate-routing-line": "A routing block repeats an `accept`, `remind` or `return` line.",
    "duplicate-return-reason": "A return reason is listed twice.",
    "unused-team": "A team is used by no routing rule and no escalation.",
    "unknown-field-type": "A field declaration names a type that does not exist.",
    "field-shadows-standard": "A field declaration changes the type of a standard lead field.",
}
"""Every diagnostic code the checker emits, with what it means (docs are generated from it)."""


def run_checks(program: ast.Program, templates: TemplateSource | None = None) -> list[Diagnostic]:
    """Run every check in `CHECKS` and return all the problems found."""
    declared = {d.name.value: d.type.value for d in program.fields()}
    ctx = Context(program, templates, {**voc.LEAD_FIELDS, **declared})
    return [found for check in CHECKS for found in check(ctx)]


CHECKS: tuple[Check, ...] = (
    check_duplicate_items,
    check_settings,
    check_empty_names,
    check_channels,
    check_templates,
    check_subjects,
    check_condition_fields,
    check_comparisons,
    check_condition_size,
    check_counts,
    check_durations,
    check_wait_until,
    check_windows,
    check_caps,
    check_over_cap,
    check_enrollment,
    check_triggers,
    check_messages,
    check_engagement_order,
    check_unreachable,
    check_loops,
    check_lifetime,
    check_splits,
    check_scoring,
    check_teams,
    check_routing,
    check_unused_teams,
    check_field_decls,
)
"""Every check, in the order they run; `run_checks` collects what each yields."""
