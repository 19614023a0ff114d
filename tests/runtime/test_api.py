"""The public API of `nurture.runtime`, pinned."""

from __future__ import annotations

import subprocess
import sys

import nurture.runtime
from nurture.config import DEV_SECRET_KEY
from nurture.tracking import DEV_SECRET_KEY as TRACKING_DEV_KEY


def test_exported_members() -> None:
    assert nurture.runtime.__all__ == sorted(nurture.runtime.__all__)
    assert nurture.runtime.__all__ == [
        "AcceleratedClock",
        "BatchReport",
        "Executor",
        "Hooks",
        "Key",
        "Observer",
        "ReleaseError",
        "Runtime",
        "Scheduler",
        "TickReport",
        "UnknownDelivery",
        "default_hooks",
        "message_id",
        "on_lead",
        "on_notices",
        "on_wake",
        "release",
        "span",
        "unknown_deliveries",
    ]
    for name in nurture.runtime.__all__:
        assert getattr(nurture.runtime, name) is not None


def test_importing_the_package_declares_no_actor_and_picks_no_broker() -> None:
    # The broker must be chosen before the actors module is imported (dramatiq #214)
    code = (
        "import sys, nurture.runtime, nurture.cli; "
        "print('nurture.runtime.actors' in sys.modules, 'dramatiq' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_the_workers_sign_with_the_tracking_service_development_key() -> None:
    assert DEV_SECRET_KEY == TRACKING_DEV_KEY
