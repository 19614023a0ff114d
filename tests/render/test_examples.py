"""Every example template in `campaigns/templates/` renders, for a full lead and a bare one."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from nurture.render import RenderedMessage, Renderer
from nurture.tokens import TokenSigner
from tests.render.conftest import (
    BARE,
    BASE,
    CAMPAIGNS,
    NEAR,
    WEI,
    context_for,
    example_templates,
    handoff_templates,
)

EMAILS = example_templates("email")
LEADS = {"full-lead": WEI, "bare-lead": BARE}
HREF = re.compile(r'<a\s[^>]*?href="([^"]*)"[^>]*>')
SOURCE_LINK = re.compile(r'<a href="(https?://[^"]+)"(?: data-link="([^"]+)")?')
DELIVERY, LEAD = 41, 7


def _render(renderer: Renderer, name: str, lead: dict[str, Any]) -> RenderedMessage:
    return renderer.render("email", name, NEAR, context_for(name, lead), None, DELIVERY, LEAD)


def _source(name: str, channel: str = "email") -> str:
    return (CAMPAIGNS / "templates" / f"{name}.{channel}.j2").read_text(encoding="utf-8")


def test_the_examples_are_found() -> None:
    assert len(EMAILS) >= 20
    assert "welcome/cxo" in EMAILS
    assert "drip/tip-6" in EMAILS


@pytest.mark.parametrize("lead", LEADS.values(), ids=LEADS.keys())
@pytest.mark.parametrize("name", EMAILS)
def test_an_example_email_renders_to_subject_html_and_text(
    renderer: Renderer, name: str, lead: dict[str, Any]
) -> None:
    message = _render(renderer, name, lead)
    assert message.subject and "\n" not in message.subject
    assert message.html and message.text and message.body == ""
    for part in (message.subject, message.html, message.text):
        assert "{{" not in part and "{%" not in part and "None" not in part


@pytest.mark.parametrize("name", EMAILS)
def test_an_example_emails_links_are_tracked_and_recoverable(
    renderer: Renderer, signer: TokenSigner, name: str
) -> None:
    # Given the links the template source writes, with their data-link names
    written = {(url, link_name or None) for url, link_name in SOURCE_LINK.findall(_source(name))}
    # When it is rendered
    message = _render(renderer, name, WEI)
    # Then every one of them is in `links`, numbered in order
    assert {(link.url, link.name) for link in message.links} == written
    assert [link.index for link in message.links] == list(range(len(message.links)))
    # And every link of the html goes through the tracking service, none straight out
    hrefs = HREF.findall(message.html)
    assert all(href.startswith(BASE + "/") for href in hrefs)
    tracked = [href for href in hrefs if href.startswith(BASE + "/c/")]
    assert len(tracked) == len(written)
    for href in tracked:
        delivery, index = signer.read_click(href.removeprefix(BASE + "/c/"))
        assert delivery == DELIVERY
        assert message.links[index].url not in message.html


@pytest.mark.parametrize("name", EMAILS)
def test_an_example_email_has_one_open_pixel(
    renderer: Renderer, signer: TokenSigner, name: str
) -> None:
    message = _render(renderer, name, WEI)
    pixels = re.findall(rf'<img src="{re.escape(BASE)}/o/([^"]+)"', message.html)
    assert len(pixels) == 1
    assert signer.read_open(pixels[0]) == DELIVERY
    assert message.html.endswith('alt="" style="display:none">')


@pytest.mark.parametrize("name", [n for n in EMAILS if not n.startswith("sales/")])
def test_an_example_emails_unsubscribe_link_names_the_lead(
    renderer: Renderer, signer: TokenSigner, name: str
) -> None:
    message = _render(renderer, name, WEI)
    assert message.unsubscribe_url.startswith(BASE + "/u/")
    assert f'href="{message.unsubscribe_url}"' in message.html
    assert message.unsubscribe_url in message.text
    token = message.unsubscribe_url.removeprefix(BASE + "/u/")
    assert signer.read_unsubscribe(token) == (LEAD, DELIVERY)


@pytest.mark.parametrize("name", EMAILS)
def test_an_example_emails_text_urls_share_the_html_links(renderer: Renderer, name: str) -> None:
    message = _render(renderer, name, WEI)
    # Every URL of the text part is tracked, and under the index of the same html link
    urls = re.findall(r"https?://\S+", message.text)
    assert all(url.startswith(BASE + "/") for url in urls)
    assert len(message.links) == len({link.url for link in message.links})


def test_the_welcome_email_reads_as_written(renderer: Renderer) -> None:
    message = _render(renderer, "welcome/cxo", WEI)
    assert message.subject == "A note for leaders at Lanting Logistics"
    assert "<p>Hi Wei,</p>" in message.html
    assert message.text.startswith("Hi Wei,\n\nThank you")
    assert [(link.index, link.name) for link in message.links] == [(0, "tour")]


def test_empty_fields_fall_back_to_the_templates_defaults(renderer: Renderer) -> None:
    message = _render(renderer, "welcome/cxo", BARE)
    assert message.subject == "A note for leaders at your company"
    assert "<p>Hi there,</p>" in message.html


def test_a_drip_tip_numbers_itself_from_the_loop(renderer: Renderer) -> None:
    message = _render(renderer, "drip/tip-3", WEI)
    assert message.subject.startswith("Tip 3 of 6:")


def test_the_sales_alert_shows_custom_fields_or_a_dash(renderer: Renderer) -> None:
    full = _render(renderer, "sales/welcome-mql", WEI)
    bare = _render(renderer, "sales/welcome-mql", BARE)
    assert full.subject == "New MQL: Wei Zhang at Lanting Logistics"
    assert "Budget:    $50k" in full.text
    assert bare.subject == "New MQL: someone@example.com at unknown company"
    assert "Budget:    -" in bare.text


def test_the_campaigns_subject_wins_over_the_block(renderer: Renderer) -> None:
    context = context_for("welcome/cxo", WEI)
    subject = "A note for leaders at {{ lead.company }}\n"
    message = renderer.render("email", "welcome/cxo", NEAR, context, subject, DELIVERY, LEAD)
    assert message.subject == "A note for leaders at Lanting Logistics"


@pytest.mark.parametrize("lead", LEADS.values(), ids=LEADS.keys())
@pytest.mark.parametrize(
    ("channel", "name"),
    [(c, n) for c in ("wechat", "webhook") for n in example_templates(c)],
)
def test_an_example_json_message_renders_to_json(
    renderer: Renderer, channel: str, name: str, lead: dict[str, Any]
) -> None:
    message = renderer.render(channel, name, NEAR, context_for(name, lead), None, DELIVERY, LEAD)
    assert isinstance(json.loads(message.body), dict)
    assert (message.subject, message.html, message.text, message.links) == ("", "", "", ())


def test_the_checkin_webhook_carries_the_guest(renderer: Renderer) -> None:
    name = "events/salon-checkin"
    message = renderer.render("webhook", name, NEAR, context_for(name, WEI), None, 1, 2)
    body = json.loads(message.body)
    assert body["campaign"] == "Welcome"
    assert body["guest"] == {
        "name": "Wei Zhang",
        "company": "Lanting Logistics",
        "title": "VP Marketing",
        "email": "wei.zhang@lanting-logistics.com",
        "phone": "+8613800000000",
    }


@pytest.mark.parametrize("name", example_templates("sms"))
def test_an_example_sms_renders_untouched(renderer: Renderer, name: str) -> None:
    message = renderer.render("sms", name, NEAR, context_for(name, WEI), None, DELIVERY, LEAD)
    assert message.body and "\n" not in message.body
    assert message.links == ()
    assert BASE not in message.body


def test_the_examples_cover_every_file() -> None:
    root = CAMPAIGNS / "templates"
    found = {p.relative_to(root).as_posix() for p in root.rglob("*.j2")}
    channels = ("email", "sms", "wechat", "webhook")
    named = {f"{n}.{c}.j2" for c in channels for n in example_templates(c)}
    assert found == named | {f"{n}.{c}.j2" for c, n in handoff_templates()}


HANDOFF: dict[str, Any] = {
    "lead": {
        **WEI,
        "account": {
            "name": "Lanting Group",
            "status": "opportunity",
            "owner": "li.na@tidewater.io",
        },
    },
    "owner": {"email": "li.na@tidewater.io", "name": "李娜"},
    "mql": {
        "cause": "scoring: fit grade A and interest 55",
        "rule": 3,
        "reason": "rule 3: team east, fewest open MQLs",
        "at": "2026-03-02 09:00 UTC",
        "fit": 45,
        "interest": 55,
        "grade": "A",
        "sla_due_at": "2026-03-03 09:00 UTC",
        "because": [
            {
                "part": "fit",
                "rule": '+20 when lead.industry in ["logistics"]',
                "points": 20,
                "times": 1,
            },
            {
                "part": "interest",
                "rule": '+20 per event "webinar_attended"',
                "points": 40,
                "times": 2,
            },
        ],
    },
    "timeline": [
        {"at": "2026-02-20 10:00 UTC", "what": 'opened "Welcome"'},
        {"at": "2026-03-01 16:30 UTC", "what": "attended the webinar"},
    ],
    "notes": [
        {"at": "2026-03-01 17:00 UTC", "author": "sam@tidewater.io", "text": "Met at the expo"}
    ],
    "links": {"accept": "https://t.example.com/s/a?t=1&x=2", "return": "https://t.example.com/s/r"},
}
"""What the handoff gives a `notify by` template (docs/language.md, "notify by")."""


def test_the_handoff_templates_render_with_the_handoff_variables() -> None:
    # Given the routing's notify-by templates and the variables the handoff gives them
    env = SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=True, loader=FileSystemLoader(CAMPAIGNS / "templates")
    )
    assert handoff_templates() == {("email", "sales/new-mql"), ("webhook", "crm/mql")}

    # When the email's blocks are rendered
    email = env.get_template("sales/new-mql.email.j2")
    blocks = {b: "".join(email.blocks[b](email.new_context(HANDOFF))) for b in email.blocks}

    # Then it has a subject, and html and text that show the MQL, its story and the links
    assert set(blocks) == {"subject", "html", "text"} and "Lanting Logistics" in blocks["subject"]
    for part in (blocks["html"], blocks["text"]):
        assert "rule 3: team east" in part and "attended the webinar" in part
        assert "https://t.example.com/s/r" in part and "李娜" in part
        assert "Lanting Group (opportunity)" in part and "Met at the expo" in part
        assert '+40 interest: +20 per event "webinar_attended" (×2)' in part.replace("&#34;", '"')
    assert 'href="https://t.example.com/s/a?t=1&amp;x=2"' in blocks["html"]

    # And the webhook body is JSON with the same facts
    body = json.loads(env.get_template("crm/mql.webhook.j2").render(HANDOFF))
    assert body["owner"]["email"] == "li.na@tidewater.io"
    assert body["mql"]["reason"] == HANDOFF["mql"]["reason"]
    assert [entry["what"] for entry in body["timeline"]] == [
        entry["what"] for entry in HANDOFF["timeline"]
    ]
    assert body["links"] == HANDOFF["links"]
    assert body["lead"]["account"]["name"] == "Lanting Group" and body["notes"] == HANDOFF["notes"]
