"""The renderer on small in-memory templates: errors, the sandbox, escaping, JSON, links, cache."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest

from dsl.templates import DictTemplates
from dsl.vocabulary import LEAD_FIELDS, TEMPLATE_GLOBALS
from nurture.render import RenderContext, RenderedMessage, Renderer, RenderError, lead_values
from nurture.tokens import TokenSigner
from tests.render.conftest import BASE, WEI

NEAR = "campaigns/welcome.nurture"


def email(html: str = "", text: str = "", subject: str = "Hello") -> str:
    """An email template's source with the given blocks, all starting on line 1."""
    blocks = {"subject": subject, "html": html, "text": text}
    return "".join(f"{{% block {k} %}}{v}{{% endblock %}}" for k, v in blocks.items() if v)


def render(
    templates: dict[str, str],
    name: str = "t",
    channel: str = "email",
    lead: dict[str, Any] | None = None,
    subject: str | None = None,
    loop_index: int | None = None,
    signer: TokenSigner | None = None,
) -> RenderedMessage:
    """Render `name` from `templates` for delivery 41 to lead 7."""
    renderer = Renderer(DictTemplates(templates), signer or TokenSigner("k" * 32), BASE)
    context = RenderContext(WEI if lead is None else lead, "Welcome", loop_index, "whitepaper")
    return renderer.render(channel, name, NEAR, context, subject, 41, 7)


def fails(templates: dict[str, str], **options: Any) -> RenderError:
    """The `RenderError` that rendering raises."""
    with pytest.raises(RenderError) as raised:
        render(templates, **options)
    return raised.value


# Missing variables and other failures


def test_a_missing_field_names_the_template_line_and_field() -> None:
    # Given a template reading a field the lead does not have, on line 3
    source = email(html="<p>Hi</p>\n\n<p>{{ lead.budgett }}</p>")
    # When it is rendered, then the error says where and what
    error = fails({"t.email": source})
    assert (error.path, error.line) == ("<t.email>", 3)
    assert "`lead.budgett` is undefined" in error.reason
    assert str(error).startswith("<t.email>:3: in the html: `lead.budgett` is undefined")


def test_an_unknown_variable_is_named() -> None:
    error = fails({"t.email": email(text="\n{{ lead.first_name }} {{ offer }}")})
    assert (error.line, error.reason) == (2, "in the text: `offer` is undefined")


def test_loop_outside_repeat_is_an_error() -> None:
    error = fails({"t.email": email(subject="Tip {{ loop.index }}", text="x")})
    assert "`loop` is undefined: this send is not inside `repeat`" in str(error)


def test_loop_inside_repeat_counts_from_one() -> None:
    source = email(subject="Tip {{ loop.index }} ({{ loop.index0 }})", text="x")
    assert render({"t.email": source}, loop_index=2).subject == "Tip 2 (1)"


def test_a_known_empty_field_renders_empty_and_a_default_replaces_it() -> None:
    source = email(text="[{{ lead.title }}] [{{ lead.city | default('-', true) }}]")
    assert render({"t.email": source}, lead={"title": None}).text == "[] [-]"


def test_a_missing_custom_field_with_a_default_renders_the_default() -> None:
    source = email(text="{{ lead.budget | default('-') }}")
    assert render({"t.email": source}, lead={}).text == "-"


def test_a_syntax_error_names_its_line() -> None:
    error = fails({"t.email": email(text="ok\n{{ lead.first_name( }}")})
    assert error.line == 2
    assert error.reason.startswith("syntax error:")


@pytest.mark.parametrize(
    "statement",
    ["{% include 'footer' %}", "{% import 'macros' as m %}", "{% from 'macros' import button %}"],
)
def test_a_template_cannot_pull_in_another(statement: str) -> None:
    error = fails({"t.email": email(text=f"Hi\n{statement}")})
    assert (error.line, error.reason) == (
        2,
        "templates cannot extend, include or import other templates",
    )


def test_an_error_in_an_expression_is_translated() -> None:
    error = fails({"t.email": email(text="\n\n{{ lead.employees / 0 }}")})
    assert (error.line, error.reason) == (3, "in the text: division by zero")
    assert isinstance(error.__cause__, ZeroDivisionError)


