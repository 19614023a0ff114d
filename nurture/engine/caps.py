"""Frequency caps and the next moment a touch may go out.

A cap is a sliding window over the lead's send history: `cap 3 per week`
allows a send at t when fewer than 3 sends happened in (t - 7 days, t]. Over
the cap, the touch waits until enough of the counted sends have left the
window — the oldest first — and then the send window is checked again, and
the caps again, until both agree: deferred, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from dsl.graph import Json
from nurture.engine.calendar import Window, next_opening


@dataclass(frozen=True, slots=True)
class Cap:
    """At most `count` sends in any `period`."""

    count: int
    period: timedelta

    @classmethod
    def from_json(cls, data: dict[str, Json]) -> Cap:
        """From the compiled `{"count": 3, "period": "week", "seconds": 604800}`."""
        return cls(int(data["count"]), timedelta(seconds=float(data["seconds"])))

    def release(self, sends: Sequence[datetime], moment: datetime) -> datetime:
        """The earliest moment at or after `moment` at which one more send fits.

        `sends` must be sorted. A cap of 0 never fits: each check pushes the
        touch one period on, so it stays parked rather than being dropped.
        """
        if self.count <= 0:
            return moment + self.period
        since = moment - self.period
        counted = [s for s in sends if since < s <= moment]
        if len(counted) < self.count:
            return moment
        return counted[len(counted) - self.count] + self.period


@dataclass(frozen=True, slots=True)
class Limits:
    """Everything that may hold a touch back: the window and both kinds of cap."""

    window: Window | None
    zone: tzinfo
    campaign_caps: tuple[Cap, ...]
    campaign_sends: tuple[datetime, ...]
    global_cap: Cap | None
    all_sends: tuple[datetime, ...]

    @classmethod
    def build(
        cls,
        window: Window | None,
        zone: tzinfo,
        campaign_caps: Iterable[Cap],
        campaign_sends: Iterable[datetime],
        global_cap: Cap | None,
        all_sends: Iterable[datetime],
    ) -> Limits:
        return cls(
            window,
            zone,
            tuple(campaign_caps),
            tuple(sorted(campaign_sends)),
            global_cap,
            tuple(sorted(all_sends)),
        )


def next_send_time(now: datetime, limits: Limits) -> tuple[datetime, str | None]:
    """When a touch due at `now` may go out, and what held it back first (None: nothing)."""
    moment, why = now, None
    for _ in range(len(limits.all_sends) + 16):
        opened = next_opening(moment, limits.window, limits.zone) if limits.window else moment
        if opened != moment:
            why = why or "window"
        released, blocker = _release(opened, limits)
        if released == opened:
            return opened, why
        why, moment = why or blocker, released
    return moment, why  # only a zero cap gets here; the touch stays parked


def _release(moment: datetime, limits: Limits) -> tuple[datetime, str]:
    latest, blocker = moment, ""
    for cap in limits.campaign_caps:
        t = cap.release(limits.campaign_sends, moment)
        if t > latest:
            latest, blocker = t, "cap"
    if limits.global_cap is not None:
        t = limits.global_cap.release(limits.all_sends, moment)
        if t > latest:
            latest, blocker = t, "global cap"
    return latest, blocker
