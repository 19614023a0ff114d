"""Rendering a batch's touches outside any transaction: cheapest templates first, in slices.

A template may take up to ``NURTURE_RENDER_SECONDS`` a message
(`dsl.limits`); a campaign of slow templates must not hold up the rest of
its batch, the lease on it, or the end of the process. So `Renders`:

- renders the touches of the template known to be cheapest first (each
  template's last render time is kept for the process; one not seen yet
  counts as free), so the touches of other campaigns in the batch come
  before those of a template that ran into its limit;
- yields them in slices of about ``render_seconds`` of rendering each, so
  the executor sends what is rendered while the rest waits its turn;
- stops rendering once the batch has rendered for half its lease, or when
  the process is stopping (`stop`, `finish_by`): the touches left are not
  sent, their rows stay ``pending`` and unmarked, and their enrollments are
  due again at once (the next job renders them). A batch renders at least
  one touch unless the process is stopping, so it always makes progress.

A touch whose template fails (a limit, an error, no address) gets its
failure as a receipt (`Touch.failed_early`); the executor writes its row
``failed`` with the reason and sends nothing for it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from typing import Final

from channels import Receipt
from nurture.config import Settings
from nurture.runtime.loading import Item
from nurture.runtime.touches import Messages, Touch

Pair = tuple[Item, Touch]
TemplateKey = tuple[str, str, str]
"""(channel, template name, campaign file): what a cost is kept for."""
KEPT: Final = 4096
"""Templates whose last render time a process keeps."""


class Renders:
    """Renders batches of touches; one per process, shared by its worker threads."""

    def __init__(
        self,
        messages: Messages,
        settings: Settings,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.messages = messages
        self.slice = settings.render_seconds
        """Seconds of rendering after which the touches rendered so far are sent."""
        self.budget = settings.lease_seconds / 2
        """Seconds a batch may render in all: well within the lease on its enrollments."""
        self.monotonic = monotonic
        self.costs: dict[TemplateKey, float] = {}
        self._stop = threading.Event()
        self._finish_by: float | None = None

    def stop(self) -> None:
        """Render nothing more: the process is shutting down."""
        self._stop.set()

    def finish_by(self, deadline: float) -> None:
        """Start no render after `deadline` (on `monotonic`'s clock): the run is ending."""
        self._finish_by = deadline

    def slices(self, pairs: Sequence[Pair]) -> Iterator[list[Pair]]:
        """Render `pairs` (each touch gets its message or its failure), a slice at a time."""
        groups: OrderedDict[TemplateKey, deque[Pair]] = OrderedDict()
        for pair in pairs:
            groups.setdefault(_key(pair), deque()).append(pair)
        started = self.monotonic()
        rendered = 0
        while groups:
            chunk: list[Pair] = []
            chunk_started = self.monotonic()
            while groups and self.monotonic() - chunk_started < self.slice:
                if self._must_stop(started, rendered):
                    if chunk:
                        yield chunk
                    return
                key = min(groups, key=lambda k: self.costs.get(k, 0.0))
                pair = groups[key].popleft()
                if not groups[key]:
                    del groups[key]
                self._render(key, pair)
                chunk.append(pair)
                rendered += 1
            yield chunk

    def _must_stop(self, started: float, rendered: int) -> bool:
        if self._stop.is_set():
            return True
        now = self.monotonic()
        if self._finish_by is not None and now >= self._finish_by:
            return True
        return rendered > 0 and now - started >= self.budget

    def _render(self, key: TemplateKey, pair: Pair) -> None:
        item, touch = pair
        began = self.monotonic()
        outcome = self.messages.build(item, touch)
        if len(self.costs) >= KEPT:
            self.costs.clear()
        self.costs[key] = self.monotonic() - began
        if isinstance(outcome, Receipt):
            touch.receipt, touch.failed_early = outcome, True
        else:
            touch.message, touch.links = outcome


def _key(pair: Pair) -> TemplateKey:
    item, touch = pair
    return (touch.channel, touch.template, item.graph.path)
