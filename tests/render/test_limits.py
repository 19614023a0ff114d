"""Templates cannot exhaust the engine: nothing is computed while compiling, and every
render is bounded in size and time, failing that one delivery with a clear reason."""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from dsl.sandbox import Limits
from dsl.templates import DictTemplates
from nurture.render import RenderContext, RenderedMessage, Renderer, RenderError
from nurture.tokens import TokenSigner
from tests.render.conftest import BASE, WEI

NEAR = "/srv/nurture/campaigns/welcome.nurture"


def render(source: str, channel: str = "sms", limits: Limits | None = None) -> RenderedMessage:
    templates = DictTemplates({f"t.{channel}": source})
    options = {} if limits is None else {"limits": limits}
    renderer = Renderer(templates, TokenSigner("k" * 32), BASE, **options)
    return renderer.render(channel, "t", NEAR, RenderContext(WEI, "Welcome"), "Hi", 41, 7)


@contextmanager
def costs(seconds: float, megabytes: float) -> Iterator[None]:
    """Fails when the block takes longer or allocates more at its peak."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        yield
    finally:
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.2f} s"
    assert peak < megabytes, f"allocated {peak:.0f} MB"


def fails(source: str, channel: str = "sms", limits: Limits | None = None) -> RenderError:
    with pytest.raises(RenderError) as raised:
        render(source, channel, limits)
    return raised.value


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("hi\n{{ 'a' * 10**10 }}", "would be 10,000,000,000 long, over the limit of 1,000,000"),
        ("hi\n{{ (9 ** (9 ** 8)) % 7 }}", "a number would have more than 4,300 digits"),
        ("hi\n{{ 'a' | center(999999999) }}", "the number 999,999,999 is over the limit"),
        ("hi\n{{ 'a'.ljust(10 ** 9) }}", "the number 1,000,000,000 is over the limit"),
        ("hi\n{{ ('{0}' * 1000).format('a' * 999999) }}", "the formatted text would be"),
        ("hi\n{{ '{:>999999999}'.format('a') }}", "the number 999,999,999 is over the limit"),
        ("hi\n{{ ('%s' * 9) % (('a' * 999999),) * 9 }}", "over the limit of 1,000,000"),
    ],
)
def test_a_huge_value_fails_fast_at_its_line(source: str, reason: str) -> None:
    # Given a template that would make a value of gigabytes (constant, so Jinja would fold it)
    # When it is rendered, then it fails at once, on line 2, saying which limit
    with costs(seconds=1, megabytes=50):
        error = fails(source)
    assert error.line == 2
    assert reason in error.reason
    assert "over a limit" in error.reason


def test_an_autoescape_argument_is_not_computed_while_compiling() -> None:
    with costs(seconds=1, megabytes=50):
        error = fails("{% autoescape 'a' | center(999999999) %}{% endautoescape %}")
    assert "the number 999,999,999 is over the limit" in error.reason


def test_doubling_a_text_in_a_loop_stops_at_the_size_limit() -> None:
    source = (
        "{% set ns = namespace(x='a') %}{% for i in range(64) %}"
        "{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x | length }}"
    )
    with costs(seconds=1, megabytes=50):
        error = fails(source)
    assert "the joined text would be" in error.reason


def test_a_macro_repeating_its_output_stops_at_the_size_limit() -> None:
    source = (
        "{% set x = 'a' * 500000 %}{% macro m() %}{% for i in range(10000) %}{{ x }}"
        "{% endfor %}{% endmacro %}{{ m() }}"
    )
    with costs(seconds=1, megabytes=50):
        error = fails(source)
    assert "the output would be" in error.reason


def test_a_message_over_the_size_limit_fails_even_when_each_part_fits() -> None:
    # Given an email whose html and text are each under the limit, but not together
    source = (
        "{% block html %}{{ 'a' * 600 }}{% endblock %}{% block text %}{{ 'b' * 600 }}{% endblock %}"
    )
    error = fails(source, "email", Limits(size=1000))
    assert error.path == "<t.email>"
    assert "the rendered message has 1,3" in error.reason  # the open pixel's tag included
    assert "over the limit of 1,000" in error.reason
    assert render(source, "email", Limits(size=2000)).text == "b" * 600


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(60) }}",
        "{% for i in range(100000) %}{% for c in 'x' * 100000 %}{% endfor %}{% endfor %}",
    ],
    ids=["nested-loops", "exponential-macro", "loop-over-text"],
)
def test_a_render_that_runs_too_long_is_stopped_at_the_time_limit(source: str) -> None:
    # Given a template that would run for hours, and a limit of half a second
    # When it is rendered in a worker thread (no signals there)
    errors: list[RenderError] = []

    def work() -> None:
        try:
            render(source, limits=Limits(seconds=0.5))
        except RenderError as e:
            errors.append(e)

    started = time.monotonic()
    worker = threading.Thread(target=work)
    worker.start()
    worker.join(timeout=10)
    # Then it stops after about that long, with the reason
    assert not worker.is_alive()
    assert time.monotonic() - started < 3
    [error] = errors
    assert "rendering took longer than 0.5 s" in error.reason


def test_self_names_the_template_not_the_servers_path() -> None:
    body = render("{{ self }}").body
    assert body == "<TemplateReference 't.sms.j2'>"
    assert "/srv" not in body


def test_ordinary_templates_are_untouched_by_the_limits() -> None:
    source = (
        "{% set ns = namespace(n=0) %}{% for w in ['a', 'b'] %}{% set ns.n = ns.n + 1 %}"
        "{{ loop.index }}{{ w ~ '!' }}{% endfor %} {{ ns.n * 3 }} {{ '{}-{}'.format(1, 2) }} "
        "{{ '%05.1f' % 3.14159 }} {{ 'ab' | replace('a', 'x') | center(6) }} {{ 2 ** 10 }}"
    )
    assert render(source).body == "1a!2b! 6 1-2 003.1   xb   1024"


def test_a_large_number_is_fine_where_it_is_a_value_not_a_width() -> None:
    # Given a lead whose revenue is far above the size limit, printed in the usual ways
    source = (
        "{% macro money(n) %}{{ '{:,}'.format(n) }}{% endmacro %}{{ money(lead.revenue) }} "
        "{{ '%d' % lead.revenue }} {{ '%d' | format(lead.revenue) }} {{ lead.revenue * 1000 }} "
        "{{ lead.revenue | round | int }} {{ 'Call 13800138000, {}'.format(1) }}"
    )
    templates = DictTemplates({"t.sms": source})
    renderer = Renderer(templates, TokenSigner("k" * 32), BASE)
    lead = {**WEI, "revenue": 5_000_000_000}
    message = renderer.render("sms", "t", NEAR, RenderContext(lead, "Welcome"), None, 41, 7)
    expected = "5,000,000,000 5000000000 5000000000 5000000000000 5000000000 Call 13800138000, 1"
    assert message.body == expected
