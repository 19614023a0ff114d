"""Fixtures for the render tests: a signer, a renderer over the example templates, two leads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from dsl import build
from dsl.templates import FileTemplates
from nurture.render import RenderContext, Renderer
from nurture.tokens import TokenSigner

BASE = "https://t.example.com"
SECRET = "test-secret-key-0123456789abcdef"
CAMPAIGNS = Path(__file__).resolve().parents[2] / "campaigns"
NEAR = str(CAMPAIGNS / "welcome.nurture")
"""A campaign file beside `campaigns/templates/`."""

WEI: dict[str, Any] = {
    "email": "wei.zhang@lanting-logistics.com",
    "phone": "+8613800000000",
    "first_name": "Wei",
    "last_name": "Zhang",
    "company": "Lanting Logistics",
    "title": "VP Marketing",
    "persona": "marketer",
    "industry": "logistics",
    "employees": 850,
    "region": "Shanghai",
    "source": "webinar",
    "budget": "$50k",
    "timeline": "Q3",
}
"""A realistic lead, with two custom fields (`budget`, `timeline`)."""

BARE: dict[str, Any] = {"email": "someone@example.com", "first_name": None, "company": ""}
"""A lead with nothing but an email: every optional field empty or missing."""


def handoff_templates() -> set[tuple[str, str]]:
    """`(channel, name)` of the routing's `notify by` templates: they get the handoff's variables
    (lead, owner, mql, timeline, links), not a campaign touch's."""
    sources = {str(p): p.read_text(encoding="utf-8") for p in CAMPAIGNS.glob("*.nurture")}
    routing = build(sources).routing or {}
    return {(note["channel"], note["template"]) for note in routing.get("notify", [])}


def example_templates(channel: str) -> list[str]:
    """Names of the example campaign templates for `channel`, such as `welcome/cxo`."""
    root = CAMPAIGNS / "templates"
    suffix = f".{channel}.j2"
    found = (p.relative_to(root).as_posix() for p in root.rglob(f"*{suffix}"))
    handoff = handoff_templates()
    names = (name.removesuffix(suffix) for name in found)
    return sorted(name for name in names if (channel, name) not in handoff)


def context_for(name: str, lead: dict[str, Any]) -> RenderContext:
    """The context the engine would give: drip tips are sent inside `repeat`."""
    tip = re.search(r"tip-(\d+)$", name)
    return RenderContext(lead, "Welcome", loop_index=int(tip.group(1)) if tip else None)


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner(SECRET)


@pytest.fixture
def compiles() -> list[str]:
    """The paths the renderer compiled, in order: the cache's witness."""
    return []


@pytest.fixture
def renderer(signer: TokenSigner, compiles: list[str]) -> Renderer:
    """A renderer over the example templates in `campaigns/templates/`."""
    return Renderer(FileTemplates(), signer, BASE + "/", on_compile=compiles.append)
