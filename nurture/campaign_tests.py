"""`nurture test`: campaign test files run against their campaigns, expectations judged.

A test file (`*.nurture-test`, `dsl.testfile`) is run against the campaign
files of its folder, or of the folder above when its own holds none (so
`campaigns/tests/welcome.nurture-test` tests `campaigns/*.nurture`). Each test
runs its leads together on one virtual clock (`nurture.simulate.scripted`);
each lead's path is then held against the expectations about it, in file
order. A file that does not parse or names what the campaigns lack fails with
its located diagnostics, never a traceback.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path as FsPath
from typing import Any
from xml.etree import ElementTree as ET

from dsl import FileTemplates, analyze, compile_program
from dsl.errors import Diagnostic, DslError
from dsl.graph import CompiledProgram
from dsl.testcheck import check_tests
from dsl.testfile import SUFFIX, CampaignTest, Expect, parse_tests
from nurture.engine import Cap
from nurture.simulate.leads import Profile
from nurture.simulate.model import START, Settings
from nurture.simulate.scripted import Path, Probe, Script, ScriptedRun

DEFAULT_DAYS = 120
"""A test runs this long unless it says `run N days` (or looks at a later day)."""
COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}


@dataclass(slots=True)
class Result:
    """One test's outcome: its failures (`file:line: words`) and the lead's path."""

    path: str
    line: int
    name: str
    failures: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    """The path as printed: in a test with several leads, each lead's under its name."""
    leads: dict[str, list[str]] = field(default_factory=dict)
    """In a test with several leads, each one's path by its name."""

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "line": self.line,
            "test": self.name,
            "passed": self.passed,
            "failures": self.failures,
            "path": self.steps,
            "leads": self.leads,
        }


def collect(paths: Iterable[FsPath]) -> list[FsPath]:
    """The test files named, and every `*.nurture-test` under the folders named, each once."""
    found: list[FsPath] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob(f"*{SUFFIX}") if p.is_file()))
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def run_file(file: FsPath) -> list[Result]:
    """Every test of `file`; a file that cannot run is one failed result with its diagnostics."""
    where = str(file)
    try:
        text = file.read_text(encoding="utf-8-sig")  # a BOM, as editors on Windows write
    except (OSError, UnicodeDecodeError) as e:
        return [Result(where, 1, file.name, [f"{where}: cannot read: {e}"])]
    program, problems = load_program(file)
    if program is None:
        return [Result(where, 1, file.name, problems)]
    tests, diagnostics = diagnose(text, where, program)
    if diagnostics:
        return [_broken(where, diagnostics)]
    return [run_test(test, program) for test in tests]


def diagnose(
    text: str, where: str, program: CompiledProgram
) -> tuple[tuple[CampaignTest, ...], list[Diagnostic]]:
    """The tests of one file and what is wrong with them (nothing: they can run)."""
    try:
        tests = parse_tests(text, where)
    except DslError as e:
        return (), list(e.diagnostics)
    return tests, check_tests(tests, program, text)


def _broken(where: str, diagnostics: Iterable[Diagnostic]) -> Result:
    return Result(where, 1, FsPath(where).name, [d.render() for d in diagnostics])


def load_program(file: FsPath) -> tuple[CompiledProgram | None, list[str]]:
    folder = file.parent
    sources = sorted(folder.glob("*.nurture")) or sorted(folder.parent.glob("*.nurture"))
    if not sources:
        return None, [f"{file}: no *.nurture campaign file beside it or in the folder above"]
    try:
        texts = {str(p): p.read_text(encoding="utf-8-sig") for p in sources}
    except (OSError, UnicodeDecodeError) as e:
        return None, [f"{file}: cannot read its campaigns: {e}"]
    roots = tuple(p for p in (sources[0].parent / "templates",) if p.is_dir())
    analysis = analyze(texts, FileTemplates(roots))
    if analysis.program is None or analysis.errors:
        return None, [d.render() for d in analysis.errors]
    return compile_program(analysis.program), []


