"""Rendering one touch: a template, a lead and a delivery in; subject, parts and tracked links out.

Templates are untrusted text, so they run in Jinja's immutable sandbox with
strict undefined variables. Any failure, a missing variable, a sandbox escape,
a type error in an expression, a template that is not there, comes out as one
`RenderError` naming the template file, the line and the cause; the delivery
fails and nothing half-rendered is sent.

What a template sees (`dsl.vocabulary.TEMPLATE_GLOBALS`):

- `lead`: the lead's profile, read-only. Every standard field
  (`dsl.vocabulary.LEAD_FIELDS`) is defined: an empty or missing one renders
  as `""`, so `lead.title | default("there", true)` picks the fallback. `name`
  and `email_domain` are derived from the name parts and the email when not
  given. A custom field the lead does not have is undefined and fails the
  render unless the template gives a `default`: a declared field that some
  leads lack should be written `lead.budget | default("-")`. `None` values
  render as `""`. A field named like a mapping method (`get`, `items`,
  `keys`, `values`) is read as `lead["items"]`.
- `campaign.name`; `message.id` (the delivery id), `message.name` (the send's
  `as` name, else the template name), `message.template`.
- `loop.index` and `loop.index0` inside `repeat`; outside one `loop` is
  undefined, and using it is an error.
- `unsubscribe_url`: `{base}/u/{token}`; the token names the lead and the
  delivery and never expires (see `nurture.tokens`).
- `track(url, name=None)`: the tracked form of an http(s) URL, for links the
  automatic rewriting does not reach (SMS, WeChat, a URL inside text).

Email: the blocks `subject`, `html` and `text`; the campaign's subject, when
given, wins over the block. The html part is autoescaped, the text part and
the subject are not; the subject is folded onto one line (no header
injection). In the html part every `<a href="http(s)://...">` becomes
`{base}/c/{click token}` and its name is the `data-link` attribute; `mailto:`,
`tel:`, `#anchors`, relative links and the tracking service's own URLs (the
unsubscribe link, `track()` results) are left alone, as are links inside
comments (Outlook's conditional ones too) and scripts. In the text part every
bare http(s) URL is tracked too, sharing the index of the html link with the
same URL, so a reader of the plain part still counts for `clicked "download"`.
A 1×1 open pixel goes before `</body>`, or at the end of the html.

SMS, WeChat and webhook: the whole template is the body, never rewritten. The
WeChat and webhook bodies are JSON: values printed with `{{ }}` are escaped
for a JSON string (a lead cannot break out of the quotes), `tojson` output is
kept as is, and the result must parse, else `RenderError`.

Links (found and rewritten by `nurture.tracked_links`):
`RenderedMessage.links[i].index == i`. The caller stores them with the
delivery; the tracking service reads `(delivery id, link index)` from a click
token and redirects only to the URL stored under that key, so no other
address can be reached through it (no open redirect).

A template stands alone: `extends`, `include` and `import` are refused, as
there is no loader that would know the channel and the campaign's folder.
`{{ self }}` names the template as `welcome/cxo.email.j2`, never by the
server's path.

Limits (`dsl.limits`, enforced by `dsl.sandbox`): a message's templates
render within `Limits.seconds` all parts together, no value a template makes
and no rendered message is longer than `Limits.size` characters, and nothing
is computed while a template compiles. A template over a limit is a `RenderError` saying which
limit, so that delivery fails and every other goes on.

Compiled templates are cached per `Renderer`, keyed by the template's path and
a hash of its text: an edited file is compiled again, an unchanged one never.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from jinja2 import Environment, StrictUndefined, Template, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError
from jinja2.utils import missing
from markupsafe import Markup

from dsl.sandbox import BoundedSandbox, Limits, TemplateLimitError, bounded
from dsl.templates import TemplateSource, template_filename
from dsl.vocabulary import ACCOUNT_FIELDS, LEAD_FIELDS
from nurture.tokens import TokenSigner
from nurture.tracked_links import (
    PIXEL,
    Links,
    TrackedLink,
    add_pixel,
    rewrite_html,
    rewrite_text,
)

__all__ = [
    "CACHE_SIZE",
    "JSON_CHANNELS",
    "Namespace",
    "RenderContext",
    "RenderError",
    "RenderedMessage",
    "Renderer",
    "TrackedLink",
    "lead_values",
    "rewrite_html",
    "rewrite_text",
]

EMAIL: Final = "email"
JSON_CHANNELS: Final = frozenset({"wechat", "webhook", "wecom"})
DEFAULT_LIMITS: Final = Limits()
"""1,000,000 characters and 2 seconds a message (`NURTURE_RENDER_MAX_SIZE`, `..._SECONDS`)."""
CACHE_SIZE: Final = 1024
"""Compiled templates kept per `Renderer` (an email template takes two entries)."""


class RenderError(Exception):
    """Raised when a template cannot be rendered: names the template file, line and the cause."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.line, self.reason))


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """One rendered touch, ready for a channel; `links` are to be stored with the delivery."""

    subject: str
    """Email subject on one line; `""` for other channels."""
    html: str
    """Email html part, links rewritten and the open pixel added; `""` when absent."""
    text: str
    """Email text part, URLs rewritten; `""` when absent."""
    body: str
    """The whole rendered template for sms, wechat and webhook (JSON text); `""` for email."""
    links: tuple[TrackedLink, ...]
    unsubscribe_url: str
    """For the footer and the `List-Unsubscribe` header (RFC 8058 one-click)."""


