"""Tracked links in a rendered message: which links are tracked, how they are rewritten.

`Links` numbers a message's tracked links and gives each its click URL;
`rewrite_html` and `rewrite_text` find the links of the html and text parts
and swap in those URLs; `add_pixel` places the open pixel. The rules the
renderer promises (`nurture.render`) are kept here: only http(s) links, never
the tracking service's own URLs, nothing inside comments, scripts or styles.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from html import escape, unescape
from typing import Final
from urllib.parse import urlsplit

from nurture.tokens import TokenSigner

PIXEL: Final = '<img src="{}" width="1" height="1" alt="" style="display:none">'
_BODY_END: Final = re.compile(r"</body\s*>", re.IGNORECASE)
_TEXT_URL: Final = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+", re.IGNORECASE)
_MARKUP: Final = re.compile(
    r"""<!--.*?(?:-->|\Z)|<(script|style)\b.*?(?:</\1\s*>|\Z)"""
    r"""|<(?P<tag>[a-z][^\s/>]*)(?:[^>"']|"[^"]*"|'[^']*')*>""",
    re.IGNORECASE | re.DOTALL,
)
"""Comments, scripts and styles (skipped whole) and start tags (their name in group `tag`)."""
_TAG_NAME: Final = re.compile(r"<[^\s/>]+")
_ATTRIBUTE: Final = re.compile(r"""[\s/]*([^\s"'>/=]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]*))?""")


@dataclass(frozen=True, slots=True)
class TrackedLink:
    """One link of a message that the tracking service may redirect to."""

    index: int
    """Its place in `RenderedMessage.links`; the click token carries it."""
    name: str | None
    """The `data-link` attribute or `track(url, name)`: what `clicked "name"` matches."""
    url: str
    """The original URL, where a click on the link goes."""


class Links:
    """The tracked links of one message, numbered from 0 in the order first seen."""

    def __init__(self, signer: TokenSigner, base_url: str, delivery_id: int) -> None:
        self.signer = signer
        self.base_url = base_url
        self.delivery_id = delivery_id
        self.own = tuple(f"{base_url}/{kind}/" for kind in ("c", "o", "u"))
        self.links: list[TrackedLink] = []
        self.hrefs: list[str] = []

    def all(self) -> tuple[TrackedLink, ...]:
        return tuple(self.links)

    def track(self, url: str, name: str | None = None) -> str:
        """`track(url, name)` in templates: the tracked URL of an http(s) link."""
        if not isinstance(url, str) or not is_web(url):
            raise ValueError(f"track() takes an http(s) URL, got {url!r}")
        if name is not None and not isinstance(name, str):
            raise ValueError(f"track() takes a text name, got {name!r}")
        return self._add(url, name)

    def for_html(self, url: str, name: str | None) -> str | None:
        """The tracked URL for an html link, or None to leave it alone."""
        return self._add(url, name) if self._trackable(url) else None

    def for_text(self, url: str) -> str | None:
        """The tracked URL for a bare URL in text: the html link's, if there is one."""
        if not self._trackable(url):
            return None
        same = next((link for link in self.links if link.url == url), None)
        return self.hrefs[same.index] if same else self._add(url, None)

    def _trackable(self, url: str) -> bool:
        return is_web(url) and not url.startswith(self.own)

    def _add(self, url: str, name: str | None) -> str:
        for link in self.links:
            if link.url == url and link.name == name:
                return self.hrefs[link.index]
        index = len(self.links)
        self.links.append(TrackedLink(index, name, url))
        self.hrefs.append(f"{self.base_url}/c/{self.signer.click_token(self.delivery_id, index)}")
        return self.hrefs[index]


def is_web(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def rewrite_html(html: str, track: Callable[[str, str | None], str | None]) -> str:
    """`html` with the href of each `<a>` replaced by `track(url, data-link name)`, if not None.

    Every start tag is read whole, so a `>` or `<a` inside a quoted attribute
    is not taken for markup; comments (Outlook's conditional ones too),
    `<script>` and `<style>` are skipped whole.
    """

    def replace(match: re.Match[str]) -> str:
        tag = match.group("tag")
        return _rewrite_tag(match.group(0), track) if tag in ("a", "A") else match.group(0)

    return _MARKUP.sub(replace, html)


def _rewrite_tag(raw: str, track: Callable[[str, str | None], str | None]) -> str:
    """One `<a ...>` tag with its href tracked; attributes read left to right, as browsers do."""
    attributes: dict[str, tuple[str, int, int]] = {}
    match = _TAG_NAME.match(raw)
    position = match.end() if match else len(raw)
    while (found := _ATTRIBUTE.match(raw, position)) and found.end() > position:
        position = found.end()
        name, value = found.group(1).lower(), found.group(2)
        if value is not None and name not in attributes:
            quoted = value[:1] in ("'", '"')
            text = unescape(value[1:-1] if quoted else value).strip()
            attributes[name] = (text, found.start(2), found.end(2))
    if "href" not in attributes:
        return raw
    url, start, end = attributes["href"]
    name = attributes.get("data-link", ("", 0, 0))[0] or None
    tracked = track(url, name)
    return raw if tracked is None else f'{raw[:start]}"{escape(tracked)}"{raw[end:]}'


def rewrite_text(text: str, track: Callable[[str], str | None]) -> str:
    """`text` with each bare http(s) URL replaced by `track(url)`, if not None."""

    def replace(match: re.Match[str]) -> str:
        url, rest = _trim_url(match.group(0))
        tracked = track(url)
        return (url if tracked is None else tracked) + rest

    return _TEXT_URL.sub(replace, text)


def _trim_url(found: str) -> tuple[str, str]:
    """A URL found in prose, without the punctuation that ends its sentence."""
    end = len(found)
    while end and (
        found[end - 1] in ".,;:!?'"
        or (found[end - 1] == ")" and found.count("(", 0, end) < found.count(")", 0, end))
    ):
        end -= 1
    return found[:end], found[end:]


def add_pixel(html: str, pixel: str) -> str:
    """The open pixel before the last `</body>`, or at the end."""
    ends = list(_BODY_END.finditer(html))
    if not ends:
        return html + pixel
    at = ends[-1].start()
    return html[:at] + pixel + html[at:]
