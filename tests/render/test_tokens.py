"""Signed tracking tokens: round trips, forgeries, purposes, expiry and key rotation."""

from __future__ import annotations

import contextlib
import pickle
import re
import string
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer

from nurture.tokens import (
    INVITE_MAX_AGE,
    PURPOSES,
    TRACKING_MAX_AGE,
    BadToken,
    ExpiredToken,
    Purpose,
    TokenSigner,
    _ClockedSigner,
)
from tests.render.conftest import SECRET

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SIGNER = TokenSigner(SECRET, clock=lambda: NOW)


class Clock:
    """A clock that moves only when told."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _tokens(signer: TokenSigner) -> dict[Purpose, str]:
    return {
        "open": signer.open_token(41),
        "click": signer.click_token(41, 2),
        "unsubscribe": signer.unsubscribe_token(7, 41),
        "answer": signer.answer_token(41),
        "invite": signer.invite_token(41, "nonce"),
    }


def _altered(token: str, at: int) -> str:
    """`token` with the character at `at` replaced by another base64 character."""
    return token[:at] + ("B" if token[at] == "A" else "A") + token[at + 1 :]


def test_each_token_reads_back_as_what_it_carries(signer: TokenSigner) -> None:
    assert signer.read_open(signer.open_token(41)) == 41
    assert signer.read_click(signer.click_token(41, 2)) == (41, 2)
    assert signer.read_unsubscribe(signer.unsubscribe_token(7, 41)) == (7, 41)
    assert signer.read_unsubscribe(signer.unsubscribe_token(7)) == (7, None)
    assert signer.read("click", signer.click_token(41, 2), None) == [41, 2]


@pytest.mark.parametrize(("ids", "most"), [(123_456, 60), (2**40, 80)], ids=["usual", "huge"])
def test_tokens_are_short_and_url_safe(signer: TokenSigner, ids: int, most: int) -> None:
    for token in (
        signer.open_token(ids),
        signer.click_token(ids, 99),
        signer.unsubscribe_token(ids, ids),
    ):
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+", token)
        assert len(token) <= most


def test_tokens_are_what_itsdangerous_makes() -> None:
    for purpose, payload, token in [
        ("open", 41, SIGNER.open_token(41)),
        ("click", [41, 2], SIGNER.click_token(41, 2)),
        ("unsubscribe", [7, 41], SIGNER.unsubscribe_token(7, 41)),
    ]:
        reference = URLSafeTimedSerializer(
            SECRET,
            salt=f"nurture.{purpose}",
            signer=_ClockedSigner,
            signer_kwargs={"clock": lambda: NOW},
        )
        assert token == reference.dumps(payload)


@pytest.mark.parametrize("at", [0, 3, -10], ids=["payload", "payload-middle", "signature"])
def test_an_altered_token_is_refused(signer: TokenSigner, at: int) -> None:
    # Given a genuine click token with one character changed
    token = signer.click_token(41, 2)
    forged = _altered(token, at % len(token))
    # When it is read, then it is refused
    with pytest.raises(BadToken):
        signer.read_click(forged)


def test_a_token_with_a_forged_payload_is_refused(signer: TokenSigner) -> None:
    # Given the signature of link 2 glued to the payload of link 3
    genuine, other = signer.click_token(41, 2), signer.click_token(41, 3)
    forged = other.split(".")[0] + "." + genuine.split(".", 1)[1]
    with pytest.raises(BadToken):
        signer.read_click(forged)


@pytest.mark.parametrize("made_for", PURPOSES)
def test_a_token_reads_for_its_own_purpose_only(signer: TokenSigner, made_for: Purpose) -> None:
    token = _tokens(signer)[made_for]
    for purpose in PURPOSES:
        if purpose != made_for:
            with pytest.raises(BadToken):
                signer.read(purpose, token, None)


def test_a_token_from_another_secret_is_refused(signer: TokenSigner) -> None:
    stranger = TokenSigner("another-secret-key-0123456789abcd")
    for purpose, token in _tokens(stranger).items():
        with pytest.raises(BadToken):
            signer.read(purpose, token, None)


def test_a_token_older_than_max_age_has_expired() -> None:
    # Given a token signed now and read one second later with max_age 0
    clock = Clock(NOW)
    signer = TokenSigner(SECRET, clock=clock)
    token = signer.open_token(41)
    assert signer.read("open", token, timedelta(0)) == 41
    clock.now += timedelta(seconds=1)
    # Then it is expired, which is a kind of bad token
    with pytest.raises(ExpiredToken) as raised:
        signer.read("open", token, timedelta(0))
    assert isinstance(raised.value, BadToken)
    assert raised.value.payload == 41


def test_open_and_click_tokens_expire_after_the_tracking_period() -> None:
    # Given tokens signed just over 180 days ago
    old = TokenSigner(SECRET, clock=lambda: NOW - TRACKING_MAX_AGE - timedelta(minutes=1))
    recent = TokenSigner(SECRET, clock=lambda: NOW - TRACKING_MAX_AGE + timedelta(minutes=1))
    with pytest.raises(ExpiredToken):
        SIGNER.read_open(old.open_token(41))
    # Then an expired click still says where it goes, so the reader can be redirected
    with pytest.raises(ExpiredToken) as raised:
        SIGNER.read_click(old.click_token(41, 2))
    assert raised.value.payload == (41, 2)
    assert SIGNER.read_click(recent.click_token(41, 2)) == (41, 2)


def test_unsubscribe_tokens_never_expire() -> None:
    ten_years_ago = TokenSigner(SECRET, clock=lambda: NOW - timedelta(days=3653))
    assert SIGNER.read_unsubscribe(ten_years_ago.unsubscribe_token(7, 41)) == (7, 41)


def test_a_token_from_the_future_is_refused() -> None:
    ahead = TokenSigner(SECRET, clock=lambda: NOW + timedelta(hours=1))
    with pytest.raises(BadToken):
        SIGNER.read_open(ahead.open_token(41))


def test_rotated_keys_still_read_old_tokens_and_sign_with_the_newest() -> None:
    # Given a key list with the old key first and the new one last
    old = TokenSigner("old-key-0123456789abcdef01234567")
    rotated = TokenSigner(["old-key-0123456789abcdef01234567", b"new-key-0123456789abcdef0123456"])
    # Then old links keep working, and new tokens are not signed with the old key
    assert rotated.read_unsubscribe(old.unsubscribe_token(7)) == (7, None)
    with pytest.raises(BadToken):
        old.read_unsubscribe(rotated.unsubscribe_token(7))


@pytest.mark.parametrize("key", ["", b"", []], ids=["empty-str", "empty-bytes", "no-keys"])
def test_an_empty_secret_is_refused(key: str | bytes | list[str]) -> None:
    with pytest.raises(ValueError, match="secret"):
        TokenSigner(key)


def test_a_genuine_token_with_the_wrong_shape_is_refused(signer: TokenSigner) -> None:
    # Given an open token (one id) presented where two ids are expected
    token = signer._dumps("click", [41])
    with pytest.raises(BadToken, match="click token holds"):
        signer.read_click(token)
    with pytest.raises(BadToken):
        signer.read_open(signer._dumps("open", "41"))


def test_a_genuine_token_with_an_id_no_database_holds_is_refused(signer: TokenSigner) -> None:
    with pytest.raises(BadToken, match="open token holds"):
        signer.read_open(signer._dumps("open", 2**31))
    with pytest.raises(BadToken, match="click token holds"):
        signer.read_click(signer._dumps("click", [1, 2**70]))
    with pytest.raises(BadToken, match="unsubscribe token holds"):
        signer.read_unsubscribe(signer._dumps("unsubscribe", [-1]))


def test_expired_token_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(ExpiredToken("click token expired", (41, 2))))
    assert (str(error), error.payload) == ("click token expired", (41, 2))


@given(token=st.binary() | st.text())
def test_random_tokens_raise_bad_token_and_nothing_else(token: bytes | str) -> None:
    for purpose in PURPOSES:
        with pytest.raises(BadToken):
            SIGNER.read(purpose, token, None)


@given(at=st.integers(min_value=0), char=st.characters())
def test_tampering_never_yields_another_payload(at: int, char: str) -> None:
    # Given a genuine token with one character replaced by anything
    token = SIGNER.click_token(41, 2)
    at %= len(token)
    tampered = token[:at] + char + token[at + 1 :]
    # Then it is refused, unless it is the very same token
    if tampered == token:
        assert SIGNER.read_click(tampered) == (41, 2)
    else:
        with pytest.raises(BadToken):
            SIGNER.read_click(tampered)


@pytest.mark.parametrize("purpose", PURPOSES)
def test_only_the_canonical_spelling_of_a_signature_reads(purpose: Purpose) -> None:
    # Given a genuine token, and the same token with its last character replaced by each of
    # the 63 other base64url characters, or padded with "=" (base64 that decodes the same)
    token = _tokens(SIGNER)[purpose]
    alphabet = string.ascii_letters + string.digits + "-_"
    spellings = [token[:-1] + c for c in alphabet if c != token[-1]]
    spellings += [token + "=", token + "==", token[:-1] + "=" + token[-1]]

    # When each is read, then only the genuine one is accepted
    assert SIGNER.read(purpose, token, None) is not None
    accepted = []
    for spelling in spellings:
        with contextlib.suppress(BadToken):
            SIGNER.read(purpose, spelling, None)
            accepted.append(spelling)
    assert accepted == []


def test_an_answer_token_names_its_assignment_and_expires_after_14_days() -> None:
    clock = Clock(NOW)
    signer = TokenSigner(SECRET, clock=clock)
    token = signer.answer_token(41)
    assert signer.read_answer(token) == 41

    clock.now = NOW + timedelta(days=15)
    with pytest.raises(ExpiredToken):
        signer.read_answer(token)


def test_an_invite_token_names_its_user_and_nonce_and_expires_when_told() -> None:
    token = SIGNER.invite_token(7, "n0nce")
    assert SIGNER.read_invite(token) == (7, "n0nce")
    later = TokenSigner(SECRET, clock=lambda: NOW + INVITE_MAX_AGE + timedelta(seconds=1))
    with pytest.raises(ExpiredToken):
        later.read_invite(token)
    assert later.read_invite(token, 2 * INVITE_MAX_AGE) == (7, "n0nce")
    # signed by a machine whose clock is a little ahead: read; far ahead: refused
    ahead = TokenSigner(SECRET, clock=lambda: NOW + timedelta(minutes=4))
    assert SIGNER.read_invite(ahead.invite_token(7, "n0nce")) == (7, "n0nce")
    far = TokenSigner(SECRET, clock=lambda: NOW + timedelta(minutes=6))
    with pytest.raises(BadToken, match="in the future"):
        SIGNER.read_invite(far.invite_token(7, "n0nce"))
    for shape in ([7], [7, ""], ["7", "n0nce"], [7, "x" * 65]):
        with pytest.raises(BadToken, match="invite token holds"):
            SIGNER.read_invite(SIGNER._dumps("invite", shape))
