"""The command tests' fixtures: the channels' SMTP server, shared."""

from __future__ import annotations

from tests.channels.conftest import smtp_server  # noqa: F401  (a fixture, shared)
