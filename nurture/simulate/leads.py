"""Leads for a dry run: synthetic B2B profiles from a seed, or rows of a CSV file.

Synthetic leads are drawn from `random.Random(seed)`, so a seed always gives
the same people: personas the campaigns test (plus one they do not, so `else`
branches run too), industries, company sizes, titles that match the persona,
regions in North America, Europe and China (with their time zones), company
and freemail domains, a few existing customers (their account owned by one of
the routing's members, so `assign to owner` has someone to find), and values
for every other field the campaigns or the scoring file compare, taken from
the values they compare with.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import random
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import accumulate
from pathlib import Path
from typing import Any

from dsl.graph import CompiledProgram, Json
from dsl.vocabulary import LEAD_FIELDS, STAGES, is_zone, stored_field
from nurture.csv_words import csv_words, separator_words
from nurture.handoff.route import members
from nurture.simulate.graphs import field_literals


@dataclass(frozen=True, slots=True)
class Profile:
    """One lead before it arrives: id, profile fields, tags, stage and suppression."""

    id: str
    fields: dict[str, Any] = field(default_factory=dict)
    tags: frozenset[str] = frozenset()
    stage: str = "lead"
    suppressed: str | None = None


class ProfileError(Exception):
    """Raised when a `--profile` CSV file cannot be read or has a bad row."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.message = path, line, message


# ---------------------------------------------------------------- synthetic

# (region, country, time zone, language, weight); Chinese provinces carry a 大区 tag below
REGIONS: tuple[tuple[str, str, str, str, float], ...] = (
    ("New York", "US", "America/New_York", "en", 9),
    ("Massachusetts", "US", "America/New_York", "en", 5),
    ("California", "US", "America/Los_Angeles", "en", 10),
    ("Texas", "US", "America/Chicago", "en", 6),
    ("Illinois", "US", "America/Chicago", "en", 4),
    ("Ontario", "CA", "America/Toronto", "en", 3),
    ("Berlin", "DE", "Europe/Berlin", "de", 7),
    ("Bavaria", "DE", "Europe/Berlin", "de", 5),
    ("London", "GB", "Europe/London", "en", 7),
    ("Île-de-France", "FR", "Europe/Paris", "fr", 4),
    ("Shanghai", "CN", "Asia/Shanghai", "zh", 9),
    ("Jiangsu", "CN", "Asia/Shanghai", "zh", 5),
    ("Zhejiang", "CN", "Asia/Shanghai", "zh", 5),
    ("Guangdong", "CN", "Asia/Shanghai", "zh", 6),
    ("Beijing", "CN", "Asia/Shanghai", "zh", 5),
    ("Fujian", "CN", "Asia/Shanghai", "zh", 2),
    ("Sichuan", "CN", "Asia/Shanghai", "zh", 2),
    ("Hong Kong", "HK", "Asia/Hong_Kong", "en", 2),
    ("Singapore", "SG", "Asia/Singapore", "en", 2),
    ("Tokyo", "JP", "Asia/Tokyo", "ja", 2),
)
CN_AREAS = {
    "Shanghai": "华东",
    "Jiangsu": "华东",
    "Zhejiang": "华东",
    "Fujian": "华东",
    "Guangdong": "华南",
    "Beijing": "华北",
    "Sichuan": "西南",
}
TLD = {
    "US": "com",
    "CA": "ca",
    "DE": "de",
    "GB": "co.uk",
    "FR": "fr",
    "CN": "cn",
    "HK": "com.hk",
    "SG": "com.sg",
    "JP": "co.jp",
}

INDUSTRIES = ("saas", "finance", "manufacturing", "retail", "healthcare", "education", "logistics")
INDUSTRY_WEIGHTS = (25, 15, 15, 12, 12, 8, 8)

TITLES = {
    "cxo": ("CEO", "CFO", "CMO", "COO", "CTO", "Founder & CEO"),
    "marketer": (
        "Marketing Manager",
        "VP Marketing",
        "Demand Generation Manager",
        "Head of Growth",
        "Content Marketing Lead",
        "Marketing Operations Manager",
    ),
    "developer": ("Software Engineer", "Engineering Manager", "IT Director", "Solutions Architect"),
    "operations": ("Operations Manager", "Sales Operations Analyst", "Procurement Lead"),
}
OTHER_TITLES = ("Manager", "Director", "Analyst", "Team Lead")
PERSONA_WEIGHT = {"cxo": 15, "marketer": 40, "developer": 20, "operations": 15}

