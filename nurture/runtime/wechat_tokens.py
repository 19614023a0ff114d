"""The WeChat access token in the database, shared by every worker process and machine.

A worker keeps the token in memory while it is fresh (more than five minutes
left). When it is not, or WeChat refused it, the worker takes the app's row
in ``wechat_tokens`` with an ``UPDATE`` (a row lock on PostgreSQL, the write
lock on SQLite), reads what is stored, and fetches a new token only if the
stored one is stale too, or is the very token that was refused; then writes it
and commits, which lets the next waiting worker in to find it fresh. So a
refresh happens once, whatever the number of workers: the token endpoint is
limited per day, and a ``cgi-bin/token`` fetch ends the token before it.

The fetch runs while the row is held, in a thread (the send loop goes on);
it is bounded by the endpoint's timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.expression import Executable

from channels import AccessToken, MemoryTokens, TokenEndpoint
from nurture.models import WechatToken


class SharedTokens(MemoryTokens):
    """`channels.AccessTokens` kept in the database's ``wechat_tokens`` table: the
    in-memory front of `MemoryTokens`, getting a new token through the app's row."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        endpoint: TokenEndpoint,
        *,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        owned: Engine | None = None,
    ) -> None:
        super().__init__(endpoint, client=client, clock=clock)
        self.sessions = sessions
        self.fetched = 0
        """Tokens this instance fetched from WeChat (for tests and logs)."""
        self._owned = owned
        """The engine made for this cache alone, disposed when it closes."""

    def close(self) -> None:
        super().close()
        if self._owned is not None:
            self._owned.dispose()

    def _obtain(self, rejected: str | None) -> AccessToken:
        return self._locked(rejected)

    def _locked(self, rejected: str | None) -> AccessToken:
        """The stored token if usable, else a new one stored; the app's row held throughout."""
        appid = self.endpoint.appid
        with self.sessions() as session, session.begin():
            session.execute(_insert_missing(session, appid))
            session.execute(  # takes the row: other workers wait here until we commit
                update(WechatToken).where(WechatToken.appid == appid).values(appid=appid)
            )
            row = session.scalars(select(WechatToken).where(WechatToken.appid == appid)).one()
            stored = _stored(row)
            if stored is not None and stored.value != rejected and stored.fresh(self._clock()):
                return stored
            fetched = self.endpoint.fetch(self._client, force=rejected is not None, now=self._clock)
            self.fetched += 1
            row.access_token = fetched.value
            row.expires_at = datetime.fromtimestamp(fetched.expires_at, UTC)
            row.fetched_at = datetime.fromtimestamp(self._clock(), UTC)
            row.fetches += 1
            return fetched


def _stored(row: WechatToken) -> AccessToken | None:
    if row.access_token is None or row.expires_at is None:
        return None
    return AccessToken(row.access_token, row.expires_at.timestamp())


def _insert_missing(session: Session, appid: str) -> Executable:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(WechatToken).values(appid=appid, fetches=0).on_conflict_do_nothing()
