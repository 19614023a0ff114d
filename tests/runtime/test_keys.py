"""The Message-ID of a touch: the same for a retried job, unknowable to a stranger."""

from __future__ import annotations

import hashlib

from nurture.runtime.keys import Key, message_id

KEY = Key(12, "s3", 0)


def test_the_same_touch_gets_the_same_message_id_and_another_touch_another() -> None:
    first = message_id(KEY, "acme.test", "secret one")
    assert first == message_id(Key(12, "s3", 0), "acme.test", "secret one")
    assert first != message_id(Key(12, "s3", 1), "acme.test", "secret one")
    assert first != message_id(Key(13, "s3", 0), "acme.test", "secret one")
    assert first.startswith("<") and first.endswith("@acme.test>") and len(first) == 44


def test_without_the_secret_key_a_message_id_cannot_be_worked_out_from_the_touch() -> None:
    # A stranger who guesses the enrollment, step and iteration, and hashes them as the old
    # unkeyed Message-ID did, does not get ours: a report quoting it names no delivery of ours
    text = f"nurture:{KEY.enrollment}:{KEY.step}:{KEY.iteration}"
    guessed = f"<{hashlib.sha256(text.encode()).hexdigest()[:32]}@acme.test>"
    ours = message_id(KEY, "acme.test", "secret one")
    assert ours != guessed
    assert ours != message_id(KEY, "acme.test", "secret two")