def run_test(test: CampaignTest, program: CompiledProgram) -> Result:
    """One test: its leads run together through `program`, its expectations judged.

    The test must have checked clean (`diagnose`): every lead it names exists.
    """
    days_seen = [e.day for e in test.expects if e.day is not None]
    days_seen += [a.day for a in test.actions]
    days = test.days or max([DEFAULT_DAYS, *(d + 1 for d in days_seen)])
    entry = tuple(n for n, _ in test.enters) or tuple(
        name
        for name, graph in program.campaigns.items()
        if any(t.get("on") == "created" for t in graph.triggers)
    )
    start = START if test.start is None else datetime.combine(test.start, time(), UTC)
    cap = None if test.cap is None else Cap(test.cap[0], timedelta(seconds=test.cap[1]))
    accept = timedelta(seconds=test.accept_after or 0)
    rate = 0.0 if test.accept_after is None else 1.0
    settings = Settings(
        1,
        days,
        0,
        entry=entry,
        start=start,
        global_cap=cap,
        accept_rate=rate,
        accept_after=(accept, accept),
    )
    names, about = test.lead_names(), test.lead_of
    scripts = []
    for name in names:
        fields, tags = test.profile(name)
        actions = [a for a in test.actions if about(a) == name and a.kind != "arrives"]
        probe_days = [e.day for e in test.expects if e.day is not None and about(e) == name]
        arrives = next(iter(test.arrivals(name)), None)
        arrival = (
            start if arrives is None else start + timedelta(arrives.day, 0, 0, 0, arrives.minute)
        )
        profile = Profile(_lead_id(name), fields, tags)
        scripts.append(Script(profile, actions, probe_days, arrival))
    paths = ScriptedRun(program, settings, scripts).play()
    result = Result(test.span.path, test.span.line, test.name)
    failed: list[tuple[int, str]] = []
    for name in names:
        path, mine = paths[_lead_id(name)], [e for e in test.expects if about(e) == name]
        who = "" if name is None or len(names) == 1 else f'lead "{name}": '
        failed.extend(_judge(mine, path, who))
        steps = [_step_words(s) for s in path.steps]
        if name is not None and len(names) > 1:
            result.leads[name] = steps
            result.steps.append(f'lead "{name}":')
            result.steps.extend("  " + s for s in steps)
        else:
            result.steps.extend(steps)
    result.failures = [words for _, words in sorted(failed, key=lambda f: f[0])]
    return result


def _arrival(test: CampaignTest, name: str | None, start: datetime) -> datetime:
    """When the lead arrives: its `on day N arrives`, else the start of day 0."""
    arrives = test.arrivals(name)
    if not arrives:
        return start
    return start + timedelta(days=arrives[0].day, minutes=arrives[0].minute)


def _lead_id(name: str | None) -> str:
    return "test-lead" if name is None else name


# ---------------------------------------------------------------- judging


def _judge(expects: Iterable[Expect], path: Path, who: str) -> Iterator[tuple[int, str]]:
    """The failed expectations about one lead: (line, `file:line: words`), in file order."""
    sends = [s for s in path.steps if s.kind == "send"]
    after = 0
    for exp in expects:
        where = f"{exp.span.path}:{exp.span.line}"
        if exp.kind == "send":
            found = next(
                (
                    i
                    for i in range(after, len(sends))
                    if (sends[i].channel, sends[i].what) == (exp.channel, exp.what)
                    and (exp.day is None or sends[i].day == exp.day)
                    and (exp.minute is None or sends[i].local == _clock(exp.minute))
                ),
                None,
            )
            if found is None:
                at = "" if exp.minute is None else f" at {_clock(exp.minute)} lead time"
                wanted = f"send {exp.channel} {exp.what!r}{_on(exp.day)}{at}"
                yield exp.span.line, f"{where}: {who}expected {wanted}; {_sent(sends, exp)}"
            else:
                after = found + 1
            continue
        problem = _check(exp, path, sends)
        if problem:
            yield exp.span.line, f"{where}: {who}{problem}"


def _check(exp: Expect, path: Path, sends: list[Any]) -> str | None:
    probe = path.final if exp.day is None else path.probes.get(exp.day, path.final)
    assert probe is not None
    if exp.kind == "no_send":
        hit = [s for s in sends if (s.channel, s.what) == (exp.channel, exp.what)]
        return (
            f"expected no send {exp.channel} {exp.what!r}; sent on day {hit[0].day}"
            if hit
            else None
        )
    if exp.kind in ("tagged", "not_tagged"):
        has = exp.what in probe.tags
        if has == (exp.kind == "tagged"):
            return None
        tags = ", ".join(sorted(probe.tags)) or "none"
        wanted = f"{'' if has is False else 'not '}tagged {exp.what!r}{_by(exp.day)}"
        return f"expected {wanted}; tags: {tags}"
    if exp.kind == "score":
        value = _score(probe, exp.what or "score")
        if COMPARE[exp.cmp or "=="](value, exp.value):
            return None
        return f"expected {exp.what} {exp.cmp} {exp.value:g}{_on(exp.day)}; it was {value:g}"
    if exp.kind == "grade":
        grade = probe.fit_grade if exp.what == "fit_grade" else probe.grade
        return (
            None
            if grade == exp.value
            else f"expected {exp.what} {exp.value!r}{_on(exp.day)}; it was {grade!r}"
        )
    if exp.kind == "stage":
        return (
            None
            if probe.stage == exp.value
            else f"expected stage {exp.value}{_on(exp.day)}; it was {probe.stage}"
        )
    if exp.kind == "mql":
        return None if path.mql_day == exp.day else f"expected MQL on day {exp.day}; {_mql(path)}"
    if exp.kind == "no_mql":
        return None if path.mql_day is None else f"expected no MQL; {_mql(path)}"
    if exp.kind == "exit":
        exits = [s for s in path.steps if s.kind == "exit" and s.campaign == exp.what]
        if any(s.what == exp.value and (exp.day is None or s.day == exp.day) for s in exits):
            return None
        seen = "; ".join(f"{s.what!r} on day {s.day}" for s in exits) or "it did not exit"
        return f"expected exit from {exp.what!r} because {exp.value!r}{_on(exp.day)}; {seen}"
    if exp.kind == "owner":
        return _owner(exp, path)
    if exp.kind == "accepted":
        at, who = path.accepted or (None, None)
        if who == exp.value and (exp.day is None or (at and _day(path, at) == exp.day)):
            return None
        said = "nobody accepted it" if at is None else f"accepted by {who} on day {_day(path, at)}"
        return f"expected accepted by {exp.value!r}{_on(exp.day)}; {said}"
    if exp.kind == "sla":
        if not path.owners:
            return f"expected the SLA {exp.value}; the lead never reached sales"
        if (path.missed > 0) == (exp.value == "missed"):
            return None
        return f"expected the SLA {exp.value}; {path.missed} deadlines passed unanswered"
    return f"unknown expectation {exp.kind}"


