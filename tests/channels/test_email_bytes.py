"""email_bytes: the wire form says what build_email says, 7-bit clean, folded, CRLF."""

from __future__ import annotations

from dataclasses import replace
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels import OutboundMessage, PermanentChannelError, Sender, build_email, email_bytes

SENDER = Sender("Acme Marketing <news@acme.test>", reply_to="sales@acme.test")
BASE = OutboundMessage(
    "email",
    "lin@client.test",
    "<m-1@mail.acme.test>",
    "Hello",
    html="<p>Hi</p>",
    text="Hi",
    unsubscribe_url="https://t.acme.test/u/abc",
    headers={"X-Nurture-Delivery": "12"},
)


def message(**fields: Any) -> OutboundMessage:
    return replace(BASE, **fields)


def parse(data: bytes) -> EmailMessage:
    parsed = message_from_bytes(data, policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def summary(email: EmailMessage) -> dict[str, Any]:
    """What a reader sees: decoded headers (but the clock's), part types and their text."""
    headers = [(k, str(v)) for k, v in email.items() if k.lower() not in ("date", "mime-version")]
    parts = [email] if not email.is_multipart() else list(email.iter_parts())
    contents = [(p.get_content_type(), p.get_content().replace("\r\n", "\n")) for p in parts]
    return {"type": email.get_content_type(), "headers": headers, "parts": contents}


def assert_well_formed(data: bytes) -> None:
    assert data.isascii(), "7-bit clean"
    assert b"\n" not in data.replace(b"\r\n", b""), "CRLF line ends only"
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))


CASES = {
    "ascii": message(),
    "chinese": message(subject="欢迎加入", text="你好，林", html="<p>你好</p>"),
    "mixed subject": message(subject="Welcome, 林 — a note from Tidewater"),
    "display names": message(to="林伟 <lin@client.test>"),
    "quoted name": message(to='"Wei, Lin" <lin@client.test>'),
    "long subject": message(subject="A rather long subject line " * 6),
    "long chinese subject": message(subject="欢迎加入我们的产品课程" * 8),
    "long lines": message(text="word " * 60, html="<p>" + "x" * 300 + "</p>"),
    "dots and spaces": message(text=".\n.. leading dots\ntrailing space \n\ttab"),
    "text only": message(html=""),
    "html only": message(text=""),
    "no unsubscribe": message(unsubscribe_url=None, headers={}),
    "mailto": message(unsubscribe_mailto="mailto:unsub@acme.test"),
    "own headers": message(headers={"From": "Ada at Acme <ada@acme.test>", "X-Tag": "é"}),
    "caller's date": message(headers={"Date": "Mon, 02 Mar 2026 09:00:00 +0000"}),
    "boundary in text": message(text="--=_a7b5", html="<p>x</p>"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_bytes_say_what_the_reference_says(case: OutboundMessage) -> None:
    data = email_bytes(case, SENDER)

    assert_well_formed(data)
    assert summary(parse(data)) == summary(build_email(case, SENDER))


def test_headers_are_folded_to_78_columns_where_there_are_spaces() -> None:
    data = email_bytes(message(subject="A rather long subject line " * 6), SENDER)

    head = data.split(b"\r\n\r\n")[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))


def test_non_ascii_headers_are_encoded_words() -> None:
    data = email_bytes(message(subject="欢迎加入", to="林伟 <lin@client.test>"), SENDER)

    assert b"Subject: =?utf-8?" in data
    assert b"To: =?utf-8?" in data and b"<lin@client.test>" in data


def test_the_unsubscribe_headers_and_message_id_are_kept_verbatim() -> None:
    data = email_bytes(message(), SENDER)

    assert b"\r\nMessage-ID: <m-1@mail.acme.test>\r\n" in data
    assert b"\r\nList-Unsubscribe: <https://t.acme.test/u/abc>\r\n" in data
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in data


def test_the_same_message_gets_the_same_bytes_but_for_the_date() -> None:
    def undated(data: bytes) -> list[bytes]:
        return [line for line in data.split(b"\r\n") if not line.startswith(b"Date:")]

    assert undated(email_bytes(message(), SENDER)) == undated(email_bytes(message(), SENDER))


def test_text_that_looks_like_an_encoded_word_stays_literal() -> None:
    data = email_bytes(message(subject="=?utf-8?q?not_encoded?= really"), SENDER)

    assert parse(data)["Subject"] == "=?utf-8?q?not_encoded?= really"


def test_bcc_is_not_written() -> None:
    data = email_bytes(message(headers={"Bcc": "boss@acme.test"}), SENDER)

    assert b"boss@acme.test" not in data


def test_a_non_ascii_address_falls_back_to_the_reference() -> None:
    data = email_bytes(message(), Sender("Acme <news@acmé.test>"))

    assert data.isascii()
    assert parse(data)["Message-ID"] == "<m-1@mail.acme.test>"


@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        ({"text": "", "html": ""}, PermanentChannelError, "neither a text nor an HTML part"),
        ({"to": "lin@"}, PermanentChannelError, "invalid email address"),
        ({"message_id": "<m-1>"}, ValueError, "is not a Message-ID"),
        ({"headers": {"Content-Type": "x"}}, ValueError, "comes from the message itself"),
        ({"headers": {"X-Lead": "1\r\nBcc: x@y.z"}}, PermanentChannelError, "has a line break"),
    ],
    ids=["no content", "bad address", "bad message id", "own header", "line break"],
)
def test_errors_are_those_of_the_reference(
    fields: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        email_bytes(message(**fields), SENDER)
    with pytest.raises(error, match=match):
        build_email(message(**fields), SENDER)


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
_LINE = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=120)
_NAME = st.text(st.characters(whitelist_categories=("L", "N", "Zs")), max_size=60)


@settings(max_examples=150, deadline=None)
@given(
    subject=_LINE,
    name=_NAME,
    text=_TEXT,
    html=_TEXT,
)
def test_any_text_round_trips(subject: str, name: str, text: str, html: str) -> None:
    case = message(subject=subject, text=text, html=html or "<p>x</p>", to=f"{name} <l@c.test>")
    data = email_bytes(case, SENDER)

    assert_well_formed(data)
    got = parse(data)
    assert str(got["Subject"]) == " ".join(subject.split())
    assert got["To"].addresses[0].addr_spec == "l@c.test"
    assert summary(got)["parts"] == summary(build_email(case, SENDER))["parts"]


def test_a_header_with_runs_of_spaces_folds_without_blank_lines() -> None:
    value = "a" * 70 + "   " + "b" * 70 + "  c"
    data = email_bytes(message(headers={"X-Note": value}), SENDER)

    head = data.split(b"\r\n\r\n")[0].split(b"\r\n")
    assert all(line.strip() for line in head)
    assert parse(data)["X-Note"] == value
