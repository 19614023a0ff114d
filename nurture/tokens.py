"""Signed tokens for the tracking service: the open pixel, click redirects and unsubscribe links.

A token is an itsdangerous `URLSafeTimedSerializer` string: a compact JSON
payload, the time it was signed and an HMAC, all URL-safe base64 (about 40-50
characters). Each purpose signs with its own salt, so a token made for one
purpose never reads as another: an open token cannot be replayed as a click.

    purpose       payload                      valid for
    open          delivery id                  180 days
    click         [delivery id, link index]    180 days
    unsubscribe   [lead id] or [lead id,       forever
                   delivery id]
    answer        assignment id                14 days
    invite        [user id, nonce]             7 days (``NURTURE_CONSOLE_INVITE_SECONDS``)

An answer token is sales' accept / return link in a new-MQL notice. It names
the assignment, so it is bound to that owner and that MQL: once the MQL is
reassigned, the old owner's link no longer answers for it.

An invite token is a console invitation's link to choose a password. Its
nonce is also stored on the user's row and cleared when the password is
chosen, so the link works once; a newer invitation replaces the nonce.

Expiry policy. Open and click tokens stop counting after `TRACKING_MAX_AGE`
(180 days): every `within` wait and the interest-score decay are measured in
days or weeks, so an open half a year later changes no decision, while a
bound limits how long a leaked token can fake engagement. An expired click
token still names its link (`ExpiredToken.payload`), so the tracking service
can redirect the reader without recording the click: old emails keep working.

Unsubscribe tokens never expire. CAN-SPAM requires an opt-out that works for
at least 30 days after the send, RFC 8058 one-click unsubscribe
(`List-Unsubscribe-Post`) has mail clients call the URL whenever the reader
presses the button, and GDPR requires withdrawing consent to be as easy as
giving it; people unsubscribe from mail they kept for years. The token can
only remove the lead from our mailings, so a leaked one does little harm.
The consequence: keep retired secret keys in the key list (`TokenSigner`
takes several, newest last) for as long as their unsubscribe links are out
there.

Time is an input: `TokenSigner(clock=...)` signs and checks ages with the
given clock, so tests can sign "200 days ago" without waiting.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, TypeVar

from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode, want_bytes

__all__ = [
    "ANSWER_MAX_AGE",
    "INVITE_MAX_AGE",
    "MAX_AGE",
    "PURPOSES",
    "TRACKING_MAX_AGE",
    "BadToken",
    "ExpiredToken",
    "Purpose",
    "TokenSigner",
]

Purpose = Literal["open", "click", "unsubscribe", "answer", "invite"]
PURPOSES: Final[tuple[Purpose, ...]] = ("open", "click", "unsubscribe", "answer", "invite")

MAX_ID: Final = 2**31 - 1
"""The largest id a token may carry: what a database integer column holds."""
TRACKING_MAX_AGE: Final = timedelta(days=180)
"""How long open and click tokens count; unsubscribe tokens never expire."""
ANSWER_MAX_AGE: Final = timedelta(days=14)
"""How long sales' accept / return links work."""
INVITE_MAX_AGE: Final = timedelta(days=7)
"""How long a console invitation's link works, unless the settings say otherwise."""
CLOCK_SKEW: Final = timedelta(minutes=5)
"""How far in the future an invite token may have been signed (another machine's clock)."""

MAX_AGE: Final[dict[Purpose, timedelta | None]] = {
    "open": TRACKING_MAX_AGE,
    "click": TRACKING_MAX_AGE,
    "unsubscribe": None,
    "answer": ANSWER_MAX_AGE,
    "invite": INVITE_MAX_AGE,
}
"""The expiry policy per purpose (None: never expires), applied by the `read_*` methods."""

Clock = Callable[[], datetime]
T = TypeVar("T")
SecretKey = str | bytes


class BadToken(Exception):
    """Raised when a token is forged, altered, expired or for another purpose."""


class ExpiredToken(BadToken):
    """Raised when a genuine token is older than its purpose allows.

    `payload` is what the token carried (checked as genuine), so the tracking
    service can still redirect an old click without recording it.
    """

    def __init__(self, message: str, payload: Any) -> None:
        super().__init__(message)
        self.payload = payload

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.payload))


def _system_clock() -> datetime:
    return datetime.now(UTC)