def _owner(exp: Expect, path: Path) -> str | None:
    """`expect owner`: whom routing picks first; `... on day N`: who holds it at that day's end."""
    if exp.day is None:
        held = path.owners[0][1] if path.owners else None
    else:
        held = next((o for at, o in reversed(path.owners) if _day(path, at) <= exp.day), None)
    if held == exp.value:
        return None
    return f"expected owner {exp.value!r}{_on(exp.day)}; it was {held or 'nobody'}"


def _day(path: Path, at: datetime) -> int:
    return (at - path.start) // timedelta(days=1)


def _score(probe: Probe, which: str) -> float:
    return {"score": probe.score, "fit": probe.fit, "interest": probe.interest}[which]


def _clock(minute: int) -> str:
    return f"{minute // 60:02}:{minute % 60:02}"


def _on(day: int | None) -> str:
    return "" if day is None else f" on day {day}"


def _by(day: int | None) -> str:
    return "" if day is None else f" by day {day}"


def _mql(path: Path) -> str:
    return "never an MQL" if path.mql_day is None else f"an MQL on day {path.mql_day}"


def _sent(sends: list[Any], exp: Expect) -> str:
    same = [s for s in sends if (s.channel, s.what) == (exp.channel, exp.what)]
    if not same:
        return "never sent"
    days = ", ".join(f"{s.day} at {s.local} lead time" for s in same)
    return f"sent on day {days} (in this order: see the path)"


def _step_words(step: Any) -> str:
    if step.kind == "sales":
        return f"sales desk: {step.what}"
    when = f"day {step.day} {step.at:%H:%M}"
    if step.local != f"{step.at:%H:%M}":
        when += f" ({step.local} lead time)"
    where = f" [{step.campaign}]" if step.campaign else ""
    what = {
        "send": f"send {step.channel} {step.what!r}",
        "tag": f"tag {step.what!r}",
        "untag": f"untag {step.what!r}",
        "mql": f"MQL ({step.what})",
        "notify": f"notify sales {step.what!r}",
        "exit": f"exit: {step.what}",
        "done": "campaign done",
        "event": f"lead {step.what}",
        "missed": f"lead cannot {step.what}",
    }.get(step.kind, step.kind)
    return f"{when}  {what}{where}"


# ---------------------------------------------------------------- JUnit


_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 cannot hold, even escaped (control characters a test's name or a
lead's field may carry): written as ``\\xNN`` so the file stays well-formed."""


def _xml(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def junit(results: list[Result]) -> str:
    """The results as JUnit XML, one suite per file, for CI systems."""
    root = ET.Element("testsuites")
    files: dict[str, list[Result]] = {}
    for r in results:
        files.setdefault(r.path, []).append(r)
    for name, group in files.items():
        failed = sum(not r.passed for r in group)
        suite = ET.SubElement(
            root, "testsuite", name=_xml(name), tests=str(len(group)), failures=str(failed)
        )
        for r in group:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=_xml(name),
                name=_xml(r.name),
                file=_xml(r.path),
                line=str(r.line),
            )
            if not r.passed:
                first = next(iter("\n".join(r.failures).splitlines()), "failed")
                failure = ET.SubElement(case, "failure", message=_xml(first))
                path = ["path:", *r.steps] if r.steps else []
                failure.text = _xml("\n".join([*r.failures, *path]))
    return ET.tostring(root, encoding="unicode")
