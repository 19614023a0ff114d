"""Real servers for the channel tests, all on 127.0.0.1 with ephemeral ports.

``smtp_server`` is an aiosmtpd server that records every message and can refuse
a recipient; ``smtp_tls_server`` adds a self-signed certificate (made with the
``openssl`` command) and AUTH, over STARTTLS or implicit TLS. ``provider`` is a
Starlette app under uvicorn playing the SMS, WeChat and webhook providers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.channels.provider import Provider, provider_app
from tests.channels.servers import SmtpServer, TlsFiles, authenticator
from tests.live import serving


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain SMTP server that records what it receives."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server_factory() -> Iterator[type[SmtpServer]]:
    """Start SMTP servers with other settings (`timeout=`, TLS, AUTH); all are stopped after."""
    started: list[SmtpServer] = []

    class Started(SmtpServer):
        def start(self) -> None:
            super().start()
            started.append(self)

    yield Started
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1, made with the openssl command.

    Without the command the TLS tests are skipped, except on CI, where that is a failure.
    """
    if shutil.which("openssl") is None:
        reason = "the openssl command is not installed; cannot make a test certificate"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("tls")
    files = TlsFiles(folder / "cert.pem", folder / "key.pem")
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-keyout", str(files.key), "-out", str(files.cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return files


@pytest.fixture(params=["starttls", "smtps"])
def smtp_tls_server(
    request: pytest.FixtureRequest, tls_files: TlsFiles, smtp_server_factory: type[SmtpServer]
) -> SmtpServer:
    """An SMTP server with AUTH over STARTTLS (required) or implicit TLS."""
    if request.param == "starttls":
        server = smtp_server_factory(
            "smtp+starttls",
            tls_context=tls_files.server_context(),
            require_starttls=True,
            authenticator=authenticator,
            auth_required=True,
        )
    else:  # aiosmtpd sees implicit TLS as no TLS, so AUTH is offered without requiring it
        server = smtp_server_factory(
            "smtps",
            ssl_context=tls_files.server_context(),
            authenticator=authenticator,
            auth_require_tls=False,
        )
    server.start()
    return server


@pytest.fixture(scope="session")
def provider_server() -> Iterator[tuple[Provider, str]]:
    """The provider app under uvicorn in a thread, for the whole session."""
    provider = Provider()
    with serving(provider_app(provider), "provider") as url:
        yield provider, url


@pytest.fixture
def provider(provider_server: tuple[Provider, str]) -> Provider:
    """The provider, with its record of requests emptied for this test."""
    provider, base_url = provider_server
    provider.reset(base_url)
    return provider
