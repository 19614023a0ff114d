"""From the qualifying event to the CRM: how long an MQL takes to reach sales.

    python bench/handoff_latency.py [--leads 1000] [--polls 1 60] [--workers 2]

For each scheduler poll interval in `--polls`, on a fresh PostgreSQL schema:
a routing (a team of two, round robin, ``notify by webhook "crm/mql"``) and a
scoring model whose MQL rule is a demo request are deployed; `--leads` leads
are stored; `nurture worker` processes (Redis broker), `nurture serve` (the
tracking service under uvicorn) and `nurture scheduler --interval P` start as
processes of their own; a local HTTP receiver (uvicorn) stands for the CRM.
Then each lead's ``demo_requested`` event is POSTed to ``/api/events``, one
after another, and the time from just before the POST to the webhook's
arrival at the receiver is that lead's handoff latency. The table shows p50,
p99 and the worst per poll interval, and the ratio of the p99s: a handoff
driven by the event (the notice goes to the workers as the MQL commits) does
not care how often the scheduler polls; one driven by polling would take up
to the interval.

Needs PostgreSQL (``NURTURE_TEST_PG_URL``, default the local ``test``
database) and Redis on 127.0.0.1:6379 (database 9 is flushed).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import redis
from rich.console import Console
from rich.table import Table
from sqlalchemy import insert
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))

from e2e_throughput import REPO, SECRET, schema, wait_ready

from nurture.models import Lead
from nurture.runtime.database import runtime_engine, sessions_for
from nurture.runtime.deploying import deploy_sources
from tests.live import free_port, healthy, nurture_process, serving, wait_for

REDIS_URL = "redis://127.0.0.1:6379/9"
API_KEY = "bench-api-key"
ROUTING = """\
team "inbound"
  member "amy@acme.example" name "Amy"
  member "tom@acme.example" name "Tom"

routing
  assign round robin team "inbound" otherwise
  notify by webhook "crm/mql"
  accept within 24 hours else reassign
"""
SCORING = """\
scoring "Bench"
  interest:
    +40 per event "demo_requested"
  mql when event "demo_requested"
"""
WEBHOOK = '{"email": {{ lead.email | tojson }}, "owner": {{ owner.email | tojson }}}\n'


@dataclass(frozen=True, slots=True)
class Row:
    poll: float
    latencies: tuple[float, ...]
    missing: int

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies) or [float("nan")]
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Receiver:
    """The CRM: keeps when each lead's webhook arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.lock = threading.Lock()

    async def hook(self, request: Request) -> Response:
        body = await request.json()
        with self.lock:
            self.arrived.setdefault(str(body["email"]), time.monotonic())
        return Response(status_code=202)


def write_files(folder: Path) -> dict[str, str]:
    (folder / "templates" / "crm").mkdir(parents=True)
    (folder / "templates" / "crm" / "mql.webhook.j2").write_text(WEBHOOK, encoding="utf-8")
    sources = {"routing.nurture": ROUTING, "scoring.nurture": SCORING}
    for name, text in sources.items():
        (folder / name).write_text(text, encoding="utf-8")
    return {str(folder / name): text for name, text in sources.items()}


def run(poll: float, args: argparse.Namespace) -> Row:
    redis.Redis.from_url(REDIS_URL).flushdb()
    receiver = Receiver()
    crm = Starlette(routes=[Route("/crm", receiver.hook, methods=["POST"])])
    with schema() as url, tempfile.TemporaryDirectory() as tmp, serving(crm, "crm") as crm_url:
        folder = Path(tmp)
        engine = runtime_engine(url)
        sessions = sessions_for(engine)
        deploy_sources(sessions, write_files(folder), datetime.now(UTC))
        emails = [f"lead{n}@client{n % 97}.example" for n in range(args.leads)]
        now = datetime.now(UTC)
        with sessions() as session, session.begin():
            rows = [
                {
                    "email": e,
                    "attributes": {},
                    "created_at": now,
                    "updated_at": now,
                    "triggers_checked_at": now,
                }
                for e in emails
            ]
            session.execute(insert(Lead), rows)
        engine.dispose()
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("NURTURE_")}
        env.update(
            NURTURE_DATABASE_URL=url,
            NURTURE_BROKER_URL=REDIS_URL,
            NURTURE_SECRET_KEY=SECRET,
            NURTURE_API_KEY=API_KEY,
            NURTURE_CRM_WEBHOOK_URL=f"{crm_url}/crm",
            NURTURE_BASE_URL=f"http://127.0.0.1:{port}",
        )
        logs = folder / "logs"
        logs.mkdir()
        workers = ["worker", "--processes", str(args.workers), "--threads", "2"]
        serve = ["serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        schedule = ["scheduler", "--interval", str(poll)]
        with (
            nurture_process(workers, env, logs / "workers.log", REPO),
            nurture_process(serve, env, logs / "serve.log", REPO),
            nurture_process(schedule, env, logs / "scheduler.log", REPO),
        ):
            wait_ready(logs / "workers.log", args.workers)
            wait_for("the tracking service", lambda: healthy(f"http://127.0.0.1:{port}"))
            sent: dict[str, float] = {}
            headers = {"Authorization": f"Bearer {API_KEY}"}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as api:
                for email in emails:
                    event = {"lead": {"email": email}, "type": "custom", "name": "demo_requested"}
                    sent[email] = time.monotonic()
                    api.post("/api/events", json=event, timeout=30).raise_for_status()
            deadline = time.monotonic() + poll + 60
            while len(receiver.arrived) < len(emails) and time.monotonic() < deadline:
                time.sleep(0.05)
            if len(receiver.arrived) < len(emails):
                for log in sorted(logs.iterdir()):  # why, before the folder goes
                    print(f"== {log.name}\n{log.read_text(errors='replace')[-3000:]}")
        latencies = tuple(receiver.arrived[e] - sent[e] for e in emails if e in receiver.arrived)
        return Row(poll, latencies, len(emails) - len(latencies))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--polls", type=float, nargs="+", default=[1.0, 60.0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rows = [run(poll, args) for poll in args.polls]
    table = Table(title=f"Event to CRM webhook, {args.leads:,} MQLs, {args.workers} workers")
    for column in ("scheduler poll", "arrived", "p50", "p99", "worst"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            f"{row.poll:g} s",
            f"{len(row.latencies):,}" + (f" ({row.missing:,} missing)" if row.missing else ""),
            f"{row.quantile(0.5) * 1000:,.0f} ms",
            f"{row.quantile(0.99) * 1000:,.0f} ms",
            f"{row.quantile(1.0) * 1000:,.0f} ms",
        )
    console = Console()
    console.print(table)
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        ratio = last.quantile(0.99) / first.quantile(0.99)
        console.print(f"p99 at {last.poll:g} s over p99 at {first.poll:g} s: {ratio:.2f}")


if __name__ == "__main__":
    main()
