"""Real services for tests and benchmarks: an ASGI app under uvicorn on 127.0.0.1 in a
thread, and `nurture` commands as processes of their own."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn


@contextmanager
def serving(app: Any, name: str = "app") -> Iterator[str]:
    """Serve `app` on an ephemeral port; its base URL, until the block ends."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the {name} did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def nurture_process(
    args: list[str], env: dict[str, str], log: Path, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`nurture ARGS...` as a process of its own (its output in `log`), stopped at the end."""
    command = str(Path(sys.executable).with_name("nurture"))
    out = log.open("wb")
    proc = subprocess.Popen(
        [command, *args],
        cwd=cwd,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()


def wait_for(
    what: str, ready: Callable[[], bool], timeout: float = 60, log: Path | None = None
) -> None:
    """Poll `ready` until it holds; a RuntimeError naming `what` (and the log's tail) if not."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log is not None else ""
            raise RuntimeError(f"{what} did not happen within {timeout:g} s\n{tail}")
        time.sleep(0.05)


def healthy(url: str) -> bool:
    """Whether the tracking service at `url` answers its health check."""
    import httpx

    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (now)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
