"""Delivery adapters: email over SMTP, outbox folder, SMS, WeChat, webhook.

Each adapter implements `Channel`: `await send(OutboundMessage) -> Receipt` and
`await aclose()`. The engine is handed one; this package knows nothing of it.
"""

from __future__ import annotations

from channels.base import Body, Channel, DeliveryStatus, OutboundMessage, Receipt
from channels.email import SmtpChannel, SmtpConfig
from channels.errors import (
    ChannelConfigError,
    ChannelError,
    OutcomeUnknownError,
    PermanentChannelError,
    TransientChannelError,
)
from channels.mime import Sender, build_email, email_bytes
from channels.outbox import OutboxChannel, RecordingChannel
from channels.sms import SmsChannel
from channels.webhook import WebhookChannel, sign_webhook, verify_webhook
from channels.wechat import WechatChannel

__all__ = [
    "Body",
    "Channel",
    "ChannelConfigError",
    "ChannelError",
    "DeliveryStatus",
    "OutboundMessage",
    "OutboxChannel",
    "OutcomeUnknownError",
    "PermanentChannelError",
    "Receipt",
    "RecordingChannel",
    "Sender",
    "SmsChannel",
    "SmtpChannel",
    "SmtpConfig",
    "TransientChannelError",
    "WebhookChannel",
    "WechatChannel",
    "build_email",
    "email_bytes",
    "sign_webhook",
    "verify_webhook",
]
