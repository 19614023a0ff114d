"""What a campaign test file says, as data: its tests, their leads, settings, actions, expectations.

Read by `dsl.testfile`, checked by `dsl.testcheck`, run by `nurture.campaign_tests`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from dsl.ast import Span

DEFAULT_ACCEPT = 6 * 3600
"""Unless a test says otherwise, sales accept each MQL 6 hours after it reaches them."""


@dataclass(frozen=True, slots=True)
class LeadLine:
    """One `lead ...` or `tags ...` line: `name` None for a test's one unnamed lead."""

    span: Span
    name: str | None
    fields: tuple[tuple[str, Any], ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Setting:
    """One `run`, `cap`, `start` or `sales` line, of the file's `settings` or of a test."""

    span: Span
    key: str
    value: Any
    shared: bool = False
    """From the file's `settings` (a test's own line overrides it)."""


@dataclass(frozen=True, slots=True)
class Action:
    """Something a lead does: `kind` opens/clicks/replies/event/unsubscribes/sets/returned,
    or `arrives` (the lead is created then, instead of at the start of day 0)."""

    span: Span
    day: int
    minute: int
    """Minutes after midnight UTC of that day (noon unless `at HH:MM`)."""
    kind: str
    message: str | None = None
    """A template (`"welcome/cxo"`) or a send's `as` name (`whitepaper`)."""
    link: str | None = None
    name: str | None = None
    """The event's name, for `event`; the reason, for `returned`."""
    fields: tuple[tuple[str, Any], ...] = ()
    """The profile fields `sets` changes."""
    lead: str | None = None
    """The lead that does it (`on day 2 "ana" opens ...`); None: the test's only lead."""
    lead_span: Span | None = None


@dataclass(frozen=True, slots=True)
class Expect:
    """One expectation: `kind` with its arguments (`what`, `value`, `day`)."""

    span: Span
    kind: str
    what: str | None = None
    channel: str | None = None
    cmp: str | None = None
    value: Any = None
    day: int | None = None
    minute: int | None = None
    """For `send ... on day N at HH:MM`: minutes after midnight in the lead's time zone."""
    lead: str | None = None
    """The lead it is about (`expect "ana" mql on day 3`); None: the test's only lead."""
    lead_span: Span | None = None


@dataclass(frozen=True, slots=True)
class CampaignTest:
    """One `test "..."` block."""

    span: Span
    name: str
    leads: tuple[LeadLine, ...]
    """Its `lead` and `tags` lines, in file order (`lead_names`: who they make)."""
    enters: tuple[tuple[str, Span], ...]
    days: int | None
    accept_after: int | None
    """Sales accept each MQL this many seconds after it reaches them; None: never."""
    cap: tuple[int, int] | None
    """A cap over every campaign's touches: (count, seconds), as production's global cap."""
    start: date | None
    """The day the test's day 0 is (a Monday, 5 January 2026, unless it says)."""
    actions: tuple[Action, ...]
    expects: tuple[Expect, ...]
    settings: tuple[Setting, ...] = ()
    """Every setting line that applies, the file's then the test's own (`days` ... are the
    values in force: the test's own line, else the file's)."""

    def lead_names(self) -> tuple[str | None, ...]:
        """The leads, in order: their names, or (None,) for a test with one unnamed lead."""
        named = tuple(dict.fromkeys(line.name for line in self.leads if line.name is not None))
        return named or (None,)

    def lead_of(self, item: Action | Expect) -> str | None:
        """Whom an action or expectation is about: the lead it names, or the test's only one."""
        names = self.lead_names()
        return item.lead if item.lead is not None or len(names) > 1 else names[0]

    def arrivals(self, name: str | None) -> list[Action]:
        """The lead's `on day N arrives` lines (none: it arrives at the start of day 0)."""
        return [a for a in self.actions if a.kind == "arrives" and self.lead_of(a) == name]

    def profile(self, name: str | None) -> tuple[dict[str, Any], frozenset[str]]:
        """The fields and tags of lead `name` (None: the unnamed lead's lines)."""
        lines = [line for line in self.leads if line.name == name]
        fields = {k: v for line in lines for k, v in line.fields}
        return fields, frozenset(t for line in lines for t in line.tags)


def with_settings(test: CampaignTest, shared: Sequence[Setting] = ()) -> CampaignTest:
    """`test` with the file's `shared` settings before its own, and the values in force."""
    every = (*shared, *test.settings)
    last = {s.key: s.value for s in every}
    return replace(
        test,
        days=last.get("days"),
        accept_after=last.get("sales", DEFAULT_ACCEPT),
        cap=last.get("cap"),
        start=last.get("start"),
        settings=every,
    )