def test_a_missing_template_is_named() -> None:
    error = fails({}, name="welcome/nobody")
    assert error.path == "welcome/nobody.email.j2"
    assert "no template `welcome/nobody`" in error.reason


def test_an_email_without_a_subject_is_refused_unless_the_campaign_gives_one() -> None:
    source = "{% block text %}x{% endblock %}"
    assert "no `{% block subject %}`" in fails({"t.email": source}).reason
    assert render({"t.email": source}, subject="From the campaign").subject == "From the campaign"


def test_an_email_without_html_or_text_is_refused() -> None:
    error = fails({"t.email": "{% block subject %}x{% endblock %}just text"})
    assert "neither" in error.reason


def test_an_error_in_the_campaigns_subject_names_the_campaign_file() -> None:
    error = fails({"t.email": email(text="x")}, subject="Hi {{ lead.nickname }}")
    assert error.path.startswith(NEAR)
    assert "`lead.nickname` is undefined" in error.reason


def test_render_errors_survive_pickling() -> None:
    error = pickle.loads(pickle.dumps(RenderError("<t.email>", 3, "in the html: `x` is undefined")))
    assert (error.path, error.line, str(error)) == (
        "<t.email>",
        3,
        "<t.email>:3: in the html: `x` is undefined",
    )


# The sandbox


@pytest.mark.parametrize(
    "expression",
    [
        "lead.__class__",
        "''.__class__.__mro__",
        "track.__globals__",
        "track.__self__",
        "lead._values",
        "lead.get.__self__",
        "campaign.name.__class__.__subclasses__()",
        "lead.first_name.format.__globals__",
        "'{0.__class__}'.format(lead)",
    ],
)
def test_a_template_cannot_reach_python_internals(expression: str) -> None:
    error = fails({"t.email": email(text=f"{{{{ {expression} }}}}")})
    assert error.line == 1
    assert error.reason.startswith("in the text: not allowed: access to attribute")


def test_a_sandbox_escape_is_reported_as_a_security_refusal() -> None:
    error = fails({"t.email": email(text="{{ ''.__class__.__mro__ }}")})
    assert "not allowed: access to attribute '__class__'" in error.reason


def test_a_template_cannot_change_its_values() -> None:
    source = email(text="{% set tags = ['a'] %}{{ tags.append('b') }}")
    assert "not allowed" in fails({"t.email": source}).reason


# Escaping


def test_a_leads_markup_is_escaped_in_html_only() -> None:
    # Given a lead whose name is a script
    lead = {"first_name": "<script>alert(1)</script>", "company": "R&D"}
    source = email(
        subject="For {{ lead.first_name }}",
        html="<p>Hi {{ lead.first_name }} of {{ lead.company }}</p>",
        text="Hi {{ lead.first_name }} of {{ lead.company }}",
    )
    # When it is rendered
    message = render({"t.email": source}, lead=lead)
    # Then the html escapes it, the text and the subject keep it as written
    assert "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt; of R&amp;D</p>" in message.html
    assert "<script>" not in message.html
    assert message.text == "Hi <script>alert(1)</script> of R&D"
    assert message.subject == "For <script>alert(1)</script>"


def test_the_subject_is_folded_onto_one_line() -> None:
    lead = {"company": "Acme\r\nBcc: everyone@example.com"}
    message = render({"t.email": email(subject="Hi  {{ lead.company }}\n", text="x")}, lead=lead)
    assert message.subject == "Hi Acme Bcc: everyone@example.com"


# JSON bodies


def test_a_leads_quotes_cannot_break_a_json_body() -> None:
    # Given a lead whose company would close the JSON string and add a key
    lead = {"company": 'Evil", "url": "https://evil.example\\'}
    source = '{"company": "{{ lead.company }}", "tags": {{ ["a", "b"] | tojson }}}'
    # When the wechat message is rendered, then the body is JSON with the value intact
    body = json.loads(render({"t.wechat": source}, channel="wechat", lead=lead).body)
    assert body == {"company": lead["company"], "tags": ["a", "b"]}


def test_a_body_that_is_not_json_names_the_template() -> None:
    error = fails({"t.webhook": '{"employees": {{ lead.employees }},}'}, channel="webhook")
    assert error.path == "<t.webhook>"
    assert "the rendered webhook body is not JSON" in error.reason


