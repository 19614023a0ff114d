"""What the tracking service shows: the open pixel and the unsubscribe pages.

The pages are tiny, self-contained UTF-8 HTML in English and Chinese, with
nothing loaded from elsewhere and ``noindex``. Lead data on them (the address
being unsubscribed, masked) is HTML-escaped.
"""

from __future__ import annotations

from html import escape
from typing import Final

PIXEL_GIF: Final = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
    b"!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
"""A 1×1 transparent GIF, 43 bytes."""

NO_STORE: Final = {"Cache-Control": "no-store"}
PAGE_HEADERS: Final = {**NO_STORE, "X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer"}

_STYLE: Final = (
    "body{font-family:system-ui,-apple-system,'PingFang SC','Microsoft YaHei',sans-serif;"
    "max-width:34rem;margin:4rem auto;padding:0 1rem;color:#222;line-height:1.6}"
    "button{font-size:1rem;padding:.6rem 1.4rem;border:0;border-radius:.3rem;"
    "background:#b3261e;color:#fff;cursor:pointer}p.zh{color:#555}"
    "th{text-align:left;padding-right:1rem;vertical-align:top}"
)


def page(title: str, body: str) -> str:
    """A whole page: `title` is escaped here, `body` is HTML the caller escaped."""
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def confirm_page(who: str) -> str:
    """The page of ``GET /u/<token>``: a button that POSTs the unsubscribe."""
    whom = f"<strong>{escape(who)}</strong>"
    return page(
        "Unsubscribe · 退订",
        "<h1>Unsubscribe? · 退订？</h1>\n"
        f"<p>Stop all marketing messages to {whom}?</p>\n"
        f'<p class="zh" lang="zh">不再向 {whom} 发送任何营销信息？</p>\n'
        '<form method="post">\n<input type="hidden" name="confirm" value="yes">\n'
        '<button type="submit">Unsubscribe · 确认退订</button>\n</form>',
    )


def done_page(who: str) -> str:
    """The page after unsubscribing (or of a lead already unsubscribed)."""
    whom = f"<strong>{escape(who)}</strong>"
    return page(
        "Unsubscribed · 已退订",
        "<h1>You are unsubscribed · 您已退订</h1>\n"
        f"<p>We will send no more marketing messages to {whom}.</p>\n"
        f'<p class="zh" lang="zh">我们将不再向 {whom} 发送营销信息。</p>\n'
        "<p>Unsubscribed by mistake? Reply to any of our messages and we will add you back.</p>\n"
        '<p class="zh" lang="zh">误操作？回复我们的任意一封邮件，我们会为您恢复订阅。</p>',
    )


def invalid_page() -> str:
    """The page of a forged, altered or damaged unsubscribe link."""
    return page(
        "Link not valid · 链接无效",
        "<h1>This link is not valid · 链接无效</h1>\n"
        "<p>The unsubscribe link is incomplete or damaged. Use the link in our latest "
        "message, or reply to it and ask us to unsubscribe you.</p>\n"
        '<p class="zh" lang="zh">退订链接不完整或已损坏。请使用最新邮件中的退订链接，'
        "或直接回复邮件要求退订。</p>",
    )


def masked(email: str | None, phone: str | None) -> str:
    """Who is being unsubscribed, recognisable but not readable: ``a***@acme.cn``."""
    if email:
        local, _, domain = email.rpartition("@")
        return f"{local[:1]}{'*' * max(3, len(local) - 1)}@{domain}"
    if phone:
        return "*" * max(3, len(phone) - 4) + phone[-4:]
    return "you · 您"
