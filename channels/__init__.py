"""Delivery adapters: email over SMTP, outbox folder, SMS, WeChat, webhook."""