class _ClockedSigner(TimestampSigner):
    """An itsdangerous `TimestampSigner` that reads the time from our clock.

    It keeps the signing key it derives and signs in one call: every message
    signs three tokens or more, and itsdangerous derives the key again and
    runs Python's HMAC class for each. Tokens stay byte for byte the same.
    """

    def __init__(self, *args: Any, clock: Clock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock
        self._signing_key: bytes | None = None

    def get_timestamp(self) -> int:
        return int(self.clock().timestamp())

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        if secret_key is not None:
            return super().derive_key(secret_key)
        if self._signing_key is None:
            self._signing_key = super().derive_key()
        return self._signing_key

    def verify_signature(self, value: str | bytes, sig: str | bytes) -> bool:
        """itsdangerous's check, for the canonical base64 of the signature only.

        A 20-byte HMAC is 27 base64 characters whose last carries 2 unused
        bits, and the decoder ignores padding: without this, each token had
        3 more spellings (and ``=`` suffixes) that read as genuine.
        """
        given = want_bytes(sig)
        try:
            canonical = base64_encode(base64_decode(given)) == given
        except BadData:
            return False
        return canonical and super().verify_signature(value, given)

    def get_signature(self, value: str | bytes) -> bytes:
        """The HMAC-SHA1 itsdangerous makes, in one call to OpenSSL (`hmac.digest`)."""
        return base64_encode(hmac.digest(self.derive_key(), want_bytes(value), "sha1"))


class TokenSigner:
    """Signs and reads the tracking service's tokens.

    `secret_key` is one key, or several with the newest last: tokens are
    signed with the newest and read with any, which is how keys are rotated.
    Use at least 32 random bytes, and share them only with the tracking service.
    """

    def __init__(
        self, secret_key: SecretKey | Sequence[SecretKey], *, clock: Clock = _system_clock
    ) -> None:
        given = [secret_key] if isinstance(secret_key, str | bytes) else list(secret_key)
        keys = [k.encode() if isinstance(k, str) else k for k in given]
        if not keys or not all(keys):
            raise ValueError("TokenSigner needs a non-empty secret key")
        self._serializers = {
            purpose: URLSafeTimedSerializer(
                keys,
                salt=f"nurture.{purpose}",
                signer=_ClockedSigner,
                signer_kwargs={"clock": clock},
            )
            for purpose in PURPOSES
        }
        self._signers = {p: s.make_signer(s.salt) for p, s in self._serializers.items()}
        self._clock = clock

    def open_token(self, delivery_id: int) -> str:
        """The token of the open pixel of one delivery."""
        return self._dumps("open", delivery_id)

    def click_token(self, delivery_id: int, link_index: int) -> str:
        """The token of one tracked link of one delivery."""
        return self._dumps("click", [delivery_id, link_index])

    def unsubscribe_token(self, lead_id: int, delivery_id: int | None = None) -> str:
        """The token of an unsubscribe link; the delivery, if given, says which message it was."""
        ids = [lead_id] if delivery_id is None else [lead_id, delivery_id]
        return self._dumps("unsubscribe", ids)

    def answer_token(self, assignment_id: int) -> str:
        """The token of the accept / return link sent to the owner of one assignment."""
        return self._dumps("answer", assignment_id)

    def read_answer(self, token: str | bytes) -> int:
        """The assignment id of an answer token, under the expiry policy."""
        return self._read_as("answer", token, _answer_payload)

    def invite_token(self, user_id: int, nonce: str) -> str:
        """The token of a console invitation's link for one user."""
        return self._dumps("invite", [user_id, nonce])

    def read_invite(
        self, token: str | bytes, max_age: timedelta = INVITE_MAX_AGE
    ) -> tuple[int, str]:
        """(user id, nonce) of an invite token at most `max_age` old.

        The command line may sign it on another machine than the service's: a token
        up to `CLOCK_SKEW` in the future reads (itsdangerous would call it expired).
        """
        serializer = self._serializers["invite"]
        try:
            raw = token.encode("ascii") if isinstance(token, str) else token
            payload, signed = serializer.loads(raw, return_timestamp=True)
        except (BadData, UnicodeError) as e:
            raise BadToken(f"bad invite token: {e}") from e
        age = self._clock() - signed
        if age > max_age:
            raise ExpiredToken(f"invite token expired: {age} > {max_age}", None)
        if age < -CLOCK_SKEW:
            raise BadToken(f"invite token signed {-age} in the future")
        return _invite_payload(payload)

    def read(self, purpose: Purpose, token: str | bytes, max_age: timedelta | None) -> Any:
        """The payload of a genuine `purpose` token at most `max_age` old (None: any age)."""
        serializer = self._serializers[purpose]
        seconds = None if max_age is None else int(max_age.total_seconds())
        try:
            raw = token.encode("ascii") if isinstance(token, str) else token
            return serializer.loads(raw, max_age=seconds)
        except SignatureExpired as e:
            payload = _load_payload(serializer, e.payload)
            raise ExpiredToken(f"{purpose} token expired: {e}", payload) from e
        except (BadData, UnicodeError) as e:
            raise BadToken(f"bad {purpose} token: {e}") from e

    def read_open(self, token: str | bytes) -> int:
        """The delivery id of an open token, under the expiry policy."""
        return self._read_as("open", token, _open_payload)

    def read_click(self, token: str | bytes) -> tuple[int, int]:
        """(delivery id, link index) of a click token, under the expiry policy.

        An expired token raises `ExpiredToken` whose `payload` is that pair.
        """
        return self._read_as("click", token, _click_payload)

    def read_unsubscribe(self, token: str | bytes) -> tuple[int, int | None]:
        """(lead id, delivery id or None) of an unsubscribe token; these never expire."""
        return self._read_as("unsubscribe", token, _unsubscribe_payload)

    def _read_as(self, purpose: Purpose, token: str | bytes, convert: Callable[[Any], T]) -> T:
        """`read` under the policy, the payload checked by `convert` (an expired one too)."""
        try:
            payload = self.read(purpose, token, MAX_AGE[purpose])
        except ExpiredToken as e:
            try:
                old = convert(e.payload)
            except BadToken:
                raise BadToken(str(e)) from e
            raise ExpiredToken(str(e), old) from e
        return convert(payload)

    def _dumps(self, purpose: Purpose, payload: Any) -> str:
        """`URLSafeTimedSerializer.dumps` with a signer made once and no zlib attempt.

        A payload of a few ids never compresses (the serializer would try
        zlib on every token to find that out); `read` takes either form.
        """
        data = base64_encode(json.dumps(payload, separators=(",", ":")).encode())
        return self._signers[purpose].sign(data).decode("ascii")


def _load_payload(serializer: URLSafeTimedSerializer, raw: Any) -> Any:
    """The payload of an expired token, or None when there is none to load."""
    if raw is None:
        return None
    try:
        return serializer.load_payload(raw)
    except BadData:
        return None


def _ids(payload: Any, purpose: str, least: int, most: int | None = None) -> list[int]:
    """The integer ids a payload holds: a single id reads as a list of one."""
    ids = payload if isinstance(payload, list) else [payload]
    if not least <= len(ids) <= (most or least) or not all(_storable(i) for i in ids):
        raise BadToken(f"{purpose} token holds {json.dumps(payload)}, not {least} id(s)")
    return ids


def _storable(value: Any) -> bool:
    """An int a database id column holds (a link index too): 0 to 2**31 - 1."""
    return type(value) is int and 0 <= value <= MAX_ID


def _open_payload(payload: Any) -> int:
    return _ids(payload, "open", 1)[0]


def _click_payload(payload: Any) -> tuple[int, int]:
    delivery_id, link_index = _ids(payload, "click", 2)
    return delivery_id, link_index


def _unsubscribe_payload(payload: Any) -> tuple[int, int | None]:
    ids = _ids(payload, "unsubscribe", 1, 2)
    return ids[0], ids[1] if len(ids) > 1 else None


def _answer_payload(payload: Any) -> int:
    return _ids(payload, "answer", 1)[0]


def _invite_payload(payload: Any) -> tuple[int, str]:
    if (
        isinstance(payload, list)
        and len(payload) == 2
        and _storable(payload[0])
        and isinstance(payload[1], str)
        and 0 < len(payload[1]) <= 64
    ):
        return payload[0], payload[1]
    raise BadToken(f"invite token holds {json.dumps(payload)}, not a user id and a nonce")
