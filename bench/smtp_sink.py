"""An SMTP sink for benchmarks: aiosmtpd on 127.0.0.1 that accepts every message and drops it.

    with running_sink() as sink:          # a child process by default
        ...send to sink.host, sink.port...
        print(sink.received)              # messages accepted so far

The sink runs in its own process so that it does not share the sender's GIL
and event loop (pass `process=False` for a thread in this process). It counts
what it accepted, so a benchmark can check that every message arrived.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized

from aiosmtpd.smtp import SMTP, Envelope, Session

HOST = "127.0.0.1"


class _Discard:
    """aiosmtpd handler: accept, count, forget."""

    def __init__(self, counter: Synchronized[int]) -> None:
        self.counter = counter

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.counter.value += 1
        return "250 2.0.0 Ok: discarded"


async def _serve(counter: Synchronized[int], ready: Connection, stop: asyncio.Event) -> None:
    handler = _Discard(counter)
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(handler, hostname="sink.local", enable_SMTPUTF8=True), HOST, 0
    )
    ready.send(server.sockets[0].getsockname()[1])
    async with server:
        await stop.wait()


def serve(counter: Synchronized[int], ready: Connection) -> None:
    """Run the sink until the process is terminated; send the port through `ready` first."""
    asyncio.run(_serve(counter, ready, asyncio.Event()))


@dataclass
class Sink:
    host: str
    port: int
    counter: Synchronized[int]
    pid: int | None = None
    """The sink's own process (None: a thread of this one), to read its CPU time."""

    @property
    def received(self) -> int:
        """Messages accepted since the sink started."""
        return int(self.counter.value)


@contextmanager
def running_sink(*, process: bool = True) -> Iterator[Sink]:
    """Start a sink on an ephemeral port of 127.0.0.1; stop it when the block ends."""
    context = multiprocessing.get_context("spawn")
    counter: Synchronized[int] = context.Value("q", 0)
    receiver, sender = context.Pipe(duplex=False)
    stop: Callable[[], object]
    wait: Callable[[], object]
    pid: int | None = None
    if process:
        child = context.Process(target=serve, args=(counter, sender), daemon=True)
        child.start()
        stop, wait, pid = child.terminate, child.join, child.pid
    else:
        loop, event = asyncio.new_event_loop(), asyncio.Event()
        thread = threading.Thread(
            target=loop.run_until_complete, args=(_serve(counter, sender, event),), daemon=True
        )
        thread.start()

        def stop_thread() -> None:
            loop.call_soon_threadsafe(event.set)

        def wait_thread() -> None:
            thread.join()
            loop.close()

        stop, wait = stop_thread, wait_thread

    try:
        if not receiver.poll(10):
            raise RuntimeError("the SMTP sink did not start within 10 s")
        yield Sink(HOST, int(receiver.recv()), counter, pid)
    finally:
        stop()
        wait()
