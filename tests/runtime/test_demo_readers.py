"""Demo readers open and click through the tracking service's own URLs, and nothing else."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from nurture.runtime.demo_readers import DemoReaders


class _Service(BaseHTTPRequestHandler):
    """Stands in for the tracking service: a GIF for /o/, a redirect out for /c/, 404 else.

    An open token named `expired` gets the 404 the real service gives a token it refuses.
    """

    requested: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).requested.append(self.path)
        if self.path.startswith("/o/") and not self.path.endswith("/expired"):
            self.send_response(200)
            self.send_header("Content-Type", "image/gif")
        elif self.path.startswith("/c/"):
            self.send_response(302)
            self.send_header("Location", "http://unreachable.invalid/landing")
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def service() -> Iterator[str]:
    _Service.requested = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Service)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def write_email(folder: Path, name: str, html: str) -> None:
    message = EmailMessage()
    message["Subject"] = "Welcome"
    message.set_content("plain part")
    message.add_alternative(html, subtype="html")
    (folder / f"{name}.eml").write_bytes(bytes(message))


def test_readers_open_and_click_only_the_services_own_urls(service: str, tmp_path: Path) -> None:
    # Given readers, then a tracked email in the outbox and one whose pixel and links point
    # elsewhere
    tracked = (
        f'<p><a href="{service}/c/tour-token">Tour</a> <a href="https://tidewater.io/x">x</a></p>'
        f'<img src="{service}/o/open-token" width="1" height="1" alt="">'
    )
    foreign = '<p><a href="https://evil.example/c/x">x</a><img src="https://evil.example/o/y"></p>'
    readers = DemoReaders(tmp_path, service, seed=1, open_share=1.0, click_share=1.0)
    write_email(tmp_path, "tracked", tracked)
    write_email(tmp_path, "foreign", foreign)

    # When they visit twice
    readers.visit()
    readers.visit()
    readers.close()

    # Then the tracked email was opened and clicked once, without following the redirect out,
    # and nothing was requested for the other one
    assert sorted(_Service.requested) == ["/c/tour-token", "/o/open-token"]
    reading = readers.reading
    assert (reading.read, reading.opened, reading.clicked, reading.failed) == (2, 1, 1, 0)


def test_a_reader_who_does_not_open_requests_nothing(service: str, tmp_path: Path) -> None:
    readers = DemoReaders(tmp_path, service, seed=1, open_share=0.0)
    write_email(tmp_path, "tracked", f'<img src="{service}/o/open-token">')

    readers.visit()
    readers.close()

    assert _Service.requested == []
    assert (readers.reading.read, readers.reading.opened) == (1, 0)


def test_a_service_that_refuses_counts_as_failed(service: str, tmp_path: Path) -> None:
    # Given a pixel whose token the service refuses
    readers = DemoReaders(tmp_path, f"{service}/", seed=1, open_share=1.0)
    write_email(tmp_path, "old", f'<img src="{service}/o/expired">')

    readers.visit()
    readers.close()

    assert (readers.reading.opened, readers.reading.failed) == (0, 1)


def test_emails_of_an_earlier_run_are_not_read(service: str, tmp_path: Path) -> None:
    # Given an email left in the outbox by an earlier run (its database may be gone)
    write_email(tmp_path, "earlier", f'<img src="{service}/o/open-token">')
    readers = DemoReaders(tmp_path, service, seed=1, open_share=1.0)

    # When a new one arrives and the readers visit
    write_email(tmp_path, "new", f'<img src="{service}/o/new-token">')
    readers.visit()
    readers.close()

    # Then only the new one is opened
    assert _Service.requested == ["/o/new-token"]
