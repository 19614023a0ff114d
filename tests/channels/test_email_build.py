"""build_email: the MIME message every email channel sends or writes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from channels import OutboundMessage, PermanentChannelError, Sender, build_email

SENDER = Sender("Acme Marketing <news@acme.test>", reply_to="sales@acme.test")


BASE = OutboundMessage(
    "email", "lin@client.test", "<m-1@mail.acme.test>", "Hello", html="<p>Hi</p>", text="Hi"
)


def message(**fields: Any) -> OutboundMessage:
    return replace(BASE, **fields)


def test_text_and_html_make_a_multipart_alternative() -> None:
    email = build_email(message(), SENDER)

    assert email.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in email.iter_parts()] == ["text/plain", "text/html"]
    assert email["From"] == "Acme Marketing <news@acme.test>"
    assert email["Reply-To"] == "sales@acme.test"
    assert email["Message-ID"] == "<m-1@mail.acme.test>"
    assert email["Date"] is not None


@pytest.mark.parametrize(
    ("fields", "content_type"),
    [({"html": ""}, "text/plain"), ({"text": ""}, "text/html")],
    ids=["text only", "html only"],
)
def test_one_part_is_sent_alone(fields: dict[str, str], content_type: str) -> None:
    assert build_email(message(**fields), SENDER).get_content_type() == content_type


def test_the_same_message_gets_the_same_boundary() -> None:
    first, again = build_email(message(), SENDER), build_email(message(), SENDER)
    other = build_email(message(message_id="<m-2@mail.acme.test>"), SENDER)

    assert first.get_boundary() == again.get_boundary() != other.get_boundary()


def test_a_date_header_from_the_caller_replaces_ours() -> None:
    email = build_email(message(headers={"Date": "Mon, 02 Mar 2026 09:00:00 +0000"}), SENDER)

    assert email.get_all("Date") == ["Mon, 02 Mar 2026 09:00:00 +0000"]


def test_no_content_is_a_permanent_error() -> None:
    with pytest.raises(PermanentChannelError, match="neither a text nor an HTML part"):
        build_email(message(text="", html=""), SENDER)


def test_chinese_content_round_trips() -> None:
    email = build_email(message(subject="欢迎加入", text="你好，林", html="<p>你好</p>"), SENDER)

    assert email["Subject"] == "欢迎加入"
    plain = email.get_body(("plain",))
    assert plain is not None and plain.get_content() == "你好，林\n"
    assert b"=?utf-8?" in email.as_bytes()  # the header is encoded for 7-bit transports


def test_a_subject_with_line_breaks_is_folded_to_one_line() -> None:
    email = build_email(message(subject="\n  Welcome,\n  Lin  \n"), SENDER)

    assert email["Subject"] == "Welcome, Lin"


def test_one_click_unsubscribe_headers() -> None:
    email = build_email(message(unsubscribe_url="https://t.acme.test/u/abc"), SENDER)

    assert email["List-Unsubscribe"] == "<https://t.acme.test/u/abc>"
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_mailto_unsubscribe_alone_has_no_one_click_header() -> None:
    email = build_email(message(unsubscribe_mailto="mailto:unsub@acme.test"), SENDER)

    assert email["List-Unsubscribe"] == "<mailto:unsub@acme.test>"
    assert email["List-Unsubscribe-Post"] is None


def test_an_http_unsubscribe_url_is_listed_without_one_click() -> None:
    email = build_email(message(unsubscribe_url="http://localhost:8000/u/abc"), SENDER)

    assert email["List-Unsubscribe"] == "<http://localhost:8000/u/abc>"
    assert email["List-Unsubscribe-Post"] is None  # RFC 8058 one-click needs HTTPS


def test_no_unsubscribe_means_no_unsubscribe_headers() -> None:
    email = build_email(message(), SENDER)

    assert email["List-Unsubscribe"] is None
    assert email["List-Unsubscribe-Post"] is None


def test_extra_headers_are_added_and_may_replace_from() -> None:
    headers = {"X-Campaign": "welcome", "From": "Ada at Acme <ada@acme.test>"}
    email = build_email(message(headers=headers), SENDER)

    assert email["X-Campaign"] == "welcome"
    assert email.get_all("From") == ["Ada at Acme <ada@acme.test>"]


@pytest.mark.parametrize("name", ["Message-ID", "To", "Content-Type", "MIME-Version"])
def test_headers_that_belong_to_the_message_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match=f"header '{name}' comes from the message itself"):
        build_email(message(headers={name: "x"}), SENDER)


@pytest.mark.parametrize("message_id", ["m-1@mail.acme.test", "<m-1>", "<a b@c>", ""])
def test_a_malformed_message_id_is_a_programming_error(message_id: str) -> None:
    bad = OutboundMessage("email", "lin@client.test", message_id, text="Hi")

    with pytest.raises(ValueError, match=r"is not a Message-ID such as <d41d8@mail\.example>"):
        build_email(bad, SENDER)


@pytest.mark.parametrize("to", ["lin", "lin@", "@client.test", "lin @client.test", "a@b@c"])
def test_an_invalid_address_is_a_permanent_error(to: str) -> None:
    with pytest.raises(PermanentChannelError, match="invalid email address"):
        build_email(message(to=to), SENDER)


def test_a_display_name_in_to_is_kept() -> None:
    email = build_email(message(to="Lin Wei <lin@client.test>"), SENDER)

    assert email["To"] == "Lin Wei <lin@client.test>"


def test_a_line_break_in_a_header_value_is_refused() -> None:
    with pytest.raises(PermanentChannelError, match="has a line break"):
        build_email(message(headers={"X-Lead": "1\r\nBcc: everyone@client.test"}), SENDER)
