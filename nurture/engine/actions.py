"""What a decision asks the caller to do, in order, and the enrollment's next state.

Actions are data, not calls: the caller (an actor, the simulator, a test)
performs them, writing each `Send` as a delivery row under its unique key
before calling a channel, so a retried decision never sends twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from nurture.engine.state import EnrollmentState


@dataclass(frozen=True, slots=True)
class Send:
    """Send one touch now. (`node_id`, `iteration`) with the enrollment is the delivery key."""

    node_id: str
    channel: str
    template: str
    """The template name with `{{ loop.* }}` already rendered."""
    subject: str | None
    name: str | None
    """The send's `as` name, if any."""
    iteration: str
    """Deterministic key from the enclosing repeat counters, e.g. `n3:2` (`""` outside loops)."""
    iteration_no: int = 0
    """The same iteration as one integer (mixed radix over the repeats; 0 outside loops)."""
    loop_index: int | None = None
    """The innermost repeat's 1-based counter, for templates that use `loop.index`."""


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A touch that was due but withheld: the lead is globally suppressed (the enrollment
    exits), or only this channel is closed for it (`channel_only`: the flow goes on)."""

    node_id: str
    channel: str
    template: str
    iteration: str
    why: str
    channel_only: bool = False


@dataclass(frozen=True, slots=True)
class Deferred:
    """A touch that was due but waits for its window or a cap; it runs at `until`."""

    node_id: str
    until: datetime
    why: str
    """`window`, `cap` (this campaign's) or `global cap`."""


@dataclass(frozen=True, slots=True)
class Tag:
    tag: str


@dataclass(frozen=True, slots=True)
class Untag:
    tag: str


@dataclass(frozen=True, slots=True)
class Score:
    delta: float


@dataclass(frozen=True, slots=True)
class EnrollInto:
    """Enroll the lead in another campaign (the caller applies that campaign's reentry rule)."""

    campaign: str


@dataclass(frozen=True, slots=True)
class NotifySales:
    """Tell sales about the lead with `template`; (`node_id`, `iteration_no`) key the email."""

    template: str
    node_id: str = ""
    iteration_no: int = 0
    """As `Send.iteration_no`: a notify inside a repeat is one email per round."""
    loop_index: int | None = None
    """As `Send.loop_index`: the round, for `{{ loop.index }}` in the note's template."""


@dataclass(frozen=True, slots=True)
class EmitMql:
    """The lead became an MQL; `cause` says where (recorded with the lifecycle change)."""

    cause: str


@dataclass(frozen=True, slots=True)
class Exit:
    """The enrollment left the campaign before its end."""

    reason: str


Action = (
    Send | Suppressed | Deferred | Tag | Untag | Score | EnrollInto | NotifySales | EmitMql | Exit
)


@dataclass(frozen=True, slots=True)
class Decision:
    """The actions to perform now, in order, and the enrollment state to store."""

    actions: tuple[Action, ...]
    state: EnrollmentState

    @property
    def sends(self) -> tuple[Send, ...]:
        return tuple(a for a in self.actions if isinstance(a, Send))
