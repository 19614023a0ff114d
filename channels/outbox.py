"""Channels that deliver nowhere: a folder of files, and a list in memory.

`OutboxChannel` is the embedded default: each email becomes `<Message-ID>.eml`
(openable in any mail program), any other message `<message_id>.<channel>.json`.
A file appears whole or not at all (written beside, then renamed), and sending
the same message id again rewrites the same file. `RecordingChannel` keeps the
messages in a list, for unit tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from channels.base import ClosingContext, OutboundMessage, Receipt
from channels.dkim import DkimSigner
from channels.errors import ChannelConfigError, PermanentChannelError
from channels.mime import Sender, email_bytes, from_domain

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")
_MAX_STEM = 150


class OutboxChannel(ClosingContext):
    """Writes every message to a file in `folder` instead of sending it."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        sender: Sender | None = None,
        fsync: bool = True,
        dkim: DkimSigner | None = None,
    ) -> None:
        self.folder = Path(folder)
        """Where the files go; created on the first message."""
        self.sender = sender or Sender("nurture@localhost")
        """The From and Reply-To written into each email."""
        self.fsync = fsync
        """Flush each file to disk before it is renamed into place (off for simulations)."""
        self.dkim = dkim
        """Signs each email as the SMTP channel would, so the files are what would be sent."""
        if dkim is not None:
            dkim.check_domain(from_domain(self.sender.from_addr))
        self._closed = False

    def path_for(self, message: OutboundMessage) -> Path:
        """The file `message` is written to."""
        suffix = ".eml" if message.channel == "email" else f".{message.channel}.json"
        return self.folder / (file_stem(message.message_id) + suffix)

    async def send(self, message: OutboundMessage) -> Receipt:
        if self._closed:
            raise RuntimeError("OutboxChannel.send() after aclose()")
        try:
            data = self._render(message)
        except PermanentChannelError as e:
            return Receipt.permanent(str(e))
        path = self.path_for(message)
        try:
            await asyncio.to_thread(write_atomically, path, data, fsync=self.fsync)
        except (PermissionError, NotADirectoryError, FileExistsError) as e:
            raise ChannelConfigError(f"cannot write to outbox folder {self.folder}: {e}") from e
        except OSError as e:
            return Receipt.transient(f"cannot write {path}: {e}")
        return Receipt.sent(path.name, f"written to {path}")

    async def aclose(self) -> None:
        self._closed = True

    def _render(self, message: OutboundMessage) -> bytes:
        if message.channel == "email":
            data = email_bytes(message, self.sender)
            if self.dkim is None:
                return data
            return self.dkim.sign(
                data, from_domain(message.headers.get("From", self.sender.from_addr))
            )
        record = {
            "channel": message.channel,
            "to": message.to,
            "message_id": message.message_id,
            "subject": message.subject,
            "text": message.text,
            "html": message.html,
            "body": dict(message.body) if isinstance(message.body, Mapping) else message.body,
            "metadata": dict(message.metadata),
        }
        try:
            return json.dumps(record, ensure_ascii=False, indent=2).encode() + b"\n"
        except (TypeError, ValueError) as e:
            raise PermanentChannelError(
                f"{message.channel} message {message.message_id} body is not JSON: {e}"
            ) from e


def file_stem(message_id: str) -> str:
    """A safe, distinct file name for a message id: `<a/b@x>` → `a_b@x-<hash>`."""
    bare = message_id.strip().removeprefix("<").removesuffix(">")
    stem = _UNSAFE.sub("_", bare).lstrip(".")
    if stem != bare or not stem or len(stem) > _MAX_STEM:
        digest = hashlib.sha256(message_id.encode()).hexdigest()[:12]
        stem = f"{stem[:_MAX_STEM]}-{digest}"
    return stem


def write_atomically(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            if fsync:
                file.flush()
                os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if fsync and os.name == "posix":
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


class RecordingChannel(ClosingContext):
    """Keeps every message in `messages`; the twin of a real channel for unit tests."""

    def __init__(self, respond: Callable[[OutboundMessage], Receipt] | None = None) -> None:
        self.messages: list[OutboundMessage] = []
        """Every message given to `send()`, in order."""
        self.closed = False
        """Whether `aclose()` was called."""
        self._respond = respond

    async def send(self, message: OutboundMessage) -> Receipt:
        if self.closed:
            raise RuntimeError("RecordingChannel.send() after aclose()")
        self.messages.append(message)
        if self._respond is not None:
            return self._respond(message)
        return Receipt.sent(f"recorded-{len(self.messages)}")

    async def aclose(self) -> None:
        self.closed = True
