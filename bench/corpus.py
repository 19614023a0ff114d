"""A generated corpus of realistic campaigns, for the language benchmarks and property tests."""

from __future__ import annotations

import random

PERSONAS = ("cxo", "marketer", "developer", "finance", "ops")
CHANNELS = ("email", "sms", "wechat")
TAGS = ("engaged", "pricing", "行业:saas", "region:华东", "webinar", "trial")


def campaign(i: int, rng: random.Random) -> str:
    """One welcome-style campaign of about 45 lines, varied by `rng`."""
    persona = rng.choice(PERSONAS)
    tag = rng.choice(TAGS)
    days = rng.randint(2, 5)
    return f'''campaign "Welcome {i}"
  kind welcome
  enroll when tagged "{tag}"
  exit when tagged "customer" or stage >= sql
  reenter after {rng.randint(90, 365)} days
  window weekdays 09:00-18:00 lead time
  cap 3 per week
  end after 13 weeks

  # greet by persona
  if lead.persona == "{persona}":
    send email "welcome/{persona}" subject "A note for {{{{ lead.company }}}}" as hello
  elif lead.industry in ["saas", "finance"] and lead.employees >= {rng.randint(50, 500)}:
    send email "welcome/industry" as hello
  else:
    send email "welcome/default" subject "Welcome, {{{{ lead.first_name }}}}" as hello
  if opened hello within {days} days:
    send email "content/deep-dive"
    tag "engaged:deep"
  else:
    wait 1 day
    send {rng.choice(CHANNELS)} "welcome/intro-card"
  wait 1 week
  send email "content/whitepaper" as whitepaper
  if clicked "download" whitepaper within 5 days:
    score +{rng.randint(5, 20)}
    tag "{tag}"
  split:
    50% "short":
      wait 2 days
      send email "events/short"
    50% "long":
      wait 3 days
      send email "events/long"
  wait until tuesday 10:00
  repeat {rng.randint(2, 6)} times:
    wait 1 week
    send email "drip/tip-{{{{ loop.index }}}}"
  if score >= {rng.randint(40, 80)} or event "pricing_viewed" within 7 days:
    mql
    notify sales "mql/handoff"
  else:
    tag "pool:nurture"
    enroll "Welcome {i - 1 if i else 1}"
'''


def corpus(min_lines: int, seed: int = 7) -> str:
    """Campaigns, a scoring block and segments, at least `min_lines` lines long."""
    rng = random.Random(seed)
    parts = [SCORING]
    lines = SCORING.count("\n")
    i = 0
    while lines < min_lines:
        text = campaign(i, rng)
        parts.append(text)
        lines += text.count("\n")
        i += 1
    parts.append(SEGMENTS)
    return "\n".join(parts)


SCORING = """scoring "B2B default"
  fit:
    +20 when lead.industry in ["saas", "finance"]
    +15 when lead.employees >= 500
    +15 when lead.title matches "(?i)\\\\b(cxo|ceo|cfo|cmo|vp)\\\\b"
    -20 when lead.email_domain in freemail
  interest:
    +1 per open
    +5 per click
    +20 per event "webinar_attended"
    +15 per event "pricing_viewed"
    decay 25% every 30 days
  grade fit: A >= 40, B >= 25, C >= 10, else D
  mql when fit grade in [A, B] and interest >= 50
"""

SEGMENTS = """segment "hot-saas"
  tagged "industry:saas" and score >= 50 and not tagged "customer"
segment "华东-活跃"
  tagged "region:华东" and event "page_viewed" within 30 days
"""