@dataclass(frozen=True, slots=True)
class RenderContext:
    """What the engine knows about the touch beyond its template and ids."""

    lead: Mapping[str, Any]
    """The lead's profile: standard fields and custom attributes, by name."""
    campaign: str
    """The campaign's name."""
    loop_index: int | None = None
    """The innermost `repeat`'s 1-based counter (`Send.loop_index`); None outside loops."""
    message_name: str | None = None
    """The send's `as` name (`Send.name`), if any."""


class Namespace(Mapping[str, Any]):
    """Read-only template values (`lead`, `campaign`, ...) that name themselves in errors."""

    __slots__ = ("_label", "_values")

    def __init__(self, label: str, values: Mapping[str, Any]) -> None:
        self._label = label
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<{self._label}>"


class _Undefined(StrictUndefined):
    """Strict undefined whose message says `lead.budget`, not "'dict object' has no attribute"."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        obj, name = self._undefined_obj, self._undefined_name
        if self._undefined_hint or not isinstance(name, str):
            return super()._undefined_message
        if isinstance(obj, Namespace):
            hint = f' (write `{obj._label}.{name} | default("...")` if some leads lack it)'
            return f"`{obj._label}.{name}` is undefined" + (hint if obj._label == "lead" else "")
        if obj is missing and name == "loop":
            return "`loop` is undefined: this send is not inside `repeat`"
        if obj is missing:
            return f"`{name}` is undefined"
        return super()._undefined_message


def _json_string(value: Any) -> str:
    """A printed value made safe inside a JSON string; `tojson` and `safe` output kept as is."""
    if isinstance(value, Markup):
        return str(value)
    return json.dumps(value if isinstance(value, str) else str(value), ensure_ascii=False)[1:-1]


def _environment(autoescape: bool, finalize: Callable[[Any], Any] | None = None) -> BoundedSandbox:
    return BoundedSandbox(undefined=_Undefined, autoescape=autoescape, finalize=finalize)


_HTML, _PLAIN, _JSON = _environment(True), _environment(False), _environment(False, _json_string)


class Renderer:
    """Renders touches from a `TemplateSource`, signing tracking URLs under `base_url`.

    `on_compile(path)` is called each time a template is compiled (a hook for
    metrics and tests; an email template compiles twice, escaping for html and
    not for text). `limits` bound each message's rendering. Safe to share
    between threads.
    """

    def __init__(
        self,
        templates: TemplateSource,
        signer: TokenSigner,
        base_url: str,
        *,
        on_compile: Callable[[str], None] = lambda path: None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        if urlsplit(base_url).scheme not in ("http", "https"):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.templates = templates
        self.signer = signer
        self.base_url = base_url.rstrip("/")
        self.on_compile = on_compile
        self.limits = limits
        self._cache: OrderedDict[tuple[int, str, bytes], Template] = OrderedDict()
        self._digests: dict[str, tuple[str, bytes]] = {}
        self._lock = threading.Lock()

    def render(
        self,
        channel: str,
        template_name: str,
        near_path: str,
        context: RenderContext,
        subject_override: str | None,
        delivery_id: int,
        lead_id: int,
    ) -> RenderedMessage:
        """Render the template `template_name` for `channel` for one lead and delivery."""
        with bounded(self.limits):
            return self._render(
                channel, template_name, near_path, context, subject_override, delivery_id, lead_id
            )

    def _render(
        self,
        channel: str,
        template_name: str,
        near_path: str,
        context: RenderContext,
        subject_override: str | None,
        delivery_id: int,
        lead_id: int,
    ) -> RenderedMessage:
        found = self.templates.find(channel, template_name, near_path)
        if found is None:
            path = template_filename(channel, template_name)
            raise RenderError(path, None, f"no template `{template_name}` near {near_path}")
        token = self.signer.unsubscribe_token(lead_id, delivery_id)
        unsubscribe_url = f"{self.base_url}/u/{token}"
        links = Links(self.signer, self.base_url, delivery_id)
        variables = _variables(context, template_name, delivery_id, unsubscribe_url, links)
        name = template_filename(channel, template_name)  # what `{{ self }}` shows
        if channel != EMAIL:
            body = self._body(channel, (found.path, name), found.text, variables)
            message = RenderedMessage("", "", "", body, links.all(), unsubscribe_url)
            return self._within_size(found.path, message)
        where = (found.path, name)
        subject = self._subject(where, found.text, subject_override, near_path, variables)
        html, text = self._parts(where, found.text, variables, links, delivery_id)
        message = RenderedMessage(subject, html, text, "", links.all(), unsubscribe_url)
        return self._within_size(found.path, message)

    def _within_size(self, path: str, message: RenderedMessage) -> RenderedMessage:
        """The message, unless all its parts together are over the size limit."""
        size = sum(map(len, (message.subject, message.html, message.text, message.body)))
        if size > self.limits.size:
            why = f"the rendered message has {size:,} characters, over the limit of"
            raise RenderError(path, None, f"{why} {self.limits.size:,}")
        return message

    def render_notice(
        self, channel: str, template_name: str, near_path: str, values: Mapping[str, Any]
    ) -> RenderedMessage:
        """Render a message to sales (`nurture.handoff.messages`): the same bounded sandbox
        and blocks as a touch, no tracked links, no open pixel, no unsubscribe link.
        `values` are the template's names, each a mapping or a plain value."""
        with bounded(self.limits):
            return self._render_notice(channel, template_name, near_path, values)

    def _render_notice(
        self, channel: str, template_name: str, near_path: str, values: Mapping[str, Any]
    ) -> RenderedMessage:
        found = self.templates.find(channel, template_name, near_path)
        if found is None:
            path = template_filename(channel, template_name)
            raise RenderError(path, None, f"no template `{template_name}` near {near_path}")
        variables = {
            name: Namespace(name, value) if isinstance(value, Mapping) else value
            for name, value in values.items()
        }
        where = (found.path, template_filename(channel, template_name))
        if channel != EMAIL:
            body = self._body(channel, where, found.text, variables)
            return self._within_size(found.path, RenderedMessage("", "", "", body, (), ""))
        subject = self._subject(where, found.text, None, near_path, variables)
        plain = self._compiled(_PLAIN, where, found.text)
        html = text = ""
        if "html" in plain.blocks:
            escaped = self._compiled(_HTML, where, found.text)
            html = _run(found.path, "html", escaped, "html", variables).strip()
        if "text" in plain.blocks:
            text = _run(found.path, "text", plain, "text", variables).strip()
        return self._within_size(found.path, RenderedMessage(subject, html, text, "", (), ""))

    def _subject(
        self,
        where: tuple[str, str],
        source: str,
        override: str | None,
        near_path: str,
        variables: dict[str, Any],
    ) -> str:
        """The campaign's subject if given, else the template's `subject` block, on one line."""
        path = where[0]
        if override is not None:
            given = f"{near_path} (subject {override!r})"
            template = self._compiled(_PLAIN, (given, "subject"), override)
            subject = _run(given, "subject", template, None, variables)
        else:
            template = self._compiled(_PLAIN, where, source)
            if "subject" not in template.blocks:
                why = "defines no `{% block subject %}` and the campaign gives no subject"
                raise RenderError(path, None, why)
            subject = _run(path, "subject", template, "subject", variables)
        return " ".join(subject.split())

    def _parts(
        self,
        where: tuple[str, str],
        source: str,
        variables: dict[str, Any],
        links: Links,
        delivery_id: int,
    ) -> tuple[str, str]:
        """The html and text parts, links tracked and the open pixel added."""
        path = where[0]
        plain = self._compiled(_PLAIN, where, source)
        if "html" not in plain.blocks and "text" not in plain.blocks:
            why = "defines neither `{% block html %}` nor `{% block text %}`"
            raise RenderError(path, None, why)
        html = text = ""
        if "html" in plain.blocks:
            escaped = self._compiled(_HTML, where, source)
            html = _run(path, "html", escaped, "html", variables).strip()
            pixel = PIXEL.format(f"{self.base_url}/o/{self.signer.open_token(delivery_id)}")
            html = add_pixel(rewrite_html(html, links.for_html), pixel)
        if "text" in plain.blocks:
            text = _run(path, "text", plain, "text", variables).strip()
            text = rewrite_text(text, links.for_text)
        return html, text

    def _body(
        self, channel: str, where: tuple[str, str], source: str, variables: dict[str, Any]
    ) -> str:
        """The whole template as the body; JSON for wechat and webhook, checked to parse."""
        env = _JSON if channel in JSON_CHANNELS else _PLAIN
        path = where[0]
        body = _run(path, "body", self._compiled(env, where, source), None, variables).strip()
        if channel in JSON_CHANNELS:
            try:
                json.loads(body)
            except ValueError as e:
                why = f"the rendered {channel} body is not JSON: {e}"
                raise RenderError(path, None, why) from e
        return body

    def _compiled(self, env: Environment, where: tuple[str, str], source: str) -> Template:
        """The template compiled in `env`, from the cache when its text has not changed.

        `where` is the file's path (for errors) and the name a template sees itself by.
        """
        path = where[0]
        key = (id(env), path, self._digest(path, source))
        with self._lock:
            template = self._cache.get(key)
            if template is not None:
                self._cache.move_to_end(key)
                return template
        template = _compile(env, where, source)
        self.on_compile(path)
        with self._lock:
            self._cache[key] = template
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return template

    def _digest(self, path: str, source: str) -> bytes:
        """A hash of `source`, made again only when the text at `path` changed."""
        known = self._digests.get(path)
        if known is not None and known[0] == source:  # the same object, mostly: no hashing
            return known[1]
        digest = hashlib.blake2b(source.encode(), digest_size=16).digest()
        if len(self._digests) >= CACHE_SIZE:
            self._digests.clear()
        self._digests[path] = (source, digest)
        return digest


