"""DKIM: messages captured at aiosmtpd verify with dkimpy, DNS answered from the test's keys."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from channels import (
    ChannelConfigError,
    DeliveryStatus,
    DkimKey,
    DkimSigner,
    OutboundMessage,
    OutboxChannel,
    Sender,
    SmtpChannel,
    generate_key,
    load_key,
)
from tests.channels.servers import SmtpServer

DnsFunc = Callable[..., bytes | None]


@pytest.fixture(scope="module")
def rsa_key() -> DkimKey:
    return generate_key("acme.test", "rsa2026", "rsa", 2048)


@pytest.fixture(scope="module")
def ed_key() -> DkimKey:
    return generate_key("acme.test", "ed2026", "ed25519")


def dns(*keys: DkimKey) -> DnsFunc:
    """dkimpy's `dnsfunc`: the TXT record of each key, by its name; None for any other."""
    records = {f"{k.record_name}.": k.record.encode() for k in keys}

    def lookup(name: bytes | str, timeout: int = 5) -> bytes | None:
        text = name.decode() if isinstance(name, bytes) else name
        return records.get(text if text.endswith(".") else text + ".")

    return lookup


def verified(raw: bytes, dnsfunc: DnsFunc) -> list[tuple[str, str, bool]]:
    """(domain, algorithm, verifies) for each DKIM-Signature in `raw`, top first."""
    checker = dkim.DKIM(raw)
    count = len(re.findall(rb"(?im)^DKIM-Signature:", raw))
    results = []
    for index in range(count):
        try:
            ok = checker.verify(idx=index, dnsfunc=dnsfunc)
        except dkim.ValidationError:  # dkimpy raises for a body hash that does not match
            ok = False
        fields = checker.signature_fields
        results.append((fields[b"d"].decode(), fields[b"a"].decode(), ok))
    return results


def email(to: str = "lin@client.test", **fields: object) -> OutboundMessage:
    message = OutboundMessage(
        "email",
        to,
        "<d-1.s-1@mail.acme.test>",
        "Welcome, Lin — 欢迎",
        "<p>Hi <b>Lin</b></p>",
        "Hi Lin, 你好",
        unsubscribe_url="https://t.acme.test/u/abc",
    )
    return replace(message, **fields)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_every_email_carries_an_rsa_and_an_ed25519_signature_that_verify(
    smtp_server: SmtpServer, rsa_key: DkimKey, ed_key: DkimKey
) -> None:
    # Given an SMTP channel with an RSA-2048 and an Ed25519 key for the sender's domain
    signer = DkimSigner([rsa_key, ed_key])
    async with SmtpChannel.from_url(smtp_server.url(), dkim=signer) as channel:
        # When a message goes out
        receipt = await channel.send(email())

    # Then the server got it with two signatures, both verified against the published keys
    assert receipt.status is DeliveryStatus.SENT
    [delivered] = smtp_server.messages
    results = verified(delivered.raw, dns(rsa_key, ed_key))
    assert sorted(results) == [
        ("acme.test", "ed25519-sha256", True),
        ("acme.test", "rsa-sha256", True),
    ]
    # And the one-click unsubscribe headers and From (twice: no From can be added) are signed
    signed = delivered.message["DKIM-Signature"]
    tags = dict(t.strip().split("=", 1) for t in re.sub(r"\s+", "", signed).split(";") if t)
    assert tags["c"] == "relaxed/relaxed"
    names = tags["h"].lower().split(":")
    assert {"list-unsubscribe", "list-unsubscribe-post", "subject", "message-id"} <= set(names)
    assert names.count("from") == 2


@pytest.mark.asyncio
async def test_a_changed_body_or_an_unpublished_key_fails_verification(
    smtp_server: SmtpServer, rsa_key: DkimKey
) -> None:
    # Given a signed message as it arrived
    async with SmtpChannel.from_url(smtp_server.url(), dkim=DkimSigner([rsa_key])) as channel:
        await channel.send(email())
    raw = smtp_server.messages[0].raw
    assert verified(raw, dns(rsa_key)) == [("acme.test", "rsa-sha256", True)]

    # When its body is changed on the way, or DNS publishes another key under the selector
    changed = raw.replace(b"Hi <b>Lin</b>", b"Hi <b>Eve</b>")
    other = generate_key("acme.test", "rsa2026", "rsa", 2048)

    # Then it no longer verifies
    assert verified(changed, dns(rsa_key)) == [("acme.test", "rsa-sha256", False)]
    assert verified(raw, dns(other)) == [("acme.test", "rsa-sha256", False)]


@pytest.mark.asyncio
async def test_a_subdomain_sender_is_signed_by_its_parent_domains_key(
    smtp_server: SmtpServer, ed_key: DkimKey
) -> None:
    # Given a sender at news.acme.test and a key for acme.test only
    url = smtp_server.url().replace("news@acme.test", "hello@news.acme.test")
    async with SmtpChannel.from_url(url, dkim=DkimSigner([ed_key])) as channel:
        await channel.send(email())

    # Then the parent's key signs (DMARC's relaxed alignment accepts it)
    assert verified(smtp_server.messages[0].raw, dns(ed_key)) == [
        ("acme.test", "ed25519-sha256", True)
    ]


