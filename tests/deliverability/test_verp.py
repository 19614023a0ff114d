"""Signed return paths: one per delivery, readable back, refused when forged."""

from __future__ import annotations

from pathlib import Path

import pytest

from nurture.config import Settings
from nurture.deliverability.verp import Verp, VerpError, verp_of

VERP = Verp("bounces.acme.test", ["old-key", "new-key"])


def test_a_return_path_names_its_delivery_and_survives_case_folding() -> None:
    address = VERP.address(42)
    assert address.startswith("bounce+42.") and address.endswith("@bounces.acme.test")
    assert VERP.delivery_id(address) == 42
    assert VERP.delivery_id(f"<{address.upper()}>") == 42


def test_an_older_key_still_verifies_after_a_rotation() -> None:
    before = Verp("bounces.acme.test", ["old-key"]).address(7)
    assert VERP.delivery_id(before) == 7
    assert VERP.address(7) != before  # new mail is signed with the newest key


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("bounce+43.{sig}@bounces.acme.test", "signature that does not match delivery 43"),
        ("bounce+42.{sig}@other.test", "is not at the bounce domain bounces.acme.test"),
        ("bounce+42@bounces.acme.test", "is not a return path of ours"),
        ("postmaster", "is not an email address"),
        # digits that only look like 42 (fullwidth, Arabic-Indic): int() reads them as 42
        ("bounce+\uff14\uff12.{sig}@bounces.acme.test", "is not a return path of ours"),
        ("bounce+\u0664\u0662.{sig}@bounces.acme.test", "is not a return path of ours"),
    ],
)
def test_forged_or_foreign_addresses_are_refused_saying_why(address: str, why: str) -> None:
    signature = VERP.address(42).split(".")[1].split("@")[0]
    with pytest.raises(VerpError, match=why):
        VERP.delivery_id(address.format(sig=signature))


def test_no_bounce_domain_means_no_return_paths() -> None:
    assert verp_of(Settings(secret_key="k")) is None
    made = verp_of(Settings(secret_key="a,b", bounce_domain="Bounces.Acme.test"))
    assert made is not None and made.domain == "bounces.acme.test" and made.keys == ("a", "b")


def test_the_window_is_read_from_nurture_toml_too(tmp_path: Path) -> None:
    (tmp_path / "nurture.toml").write_text('soft_bounce_window = "12h"\nsoft_bounces = 2\n')
    settings = Settings.load({}, cwd=tmp_path)
    assert (settings.soft_bounce_window, settings.soft_bounces) == (12 * 3600, 2)


def test_the_settings_read_a_bounce_domain_and_a_window_in_days() -> None:
    settings = Settings.load(
        {
            "NURTURE_BOUNCE_DOMAIN": "bounces.acme.test",
            "NURTURE_SOFT_BOUNCES": "5",
            "NURTURE_SOFT_BOUNCE_WINDOW": "3d",
        },
        cwd="/nonexistent",
    )
    assert (settings.bounce_domain, settings.soft_bounces) == ("bounces.acme.test", 5)
    assert settings.soft_bounce_window == 3 * 86400
    with pytest.raises(ValueError, match="NURTURE_BOUNCE_DOMAIN is not a domain name"):
        Settings.load({"NURTURE_BOUNCE_DOMAIN": "not a domain"}, cwd="/nonexistent")
    with pytest.raises(ValueError, match="NURTURE_SOFT_BOUNCES must be between 1 and 1000"):
        Settings.load({"NURTURE_SOFT_BOUNCES": "0"}, cwd="/nonexistent")
