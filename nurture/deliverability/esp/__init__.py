"""ESP event webhooks: Amazon SES (through SNS), SendGrid, Postmark and Mailgun.

One module per provider verifies its requests (a signature, or Postmark's
basic auth) and parses its documented events into `Report` values;
`nurture.tracking.esp_webhooks` serves them and records each report as
`nurture.deliverability.feedback.Feedback` on the delivery it is about.
`EspConfig` is what the tracking service is given.
"""

from __future__ import annotations

from nurture.deliverability.esp.common import DELIVERY_ARG, KINDS, EspError, Report
from nurture.deliverability.esp.config import EspConfig

__all__ = ["DELIVERY_ARG", "KINDS", "EspConfig", "EspError", "Report"]
