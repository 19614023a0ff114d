"""The parser: every construct becomes the AST it should, with spans, in any script."""

from __future__ import annotations

import pytest

from dsl import DslSyntaxError, ast, parse_module
from dsl.syntax import unquote


def only_campaign(text: str) -> ast.Campaign:
    (item,) = parse_module(text, "t.nurture").items
    assert isinstance(item, ast.Campaign)
    return item


def test_a_regex_keeps_its_backslashes() -> None:
    assert unquote(r'"(?i)\b(ceo|cmo)\b"') == r"(?i)\b(ceo|cmo)\b"
    assert unquote(r'"a \"quoted\" \\ back\nline"') == 'a "quoted" \\ back\nline'


def test_chinese_names_tags_and_templates() -> None:
    campaign = only_campaign('campaign "欢迎"\n  tag "行业:saas"\n  send wechat "欢迎/卡片"\n')
    assert campaign.name.value == "欢迎"
    tag, send = campaign.body
    assert isinstance(tag, ast.TagStmt) and tag.tag.value == "行业:saas"
    assert isinstance(send, ast.Send) and send.template.value == "欢迎/卡片"
    # columns count characters, not bytes
    assert send.template.span.column == 15


def test_spans_point_at_the_words() -> None:
    campaign = only_campaign('campaign "x"\n  send email "a" subject "hi" as first\n')
    (send,) = campaign.body
    assert isinstance(send, ast.Send)
    assert (send.channel.span.line, send.channel.span.column) == (2, 8)
    assert send.alias is not None and send.alias.span.column == 34
    assert send.span.line == 2 and send.span.column == 3


def test_signs_and_numbers() -> None:
    (scoring,) = parse_module(
        'scoring "s"\n  fit:\n    -20 when lead.employees >= -1.5\n    + 5 when lead.is_customer\n',
        "s.nurture",
    ).items
    assert isinstance(scoring, ast.Scoring)
    first, second = scoring.fit
    assert first.points == -20 and second.points == 5
    assert isinstance(first.cond, ast.Compare) and first.cond.value.value == -1.5


def test_window_time_range_is_not_a_negative_number() -> None:
    campaign = only_campaign('campaign "x"\n  window mon-fri 09:00-18:00 lead time\n  mql\n')
    (window,) = campaign.settings
    assert isinstance(window, ast.Window)
    assert window.day_range and [d.value for d in window.days] == ["mon", "fri"]
    assert (window.start.value, window.end.value) == ("09:00", "18:00")
    assert window.zone is not None and window.zone.value == "lead"


def test_conditions_nest_and_within_attaches_to_the_event() -> None:
    campaign = only_campaign(
        'campaign "x"\n  send email "a" as a\n'
        '  if not (opened a within 3 days or clicked "buy" a) and stage >= sql:\n    mql\n'
    )
    branch = campaign.body[1]
    assert isinstance(branch, ast.If)
    cond = branch.branches[0].cond
    assert isinstance(cond, ast.And)
    negated, stage = cond.items
    assert isinstance(negated, ast.Not) and isinstance(negated.item, ast.Or)
    opened, clicked = negated.item.items
    assert isinstance(opened, ast.Engagement) and opened.within is not None
    assert opened.within.amount == 3 and opened.within.unit.value == "days"
    assert isinstance(clicked, ast.Engagement) and clicked.link is not None
    assert clicked.link.value == "buy" and clicked.message is not None
    assert isinstance(stage, ast.Compare) and stage.subject.kind == "stage"


def test_lists_may_continue_over_lines() -> None:
    (segment,) = parse_module(
        'segment "s"\n  lead.region in ["Shanghai",\n        "Jiangsu"]\n', "s.nurture"
    ).items
    assert isinstance(segment, ast.Segment)
    (cond,) = segment.conds
    assert isinstance(cond, ast.Compare) and isinstance(cond.value.value, tuple)
    assert [v.value for v in cond.value.value] == ["Shanghai", "Jiangsu"]


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ('campaign "x"\n  wait three days\n', 2, 8, 'a duration such as "3 days"'),
        ('campaign "x"\n  if opened\n    mql\n', 2, 12, 'expected ":"'),
        ('campaign "x"\n  send email "oops\n', 2, 14, "no closing quote"),
        ('campaign "x"\n    mql\n  mql\n', 3, 3, "indentation"),
    ],
)
def test_syntax_errors_say_what_was_expected(text: str, line: int, column: int, words: str) -> None:
    with pytest.raises(DslSyntaxError) as caught:
        parse_module(text, "bad.nurture")
    (found,) = caught.value.diagnostics
    assert (found.span.line, found.span.column) == (line, column)
    assert words in found.message
    assert "_NL" not in found.message and "NAME" not in found.message


def test_one_broken_campaign_does_not_hide_the_next() -> None:
    text = 'campaign "a"\n  wait\ncampaign "b"\n  send email\n'
    with pytest.raises(DslSyntaxError) as caught:
        parse_module(text, "two.nurture")
    assert [d.span.line for d in caught.value.diagnostics] == [2, 4]


def test_errors_survive_pickling() -> None:
    import pickle

    with pytest.raises(DslSyntaxError) as caught:
        parse_module('campaign "x"\n  wait\n', "p.nurture")
    again = pickle.loads(pickle.dumps(caught.value))
    assert again.diagnostics == caught.value.diagnostics
    assert str(again) == str(caught.value)
