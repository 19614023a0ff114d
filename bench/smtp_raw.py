"""SMTP throughput to a local sink: raw aiosmtplib, then SmtpChannel, in messages per second.

    python bench/smtp_raw.py [--messages 2000] [--connections 10] [--sink process|thread]

Each row sends the same number of ~2 KB text+HTML emails to an aiosmtpd sink on
127.0.0.1 (see smtp_sink.py) that accepts and discards them, and checks that
the sink received every one. Raw rows send one message prepared as bytes;
SmtpChannel rows also build each message (headers, parts, Message-ID) as the
engine would.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiosmtplib
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))

from smtp_sink import Sink, running_sink

from channels import OutboundMessage, Sender, SmtpChannel, SmtpConfig, email_bytes

Run = Coroutine[Any, Any, None]
SENDER = Sender("Acme Marketing <news@acme.test>")
PARAGRAPH = "Thanks for downloading the guide. Here is what teams like yours do next. " * 8


def outbound(n: int) -> OutboundMessage:
    return OutboundMessage(
        "email",
        f"lead{n}@client.test",
        f"<d-{n}.s-1@mail.acme.test>",
        subject=f"Welcome, lead {n}",
        text=f"Hello lead {n},\n\n{PARAGRAPH}\n",
        html=f"<p>Hello lead {n},</p><p>{PARAGRAPH}</p>",
        unsubscribe_url=f"https://t.acme.test/u/{n}",
    )


async def raw(sink: Sink, messages: int, connections: int, data: bytes | None = None) -> None:
    """aiosmtplib alone: `connections` persistent connections, messages shared out.

    One message, generated once (`data`, else a ~2 KB one of this script's),
    goes out as bytes with `sendmail`, as SmtpChannel sends; `send_message`
    would generate it again every time.
    """
    data = data or email_bytes(outbound(0), SENDER)
    sender, to = "news@acme.test", ["lead0@client.test"]
    remaining = iter(range(messages))

    async def worker() -> None:
        async with aiosmtplib.SMTP(hostname=sink.host, port=sink.port, start_tls=False) as smtp:
            for _ in remaining:
                await smtp.sendmail(sender, to, data)

    await asyncio.gather(*(worker() for _ in range(connections)))


async def channel(sink: Sink, messages: int, pool_size: int) -> None:
    """SmtpChannel: every message sent at once, the pool bounds the concurrency."""
    config = SmtpConfig(sink.host, sink.port, from_addr=SENDER.from_addr, local_hostname="bench")
    async with SmtpChannel(config, pool_size=pool_size) as smtp:
        receipts = await asyncio.gather(*(smtp.send(outbound(n)) for n in range(messages)))
    failed = [r for r in receipts if not r.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} sends failed, first: {failed[0].detail}")


def measure(sink: Sink, run: Callable[[], Run], messages: int) -> float:
    before = sink.received
    start = time.perf_counter()
    asyncio.run(run())
    seconds = time.perf_counter() - start
    if sink.received - before != messages:
        raise RuntimeError(f"the sink received {sink.received - before} of {messages} messages")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--sink", choices=["process", "thread"], default="process")
    args = parser.parse_args()
    n, c = args.messages, args.connections

    rows: list[tuple[str, int, Callable[[Sink], Callable[[], Run]]]] = [
        ("aiosmtplib, persistent connections", c, lambda s: lambda: raw(s, n, c)),
        ("aiosmtplib, one connection", 1, lambda s: lambda: raw(s, n, 1)),
        ("SmtpChannel, pool", c, lambda s: lambda: channel(s, n, c)),
        ("SmtpChannel, pool", 1, lambda s: lambda: channel(s, n, 1)),
    ]
    table = Table(title=f"SMTP to a local aiosmtpd sink ({args.sink}), {n} messages each")
    for column in ("sender", "connections", "seconds", "messages/s"):
        table.add_column(column, justify="left" if column == "sender" else "right")
    with running_sink(process=args.sink == "process") as sink:
        asyncio.run(raw(sink, 20, 1))  # warm up both sides outside the timing
        for label, connections, make in rows:
            seconds = measure(sink, make(sink), n)
            table.add_row(label, str(connections), f"{seconds:.2f}", f"{n / seconds:,.0f}")
    Console().print(table)


if __name__ == "__main__":
    main()
