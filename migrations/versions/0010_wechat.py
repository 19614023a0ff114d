"""WeChat access tokens shared by every worker.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

- ``wechat_tokens``: the access token of each WeChat app (by appid), when it
  expires, and how often it was fetched. Its row is also the lock that lets
  one worker at a time fetch a new token (``UPDATE`` takes it on PostgreSQL
  and on SQLite alike): the token endpoint is limited per day, and a token
  fetched from ``cgi-bin/token`` ends the one before it.

A table is only added.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _moment(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def upgrade() -> None:
    op.create_table(
        "wechat_tokens",
        sa.Column("appid", sa.String(length=64), nullable=False),
        sa.Column("access_token", sa.Text(), nullable=True),
        _moment("expires_at"),
        _moment("fetched_at"),
        sa.Column("fetches", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("appid", name=op.f("pk_wechat_tokens")),
    )


def downgrade() -> None:
    op.drop_table("wechat_tokens")
