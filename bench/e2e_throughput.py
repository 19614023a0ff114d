"""End-to-end touches per second, next to raw aiosmtplib to the same SMTP sink.

    python bench/e2e_throughput.py [--touches 5000] [--workers 1 2] [--threads 4]
                                   [--batch 250] [--connections 10] [--split-connections]

A touch here is the whole way: a due enrollment claimed by the scheduler,
enqueued on Redis, run by a `nurture worker` process (loaded, decided,
delivery row written, rendered from a real template with tracked links and
an unsubscribe URL, sent over SMTP to an aiosmtpd sink that accepts and
drops it, recorded). Each row starts from a fresh PostgreSQL schema with the
touches already due; the clock runs from the moment the enrollments become
due until every delivery is ``sent``; worker start-up is not counted. The
raw row sends the same number of messages with aiosmtplib over
`--connections` persistent connections to the same sink, in the same run:
one message prepared as bytes, the bench template rendered as the workers
render it (`worker_message`), so both rows ask the same SMTP conversation of
the sink. The ratio is end-to-end over raw.

Each worker process sends over up to `--connections` connections of its own
(``NURTURE_SEND_CONCURRENCY``), so two processes hold twice as many as the
raw row; `--split-connections` shares them out instead, for a row that holds
as many as the raw one. The table shows both counts, and how busy the sink
(a process of its own, aiosmtpd) was: near 100% of a core, it is what bounds
the row.

It also shows what each touch costs in CPU, part by part: the sender, the
sink, and the services (every PostgreSQL and Redis server process, and this
process, which runs the scheduler). All of them share this machine's CPUs,
so the CPU-bound ceiling, the CPUs divided by all that work per touch, is
the most a row could reach with nothing idle; a ratio goal above a row's
ceiling cannot be met here without making a touch cheaper in CPU.

`--dkim rsa ed25519` (the default; `--dkim` alone: none) adds end-to-end rows
with the first `--workers` count whose every message is DKIM-signed with an
RSA-2048 or an Ed25519 key, so the signature's CPU per touch shows beside
the unsigned row; a last line times signing alone in this process.

`--rates SPEC` (default ``*=10000000/min``, a rate no row reaches; `--rates`
alone: no row) adds a row with the first `--workers` count under
``NURTURE_DOMAIN_RATES=SPEC``: every email takes its domain's rate in Redis
(a moving window, one Lua call) before it goes, so the row shows what
throttling costs a touch when nothing is held back.

Needs PostgreSQL (``NURTURE_TEST_PG_URL``, default the local ``test``
database) and ``redis-server`` on the PATH: the bench starts a Redis of its own on a
free port (as the tests do), so two runs, or a run beside the tests, never share a queue.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from dramatiq.brokers.redis import RedisBroker
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, func, insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))

from smtp_raw import raw
from smtp_sink import Sink, running_sink

from channels import DkimSigner, OutboundMessage, Sender, email_bytes, generate_key
from channels.dkim import key_file
from dsl.templates import FileTemplates
from nurture import db
from nurture.config import Settings
from nurture.engine.clock import SystemClock
from nurture.engine.state import EnrollmentState
from nurture.models import Delivery, Enrollment, Lead
from nurture.render import RenderContext, Renderer
from nurture.runtime.broker import Queue
from nurture.runtime.database import runtime_engine, sessions_for
from nurture.runtime.deploying import deploy_sources
from nurture.runtime.loading import Graphs, columns_of
from nurture.runtime.scheduler import Scheduler
from nurture.tokens import TokenSigner
from tests.runtime.services import RedisServer

REPO = Path(__file__).parents[1]
PG_URL = (
    os.environ.get("NURTURE_TEST_PG_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SERVICES = ("postgres", "redis-server")
"""Server processes (by command name) whose CPU the end-to-end rows count as theirs."""
NURTURE = str(Path(sys.executable).with_name("nurture"))
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
BASE_URL = "https://t.acme.example"
FROM = "news@acme.example"
DKIM_LABELS = {"rsa": "RSA-2048", "ed25519": "Ed25519"}
CAMPAIGN = """\
campaign "Bench"
  enroll when lead created
  send email "bench/welcome"
