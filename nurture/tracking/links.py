"""The tracked links of a delivery, as stored in ``deliveries.links``.

The worker stores `stored_links(rendered.links)` with the delivery; a click
token carries (delivery id, link index) and the tracking service redirects
only to the URL stored under that index (`stored_link`), never to an address
taken from the request, so the service is no open redirect.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from nurture.tracked_links import TrackedLink


def stored_links(links: Iterable[TrackedLink]) -> list[dict[str, Any]]:
    """The JSON to store in ``Delivery.links``: ``[{"index", "name", "url"}]``."""
    return [{"index": link.index, "name": link.name, "url": link.url} for link in links]


def stored_link(stored: Any, index: int) -> TrackedLink | None:
    """The link stored under `index`, or None when there is none or it is not http(s)."""
    if not isinstance(stored, list):
        return None
    for entry in stored:
        if isinstance(entry, dict) and entry.get("index") == index:
            url, name = entry.get("url"), entry.get("name")
            if not isinstance(url, str) or not _is_web_url(url):
                return None
            return TrackedLink(index, name if isinstance(name, str) and name else None, url)
    return None


def _is_web_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)
