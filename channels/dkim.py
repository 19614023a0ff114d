"""DKIM signatures (RFC 6376) on outgoing email, RSA-SHA256 and Ed25519-SHA256 (RFC 8463).

    keys = [load_key("acme.example", "rsa2026", Path("rsa.key").read_bytes()),
            load_key("acme.example", "ed2026", Path("ed.key").read_bytes())]
    signer = DkimSigner(keys)
    signed = signer.sign(email_bytes(message, sender), "acme.example")

Every key configured for the From's domain (or a parent domain of it, which
DMARC's relaxed alignment accepts) signs the message: one RSA and one Ed25519
key give the two signatures RFC 8463 recommends, since not every verifier
knows Ed25519 yet. Signing is dkimpy's; this module chooses what it signs
(relaxed/relaxed canonicalization, the RFC 6376 header list plus
``List-Unsubscribe-Post``, From signed once more than it occurs so no second
From can be added) and reads keys in either form: PEM (PKCS#1 or PKCS#8, as
``openssl genrsa`` / ``openssl genpkey -algorithm ed25519`` write them) or an
Ed25519 seed in base64 (as dkimpy's ``dknewkey`` writes it).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from channels.errors import ChannelConfigError

__all__ = ["ALGORITHMS", "DkimKey", "DkimSigner", "generate_key", "load_key"]

Algorithm = Literal["rsa-sha256", "ed25519-sha256"]
ALGORITHMS: dict[str, Algorithm] = {
    "rsa": "rsa-sha256",
    "rsa-sha256": "rsa-sha256",
    "ed25519": "ed25519-sha256",
    "ed25519-sha256": "ed25519-sha256",
}
"""The names an algorithm goes by in configuration, and the `a=` tag each signs with."""
MIN_RSA_BITS = 1024
"""RFC 8301: verifiers refuse shorter RSA keys; 2048 is what providers ask for."""
_EXTRA_HEADERS = (b"list-unsubscribe-post",)
"""Signed besides dkimpy's RFC 6376 list: RFC 8058 one-click needs both List-Unsubscribe lines."""


@dataclass(frozen=True, slots=True)
class DkimKey:
    """One signing key: the domain and selector that name its DNS record, and the key."""

    domain: str
    """The `d=` domain, such as `acme.example`: the From's domain or a parent of it."""
    selector: str
    """The `s=` selector: the record is at `<selector>._domainkey.<domain>`."""
    algorithm: Algorithm
    """`rsa-sha256` or `ed25519-sha256`."""
    private_key: bytes
    """In dkimpy's form: PKCS#1 PEM for RSA, the base64 seed for Ed25519."""
    public_key: bytes
    """The `p=` value of the DNS record, base64."""

    @property
    def record_name(self) -> str:
        """Where the TXT record goes: `<selector>._domainkey.<domain>`."""
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def record(self) -> str:
        """The TXT record's text: `v=DKIM1; k=rsa; p=...`."""
        kind = "rsa" if self.algorithm == "rsa-sha256" else "ed25519"
        return f"v=DKIM1; k={kind}; p={self.public_key.decode()}"


class DkimSigner:
    """Signs messages with every key configured for their From domain."""

    def __init__(self, keys: Iterable[DkimKey]) -> None:
        self.keys = tuple(keys)
        self._by_domain: dict[str, list[DkimKey]] = {}
        for key in self.keys:
            self._by_domain.setdefault(key.domain.lower(), []).append(key)

    def keys_for(self, domain: str) -> Sequence[DkimKey]:
        """The keys for `domain`, else for its nearest parent domain that has any; else ()."""
        labels = domain.lower().rstrip(".").split(".")
        for start in range(len(labels) - 1):
            found = self._by_domain.get(".".join(labels[start:]))
            if found:
                return found
        return ()

    def check_domain(self, domain: str) -> None:
        """Raise `ChannelConfigError` when no key can sign mail from `domain`."""
        if not self.keys_for(domain):
            known = ", ".join(sorted(self._by_domain)) or "none"
            raise ChannelConfigError(
                f"no DKIM key for the sender's domain {domain} (keys for: {known}); "
                "add one to NURTURE_DKIM or send from a domain that has one"
            )

    def sign(self, message: bytes, domain: str) -> bytes:
        """`message` (CRLF line ends) with a DKIM-Signature line per key of `domain` above it."""
        keys = self.keys_for(domain)
        if not keys:
            self.check_domain(domain)
        signing = dkim.DKIM(message, linesep=b"\r\n")
        signing.should_sign.update(_EXTRA_HEADERS)
        headers = signing.default_sign_headers()
        lines = []
        for key in keys:
            try:
                lines.append(
                    signing.sign(
                        key.selector.encode(),
                        key.domain.encode(),
                        key.private_key,
                        signature_algorithm=key.algorithm.encode(),
                        canonicalize=(b"relaxed", b"relaxed"),
                        include_headers=headers,
                    )
                )
            except dkim.DKIMException as e:
                raise ChannelConfigError(f"cannot DKIM-sign with {key.record_name}: {e}") from e
        return b"".join(lines) + message