def _variables(
    context: RenderContext,
    template_name: str,
    delivery_id: int,
    unsubscribe_url: str,
    links: Links,
) -> dict[str, Any]:
    """The names a template sees (`dsl.vocabulary.TEMPLATE_GLOBALS`); `loop` only in a repeat."""
    message = {
        "id": delivery_id,
        "name": context.message_name or template_name,
        "template": template_name,
    }
    variables = {
        "lead": Namespace("lead", _with_account(lead_values(context.lead))),
        "campaign": Namespace("campaign", {"name": context.campaign}),
        "message": Namespace("message", message),
        "unsubscribe_url": unsubscribe_url,
        "track": links.track,
    }
    if context.loop_index is not None:
        index = context.loop_index
        variables["loop"] = Namespace("loop", {"index": index, "index0": index - 1})
    return variables


def _with_account(values: dict[str, Any]) -> dict[str, Any]:
    """`lead.account` naming itself in errors too (`lead.account.bogus` is undefined)."""
    return {**values, "account": Namespace("lead.account", values["account"])}


def lead_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The lead as templates see it: every standard field defined, `None` as `""`, and its
    account as `lead.account.name`, `.status` and `.owner`."""
    values: dict[str, Any] = {k: "" for k in LEAD_FIELDS if not k.startswith("account.")}
    values.update((k, "" if v is None else v) for k, v in fields.items())
    values["account"] = {
        name: "" if fields.get(f"account_{name}") is None else fields[f"account_{name}"]
        for name in ACCOUNT_FIELDS
    }
    if not values["name"]:
        values["name"] = " ".join(str(values[k]) for k in ("first_name", "last_name") if values[k])
    email = values["email"]
    if not values["email_domain"] and isinstance(email, str) and "@" in email:
        values["email_domain"] = email.rsplit("@", 1)[1].lower()
    return values


def _compile(env: Environment, where: tuple[str, str], source: str) -> Template:
    """Parse and compile; a template may not pull in others (there is no loader to find them)."""
    path, name = where
    try:
        parsed = env.parse(source, name=name, filename=path)
        code = env.compile(parsed, name=name, filename=path)
    except TemplateSyntaxError as e:
        raise RenderError(path, e.lineno, f"syntax error: {e.message}") from e
    found = next(
        parsed.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)), None
    )
    if found is not None:
        why = "templates cannot extend, include or import other templates"
        raise RenderError(path, found.lineno, why)
    # A plain dict rather than Jinja's ChainMap: every render copies the globals into a
    # new context, and copying a ChainMap costs more than rendering a short block.
    names = dict(env.make_globals(None))
    template: Template = env.template_class.from_code(env, code, names)
    return template


def _run(
    path: str, part: str, template: Template, block: str | None, variables: dict[str, Any]
) -> str:
    """Render the whole template or one block; every failure becomes a `RenderError`."""
    try:
        return _render_part(template, block, variables)
    except TemplateLimitError as e:
        raise RenderError(path, _line(e, path), f"in the {part}: over a limit: {e}") from e
    except SecurityError as e:
        raise RenderError(path, _line(e, path), f"in the {part}: not allowed: {e}") from e
    except Exception as e:  # templates can raise anything; none of it may escape untranslated
        reason = str(e) or type(e).__name__
        raise RenderError(path, _line(e, path), f"in the {part}: {reason}") from e


def _render_part(template: Template, block: str | None, variables: dict[str, Any]) -> str:
    """What `Template.render` does, for one block too: errors point at template lines."""
    render = template.root_render_func if block is None else template.blocks[block]
    try:
        output = BoundedSandbox.output_buffer()  # refuses to grow past the size limit
        for chunk in render(template.new_context(variables)):
            output.append(chunk)
        return "".join(output)
    except Exception:
        template.environment.handle_exception()


def _line(error: BaseException, path: str) -> int | None:
    """The template line where `error` was raised, from its (Jinja-rewritten) traceback."""
    if isinstance(error, TemplateSyntaxError):
        return error.lineno
    line = None
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
