"""The errors a channel raises.

    ChannelError                 Raised when a channel cannot deliver a message.
    ├── TransientChannelError    Raised when trying again later may succeed.
    ├── OutcomeUnknownError      Raised when the message may have been delivered.
    └── PermanentChannelError    Raised when trying again will fail the same way.
        └── ChannelConfigError   Raised when the channel itself is misconfigured.

`send()` reports what happened to one message as a `Receipt`; it raises only
`ChannelConfigError` (a malformed URL, refused credentials, a TLS failure):
then no message can go out, and the lead is not to blame. `Receipt.raise_for_status()`
turns a failed receipt into `TransientChannelError` or `PermanentChannelError`
(an `unknown` one into `OutcomeUnknownError`, which must not be retried) for
callers that retry on exceptions (Dramatiq actors). Third-party errors are
translated where they happen, chained with `from e`. Every error carries only its
message, so it pickles across worker processes.
"""

from __future__ import annotations


class ChannelError(Exception):
    """Raised when a channel cannot deliver a message."""


class TransientChannelError(ChannelError):
    """Raised when trying again later may succeed: a timeout, a 4xx SMTP reply, HTTP 5xx."""


class OutcomeUnknownError(ChannelError):
    """Raised when the message was handed over but no answer came: it may have been delivered.

    Sending it again could deliver it twice; a person decides (see DESIGN "Deliveries").
    """


class PermanentChannelError(ChannelError):
    """Raised when trying again will fail the same way: an unknown mailbox, an invalid number."""


class ChannelConfigError(PermanentChannelError):
    """Raised when the channel itself is misconfigured: a malformed URL, refused credentials."""
