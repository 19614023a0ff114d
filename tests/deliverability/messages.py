"""Inbound messages as servers send them, after the examples of RFC 3464 (DSN), RFC 5965 (ARF)
and RFC 3834 (auto-replies), addressed to a given return path."""

from __future__ import annotations

ORIGINAL = """\
From: Acme <news@acme.test>
To: ada@corp.com
Subject: Hello Ada
Message-ID: {message_id}
Date: Mon, 02 Mar 2026 10:00:00 +0000
MIME-Version: 1.0
Content-Type: text/plain

Hi Ada.
"""


def dsn(
    to: str,
    *,
    action: str = "failed",
    status: str = "5.1.1",
    report_id: str = "<dsn-1@mx.corp.com>",
    message_id: str = "<0123@acme.test>",
    diagnostic: str = "smtp; 550 5.1.1 <ada@corp.com>... User unknown",
) -> bytes:
    """A delivery status notification (RFC 3464, appendix example) about `message_id`."""
    original = ORIGINAL.format(message_id=message_id)
    text = f"""\
From: Mail Delivery Subsystem <MAILER-DAEMON@mx.corp.com>
To: {to}
Subject: Returned mail: User unknown
Message-ID: {report_id}
Date: Mon, 02 Mar 2026 10:00:05 +0000
MIME-Version: 1.0
Auto-Submitted: auto-replied
Content-Type: multipart/report; report-type=delivery-status;
    boundary="RAA14128.773615765/mx.corp.com"

This is a MIME-encapsulated message

--RAA14128.773615765/mx.corp.com

The original message was received at Mon, 2 Mar 2026 10:00:00 +0000
   ----- The following addresses had delivery problems -----
<ada@corp.com>  (unrecoverable error)

--RAA14128.773615765/mx.corp.com
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.corp.com
Arrival-Date: Mon, 2 Mar 2026 10:00:00 +0000

Original-Recipient: rfc822;ada@corp.com
Final-Recipient: rfc822;ada@corp.com
Action: {action}
Status: {status}
Diagnostic-Code: {diagnostic}
Last-Attempt-Date: Mon, 2 Mar 2026 10:00:05 +0000

--RAA14128.773615765/mx.corp.com
Content-Type: message/rfc822

{original}
--RAA14128.773615765/mx.corp.com--
"""
    return text.replace("\n", "\r\n").encode()


def arf(
    to: str,
    *,
    message_id: str = "<0123@acme.test>",
    report_id: str = "<arf-1@fbl.isp.example>",
    feedback_type: str = "abuse",
) -> bytes:
    """An abuse report (RFC 5965, section 3 example) about `message_id`."""
    original = ORIGINAL.format(message_id=message_id)
    text = f"""\
From: <abusedesk@isp.example>
Date: Mon, 02 Mar 2026 17:40:36 +0000
Subject: FW: Hello Ada
To: <{to}>
Message-ID: {report_id}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Mon, 2 Mar 2026 10:00:00 +0000.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: {feedback_type}
User-Agent: SomeGenerator/1.0
Version: 1
Original-Rcpt-To: <ada@corp.com>

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

{original}
--part1_13d.2e68ed54_boundary--
"""
    return text.replace("\n", "\r\n").encode()


def auto_reply(
    to: str, *, header: str = "Auto-Submitted: auto-replied", subject: str = ""
) -> bytes:
    """An out-of-office answer (RFC 3834) to a message from `to`: no report in it."""
    text = f"""\
From: Ada <ada@corp.com>
To: {to}
Subject: {subject or "Out of Office: Hello Ada"}
Message-ID: <ooo-1@corp.com>
Date: Mon, 02 Mar 2026 10:00:05 +0000
{header}
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

I am out of the office until Monday; I will reply when I am back.
"""
    return text.replace("\n", "\r\n").encode()


def malformed(to: str) -> bytes:
    """A report that says it is a DSN and has no delivery-status part."""
    text = f"""\
From: MAILER-DAEMON@mx.corp.com
To: {to}
Subject: Undeliverable
Message-ID: <broken-1@mx.corp.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

Your message could not be delivered.
--b1--
"""
    return text.replace("\n", "\r\n").encode()