"""


@dataclass
class Row:
    label: str
    processes: int | None
    connections: int
    """SMTP connections open to the sink at most, in all."""
    touches: int
    seconds: float
    cpu: float | None = None
    """CPU seconds of the sender during the run: the worker processes, or aiosmtplib's thread."""
    sink_cpu: float | None = None
    """CPU seconds of the sink during the run."""
    services_cpu: float = 0.0
    """CPU seconds of PostgreSQL, Redis and this process (the scheduler) during the run."""

    @property
    def cpu_per_touch(self) -> float:
        """CPU seconds of every part together, per touch."""
        return ((self.cpu or 0.0) + (self.sink_cpu or 0.0) + self.services_cpu) / self.touches

    @property
    def rate(self) -> float:
        return self.touches / self.seconds


@contextmanager
def schema() -> Iterator[str]:
    """A fresh PostgreSQL schema at the newest migration, by URL; dropped afterwards."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(db.normalize_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    url = db.normalize_url(PG_URL).update_query_dict({"options": f"-csearch_path={name}"})
    rendered = url.render_as_string(hide_password=False)
    try:
        db.upgrade(rendered)
        yield rendered
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def write_campaign(folder: Path) -> dict[str, str]:
    """The bench campaign, sending the example welcome email as `bench/welcome`."""
    template = REPO / "campaigns" / "templates" / "welcome" / "default.email.j2"
    target = folder / "templates" / "bench" / "welcome.email.j2"
    target.parent.mkdir(parents=True)
    target.write_text(template.read_text(encoding="utf-8"), encoding="utf-8")
    file = folder / "bench.nurture"
    file.write_text(CAMPAIGN, encoding="utf-8")
    return {str(file): CAMPAIGN}


def worker_message(campaign_file: str) -> bytes:
    """A message like those the workers send, for the raw rows to send the same bytes.

    The bench template rendered for a seeded lead, with its tracked links,
    open pixel and unsubscribe URL, and the headers a worker adds: a raw row
    sending a smaller message would cost the sink less per message and make
    the ratio look worse than the engine is.
    """
    renderer = Renderer(FileTemplates(), TokenSigner(SECRET), BASE_URL)
    lead = {"email": "reader1@client1.example", "first_name": "Reader1"}
    rendered = renderer.render(
        "email", "bench/welcome", campaign_file, RenderContext(lead, "Bench"), None, 1, 1
    )
    message = OutboundMessage(
        "email",
        lead["email"],
        f"<{'0' * 32}@acme.example>",
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        headers={"X-Nurture-Delivery": "1"},
        unsubscribe_url=rendered.unsubscribe_url,
    )
    return email_bytes(message, Sender(FROM))


def seed(sessions: sessionmaker[Session], count: int, due: datetime) -> None:
    """`count` leads enrolled in the bench campaign, due at `due`."""
    with sessions() as session, session.begin():
        [version] = Graphs().current(session)
        now = datetime.now(UTC)
        lead_ids = session.scalars(
            insert(Lead).returning(Lead.id),
            [
                {
                    "email": f"reader{n}@client{n % 97}.example",
                    "first_name": f"Reader{n}",
                    "created_at": now,
                    "updated_at": now,
                    "triggers_checked_at": now,
                }
                for n in range(count)
            ],
        ).all()
        state = columns_of(EnrollmentState.start(0, version.graph, due))
        session.execute(
            insert(Enrollment),
            [
                {"lead_id": i, "campaign_version_id": version.id, "entered_at": now, **state}
                for i in lead_ids
            ],
        )


def per_process(processes: int, args: argparse.Namespace) -> int:
    """SMTP connections of each worker process."""
    if args.split_connections:
        return max(1, args.connections // processes)
    return int(args.connections)


def start_workers(
    url: str,
    sink: Sink,
    processes: int,
    args: argparse.Namespace,
    log: Path,
    dkim: str = "",
    rates: str = "",
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NURTURE_")}
    env.update(
        NURTURE_DATABASE_URL=url,
        NURTURE_BROKER_URL=args.redis_url,
        NURTURE_SMTP_URL=f"smtp://{sink.host}:{sink.port}?from={FROM}",
        NURTURE_SECRET_KEY=SECRET,
        NURTURE_BASE_URL=BASE_URL,
        NURTURE_BATCH_SIZE=str(args.batch),
        NURTURE_SEND_CONCURRENCY=str(per_process(processes, args)),
        NURTURE_DKIM=dkim,
        NURTURE_DOMAIN_RATES=rates,
    )
    out = log.open("wb")
    return subprocess.Popen(
        [NURTURE, "worker", "--processes", str(processes), "--threads", str(args.threads)],
        cwd=REPO,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_ready(log: Path, processes: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while log.read_text(errors="replace").count("ready for action") < processes:
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)


def dkim_setting(algorithm: str, folder: Path) -> str:
    """``NURTURE_DKIM`` for a new key of `algorithm` (RSA-2048 or Ed25519), written in `folder`."""
    key = generate_key("acme.example", f"bench-{algorithm}", algorithm, 2048)
    path = folder / f"{algorithm}.key"
    path.write_bytes(key_file(key))
    return f"{key.domain}:{key.selector}:{path}:{algorithm}"


def signing_ms(data: bytes, algorithm: str, count: int = 200) -> float:
    """CPU milliseconds to sign `data` once with a new key of `algorithm`, in this process."""
    signer = DkimSigner([generate_key("acme.example", "s", algorithm, 2048)])
    start = time.process_time()
    for _ in range(count):
        signer.sign(data, "acme.example")
    return (time.process_time() - start) / count * 1000


def end_to_end(
    sink: Sink,
    processes: int,
    args: argparse.Namespace,
    folder: Path,
    dkim: str = "",
    rates: str = "",
) -> Row:
    redis.Redis.from_url(args.redis_url).flushdb()
    with schema() as url:
        settings = Settings(
            database_url=url, broker_url=args.redis_url, batch_size=args.batch, secret_key=SECRET
        )
        engine = runtime_engine(url, pool_size=4)
        sessions = sessions_for(engine)
        name = f"p{processes}{dkim}{'-rates' if rates else ''}"
        deploy_sources(sessions, write_campaign(folder / name), datetime.now(UTC))
        seed(sessions, args.touches, datetime.now(UTC) + timedelta(days=1))
        log = folder / f"workers-{name}.log"
        signing = dkim_setting(dkim, folder) if dkim else ""
        workers = start_workers(url, sink, processes, args, log, signing, rates)
        broker = RedisBroker(url=args.redis_url)  # type: ignore[no-untyped-call]
        queue = Queue(broker)
        scheduler = Scheduler(sessions, SystemClock(), settings, queue, backlog=queue.backlog)
        stop = threading.Event()
        try:
            wait_ready(log, processes)
            received = sink.received
            with sessions() as session, session.begin():
                session.execute(update(Enrollment).values(next_run_at=datetime.now(UTC)))
            start, cpu, sink_cpu = time.perf_counter(), cpu_seconds(workers.pid), sink_seconds(sink)
            services = services_seconds()
            polling = threading.Thread(target=scheduler.run, args=(stop,), daemon=True)
            polling.start()
            while sent(sessions) < args.touches:
                time.sleep(0.05)
                if workers.poll() is not None:
                    raise RuntimeError(f"workers exited:\n{log.read_text()[-2000:]}")
            seconds = time.perf_counter() - start
            cpu = cpu_seconds(workers.pid) - cpu
            sink_cpu = sink_seconds(sink) - sink_cpu
            services = services_seconds() - services
            stop.set()
            polling.join()
            if sink.received - received != args.touches:
                raise RuntimeError(f"the sink got {sink.received - received} of {args.touches}")
        finally:
            stop.set()
            os.killpg(workers.pid, signal.SIGTERM)
            workers.wait(timeout=30)
            broker.close()
            engine.dispose()
    label = f"nurture end to end, DKIM {DKIM_LABELS[dkim]}" if dkim else "nurture end to end"
    if rates:
        label = "nurture end to end, domain rates in Redis"
    connections = processes * per_process(processes, args)
    return Row(label, processes, connections, args.touches, seconds, cpu, sink_cpu, services)


def cpu_seconds(pid: int) -> float:
    """User and system CPU of `pid` and its descendants so far, from /proc (Linux)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return total
    return total + sum(cpu_seconds(int(child)) for child in children)


