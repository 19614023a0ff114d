"""Properties of the renderer over random lead values and random markup."""

from __future__ import annotations

import json
from html import escape

import markupsafe
from hypothesis import given
from hypothesis import strategies as st

from dsl.templates import DictTemplates
from nurture.render import RenderContext, Renderer, rewrite_html, rewrite_text
from nurture.tokens import TokenSigner
from tests.render.conftest import BASE

CARD = '{"first": {"value": "{{ lead.name }}"}, "note": "{{ lead.note }}"}'
PARAGRAPH = (
    "{% block subject %}{{ lead.name }}{% endblock %}"
    '{% block html %}<p title="{{ lead.name }}">{{ lead.name }}</p>{% endblock %}'
)
RENDERER = Renderer(
    DictTemplates({"card.wechat": CARD, "p.email": PARAGRAPH}), TokenSigner("k" * 32), BASE
)
MARKUP = st.text(st.sampled_from(list("<>a /=\"'!-#:.hrefsciptyl\n&;")) | st.characters())
PLAIN = st.text(st.characters(blacklist_characters="<"))


def _context(**lead: str) -> RenderContext:
    return RenderContext(lead, "Welcome")


@given(name=st.text(), note=st.text())
def test_any_lead_value_stays_inside_its_json_string(name: str, note: str) -> None:
    body = RENDERER.render(
        "wechat", "card", "c.nurture", _context(name=name, note=note), None, 1, 2
    )
    assert json.loads(body.body) == {"first": {"value": name}, "note": note}


@given(name=st.text())
def test_any_lead_value_is_text_in_html_and_one_line_in_the_subject(name: str) -> None:
    message = RENDERER.render("email", "p", "c.nurture", _context(name=name), None, 1, 2)
    quoted = markupsafe.escape(name)
    assert message.html.startswith(f'<p title="{quoted}">{quoted}</p><img ')
    assert message.subject == " ".join(name.split())


@given(html=MARKUP)
def test_rewriting_nothing_leaves_any_markup_as_it_was(html: str) -> None:
    assert rewrite_html(html, lambda url, name: None) == html
    assert rewrite_text(html, lambda url: None) == html


@given(
    before=PLAIN,
    after=PLAIN,
    url=st.text(st.characters(blacklist_categories=["Cs"]), min_size=1),
    name=st.text(st.characters(blacklist_categories=["Cs"])),
)
def test_a_links_url_and_name_reach_the_tracker_as_written(
    before: str, after: str, url: str, name: str
) -> None:
    # Given any text around one link whose attributes are properly escaped
    html = f'{before}<a href="{escape(url)}" data-link="{escape(name)}">{after}'
    seen: list[tuple[str, str | None]] = []

    def track(found: str, link: str | None) -> str:
        seen.append((found, link))
        return "T"

    # When it is rewritten, then the tracker saw that link as written and nothing else changed
    rewritten = rewrite_html(html, track)
    assert seen == [(url.strip(), name.strip() or None)]
    assert rewritten == f'{before}<a href="T" data-link="{escape(name)}">{after}'
