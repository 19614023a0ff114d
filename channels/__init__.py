"""Delivery adapters: email over SMTP, outbox folder, SMS, WeChat, webhook.

Each adapter implements `Channel`: `await send(OutboundMessage) -> Receipt` and
`await aclose()`. The engine is handed one; this package knows nothing of it.
"""

from __future__ import annotations

from channels.base import Body, Channel, DeliveryStatus, OutboundMessage, Receipt
from channels.dkim import DkimKey, DkimSigner, generate_key, load_key
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
from channels.wechat_token import AccessToken, AccessTokens, MemoryTokens, TokenEndpoint

__all__ = [
    "AccessToken",
    "AccessTokens",
    "Body",
    "Channel",
    "ChannelConfigError",
    "ChannelError",
    "DeliveryStatus",
    "DkimKey",
    "DkimSigner",
    "MemoryTokens",
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
    "TokenEndpoint",
    "TransientChannelError",
    "WebhookChannel",
    "WechatChannel",
    "build_email",
    "email_bytes",
    "generate_key",
    "load_key",
    "sign_webhook",
    "verify_webhook",
]
