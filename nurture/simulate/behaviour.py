"""How simulated leads react to a touch: opens, clicks, replies and the odd custom event.

Each delivered message (email, SMS, WeChat; a webhook reaches a system, not
the lead) is opened with probability `open` after a delay of a minute to two
days, clicked once opened with probability `click`, and replied to with
probability `reply`. A click names the link that the campaign's `clicked "x"`
conditions ask for. After a click the lead may go on: half the time to the
event the next branch waits for (`if event "webinar_registered" within ...`),
and with probability `event` to one of the custom events the scoring file
counts or a trigger waits for (`pricing_viewed`, `demo_requested`), so
interest rises the way it does for engaged readers.

Two ways out, both off by default: with probability `unsubscribe` a delivered
message makes the lead unsubscribe from everything (suppressed: every campaign
exits), and with probability `bounce` it bounces hard a few seconds later,
which closes only its channel for the lead (a dead mailbox, an invalid number,
a WeChat 43004): later sends there are withheld (counted as suppressed) and
the campaign goes on to its next step, as in production.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from nurture.engine import DeliveryKey, Event, Send
from nurture.engine.state import positional_builder
from nurture.simulate.graphs import SendTraits

LEAD_FACING = frozenset({"email", "sms", "wechat"})
FOLLOW_UP = 0.5
"""The chance that a click leads to the event the next branch waits for."""
UNSUBSCRIBED = "unsubscribed"
BOUNCED_HARD = "bounced_hard"

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
_new_event = positional_builder(Event)


@dataclass(frozen=True, slots=True)
class Rates:
    """Probabilities of the lead's reactions, each in [0, 1]."""

    open: float = 0.35
    """A delivered message is opened."""
    click: float = 0.25
    """An opened message is clicked."""
    reply: float = 0.02
    """A delivered message is replied to."""
    event: float = 0.1
    """A click leads to a custom event the scoring file counts."""
    unsubscribe: float = 0.0
    """A delivered message makes the lead unsubscribe (suppressed from then on)."""
    bounce: float = 0.0
    """A message bounces hard: its channel alone is closed for the lead from then on."""

    def problems(self) -> list[str]:
        """`--open-rate must be between 0 and 1 (got 1.5)` for each rate out of range."""
        found = []
        for f in fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
                found.append(f"--{f.name}-rate must be between 0 and 1 (got {value})")
        return found

    def to_json(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Behaviour:
    """Draws a lead's reactions to each send from one seeded random stream."""

    def __init__(self, rates: Rates, rng: random.Random, custom: Sequence[str]) -> None:
        self.rates, self.rng, self.custom = rates, rng, tuple(custom)

    def react(self, send: Send, key: DeliveryKey, at: datetime, traits: SendTraits) -> list[Event]:
        """The events this delivery will cause, in no particular order (some in the far future)."""
        if send.channel not in LEAD_FACING:
            return []
        rates, rng = self.rates, self.rng
        found: list[Event] = []
        if rates.open and rng.random() < rates.open:
            opened = at + self._delay(MINUTE, 2 * DAY)
            found.append(_new_event("opened", opened, key, send.name, None))
            if rates.click and rng.random() < rates.click:
                clicked = opened + self._delay(5.0, HOUR)
                found.append(_new_event("clicked", clicked, key, send.name, traits.link))
                found.extend(self._after_click(clicked, traits))
        if rates.reply and rng.random() < rates.reply:
            found.append(Event("replied", at + self._delay(10 * MINUTE, 2 * DAY), key, send.name))
        if rates.unsubscribe and rng.random() < rates.unsubscribe:
            found.append(Event(UNSUBSCRIBED, at + self._delay(MINUTE, 2 * DAY), key, send.name))
        if rates.bounce and rng.random() < rates.bounce:
            found.append(Event(BOUNCED_HARD, at + self._delay(1.0, MINUTE), key, send.name))
        return found

    def _after_click(self, clicked: datetime, traits: SendTraits) -> list[Event]:
        rng, found = self.rng, []
        if traits.follow_ups and rng.random() < FOLLOW_UP:
            found.append(Event(rng.choice(traits.follow_ups), clicked + self._delay(MINUTE, HOUR)))
        if self.custom and self.rates.event and rng.random() < self.rates.event:
            found.append(Event(rng.choice(self.custom), clicked + self._delay(HOUR, 3 * DAY)))
        return found

    def _delay(self, low: float, high: float) -> timedelta:
        """Log-uniform between `low` and `high` seconds: most reactions come early."""
        return timedelta(seconds=round(low * math.exp(self.rng.random() * _log_ratio(low, high))))


@functools.lru_cache(maxsize=16)
def _log_ratio(low: float, high: float) -> float:
    """`math.log(high / low)`, kept: the same few spans are drawn from for every touch."""
    return math.log(high / low)