def load_key(domain: str, selector: str, data: bytes, algorithm: str | None = None) -> DkimKey:
    """A `DkimKey` from a key file's bytes; `ChannelConfigError` saying what is wrong.

    `algorithm` (`rsa` or `ed25519`), when given, must be the key's own.
    """
    where = f"the DKIM key for {selector}._domainkey.{domain}"
    if not domain or "." not in domain or not selector:
        raise ChannelConfigError(f"{where}: give a domain such as acme.example and a selector")
    wanted = ALGORITHMS.get(algorithm.lower()) if algorithm else None
    if algorithm and wanted is None:
        raise ChannelConfigError(f"{where}: unknown algorithm {algorithm!r}; use rsa or ed25519")
    key = _private_key(data, where)
    found: Algorithm = "rsa-sha256" if isinstance(key, rsa.RSAPrivateKey) else "ed25519-sha256"
    if wanted is not None and wanted != found:
        raise ChannelConfigError(f"{where}: the file holds an {found} key, not {wanted}")
    return _key(domain.lower().rstrip("."), selector, key)


def generate_key(domain: str, selector: str, algorithm: str = "rsa", bits: int = 2048) -> DkimKey:
    """A new key pair: RSA of `bits` bits, or Ed25519."""
    chosen = ALGORITHMS.get(algorithm.lower())
    if chosen is None:
        raise ChannelConfigError(f"unknown DKIM algorithm {algorithm!r}; use rsa or ed25519")
    if chosen == "rsa-sha256":
        if bits < MIN_RSA_BITS:
            raise ChannelConfigError(f"an RSA DKIM key needs at least {MIN_RSA_BITS} bits")
        key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey = rsa.generate_private_key(
            public_exponent=65537, key_size=bits
        )
    else:
        key = ed25519.Ed25519PrivateKey.generate()
    return _key(domain.lower().rstrip("."), selector, key)


def key_file(key: DkimKey) -> bytes:
    """What to store in the key file: PEM for RSA, the base64 seed for Ed25519 (dkimpy's forms)."""
    return key.private_key if key.private_key.endswith(b"\n") else key.private_key + b"\n"


def _private_key(data: bytes, where: str) -> rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text, password=None)
        except (ValueError, TypeError) as e:
            raise ChannelConfigError(f"{where}: not a readable PEM private key ({e})") from e
        if isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < MIN_RSA_BITS:
                raise ChannelConfigError(
                    f"{where}: an RSA key of {key.key_size} bits is too short; "
                    f"verifiers need {MIN_RSA_BITS} or more (2048 is usual)"
                )
            return key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key
        raise ChannelConfigError(f"{where}: a {type(key).__name__}; DKIM needs RSA or Ed25519")
    try:
        seed = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        seed = b""
    if len(seed) != 32:
        raise ChannelConfigError(
            f"{where}: neither a PEM private key nor an Ed25519 seed in base64 (32 bytes)"
        )
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed)


def _key(domain: str, selector: str, key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> DkimKey:
    raw = serialization.Encoding.Raw
    if isinstance(key, rsa.RSAPrivateKey):
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return DkimKey(domain, selector, "rsa-sha256", private, base64.b64encode(public))
    seed = key.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    public = key.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
    return DkimKey(
        domain, selector, "ed25519-sha256", base64.b64encode(seed), base64.b64encode(public)
    )
