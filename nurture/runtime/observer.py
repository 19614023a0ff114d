"""Hooks around each batch, for metrics, audit and tests; the defaults do nothing.

An `Observer` subclass overrides what it needs. The executor calls the hooks
in order: `claimed`, `before_send` and `after_send` once for each slice of
rendered messages (`nurture.runtime.rendering`; most batches are one slice),
`recorded`. A hook that
raises stops the batch where it is, exactly as a crash there would: a test
raising in `after_send` leaves the touches sent, their answers stored (each
as it came) but the enrollments not moved on: the next run finds the touches
sent and moves on without sending them again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from channels import OutboundMessage, Receipt


@dataclass(slots=True)
class BatchReport:
    """What one batch did."""

    claimed: int = 0
    """Enrollments this job claimed (the others were done, not due, or held elsewhere)."""
    decided: int = 0
    sent: int = 0
    failed: int = 0
    retrying: int = 0
    skipped: int = 0
    """Touches found already sent (or failed) by an earlier job: not sent again."""
    unknown: int = 0
    """Touches now ``unknown``: left handed to a channel by a job that died, or handed over
    and never answered (a timeout or a dropped connection once the message went out)."""
    held: int = 0
    """Enrollments not run because a touch of theirs is ``unknown``."""
    handed_back: int = 0
    """Touches not handed to a channel (the process is stopping, or another job has them):
    their rows stay ``pending``, unmarked, and their enrollments are due again at once."""
    throttled: int = 0
    """Emails held back because their receiving domain's rate was reached: ``deferred``."""
    enrolled: list[int] = field(default_factory=list)
    """Enrollments created by ``enroll "<campaign>"`` steps."""


class Observer:
    """Called around each batch; subclass and override."""

    def claimed(self, ids: Sequence[int]) -> None:
        """The job claimed these enrollments."""

    def before_send(self, messages: Sequence[OutboundMessage]) -> None:
        """The pending delivery rows are committed; these messages go out next."""

    def after_send(
        self, messages: Sequence[OutboundMessage], receipts: Sequence[Receipt | None]
    ) -> None:
        """The channels answered (None: not handed over); the batch is not recorded yet."""

    def recorded(self, report: BatchReport) -> None:
        """The batch's results and the enrollments' new states are committed."""
