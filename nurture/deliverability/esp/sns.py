"""Amazon SNS messages over HTTPS: signature verification and subscription confirmation.

SNS signs each message with the key of an X.509 certificate it publishes at
``SigningCertURL``; the signed text is the message's fields as
``Name\\nvalue\\n`` in a fixed order (AWS, "Verifying the signatures of Amazon
SNS messages"): SignatureVersion 1 is RSA with SHA1, 2 RSA with SHA256.

The certificate is fetched only over https from a host matching
`SnsVerifier.cert_host` (``sns.<region>.amazonaws.com``, and ``.com.cn`` in
China), so a forged message cannot name a certificate of its own; certificates
are cached by URL. A valid signature proves AWS sent the message, not that it
came from *our* topic: anyone can subscribe our URL to a topic of theirs, so a
message from a topic not in `SnsVerifier.topics` is refused (403) before any
certificate is fetched, and its SubscribeURL is never visited.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from nurture.deliverability.esp.common import EspError, optional_text, text

logger = logging.getLogger("nurture.deliverability.esp")

AWS_HOSTS: Final = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
"""Hosts allowed to serve signing certificates and subscription confirmations (matched
against the host, or ``host:port`` when a URL names a port other than 443)."""
TYPES: Final = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
SIGNED: Final = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
SIGNED["UnsubscribeConfirmation"] = SIGNED["SubscriptionConfirmation"]
HASHES: Final = {"1": hashes.SHA1, "2": hashes.SHA256}
MAX_CERTS: Final = 64
"""Certificates kept; SNS rotates them rarely, so a few per region is plenty."""
FETCH_TIMEOUT: Final = 10.0


@dataclass
class SnsVerifier:
    """Verifies SNS messages from `topics`; certificates only from `cert_host` over https."""

    topics: frozenset[str]
    cert_host: re.Pattern[str] = AWS_HOSTS
    tls: ssl.SSLContext | bool = True
    """httpx's ``verify``: the default trust store, or a context (tests trust their own CA)."""
    _certs: dict[str, rsa.RSAPublicKey] = field(default_factory=dict, init=False, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    def envelope(self, body: Any) -> dict[str, str]:
        """The SNS message's fields, checked for shape and topic (no signature yet)."""
        if not isinstance(body, dict):
            raise EspError(400, "$", "an SNS message is a JSON object")
        kind = text(body, "Type", "$")
        if kind not in TYPES:
            raise EspError(400, "$.Type", f"{kind!r} is not an SNS message type")
        for name in (*SIGNED[kind], "SignatureVersion", "Signature", "SigningCertURL"):
            if name != "Subject" or body.get(name) is not None:
                text(body, name, "$")
        topic = body["TopicArn"]
        if topic not in self.topics:
            raise EspError(
                403, "$.TopicArn", f"{topic} is not one of NURTURE_SES_TOPIC_ARNS; refused"
            )
        return {k: v for k, v in body.items() if isinstance(v, str)}

    async def verify(self, message: Mapping[str, str]) -> None:
        """Raises `EspError` (403) unless `message` carries SNS's valid signature."""
        version = message["SignatureVersion"]
        if version not in HASHES:
            raise EspError(403, "$.SignatureVersion", f"SignatureVersion {version!r} is not 1 or 2")
        try:
            signature = base64.b64decode(message["Signature"], validate=True)
        except (binascii.Error, ValueError):
            raise EspError(403, "$.Signature", "the signature is not base64") from None
        key = await self._key(message["SigningCertURL"])
        try:
            key.verify(signature, canonical(message), padding.PKCS1v15(), HASHES[version]())
        except InvalidSignature:
            raise EspError(403, "$.Signature", "the SNS signature does not match") from None

    async def confirm(self, message: Mapping[str, str]) -> None:
        """Visits the SubscribeURL of a verified SubscriptionConfirmation."""
        url = self._allowed(message["SubscribeURL"], "$.SubscribeURL")
        try:
            async with httpx.AsyncClient(verify=self.tls, timeout=FETCH_TIMEOUT) as client:
                answer = await client.get(url)
        except httpx.HTTPError as e:
            raise EspError(502, "$.SubscribeURL", f"confirming the subscription failed: {e}") from e
        if answer.status_code != 200:
            why = f"confirming the subscription answered {answer.status_code}"
            raise EspError(502, "$.SubscribeURL", why)
        logger.info("confirmed the SNS subscription to %s", message["TopicArn"])

    async def _key(self, url: str) -> rsa.RSAPublicKey:
        url = self._allowed(url, "$.SigningCertURL")
        async with self._lock:
            key = self._certs.get(url)
            if key is None:
                key = await self._fetch(url)
                if len(self._certs) >= MAX_CERTS:
                    self._certs.pop(next(iter(self._certs)))
                self._certs[url] = key
            return key

    async def _fetch(self, url: str) -> rsa.RSAPublicKey:
        where = "$.SigningCertURL"
        try:
            async with httpx.AsyncClient(verify=self.tls, timeout=FETCH_TIMEOUT) as client:
                answer = await client.get(url)
            answer.raise_for_status()
            key = x509.load_pem_x509_certificate(answer.content).public_key()
        except httpx.HTTPError as e:
            raise EspError(502, where, f"fetching the signing certificate failed: {e}") from e
        except ValueError as e:
            raise EspError(502, where, f"the signing certificate is not PEM: {e}") from e
        if not isinstance(key, rsa.RSAPublicKey):
            raise EspError(403, where, "the signing certificate's key is not RSA")
        return key

    def _allowed(self, url: str, where: str) -> str:
        """`url` as httpx will fetch it, when that is https at `cert_host` on its default
        port with no user name; else 403. Read by httpx's own parser, so what is checked is
        what is fetched (``evil.com\\@sns...``, ``sns...:8443``, ``u:p@sns...`` are refused)."""
        refused = EspError(403, where, f"{url!r} is not an https URL of Amazon SNS; refused")
        try:
            parsed = httpx.URL(url)
            host = parsed.raw_host.decode("ascii")  # as sent: xn-- names stay undecoded
        except (httpx.InvalidURL, TypeError, ValueError):  # IDNA errors are ValueErrors
            raise refused from None
        authority = host if parsed.port is None else f"{host}:{parsed.port}"
        if (
            parsed.scheme != "https"
            or parsed.userinfo
            or parsed.fragment
            or not self.cert_host.fullmatch(authority)
        ):
            raise refused
        return str(parsed)


def canonical(message: Mapping[str, str]) -> bytes:
    """The text SNS signs: ``Name\\nvalue\\n`` for each signed field present, in order."""
    names = SIGNED[message["Type"]]
    present = [(n, optional_text(message, n)) for n in names]
    return "".join(f"{n}\n{v}\n" for n, v in present if v is not None).encode("utf-8")
