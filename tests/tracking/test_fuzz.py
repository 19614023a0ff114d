"""Random and damaged tokens: always a 4xx, never a 500, and nothing recorded.

The requests go over real HTTP to the app under uvicorn, with a plain httpx client.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nurture.tokens import TokenSigner
from tests.tracking.conftest import Seed, Touch

URLSAFE = string.ascii_letters + string.digits + "-_."


@pytest.fixture
def sync_client(live_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_url, timeout=10) as client:
        yield client


@pytest.fixture
def genuine(seed: Seed, signer: TokenSigner) -> tuple[Touch, dict[str, str]]:
    """A seeded touch and its genuine token per path."""
    touch = seed.touch()
    return touch, {
        "o": signer.open_token(touch.delivery_id),
        "c": signer.click_token(touch.delivery_id, 0),
        "u": signer.unsubscribe_token(touch.lead_id, touch.delivery_id),
    }


@st.composite
def damaged(draw: st.DrawFn, token: str) -> str:
    """`token` with one character (not the last, whose low bits base64 ignores) changed."""
    position = draw(st.integers(0, len(token) - 2))
    replacement = draw(st.sampled_from(URLSAFE).filter(lambda c: c != token[position]))
    return token[:position] + replacement + token[position + 1 :]


RANDOM = st.one_of(st.text(max_size=300), st.text(URLSAFE, min_size=1, max_size=120))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_and_damaged_tokens_are_refused(
    data: st.DataObject,
    sync_client: httpx.Client,
    seed: Seed,
    genuine: tuple[Touch, dict[str, str]],
) -> None:
    touch, tokens = genuine
    for path in ("o", "c", "u"):
        token = data.draw(st.one_of(RANDOM, damaged(tokens[path])), label=path)
        url = f"/{path}/{quote(token, safe='')}"
        methods = ("GET", "POST") if path == "u" else ("GET",)
        for method in methods:
            response = sync_client.request(method, url, content="List-Unsubscribe=One-Click")
            assert 400 <= response.status_code < 500, (method, url, response.status_code)

    assert seed.event_count() == 0
    lead = seed.get_lead(touch.lead_id)
    assert lead is not None and lead.unsubscribed_at is None
