"""``nurture doctor``: checks of what nurture needs from the world outside, and how to fix it.

``doctor dkim`` prints the DNS TXT record to publish for each key in
``NURTURE_DKIM``; ``doctor dkim --generate DOMAIN --selector S [--algorithm
rsa|ed25519]`` makes a key pair, writes the private key (mode 0600, never over
an existing file) and prints its record and the ``NURTURE_DKIM`` entry. Exit
codes: 0 done, 1 a setting or key file that cannot be used (one line naming it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.text import Text

from nurture.cli import lang as cli_lang
from nurture.config import ConfigError, Settings

app = typer.Typer(help="Check what nurture needs outside: DNS records for DKIM.")

TXT_CHUNK = 255
"""A DNS TXT record is strings of at most 255 bytes; a 2048-bit RSA key needs two."""


@app.callback()
def _doctor() -> None:
    """Check what nurture needs outside: DNS records for DKIM."""


@app.command("dkim")
def dkim_command(
    generate: Annotated[
        str | None,
        typer.Option("--generate", metavar="DOMAIN", help="Make a key pair for DOMAIN."),
    ] = None,
    selector: Annotated[
        str | None, typer.Option("--selector", metavar="S", help="The new key's selector.")
    ] = None,
    algorithm: Annotated[
        str, typer.Option("--algorithm", help="rsa (2048 bits) or ed25519.")
    ] = "rsa",
    bits: Annotated[int, typer.Option("--bits", min=1024, help="RSA key size.")] = 2048,
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="FILE", help="Where to write the private key."),
    ] = None,
) -> None:
    """Print the DNS TXT record of each NURTURE_DKIM key, or make a new key pair."""
    if generate is not None:
        _generate(generate, selector, algorithm, bits, out)
        return
    if selector is not None or out is not None:
        cli_lang._fail("--selector and --out go with --generate DOMAIN")
    try:
        signer = Settings.load().dkim_signer()  # checked whole: the sender must have a key
    except ConfigError as e:
        _fail(str(e))
    if signer is None:
        _fail(
            "NURTURE_DKIM is not set: make a key with `nurture doctor dkim --generate "
            "acme.example --selector s2026`, then set NURTURE_DKIM=acme.example:s2026:KEYFILE"
        )
    console = cli_lang._console(sys.stdout)
    console.print(Text("Publish these TXT records (one per key) before signing with the key:"))
    for key in signer.keys:
        console.print(Text(f"\n{key.record_name}.  IN  TXT  {zone_strings(key.record)}"))


def _generate(
    domain: str, selector: str | None, algorithm: str, bits: int, out: Path | None
) -> None:
    from channels import ChannelConfigError, generate_key
    from channels.dkim import key_file

    if not selector:
        cli_lang._fail("--generate needs --selector, such as --selector s2026")
    try:
        key = generate_key(domain, selector, algorithm, bits)
    except ChannelConfigError as e:
        cli_lang._fail(str(e))
    path = out or Path(f"{key.selector}.{key.domain}.key")
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        _fail(f"{path} exists; choose another --out (a key file is never overwritten)")
    except OSError as e:
        _fail(f"cannot write {path}: {e.strerror or e}")
    with os.fdopen(descriptor, "wb") as file:
        file.write(key_file(key))
    kind = "rsa" if key.algorithm == "rsa-sha256" else "ed25519"
    console = cli_lang._console(sys.stdout)
    console.print(Text(f"wrote the private key to {path} (keep it secret)"))
    console.print(Text("1. publish this TXT record:"))
    console.print(Text(f"   {key.record_name}.  IN  TXT  {zone_strings(key.record)}"))
    console.print(Text("2. once it resolves, add to NURTURE_DKIM (comma-separated):"))
    console.print(Text(f"   {key.domain}:{key.selector}:{path.resolve()}:{kind}"))


def zone_strings(record: str) -> str:
    """The record as a zone file holds it: quoted strings of at most 255 characters."""
    parts = [record[i : i + TXT_CHUNK] for i in range(0, len(record), TXT_CHUNK)]
    quoted = " ".join(f'"{p}"' for p in parts)
    return f"( {quoted} )" if len(parts) > 1 else quoted


def _fail(message: str) -> NoReturn:
    cli_lang._fail(message, code=1)