WESTERN_FIRST: tuple[str, ...] = (
    "Anna",
    "James",
    "Maria",
    "David",
    "Laura",
    "Michael",
    "Sarah",
    "Thomas",
    "Emma",
    "Lukas",
    "Sophie",
    "Daniel",
    "Julia",
    "Robert",
    "Claire",
    "Kenji",
    "Priya",
)
WESTERN_LAST: tuple[str, ...] = (
    "Smith",
    "Johnson",
    "Miller",
    "Brown",
    "Garcia",
    "Wilson",
    "Taylor",
    "Clark",
    "Müller",
    "Schmidt",
    "Fischer",
    "Weber",
    "Martin",
    "Bernard",
    "Tanaka",
    "Lee",
)
# (characters, pinyin)
CN_FAMILY: tuple[tuple[str, str], ...] = (
    ("王", "wang"),
    ("李", "li"),
    ("张", "zhang"),
    ("刘", "liu"),
    ("陈", "chen"),
    ("杨", "yang"),
    ("赵", "zhao"),
    ("黄", "huang"),
    ("周", "zhou"),
    ("吴", "wu"),
)
CN_GIVEN: tuple[tuple[str, str], ...] = (
    ("伟", "wei"),
    ("芳", "fang"),
    ("娜", "na"),
    ("敏", "min"),
    ("静", "jing"),
    ("磊", "lei"),
    ("洋", "yang"),
    ("婷", "ting"),
    ("强", "qiang"),
    ("晓明", "xiaoming"),
)

COMPANY_WORDS: tuple[str, ...] = (
    "Northwind",
    "Bluepeak",
    "Tidewater",
    "Evergreen",
    "Ironbridge",
    "Brightline",
    "Silverleaf",
    "Redwood",
    "Summit",
    "Harbor",
    "Keystone",
    "Lumen",
    "Orbit",
)
COMPANY_KINDS: tuple[str, ...] = (
    "Analytics",
    "Systems",
    "Logistics",
    "Labs",
    "Capital",
    "Health",
    "Retail",
    "Software",
    "Industries",
    "Learning",
)
CN_COMPANY: tuple[tuple[str, str], ...] = (
    ("云帆", "yunfan"),
    ("华信", "huaxin"),
    ("新航", "xinhang"),
    ("中科", "zhongke"),
    ("蓝海", "lanhai"),
    ("星河", "xinghe"),
    ("东方", "dongfang"),
    ("智远", "zhiyuan"),
)
CN_KINDS = (("科技", "tech"), ("软件", "soft"), ("制造", "mfg"), ("物流", "logistics"))

