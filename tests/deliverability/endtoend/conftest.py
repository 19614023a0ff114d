"""The runtime's fixtures (a deployed database of each kind, its settings, a virtual clock)
and the fake SMS provider, for the end-to-end deliverability tests."""

from __future__ import annotations

from tests.runtime.conftest import clock, db_url, engine, sessions, settings  # noqa: F401
from tests.runtime.test_embedded_providers import provider  # noqa: F401