def test_an_sms_body_is_plain_text() -> None:
    source = "Hi {{ lead.first_name }} & co: https://tdw.io/x"
    message = render({"t.sms": source}, channel="sms")
    assert message.body == "Hi Wei & co: https://tdw.io/x"
    assert message.links == ()


# What templates see


def test_templates_see_exactly_the_documented_globals() -> None:
    source = email(
        text=(
            "{{ lead.email }} {{ campaign.name }} {{ message.id }} {{ message.name }}"
            " {{ message.template }} {{ loop.index }} {{ unsubscribe_url.split('/')[3] }}"
            " {{ track('https://tidewater.io/x').split('/')[3] }}"
        )
    )
    message = render({"t.email": source}, loop_index=1)
    assert message.text == f"{WEI['email']} Welcome 41 whitepaper t 1 u c"
    assert {"lead", "campaign", "loop", "unsubscribe_url", "track", "message"} == TEMPLATE_GLOBALS


def test_lead_values_define_every_standard_field() -> None:
    values = lead_values({"first_name": "Wei", "last_name": None, "email": "w@Lanting.CN"})
    assert {field for field in LEAD_FIELDS if not field.startswith("account.")} <= set(values)
    assert values["account"] == {"name": "", "status": "", "owner": ""}
    assert values["last_name"] == ""
    assert values["name"] == "Wei"
    assert values["email_domain"] == "lanting.cn"
    assert lead_values({"name": "Given", "first_name": "Wei"})["name"] == "Given"


def test_a_lead_can_be_iterated_but_not_changed() -> None:
    source = email(text="{{ lead.items() | selectattr(0, 'eq', 'budget') | list }}")
    assert render({"t.email": source}).text == "[('budget', '$50k')]"
    assert "undefined" in fails({"t.email": email(text="{{ lead.update({}) }}")}).reason


# Links


def test_links_are_rewritten_named_and_recoverable() -> None:
    # Given an html part with a named link, a plain link, the same link again, and others
    signer = TokenSigner("k" * 32)
    html = (
        '<p><a href="https://a.example/x?y=1&amp;z=2" data-link="download">Get</a>\n'
        '<a href="https://b.example/">B</a>\n'
        '<a data-link="download" href="https://a.example/x?y=1&amp;z=2">Again</a>\n'
        '<a href="mailto:sales@tidewater.io">Mail</a> <a href="tel:+8613800000000">Call</a>\n'
        '<a href="#top">Top</a> <a href="/relative">Rel</a>\n'
        '<a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
    )
    message = render({"t.email": email(html=html)}, signer=signer)
    # Then the two distinct http links are tracked, in order, with their names
    assert [(x.index, x.name, x.url) for x in message.links] == [
        (0, "download", "https://a.example/x?y=1&z=2"),
        (1, None, "https://b.example/"),
    ]
    # And each click token leads back to its link
    first = f"{BASE}/c/{signer.click_token(41, 0)}"
    assert message.html.count(f'href="{first}"') == 2
    assert f'href="{BASE}/c/{signer.click_token(41, 1)}"' in message.html
    # And the others are untouched
    for kept in ("mailto:sales@tidewater.io", "tel:+8613800000000", "#top", "/relative"):
        assert f'href="{kept}"' in message.html
    assert f'href="{message.unsubscribe_url}"' in message.html


def test_a_text_url_shares_the_index_of_the_same_html_link() -> None:
    signer = TokenSigner("k" * 32)
    source = email(
        html='<a href="https://a.example/guide" data-link="guide">Guide</a>',
        text="See https://a.example/guide. Or (https://b.example/more).\n{{ unsubscribe_url }}",
    )
    message = render({"t.email": source}, signer=signer)
    assert [(x.name, x.url) for x in message.links] == [
        ("guide", "https://a.example/guide"),
        (None, "https://b.example/more"),
    ]
    guide, more = (f"{BASE}/c/{signer.click_token(41, i)}" for i in (0, 1))
    assert message.text == f"See {guide}. Or ({more}).\n{message.unsubscribe_url}"