def services_seconds() -> float:
    """CPU seconds so far of every PostgreSQL and Redis server process, and of this process."""
    total = time.process_time()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, fields = stat.read_text().split(" (", 1)[1].rsplit(")", 1)
        except (OSError, ValueError):
            continue
        if name in SERVICES:
            numbers = fields.split()
            total += (int(numbers[11]) + int(numbers[12])) / os.sysconf("SC_CLK_TCK")
    return total


def sink_seconds(sink: Sink) -> float:
    """CPU seconds of the sink so far (0 when it is a thread of this process)."""
    return 0.0 if sink.pid is None else cpu_seconds(sink.pid)


def sent(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).where(Delivery.status == "sent")) or 0


def raw_row(sink: Sink, touches: int, connections: int, data: bytes) -> Row:
    before, sink_cpu, cpu = sink.received, sink_seconds(sink), time.thread_time()
    start = time.perf_counter()
    asyncio.run(raw(sink, touches, connections, data))
    seconds = time.perf_counter() - start
    sink_cpu, cpu = sink_seconds(sink) - sink_cpu, time.thread_time() - cpu
    if sink.received - before != touches:
        raise RuntimeError(f"the sink got {sink.received - before} of {touches} raw messages")
    label = "aiosmtplib raw, bytes"
    return Row(label, None, connections, touches, seconds, cpu, sink_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--touches", type=int, default=5000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument(
        "--split-connections",
        action="store_true",
        help="share --connections among the worker processes (default: each has them all)",
    )
    parser.add_argument(
        "--dkim",
        nargs="*",
        choices=sorted(DKIM_LABELS),
        default=sorted(DKIM_LABELS, reverse=True),
        help="DKIM-signed end-to-end rows (default: rsa ed25519)",
    )
    parser.add_argument(
        "--rates",
        nargs="?",
        const="",
        default="*=10000000/min",
        help="NURTURE_DOMAIN_RATES of a row with throttling (--rates alone: no such row)",
    )
    args = parser.parse_args()
    rows: list[Row] = []
    queue_server = RedisServer()
    queue_server.start()
    args.redis_url = queue_server.url()
    try:
        with tempfile.TemporaryDirectory() as tmp, running_sink() as sink:
            asyncio.run(raw(sink, 50, 1))  # warm up the sink
            [campaign_file] = write_campaign(Path(tmp) / "raw")
            data = worker_message(campaign_file)
            raw_before = raw_row(sink, args.touches, args.connections, data)
            for processes in args.workers:
                rows.append(end_to_end(sink, processes, args, Path(tmp)))
            for algorithm in args.dkim:
                rows.append(end_to_end(sink, args.workers[0], args, Path(tmp), algorithm))
            if args.rates:
                rows.append(end_to_end(sink, args.workers[0], args, Path(tmp), rates=args.rates))
            raw_after = raw_row(sink, args.touches, args.connections, data)
    finally:
        queue_server.stop()
    best_raw = max(raw_before, raw_after, key=lambda r: r.rate)
    table = Table(
        title=f"End to end (PostgreSQL, Redis) vs raw SMTP, {args.touches} touches, "
        f"batches of {args.batch}, {args.threads} threads per worker process"
    )
    columns = ["sender", "worker processes", "SMTP connections", "touches", "seconds"]
    columns += ["touches/s", "ratio", "sink busy", "CPU ms/touch: sender", "sink", "services"]
    columns += ["all", "CPU-bound ceiling"]
    for column in columns:
        table.add_column(column, justify="left" if column == "sender" else "right")
    for row in [raw_before, raw_after, *rows]:
        ratio = row.rate / best_raw.rate
        processes = "-" if row.processes is None else str(row.processes)
        table.add_row(
            row.label,
            processes,
            str(row.connections),
            str(row.touches),
            f"{row.seconds:.2f}",
            f"{row.rate:,.0f}",
            f"{ratio:.2f}",
            "-" if row.sink_cpu is None else f"{row.sink_cpu / row.seconds:.0%}",
            "-" if row.cpu is None else f"{row.cpu / row.touches * 1000:.2f}",
            "-" if row.sink_cpu is None else f"{row.sink_cpu / row.touches * 1000:.2f}",
            f"{row.services_cpu / row.touches * 1000:.2f}",
            f"{row.cpu_per_touch * 1000:.2f}",
            f"{ceiling(row) / best_raw.rate:.2f}",
        )
    console = Console(width=200)
    console.print(table)
    console.print(
        f"ratio = touches/s over the faster of the two raw runs ({best_raw.rate:,.0f}/s); "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    console.print(
        "CPU per touch: the sender (worker processes, or the raw client), the sink, the services "
        "(PostgreSQL, Redis, the scheduler) and all of them; CPU-bound ceiling: the ratio that "
        "work would reach with every CPU busy with it"
    )
    signing = ", ".join(f"{DKIM_LABELS[a]} {signing_ms(data, a):.2f} ms" for a in args.dkim)
    if signing:
        console.print(f"DKIM signing alone, CPU per message in this process (dkimpy): {signing}")


def ceiling(row: Row) -> float:
    """Touches per second if every CPU of this machine did nothing but this row's work."""
    return (os.cpu_count() or 1) / row.cpu_per_touch


if __name__ == "__main__":
    main()
