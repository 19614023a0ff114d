"""Reading inbound messages: DSNs (RFC 3464), ARF reports (RFC 5965), auto-replies (RFC 3834),
and reports that say they are one and are not."""

from __future__ import annotations

import pytest

from nurture.deliverability.reports import MalformedReport, read_report
from tests.deliverability.messages import arf, auto_reply, dsn, malformed

TO = "bounce+1.abcdefghijklm@bounces.acme.test"


def test_a_failed_5xx_dsn_is_a_hard_bounce_with_its_original_message_id() -> None:
    report = read_report(dsn(TO))
    assert (report.kind, report.hard, report.source) == ("bounced", True, "dsn")
    assert report.key == "<dsn-1@mx.corp.com>"
    assert report.original_ids == ("<0123@acme.test>",)
    assert report.detail.startswith("5.1.1 ada@corp.com smtp; 550 5.1.1")


def test_a_4xx_failure_is_a_soft_bounce() -> None:
    report = read_report(dsn(TO, status="4.2.2"))
    assert (report.kind, report.hard) == ("bounced", False)


@pytest.mark.parametrize("status", ["4.4.1", "5.0.0"])
def test_a_delay_warning_is_no_bounce(status: str) -> None:
    # the sending server is still trying; it reports again (failed or nothing) when it is done
    report = read_report(dsn(TO, action="delayed", status=status))
    assert report.kind == "ignored"
    assert report.detail.startswith(f"a delay warning ({status} ada@corp.com")


def test_a_dsn_says_what_its_worst_recipient_block_says() -> None:
    # one recipient delayed, the other failed for good: the failure is what counts
    two = dsn(TO, action="delayed", status="4.4.1").replace(
        b"Action: delayed\r\nStatus: 4.4.1\r\n",
        b"Action: delayed\r\nStatus: 4.4.1\r\n\r\n"
        b"Final-Recipient: rfc822;bo@corp.com\r\nAction: failed\r\nStatus: 5.1.1\r\n",
    )
    assert b"bo@corp.com" in two
    report = read_report(two)
    assert (report.kind, report.hard) == ("bounced", True)
    assert "bo@corp.com" in report.detail


@pytest.mark.parametrize("subject", ["Out of Office: Hello Ada", "自动回复: 退信", "On vacation"])
def test_a_dsn_whose_subject_reads_like_an_auto_reply_is_still_a_bounce(subject: str) -> None:
    report = read_report(
        dsn(TO).replace(b"Subject: Returned mail: User unknown", f"Subject: {subject}".encode())
    )
    assert (report.kind, report.hard) == ("bounced", True)


def test_a_success_dsn_is_a_delivery() -> None:
    assert read_report(dsn(TO, action="delivered", status="2.0.0")).kind == "delivered"


def test_an_abuse_report_is_a_complaint_and_not_spam_is_ignored() -> None:
    report = read_report(arf("fbl@bounces.acme.test"))
    assert (report.kind, report.source, report.key) == (
        "complained",
        "arf",
        "<arf-1@fbl.isp.example>",
    )
    assert report.original_ids == ("<0123@acme.test>",)
    assert "Feedback-Type: abuse" in report.detail
    assert read_report(arf(TO, feedback_type="not-spam")).kind == "ignored"


@pytest.mark.parametrize(
    ("header", "subject"),
    [
        ("Auto-Submitted: auto-replied", ""),
        ("X-Autoreply: yes", "Re: Hello Ada"),
        ("Precedence: auto_reply", "Re: Hello Ada"),
        ("X-Mailer: Outlook", "Automatic reply: Hello Ada"),
        ("X-Mailer: Foxmail", "自动回复: Hello Ada"),
    ],
)
def test_auto_replies_are_ignored_never_bounces(header: str, subject: str) -> None:
    report = read_report(auto_reply(TO, header=header, subject=subject))
    assert report.kind == "ignored"
    assert "auto-reply" in report.detail


def test_a_plain_message_is_ignored_saying_it_is_no_report() -> None:
    report = read_report(auto_reply(TO, header="X-Mailer: mutt", subject="Re: Hello Ada"))
    assert (report.kind, report.detail) == (
        "ignored",
        "not a delivery or feedback report (text/plain)",
    )


def test_a_dsn_without_its_status_part_is_malformed() -> None:
    with pytest.raises(MalformedReport, match="no message/delivery-status part"):
        read_report(malformed(TO))


@pytest.mark.parametrize(
    ("action", "status", "why"),
    [
        ("failed", "bounced", "Status 'bounced' is not a status code"),
        ("exploded", "5.1.1", "Action 'exploded' is not failed, delayed or delivered"),
    ],
)
def test_a_dsn_with_a_field_that_is_not_one_is_malformed(
    action: str, status: str, why: str
) -> None:
    with pytest.raises(MalformedReport, match=why):
        read_report(dsn(TO, action=action, status=status))


def test_a_report_without_its_own_message_id_is_keyed_by_its_bytes() -> None:
    data = dsn(TO).replace(b"Message-ID: <dsn-1@mx.corp.com>\r\n", b"")
    key = read_report(data).key
    assert key.startswith("sha256:") and key == read_report(data).key