def test_track_makes_an_explicit_tracked_link_once() -> None:
    # Given an sms and an html part that call track()
    signer = TokenSigner("k" * 32)
    sms = render(
        {"t.sms": "Gift: {{ track('https://tdw.io/gift', 'gift') }}"}, channel="sms", signer=signer
    )
    assert sms.body == f"Gift: {BASE}/c/{signer.click_token(41, 0)}"
    assert [(x.name, x.url) for x in sms.links] == [("gift", "https://tdw.io/gift")]
    # Then an html link made with track() is not tracked a second time
    html = "<a href=\"{{ track('https://a.example/', 'a') }}\">A</a>"
    message = render({"t.email": email(html=html)}, signer=signer)
    assert [x.url for x in message.links] == ["https://a.example/"]


def test_track_refuses_what_is_not_a_web_url() -> None:
    error = fails({"t.email": email(text="\n{{ track('javascript:alert(1)') }}")})
    assert error.line == 2
    assert "track() takes an http(s) URL" in error.reason


def test_the_open_pixel_goes_before_the_end_of_the_body() -> None:
    signer = TokenSigner("k" * 32)
    html = "<html><body><p>Hi</p></body></html>"
    message = render({"t.email": email(html=html)}, signer=signer)
    pixel = (
        f'<img src="{BASE}/o/{signer.open_token(41)}" width="1" height="1" alt=""'
        ' style="display:none">'
    )
    assert message.html == f"<html><body><p>Hi</p>{pixel}</body></html>"


def test_a_text_only_email_has_no_pixel() -> None:
    message = render({"t.email": email(text="Only text")})
    assert (message.html, message.text) == ("", "Only text")


# The cache


def test_a_template_compiles_once_however_often_it_renders() -> None:
    # Given a renderer that reports each compilation
    compiled: list[str] = []
    templates = {"t.email": email(html="<p>{{ lead.first_name }}</p>", text="x")}
    renderer = Renderer(
        DictTemplates(templates),
        TokenSigner("k"),
        BASE,
        on_compile=compiled.append,
    )
    context = RenderContext(WEI, "Welcome")
    # When it renders the same template three times
    renderer.render("email", "t", NEAR, context, None, 1, 7)
    first = list(compiled)
    renderer.render("email", "t", NEAR, context, None, 2, 7)
    renderer.render("email", "t", NEAR, context, None, 3, 7)
    # Then only the first render compiled (once escaping for html, once not)
    assert first == ["<t.email>", "<t.email>"]
    assert compiled == first
    # And an edited template is compiled afresh
    templates["t.email"] = email(html="<p>{{ lead.last_name }}</p>", text="x")
    assert "Zhang" in renderer.render("email", "t", NEAR, context, None, 4, 7).html
    assert len(compiled) == 4


def test_the_campaigns_subject_is_compiled_once_too() -> None:
    compiled: list[str] = []
    templates = {"t.email": email(text="x")}
    renderer = Renderer(
        DictTemplates(templates),
        TokenSigner("k"),
        BASE,
        on_compile=compiled.append,
    )
    for delivery in (1, 2):
        context = RenderContext(WEI, "Welcome")
        renderer.render("email", "t", NEAR, context, "Hi {{ lead.first_name }}", delivery, 7)
    assert len(compiled) == 2  # the template and the subject, each once


def test_a_base_url_must_be_a_web_url() -> None:
    with pytest.raises(ValueError, match="base_url"):
        Renderer(DictTemplates({}), TokenSigner("k"), "t.example.com")


def test_templates_read_the_leads_account_as_lead_account() -> None:
    # Given a lead matched to an account (stored as the accounts import stores it)
    lead = {"email": "ada@acme.com", "account_name": "Acme, Inc.", "account_owner": "zoe@t.io"}
    source = email(html="<p>{{ lead.account.name }} / {{ lead.account.owner }}</p>")

    # When a template reads lead.account.*, then it gets the account, and "" for no account
    assert "<p>Acme, Inc. / zoe@t.io</p>" in render({"t.email": source}, lead=lead).html
    assert "<p> / </p>" in render({"t.email": source}, lead={"email": "a@b.cn"}).html
    error = fails({"t.email": email(html="{{ lead.account.bogus }}")}, lead=lead)
    assert "`lead.account.bogus` is undefined" in error.reason
