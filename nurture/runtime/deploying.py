"""Deploying campaign files from code, as ``nurture deploy`` does, for ``nurture run`` and tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from dsl import FileTemplates, analyze, compile_program
from nurture.store.deploy import Outcome, deploy, items_of

SUFFIX = ".nurture"


class DeployProblem(Exception):
    """Raised when the campaign files do not check; the message holds every diagnostic."""


def campaign_files(paths: Iterable[Path]) -> dict[str, str]:
    """The text of every ``*.nurture`` file named or found under the folders named."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob(f"*{SUFFIX}") if p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise DeployProblem(f"no such file or folder: {path}")
    if not files:
        raise DeployProblem(f"no {SUFFIX} files in {', '.join(str(p) for p in paths)}")
    return {str(f): f.read_text(encoding="utf-8-sig") for f in dict.fromkeys(files)}


def deploy_sources(
    sessions: sessionmaker[Session],
    sources: Mapping[str, str],
    now: datetime,
    templates: tuple[Path, ...] = (),
) -> list[Outcome]:
    """Check, compile and store `sources` ({path: text}) in one transaction."""
    analysis = analyze(sources, FileTemplates(templates))
    if analysis.program is None or analysis.errors:
        raise DeployProblem("\n".join(d.render() for d in analysis.errors))
    compiled = compile_program(analysis.program)
    items = items_of(analysis.program, compiled, sources)
    with sessions() as session, session.begin():
        return deploy(session, items, now)
