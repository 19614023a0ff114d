"""A small campaign with its templates, written to a folder for the runtime tests."""

from __future__ import annotations

from pathlib import Path

HELLO = """\
campaign "Hello"
  kind welcome
  enroll when lead created
  send email "t/hello" as hello
  if opened within 2 days:
    tag "engaged"
    send email "t/more"
  else:
    send sms "t/nudge"
"""

TEMPLATES = {
    "t/hello.email.j2": """\
{% block subject %}Hello {{ lead.first_name | default("there", true) }}{% endblock %}
{% block html %}<html><body><p>Hi {{ lead.first_name }},</p>
<p><a href="https://acme.test/guide" data-link="guide">Read the guide</a></p>
<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>{% endblock %}
{% block text %}Hi {{ lead.first_name }}, read https://acme.test/guide
Unsubscribe: {{ unsubscribe_url }}{% endblock %}
""",
    "t/more.email.j2": """\
{% block subject %}More for you{% endblock %}
{% block text %}Since you opened the first one. {{ unsubscribe_url }}{% endblock %}
""",
    "t/nudge.sms.j2": (
        "Hi {{ lead.first_name }}, did you see our mail? Stop: {{ unsubscribe_url }}\n"
    ),
}

ONE_TOUCH = """\
campaign "Once"
  enroll when lead created
  send email "t/hello"
"""


def write_campaign(folder: Path, source: str = HELLO, name: str = "hello.nurture") -> Path:
    """Write `source` and the templates into `folder`; the campaign file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    for relative, text in TEMPLATES.items():
        path = folder / "templates" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    file = folder / name
    file.write_text(source, encoding="utf-8")
    return file
