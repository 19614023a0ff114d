"""Channels and templates: unknown channels, missing or broken template files, subjects."""

from __future__ import annotations

from collections.abc import Generator, Iterator

from jinja2 import TemplateSyntaxError

from dsl import ast, walk
from dsl import vocabulary as voc
from dsl.checks.base import Context, _did_you_mean, _error, _one_of, _unknown, _warning
from dsl.checks.conditions import field_hint
from dsl.errors import Diagnostic
from dsl.templates import TemplateSource, template_filename


def _sends(ctx: Context) -> Iterator[tuple[ast.Send, int | None]]:
    """Every send with the count of its innermost `repeat`."""
    for campaign in ctx.program.campaigns():
        for stmt, loop in walk.statements_in_loops(campaign.body):
            if isinstance(stmt, ast.Send):
                yield stmt, loop


def check_channels(ctx: Context) -> Iterator[Diagnostic]:
    for send, _ in _sends(ctx):
        if send.channel.value not in voc.CHANNELS:
            yield _unknown("unknown-channel", "channel", send.channel, voc.CHANNELS)


def check_templates(ctx: Context) -> Iterator[Diagnostic]:
    if ctx.templates is None:
        return
    for use in walk.template_uses(ctx.program):
        word, channel = use.name, use.channel
        names = walk.expand_name(word.value, use.loop) if word.value.strip() else None
        missing: list[str] = []
        for name in names or ():
            problem = yield from _template(ctx, ctx.templates, use, name)
            missing.extend(() if problem is None else [_wanted(channel, name, problem)])
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            message = f"no {channel} template `{word.value}`: looked for "
            hint = "create the file beside the campaign, or correct the name"
            yield _error(
                "unknown-template", word.span, message + ", ".join(missing[:3]) + more, hint
            )


def _wanted(channel: str, name: str, problem: str = "") -> str:
    wanted = "templates/" + template_filename(channel, name)
    return f"{wanted} ({problem})" if problem else wanted


def _template(
    ctx: Context, source: TemplateSource, use: walk.TemplateUse, name: str
) -> Generator[Diagnostic, None, str | None]:
    """Problems in one template file; returns None if found, else why not ("" for missing)."""
    channel, word = use.channel, use.name
    try:
        found = source.find(channel, name, word.span.path)
    except UnicodeDecodeError as e:
        message = f"template {_wanted(channel, name)} is not UTF-8 text: {e}"
        yield _error("template-error", word.span, message)
        return None
    except (OSError, ValueError) as e:
        return str(e)
    if found is None:
        return ""
    facts = yield from _jinja(ctx, found.text, f"template {found.path}", word.span, use.names)
    if use.needs_subject and facts is not None and not facts.has_subject:
        message = f"this email has no subject, here or as a subject block in {found.path}"
        hint = 'add subject "..." to the send, or {% block subject %} to the template'
        if use.handoff:  # a notify-by line has no subject of its own
            message = f"this email has no subject block in {found.path}"
            hint = "add {% block subject %} to the template"
        yield _warning("missing-subject", word.span, message, hint)
    return None


def check_subjects(ctx: Context) -> Iterator[Diagnostic]:
    for send, _ in _sends(ctx):
        if send.subject is not None:
            yield from _jinja(ctx, send.subject.value, "the subject", send.subject.span)


def _jinja(
    ctx: Context,
    text: str,
    where: str,
    span: ast.Span,
    names: frozenset[str] = voc.TEMPLATE_GLOBALS,
) -> Generator[Diagnostic, None, walk.TemplateFacts | None]:
    """Syntax errors, unknown variables and unknown lead fields in one template's text."""
    facts = walk.template_facts(text)
    if isinstance(facts, TemplateSyntaxError):
        line = "" if where == "the subject" else f" on line {facts.lineno}"
        yield _error("template-error", span, f"error in {where}{line}: {facts.message}")
        return None
    for number, why in facts.problems:
        on_line = "" if where == "the subject" else f" on line {number}"
        yield _error("template-error", span, f"error in {where}{on_line}: {why}")
    for name in sorted(facts.variables - names):
        known = "templates may use " + _one_of(sorted(names))
        hint = f"did you mean `lead.{name}`?" if name in ctx.fields else None
        hint = hint or _did_you_mean(name, names, known)
        yield _warning("unknown-variable", span, f"unknown variable `{name}` in {where}", hint)
    for field in sorted(facts.lead_fields - ctx.fields.keys()):
        hint = field_hint(ctx, field)
        yield _warning("unknown-field", span, f"unknown lead field `lead.{field}` in {where}", hint)
    return facts