FREEMAIL_SHARE = 0.2
FREEMAIL_CN = ("qq.com", "163.com", "126.com", "foxmail.com")
FREEMAIL_WEST = ("gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "gmx.com")
SOURCES = ("website", "webinar", "content download", "trade show", "referral", "paid search")
CUSTOMER_SHARE = 0.01
"""Leads that turn out to be existing customers (tagged `customer`)."""
FIELD_SHARE = 0.7
"""How often a field the generator does not know (e.g. `budget`) gets a value."""


def synthetic_leads(
    count: int, seed: int, program: CompiledProgram, first: int = 0, stop: int | None = None
) -> Iterator[Profile]:
    """`count` synthetic leads from `seed`, drawn lazily in order (those from `first` to `stop`).

    Each lead is drawn from its own stream, seeded by `seed` and its place, so
    a slice of the leads (one process's share, `simulate --jobs`) is the same
    leads as in the whole.
    """
    rng = random.Random()
    maker = _Maker(rng, program)
    width = max(6, len(str(count)))
    for index in range(first + 1, (count if stop is None else min(stop, count)) + 1):
        rng.seed(f"lead:{seed}:{index}")
        yield maker.lead(f"L{index:0{width}d}")


class _Maker:
    def __init__(self, rng: random.Random, program: CompiledProgram) -> None:
        self.rng = rng
        literals = field_literals(program)
        personas = [str(v) for v in literals.get("persona", ()) if isinstance(v, str)]
        self.personas = list(dict.fromkeys([*personas, *PERSONA_WEIGHT]))
        self.persona_weights = list(accumulate(PERSONA_WEIGHT.get(p, 15) for p in self.personas))
        extra = [str(v) for v in literals.get("industry", ()) if isinstance(v, str)]
        self.industries = list(dict.fromkeys([*INDUSTRIES, *extra]))
        extra_weights = [5] * (len(self.industries) - len(INDUSTRIES))
        self.industry_weights = list(accumulate([*INDUSTRY_WEIGHTS, *extra_weights]))
        self.region_weights = list(accumulate(r[4] for r in REGIONS))
        """Weights as `choices` takes them summed up (`cum_weights`): the same draws, without
        summing them again for every lead."""
        self.others = {k: v for k, v in literals.items() if k not in LEAD_FIELDS and v}
        self.owners = sorted(members(program.routing))
        """Who owns a customer's account: the routing's members, so `assign to owner` finds one."""

    def lead(self, lead_id: str) -> Profile:
        rng = self.rng
        pick = rng.choices
        region, country, zone, language, _ = pick(REGIONS, cum_weights=self.region_weights)[0]
        persona = pick(self.personas, cum_weights=self.persona_weights)[0]
        industry = pick(self.industries, cum_weights=self.industry_weights)[0]
        fields: dict[str, Any] = {
            "persona": persona,
            "title": rng.choice(TITLES.get(persona, OTHER_TITLES)),
            "industry": industry,
            "employees": int(10 ** rng.uniform(0.7, 4.7)),
            "region": region,
            "country": country,
            "time_zone": zone,
            "language": language,
            "source": rng.choice(SOURCES),
            "is_customer": rng.random() < CUSTOMER_SHARE,
        }
        person, slug, company = self._person(country)
        fields.update(person)
        fields["email"] = self._email(slug, company, country)
        for name, values in self.others.items():
            if rng.random() < FIELD_SHARE:
                fields[name] = self._value(values)
        tags = {f"industry:{industry}"}
        if region in CN_AREAS:
            tags.add(f"region:{CN_AREAS[region]}")
        if fields["is_customer"]:
            tags.add("customer")
            if self.owners:  # not drawn from `rng`: every other field stays as the seed gives it
                owner = self.owners[zlib.crc32(lead_id.encode()) % len(self.owners)]
                fields[stored_field("account.owner")] = owner
        return Profile(lead_id, fields, frozenset(tags))

    def _person(self, country: str) -> tuple[dict[str, str], str, str]:
        """Name and company fields, the email's local part and the company's domain name."""
        rng = self.rng
        if country == "CN":
            (family, family_py), (given, given_py) = rng.choice(CN_FAMILY), rng.choice(CN_GIVEN)
            (brand, brand_py), (trade, trade_py) = rng.choice(CN_COMPANY), rng.choice(CN_KINDS)
            person = {
                "first_name": given,
                "last_name": family,
                "name": family + given,
                "company": f"{brand}{trade}有限公司",
            }
            return person, f"{given_py}.{family_py}", f"{brand_py}-{trade_py}"
        first, last = rng.choice(WESTERN_FIRST), rng.choice(WESTERN_LAST)
        word, kind = rng.choice(COMPANY_WORDS), rng.choice(COMPANY_KINDS)
        person = {
            "first_name": first,
            "last_name": last,
            "name": f"{first} {last}",
            "company": f"{word} {kind}",
        }
        return person, f"{first}.{last}".lower().replace("ü", "ue"), f"{word}{kind}".lower()

    def _email(self, slug: str, company: str, country: str) -> str:
        if self.rng.random() < FREEMAIL_SHARE:
            domain = self.rng.choice(FREEMAIL_CN if country == "CN" else FREEMAIL_WEST)
            return f"{slug}{self.rng.randrange(10, 1000)}@{domain}"
        return f"{slug}@{company}.{TLD.get(country, 'com')}"

    def _value(self, values: Sequence[Json]) -> Json:
        value = self.rng.choice(values)
        if isinstance(value, bool):
            return self.rng.random() < 0.5
        if isinstance(value, int | float):
            return type(value)(value * self.rng.choice((0.2, 0.5, 1, 2, 4)))
        return value if self.rng.random() < 0.6 else None


# ---------------------------------------------------------------- CSV profiles

SPECIAL = ("id", "tags", "stage", "suppressed")
"""Columns that are not profile fields: the lead id, `;`-separated tags, stage, suppression."""
TRUE = frozenset({"true", "yes", "y", "1", "on"})
FALSE = frozenset({"false", "no", "n", "0", "off"})


def load_profile(path: Path, declared: Mapping[str, str] | None = None) -> list[Profile]:
    """The leads in a CSV file: a header row of field names, then one lead a row.

    Typed fields (the standard ones, and those a `fields` block declares) must
    hold a value of their type; other columns become plain text fields. A
    header of one column holding `;` or a tab is refused, as `nurture leads
    import` refuses it (`separator_words`): the file was saved with another
    separator. Raises `ProfileError` naming the file and line of the first bad row.
    """
    types = {**LEAD_FIELDS, **(declared or {})}
    name = str(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ProfileError(name, None, f"cannot read: {e.strerror or e}") from e
    text = _decode(data, name)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)  # strict: unclosed quotes
    try:
        return _rows(reader, name, types)
    except csv.Error as e:
        line = reader.line_num or None
        raise ProfileError(name, line, f"not valid CSV: {csv_words(e)}") from e


def _decode(data: bytes, name: str) -> str:
    """The file's text (a UTF-8 byte order mark dropped); a bad byte is named by line."""
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as e:
        at = skip + e.start
        line = data.count(b"\n", 0, at) + 1
        raise ProfileError(name, line, f"not UTF-8 text (byte {at} of the file)") from e


def _rows(reader: Iterator[list[str]], name: str, types: Mapping[str, str]) -> list[Profile]:
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise ProfileError(name, 1, "no header row (expected field names such as email,persona)")
    columns = [h.strip() for h in header]
    wrong = separator_words(columns)
    if wrong is not None:
        raise ProfileError(name, 1, wrong)
    for position, column in enumerate(columns):
        if not column:
            raise ProfileError(name, 1, f"column {position + 1} has no name")
        if columns.index(column) != position:
            raise ProfileError(name, 1, f"column {column!r} appears twice")
    leads: list[Profile] = []
    seen: set[str] = set()
    for row in reader:
        line = getattr(reader, "line_num", len(leads) + 2)
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            raise ProfileError(name, line, f"{len(row)} cells, but the header has {len(columns)}")
        try:
            lead = _profile(dict(zip(columns, row, strict=True)), types, len(leads) + 1)
        except ValueError as e:
            raise ProfileError(name, line, str(e)) from None
        if lead.id in seen:
            raise ProfileError(name, line, f"lead id {lead.id!r} appears twice")
        seen.add(lead.id)
        leads.append(lead)
    if not leads:
        raise ProfileError(name, None, "no leads (only a header row)")
    return leads


def _profile(cells: dict[str, str], types: Mapping[str, str], number: int) -> Profile:
    fields = {
        stored_field(key): _typed(key, text.strip(), types.get(key, "text"))
        for key, text in cells.items()
        if key not in SPECIAL and text.strip()
    }
    stage = (cells.get("stage") or "").strip().lower() or "lead"
    if stage not in STAGES:
        raise ValueError(f"stage {stage!r} is not one of {', '.join(STAGES)}")
    tags = frozenset(t.strip() for t in (cells.get("tags") or "").split(";") if t.strip())
    lead_id = (cells.get("id") or "").strip() or f"P{number:06d}"
    return Profile(lead_id, fields, tags, stage, _suppression(cells.get("suppressed") or ""))


def _suppression(text: str) -> str | None:
    """The `suppressed` cell: empty or no/false/0 is not suppressed; yes/true/1 or a reason is."""
    text = text.strip()
    if not text or text.lower() in FALSE:
        return None
    return "suppressed" if text.lower() in TRUE else text


def _typed(key: str, text: str, kind: str) -> Any:
    """The cell as its field's type; a `ValueError` that names the column otherwise."""
    if kind == "number":
        try:
            value = float(text.replace(",", ""))
        except ValueError:
            raise ValueError(f"{key}: {text!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{key}: {text!r} is not a number")
        return int(value) if value.is_integer() else value
    if kind == "bool":
        if text.lower() in TRUE | FALSE:
            return text.lower() in TRUE
        raise ValueError(f"{key}: {text!r} is not yes/no or true/false")
    if kind == "date":
        try:
            datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{key}: {text!r} is not an ISO date such as 2026-01-05") from None
    if key == "email" and ("@" not in text or text.startswith("@") or text.endswith("@")):
        raise ValueError(f"email: {text!r} is not an email address")
    if key == "time_zone" and not is_zone(text):
        raise ValueError(f"time_zone: {text!r} is not a time zone such as Asia/Shanghai")
    return text