@pytest.mark.asyncio
async def test_an_address_that_needs_smtputf8_is_signed_too(
    smtp_server_factory: type[SmtpServer], ed_key: DkimKey, rsa_key: DkimKey
) -> None:
    # Given a server that takes SMTPUTF8
    server = smtp_server_factory(enable_SMTPUTF8=True)
    server.start()
    async with SmtpChannel.from_url(server.url(), dkim=DkimSigner([ed_key, rsa_key])) as channel:
        # When a message goes to an address that is not ASCII
        receipt = await channel.send(email(to="林@client.test"))

    # Then it arrives signed, and the signatures verify
    assert receipt.status is DeliveryStatus.SENT, receipt.detail
    [delivered] = server.messages
    assert delivered.rcpt_tos == ["林@client.test"]
    assert [ok for _, _, ok in verified(delivered.raw, dns(ed_key, rsa_key))] == [True, True]


@pytest.mark.asyncio
async def test_a_server_without_smtputf8_refuses_such_a_message_for_good(
    smtp_server_factory: type[SmtpServer], ed_key: DkimKey
) -> None:
    server = smtp_server_factory(enable_SMTPUTF8=False)
    server.start()
    async with SmtpChannel.from_url(server.url(), dkim=DkimSigner([ed_key])) as channel:
        receipt = await channel.send(email(to="林@client.test"))
    assert receipt.status is DeliveryStatus.FAILED_PERMANENT
    assert "SMTPUTF8" in receipt.detail
    assert server.messages == []


def test_a_sender_domain_without_a_key_is_a_config_error(smtp_server: SmtpServer) -> None:
    other = generate_key("other.test", "s1", "ed25519")
    with pytest.raises(ChannelConfigError, match=r"no DKIM key for the sender's domain acme\.test"):
        SmtpChannel.from_url(smtp_server.url(), dkim=DkimSigner([other]))


@pytest.mark.asyncio
async def test_a_from_header_of_a_domain_without_a_key_is_a_config_error(
    smtp_server: SmtpServer, ed_key: DkimKey
) -> None:
    async with SmtpChannel.from_url(smtp_server.url(), dkim=DkimSigner([ed_key])) as channel:
        with pytest.raises(ChannelConfigError, match="no DKIM key for the sender's domain other"):
            await channel.send(email(headers={"From": "Other <news@other.test>"}))
    assert smtp_server.messages == []


@pytest.mark.asyncio
async def test_the_outbox_writes_what_smtp_would_send_signed(
    tmp_path: Path, ed_key: DkimKey
) -> None:
    outbox = OutboxChannel(tmp_path, sender=Sender("news@acme.test"), dkim=DkimSigner([ed_key]))
    receipt = await outbox.send(email())
    raw = outbox.path_for(email()).read_bytes()
    assert receipt.ok
    assert verified(raw, dns(ed_key)) == [("acme.test", "ed25519-sha256", True)]


# ---------------------------------------------------------------- keys


def pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey, form: str) -> bytes:
    formats = {
        "pkcs1": serialization.PrivateFormat.TraditionalOpenSSL,
        "pkcs8": serialization.PrivateFormat.PKCS8,
    }
    return key.private_bytes(
        serialization.Encoding.PEM, formats[form], serialization.NoEncryption()
    )


@pytest.mark.parametrize("form", ["pkcs1", "pkcs8"])
def test_rsa_keys_are_read_from_pem_in_either_form(form: str) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = load_key("Acme.Test", "s1", pem(private, form), "rsa")
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert (key.domain, key.algorithm) == ("acme.test", "rsa-sha256")
    assert key.record == f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"
    assert key.record_name == "s1._domainkey.acme.test"
    signed = DkimSigner([key]).sign(email_bytes_of(), "acme.test")
    assert verified(signed, dns(key)) == [("acme.test", "rsa-sha256", True)]


def test_ed25519_keys_are_read_from_pem_or_a_base64_seed() -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    seed = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    from_pem = load_key("acme.test", "e1", pem(private, "pkcs8"))
    from_seed = load_key("acme.test", "e1", base64.b64encode(seed) + b"\n", "ed25519")
    assert from_pem == from_seed
    assert from_pem.algorithm == "ed25519-sha256"
    assert from_pem.record.startswith("v=DKIM1; k=ed25519; p=")


@pytest.mark.parametrize(
    ("data", "algorithm", "message"),
    [
        (b"not a key", None, "neither a PEM private key nor an Ed25519 seed"),
        (b"-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----\n", None, "not a readable"),
        ("ed25519-pem", "rsa", "holds an ed25519-sha256 key, not rsa-sha256"),
        ("ed25519-pem", "dsa", "unknown algorithm 'dsa'"),
        ("rsa-512", None, "512 bits is too short"),
    ],
)
def test_a_bad_key_file_says_what_is_wrong(
    data: bytes | str, algorithm: str | None, message: str
) -> None:
    if data == "ed25519-pem":
        data = pem(ed25519.Ed25519PrivateKey.generate(), "pkcs8")
    elif data == "rsa-512":  # too short for the cryptography package to make
        if shutil.which("openssl") is None:
            pytest.skip("the openssl command is not installed; cannot make a 512-bit key")
        data = subprocess.run(
            ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512"],
            check=True,
            capture_output=True,
        ).stdout
    assert isinstance(data, bytes)
    with pytest.raises(ChannelConfigError, match=re.escape(message)) as caught:
        load_key("acme.test", "s1", data, algorithm)
    assert "s1._domainkey.acme.test" in str(caught.value)


def email_bytes_of() -> bytes:
    from channels import email_bytes

    return email_bytes(email(), Sender("News <news@acme.test>"))
