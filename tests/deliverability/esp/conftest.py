"""Fixtures of the ESP webhook tests: the tracking service under uvicorn, samples, and AWS.

The database fixtures are the tracking service's (`tests.tracking.conftest`:
each database kind, seeded through the models). `Aws` is a stand-in for SNS's
HTTPS endpoints: a real uvicorn over TLS, with a certificate authority the
verifier is told to trust, serving the signing certificate and answering the
SubscribeURL, recording each request it gets.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import ipaddress
import json
import re
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nurture.deliverability.esp import EspConfig
from nurture.engine.clock import VirtualClock
from nurture.models import Delivery, Event, FeedbackReceipt
from nurture.tokens import TokenSigner
from nurture.tracking import create_app
from tests.live import serving
from tests.tracking import conftest as tracking
from tests.tracking.conftest import Seed  # noqa: F401 - for the tests

# The tracking service's database fixtures, each database kind, seeded through the models.
sqlite_template = tracking.sqlite_template
pg_schema_url = tracking.pg_schema_url
db_url = tracking.db_url
engine = tracking.engine
sessions = tracking.sessions
clock = tracking.clock
signer = tracking.signer
seed = tracking.seed

SAMPLES = Path(__file__).parents[2] / "fixtures" / "esp"
TOPIC = "arn:aws:sns:us-west-2:123456789012:MyTopic"
"""The topic of AWS's own sample messages, configured as ours."""


def sample(name: str) -> Any:
    """A documented payload from ``tests/fixtures/esp``, a fresh copy each time."""
    return copy.deepcopy(json.loads((SAMPLES / name).read_text(encoding="utf-8")))


class Esp:
    """Serves the tracking service with an `EspConfig` and reads back what it recorded."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        signer: TokenSigner,
        clock: VirtualClock,
    ) -> None:
        self.sessions = sessions
        self.signer = signer
        self.clock = clock

    def serve(self, config: EspConfig) -> AbstractContextManager[str]:
        app = create_app(self.sessions, self.signer, api_key=None, clock=self.clock, esp=config)
        return serving(app, "tracking service")

    def message_id(self, delivery_id: int) -> str:
        """The Message-ID the delivery was sent with."""
        with self.sessions() as session:
            delivery = session.get(Delivery, delivery_id)
            assert delivery is not None
            return delivery.message_id

    def receipts(self) -> list[tuple[str, str, int | None, str, bool | None]]:
        """(source, key, delivery, kind, hard) of each recorded feedback."""
        with self.sessions() as session:
            rows = session.execute(
                select(
                    FeedbackReceipt.source,
                    FeedbackReceipt.key,
                    FeedbackReceipt.delivery_id,
                    FeedbackReceipt.kind,
                    FeedbackReceipt.hard,
                ).order_by(FeedbackReceipt.id)
            )
            return [tuple(r) for r in rows]  # type: ignore[misc]

    def events(self) -> list[tuple[str, int | None]]:
        """(type, delivery) of each event, in order."""
        with self.sessions() as session:
            rows = session.execute(select(Event.type, Event.delivery_id).order_by(Event.id))
            return [(t, d) for t, d in rows]

    def nothing_recorded(self) -> bool:
        with self.sessions() as session:
            receipts = session.scalar(select(func.count()).select_from(FeedbackReceipt))
            events = session.scalar(select(func.count()).select_from(Event))
        return receipts == 0 and events == 0


@pytest.fixture
def esp(sessions: sessionmaker[Session], signer: TokenSigner, clock: VirtualClock) -> Esp:
    return Esp(sessions, signer, clock)


# ---------------------------------------------------------------- AWS SNS stand-in


@dataclass
class Aws:
    """SNS's certificate and confirmation endpoints, over real TLS on 127.0.0.1."""

    url: str
    tls: ssl.SSLContext
    """Trusts this server's certificate authority (and nothing else)."""
    signing_key: rsa.RSAPrivateKey
    requests: list[str] = field(default_factory=list)
    """The path and query of every request the server got."""

    @property
    def cert_url(self) -> str:
        return f"{self.url}/SimpleNotificationService-test.pem"

    def config(self, topics: frozenset[str] = frozenset({TOPIC})) -> EspConfig:
        host = re.compile(re.escape(self.url.removeprefix("https://")))  # 127.0.0.1:port
        return EspConfig(ses_topics=topics, sns_cert_host=host, sns_tls=self.tls)

    def sign(self, message: dict[str, Any], version: str = "1") -> dict[str, Any]:
        """`message` signed as SNS does (AWS's canonical string, written out here again)."""
        message = {**message, "SignatureVersion": version, "SigningCertURL": self.cert_url}
        if message["Type"] == "Notification":
            names = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        else:
            names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn"]
            names.append("Type")
        signed = "".join(f"{n}\n{message[n]}\n" for n in names if message.get(n) is not None)
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()
        raw = self.signing_key.sign(signed.encode(), padding.PKCS1v15(), digest)
        message["Signature"] = base64.b64encode(raw).decode()
        return message

    def notification(self, ses_event: dict[str, Any], message_id: str) -> dict[str, Any]:
        """AWS's sample Notification envelope carrying `ses_event`, signed."""
        envelope = sample("sns_notification.json")
        envelope.update(Message=json.dumps(ses_event), MessageId=message_id)
        envelope.pop("Subject")  # SES notifications have none
        return self.sign(envelope)


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aws]:
    folder = tmp_path_factory.mktemp("aws")
    tls_key, tls_cert = _self_signed("127.0.0.1", ip=True)
    (folder / "key.pem").write_bytes(_pem_key(tls_key))
    (folder / "cert.pem").write_bytes(tls_cert.public_bytes(serialization.Encoding.PEM))
    signing_key, signing_cert = _self_signed("sns.amazonaws.com")
    cert_pem = signing_cert.public_bytes(serialization.Encoding.PEM)
    seen: list[str] = []

    async def handle(request: Request) -> Response:
        seen.append(request.url.path + ("?" + request.url.query if request.url.query else ""))
        if request.url.path.endswith(".pem"):
            return Response(cert_pem, media_type="application/x-pem-file")
        if request.query_params.get("Action") == "ConfirmSubscription":
            return Response("<ConfirmSubscriptionResponse/>", media_type="text/xml")
        return Response("not found", 404)

    app = Starlette(routes=[Route("/{path:path}", handle, methods=["GET"])])
    tls = ssl.create_default_context(cafile=str(folder / "cert.pem"))
    with _serving_tls(app, folder / "cert.pem", folder / "key.pem") as url:
        aws = Aws(url, tls, signing_key, seen)
        yield aws


@pytest.fixture
def fresh_aws(aws: Aws) -> Aws:
    aws.requests.clear()
    return aws


def _self_signed(name: str, *, ip: bool = False) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name)) if ip else x509.DNSName(name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@contextmanager
def _serving_tls(app: Any, certfile: Path, keyfile: Path) -> Iterator[str]:
    """`app` under uvicorn over TLS on an ephemeral port of 127.0.0.1."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        ws="none",
        ssl_certfile=str(certfile),
        ssl_keyfile=str(keyfile),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="aws", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the AWS stand-in did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
