"""The WeChat token shared through the database: one fetch, however many workers refresh at once.

Each worker here is a thread with its own engine, token cache and channel, as
worker processes have; they start together at a barrier and send against the
fake WeChat API (`tests.channels.wechat_api`), whose token endpoint is slow
enough for their refreshes to overlap. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from channels import OutboundMessage, Receipt, TokenEndpoint, WechatChannel
from nurture.config import Settings
from nurture.models import WechatToken
from nurture.runtime.database import runtime_engine, sessions_for
from nurture.runtime.sending import make_channels
from nurture.runtime.wechat_tokens import SharedTokens
from tests.channels.wechat_api import APPID, SECRET, WechatApi, running_wechat_api

WORKERS = 6


@pytest.fixture
def api() -> Iterator[WechatApi]:
    with running_wechat_api(delay=0.3) as api:
        yield api


def card(n: int) -> OutboundMessage:
    body = {"template_id": "T1", "data": {"first": f"#{n}"}}
    return OutboundMessage("wechat", "o-lin", f"m-{n}", body=body)


class Workers:
    """`WORKERS` threads, each with its own engine, token cache and channel, kept across rounds."""

    def __init__(self, url: str, api: WechatApi) -> None:
        self.url, self.api = url, api
        self.go = threading.Barrier(WORKERS + 1)
        self.done = threading.Barrier(WORKERS + 1)
        self.rounds = 0
        self.receipts: list[Receipt] = []
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(WORKERS)]
        for thread in self.threads:
            thread.start()

    def send_together(self) -> list[Receipt]:
        """Each worker sends one message, all starting at once; this round's receipts."""
        self.rounds += 1
        self.receipts = []
        self.go.wait(timeout=30)
        self.done.wait(timeout=60)
        assert self.errors == []
        return self.receipts

    def stop(self) -> None:
        self.rounds = -1
        self.go.wait(timeout=30)
        for thread in self.threads:
            thread.join(timeout=30)

    def _run(self, n: int) -> None:
        engine = runtime_engine(self.url, pool_size=1)
        endpoint = TokenEndpoint(APPID, SECRET, f"{self.api.base_url}/cgi-bin/stable_token")
        tokens = SharedTokens(sessions_for(engine), endpoint)

        async def rounds() -> None:
            async with WechatChannel(tokens=tokens, api_url=self.api.base_url) as wechat:
                while True:
                    await asyncio.to_thread(self.go.wait, 30)
                    if self.rounds < 0:
                        return
                    try:
                        self.receipts.append(await wechat.send(card(self.rounds * 100 + n)))
                    except BaseException as e:  # reported by the test
                        self.errors.append(e)
                    await asyncio.to_thread(self.done.wait, 60)

        try:
            asyncio.run(rounds())
        finally:
            engine.dispose()


@pytest.fixture
def workers(migrated_url: str, api: WechatApi) -> Iterator[Workers]:
    started = Workers(migrated_url, api)
    yield started
    started.stop()


def test_workers_refreshing_at_once_fetch_one_token(
    migrated_url: str, api: WechatApi, workers: Workers
) -> None:
    # When six workers with no token send at the same moment
    first = workers.send_together()
    # Then one token was fetched for all of them, and every message went out
    assert [r.ok for r in first] == [True] * WORKERS
    assert api.token_requests == 1

    # When WeChat ends that token (another fetch replaced it) and they all send again at once
    api.revoke()
    second = workers.send_together()
    # Then each was refused once, one refresh was made for all, and every message went out
    assert [r.ok for r in second] == [True] * WORKERS, [r.detail for r in second]
    assert api.refused == [40001] * WORKERS
    assert (api.token_requests, api.token_requests_forced) == (2, 1)

    # When the token reaches its end (42001) and they send at once once more
    api.expire()
    third = workers.send_together()
    assert [r.ok for r in third] == [True] * WORKERS
    assert api.refused[WORKERS:] == [42001] * WORKERS
    assert api.token_requests == 3
    assert len(api.sent) == 3 * WORKERS

    # And the database holds the newest token, fetched three times
    engine = runtime_engine(migrated_url, pool_size=1)
    with sessions_for(engine)() as session:
        row = session.scalars(select(WechatToken)).one()
    engine.dispose()
    assert (row.appid, row.access_token, row.fetches) == (APPID, "TOKEN-3", 3)


def test_a_new_worker_takes_the_stored_token(
    migrated_url: str, api: WechatApi, workers: Workers
) -> None:
    # Given a token fetched by the workers
    workers.send_together()
    assert api.token_requests == 1

    # When a worker that has not seen it starts and sends, through the runtime's channels
    settings = Settings(
        database_url=migrated_url,
        wechat_appid=APPID,
        wechat_secret=SECRET,
        wechat_api_url=api.base_url,
    )

    async def send() -> Receipt:
        wechat = make_channels(settings)["wechat"]
        try:
            return await wechat.send(card(99))
        finally:
            await wechat.aclose()

    receipt = asyncio.run(send())

    # Then it used the stored token: no fetch
    assert receipt.ok, receipt.detail
    assert api.token_requests == 1
