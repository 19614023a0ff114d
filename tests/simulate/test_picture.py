"""`nurture simulate --graph OUT`: the campaigns drawn with the run's numbers on them."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.simulate.helpers import cli, write

needs_graphviz = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz `dot` is not installed (apt-get install graphviz)"
)
FLOW = """\
campaign "Demo"
  enroll when lead created
  send email "hello" subject "Hi"
  if opened within 2 days:
    send email "more" subject "More"
  else:
    exit
"""
RUN = ["--leads", "400", "--days", "10", "--seed", "3", "--open-rate", "0.4"]


def test_the_mermaid_picture_carries_the_reports_numbers(tmp_path: Path) -> None:
    # Given a flow where about 40% open the first message, and the rest leave
    path = write(tmp_path, FLOW)
    picture = tmp_path / "demo.mmd"

    # When it is simulated with a picture, and again for its JSON report
    code, _, err = cli(str(path), *RUN, "--graph", str(picture))
    data = json.loads(cli(str(path), *RUN, "--json")[1])

    # Then each step shows the report's reach, and the branch's ways out add up to it
    assert code == 0, err
    text = picture.read_text(encoding="utf-8")
    steps = {s["id"]: s for s in data["steps"]}
    hello, branch, more, leave = (steps[i] for i in ("n1", "n2", "n3", "n4"))
    opened = f"opened {hello['opened']:,}"
    assert f"entered {hello['entered']:,} · sent {hello['sent']:,} · {opened}" in text
    assert hello["entered"] == 400 and 100 < more["entered"] < 250
    assert f'n2 -->|"yes · {more["entered"]}"| n3' in text
    assert f'n2 -->|"no open in 2 days · {leave["entered"]}"| n4' in text
    assert branch["took"] == {"n3": more["entered"], "n4": leave["entered"]}
    assert more["entered"] + leave["entered"] == branch["entered"]
    assert f"exits {leave['exits']}" in text and leave["exits"] == leave["entered"]


def test_the_dot_picture_has_the_numbers_too(tmp_path: Path) -> None:
    path = write(tmp_path, FLOW)

    code, _, err = cli(str(path), *RUN, "--graph", str(tmp_path / "demo.gv"))

    text = (tmp_path / "demo.gv").read_text(encoding="utf-8")
    assert code == 0, err
    assert text.startswith('digraph "Demo"') and "\\nentered 400 · sent 400" in text
    assert '"n2" -> "n3" [label="yes · ' in text


@needs_graphviz
def test_the_svg_picture_is_an_svg_with_the_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, FLOW)
    picture = tmp_path / "demo.svg"

    code, _, err = cli(str(path), *RUN, "--graph", str(picture), "--jobs", "2")

    assert code == 0, err
    root = ET.parse(picture).getroot()
    words = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "entered 400 · sent 400" in words and "yes · " in words


def test_a_picture_in_a_format_it_cannot_write_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, FLOW)

    code, out, err = cli(str(path), "--graph", str(tmp_path / "demo.png"))

    assert code == 2 and out == ""
    assert f"--graph {tmp_path / 'demo.png'}: write a file ending in .svg, .dot, .gv or .mmd" in err
    assert not (tmp_path / "demo.png").exists()
