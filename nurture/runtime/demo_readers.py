"""Demo readers for ``nurture run --demo-leads``: some demo leads open and click their email.

A newcomer's first run should show the whole loop, not only sends: an email
lands in the outbox, its reader opens it, the tracking service records the
open and wakes the flow, and the welcome campaign takes its `if opened`
branch. Nobody reads an outbox, so these readers stand in: after each
scheduler poll they look at the outbox's new `.eml` files and, for a seeded
share of them, fetch the open pixel and sometimes follow one tracked link,
with real HTTP requests to the tracking service, as a mail program would.
They only ever request the tracking service's own URLs (`/o/`, `/c/`), and
never follow a click's redirect out to the link itself.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from html import unescape
from pathlib import Path
from typing import Final

import httpx

OPEN_SHARE: Final = 0.5
"""Emails a demo reader opens."""
CLICK_SHARE: Final = 0.5
"""Opened emails in which the reader also clicks a tracked link."""
TIMEOUT: Final = 5.0
"""Seconds a request to the tracking service may take."""


@dataclass(slots=True)
class Reading:
    """What the demo readers did so far."""

    read: int = 0
    """Emails looked at."""
    opened: int = 0
    clicked: int = 0
    failed: int = 0
    """Requests the tracking service did not answer with success."""


class DemoReaders:
    """Opens and clicks a seeded share of the emails in `outbox` through the tracking service."""

    def __init__(
        self,
        outbox: Path,
        base_url: str,
        seed: int,
        *,
        open_share: float = OPEN_SHARE,
        click_share: float = CLICK_SHARE,
    ) -> None:
        self.outbox = outbox
        self.seed = seed
        self.open_share = open_share
        self.click_share = click_share
        base = re.escape(base_url.rstrip("/"))
        self.pixel = re.compile(rf"""<img\b[^>]*\bsrc="({base}/o/[^"]+)\"""")
        self.link = re.compile(rf"""<a\b[^>]*\bhref="({base}/c/[^"]+)\"""")
        self.seen = {p.name for p in outbox.glob("*.eml")} if outbox.is_dir() else set()
        """Emails already looked at; those of earlier runs count as seen: they are not read."""
        self.reading = Reading()
        self.client = httpx.Client(timeout=TIMEOUT, follow_redirects=False)

    def visit(self) -> None:
        """Read the emails that arrived since the last visit (never one of an earlier run)."""
        if not self.outbox.is_dir():
            return
        for path in sorted(self.outbox.glob("*.eml")):
            if path.name not in self.seen:
                self.seen.add(path.name)
                self._read(path)

    def close(self) -> None:
        self.client.close()

    def _read(self, path: Path) -> None:
        """Open the email (its pixel) if this reader does, and maybe click one of its links."""
        self.reading.read += 1
        rng = random.Random(f"{self.seed}:{path.name}")
        if rng.random() >= self.open_share:
            return
        html = _html(path.read_bytes())
        pixel = self.pixel.search(html)
        if pixel is None:
            return
        if self._get(unescape(pixel.group(1))):
            self.reading.opened += 1
        links = [unescape(found) for found in self.link.findall(html)]
        if links and rng.random() < self.click_share and self._get(rng.choice(links)):
            self.reading.clicked += 1

    def _get(self, url: str) -> bool:
        try:
            answer = self.client.get(url)
        except httpx.HTTPError:
            self.reading.failed += 1
            return False
        if answer.status_code >= 400:
            self.reading.failed += 1
            return False
        return True


def _html(raw: bytes) -> str:
    """The html part of an email, or "" when it has none."""
    message = message_from_bytes(raw, _class=EmailMessage, policy=default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("html",))
    return str(part.get_content()) if part is not None else ""
