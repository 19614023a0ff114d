"""The database schema: SQLAlchemy 2 typed declarative models.

The database is the source of truth; the broker only carries work. Every
table here is therefore written so that a crashed or duplicated job can find
what was already done: deliveries are keyed by (enrollment, step, iteration),
enrollments carry their own cursor and lease, and every lifecycle change and
MQL is a row rather than a log line.

Conventions that keep SQLite and PostgreSQL alike:

- constraint and index names come from ``NAMING_CONVENTION``, so a migration
  can name them and ``alembic.autogenerate.compare_metadata`` finds no drift;
- datetimes are ``UTCDateTime``: aware in Python, UTC in the database, naive
  values refused;
- enum-like columns are short strings guarded by a CHECK constraint, so a new
  value is a deliberate migration and never a PostgreSQL ``ALTER TYPE``;
- JSON is ``JSONB`` on PostgreSQL and JSON text on SQLite, and top-level
  changes to a dict are saved.

The migration in ``migrations/versions`` spells the same schema out by hand;
``tests/store/test_migrations.py`` fails when the two disagree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.mutable import MutableDict
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, validates

NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

STAGES: Final = ("lead", "mql", "sql", "opportunity", "customer", "returned")
EVENT_TYPES: Final = (
    "delivered",
    "opened",
    "clicked",
    "replied",
    "bounced_hard",
    "bounced_soft",
    "complained",
    "unsubscribed",
    "form_submitted",
    "page_viewed",
    "custom",
)
ENROLLMENT_STATES: Final = ("active", "waiting", "done", "exited")
DELIVERY_STATUSES: Final = ("pending", "sent", "failed", "unknown", "deferred", "suppressed")
DEFINITION_KINDS: Final = ("scoring", "routing", "segment", "fields")
COST_KINDS: Final = ("source", "campaign")
ACCOUNT_STATUSES: Final = ("customer", "opportunity", "prospect")
NOTICE_KINDS: Final = ("assigned", "reminder")
NOTICE_STATUSES: Final = ("pending", "sending", "sent", "failed")
ASSIGNED_HOW: Final = ("owner", "user", "team", "round_robin", "escalation", "none")
"""How an owner was chosen: a routing rule's kind, the SLA's escalation, or nobody."""
ROLES: Final = ("admin", "marketer", "sales", "analyst")
"""Who may sign in to the console, and what they see (`nurture.console.permissions`)."""


def unchecked_index() -> Index:
    """A partial index of the rows whose enrollment triggers the runtime has not checked yet."""
    where = text("triggers_checked_at IS NULL")
    return Index(None, "triggers_checked_at", postgresql_where=where, sqlite_where=where)


def utcnow() -> datetime:
    """Audit timestamps only; engine decisions take ``now`` as an input."""
    return datetime.now(UTC)


def one_of(column: str, values: tuple[str, ...]) -> str:
    """The SQL text of a CHECK that ``column`` holds one of ``values``."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC.

    SQLite has no time zones and returns naive values; PostgreSQL returns
    values in the session's zone. Normalising both ways means callers always
    get aware UTC back, and a naive value (an easy bug) fails loudly instead of
    being silently read as local time.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime (UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONDocument = MutableDict.as_mutable(JSON().with_variant(JSONB(), "postgresql"))
"""JSONB on PostgreSQL, JSON text on SQLite.

``MutableDict`` notices ``enrollment.iterations[step] += 1``; it does not see
changes below the top level, so replace nested values rather than edit them.
"""


JSONList = JSON().with_variant(JSONB(), "postgresql")
"""A JSON array, JSONB on PostgreSQL; assign a new list to change it (edits are not seen)."""


class Base(DeclarativeBase):
    """The declarative base; its metadata carries the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONDocument,
    }


class Lead(Base):
    """A person. Email, phone and messaging id each identify at most one lead."""

    __tablename__ = "leads"
    __table_args__ = (
        CheckConstraint(one_of("stage", STAGES), name="stage"),
        CheckConstraint("email = lower(email)", name="email_lower_case"),
        unchecked_index(),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    phone: Mapped[str | None] = mapped_column(String(32), unique=True)
    messaging_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Custom profile fields, as imported or posted; scoring and segments read them."""
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    """IANA name, for send windows in the lead's local time."""
    stage: Mapped[str] = mapped_column(String(16), default="lead", server_default="lead")
    owner: Mapped[str | None] = mapped_column(String(200))
    fit: Mapped[int] = mapped_column(default=0, server_default="0")
    interest: Mapped[float] = mapped_column(Double, default=0.0, server_default="0")
    grade: Mapped[str | None] = mapped_column(String(1))
    unsubscribed_at: Mapped[datetime | None]
    hard_bounced_at: Mapped[datetime | None]
    complained_at: Mapped[datetime | None]
    suppressed_reason: Mapped[str | None] = mapped_column(Text)
    """Any of the three timestamps suppresses the lead everywhere; this says why."""
    source: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_activity_at: Mapped[datetime | None]
    rescore_at: Mapped[datetime | None] = mapped_column(index=True)
    """When the stored interest next changes by decay alone (`engine.scoring.next_decay`);
    the scheduler rescores the lead then. None: nothing left to decay."""
    triggers_checked_at: Mapped[datetime | None]
    """When the runtime ran the campaigns' ``enroll when lead created`` triggers for this
    lead; None: not yet (`nurture.runtime.enrolling` picks it up, exactly once)."""
    account_id: Mapped[int | None] = mapped_column(index=True)
    """The company (`Account`) the lead was matched to by email domain or company name."""

    @validates("email")
    def _lower_email(self, _key: str, email: str | None) -> str | None:
        """Dedup compares emails exactly, so they are stored trimmed and lower-case."""
        return email.strip().lower() if email is not None else None

    @property
    def suppressed(self) -> bool:
        """True when no campaign may send to this lead, ever."""
        return any((self.unsubscribed_at, self.hard_bounced_at, self.complained_at))


class Tag(Base):
    """A label on a lead; segments are expressions over tags, score and stage."""

    __tablename__ = "tags"
    __table_args__ = (unchecked_index(),)

    lead_id: Mapped[int] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)
    tagged_at: Mapped[datetime] = mapped_column(default=utcnow)
    triggers_checked_at: Mapped[datetime | None]
    """When the runtime ran the ``enroll when tagged`` triggers for this tag; None: not yet."""


class Event(Base):
    """Something a lead did or that happened to a message; scoring and waits read these."""

    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint(one_of("type", EVENT_TYPES), name="type"),
        Index(None, "lead_id", "occurred_at"),
        unchecked_index(),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(200))
    """The name of a ``custom`` event, such as ``webinar_attended``."""
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL"), index=True
    )
    link: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime]
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    triggers_checked_at: Mapped[datetime | None]
    """When the runtime ran the ``enroll when event`` triggers for this event; None: not yet."""


class Campaign(Base):
    """A campaign by name; what runs is one of its versions."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    current_version: Mapped[int | None]
    """The version new leads enter (``campaign_versions.version``): normally the newest,
    an older one after a deploy that reverted the text to it. None only mid-deploy."""


class CampaignVersion(Base):
    """A deployed step graph. Deploying unchanged text finds the existing version by hash.

    A deploy whose text equals an older version's points ``Campaign.current_version``
    back at that version rather than storing the same graph twice.
    """

    __tablename__ = "campaign_versions"
    __table_args__ = (
        UniqueConstraint("campaign_id", "version"),
        UniqueConstraint("campaign_id", "content_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    version: Mapped[int]
    content_hash: Mapped[str] = mapped_column(String(64))
    graph: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(Text)
    deployed_at: Mapped[datetime] = mapped_column(default=utcnow)


class StepEdge(Base):
    """How many enrollments of one version went from one step to another, where the first
    has several ways out (a branch, a split, a repeat, a wait with a timeout).

    The runtime adds a batch's counts in one upsert as it stores the decisions
    (`nurture.runtime.edges`); live pictures read them (`nurture.live_counts`).
    """

    __tablename__ = "step_edges"

    campaign_version_id: Mapped[int] = mapped_column(
        ForeignKey("campaign_versions.id", ondelete="CASCADE"), primary_key=True
    )
    from_step: Mapped[str] = mapped_column(String(200), primary_key=True)
    to_step: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class Enrollment(Base):
    """One lead in one campaign version: where it is, and when it next runs.

    The scheduler polls ``(state, next_run_at)``; ``claimed_by`` and
    ``claimed_until`` are a lease, so a scheduler that dies releases its work
    when the lease runs out instead of holding it forever.
    """

    __tablename__ = "enrollments"
    __table_args__ = (
        CheckConstraint(one_of("state", ENROLLMENT_STATES), name="state"),
        Index(None, "state", "next_run_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    campaign_version_id: Mapped[int] = mapped_column(ForeignKey("campaign_versions.id"), index=True)
    cursor: Mapped[str] = mapped_column(String(200))
    """The id of the step to run next, in the version's graph."""
    next_run_at: Mapped[datetime | None] = mapped_column(index=True)
    waiting_for: Mapped[dict[str, Any] | None]
    """The event that wakes a parked enrollment early; its timeout is ``next_run_at``."""
    iterations: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Loop counters by step id; a delivery's iteration comes from here."""
    state: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    exit_reason: Mapped[str | None] = mapped_column(Text)
    entered_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None]
    memory: Mapped[dict[str, Any] | None]
    """What the decision core remembers beyond the columns above: the latest delivery of
    each send step and the last one sent (``EnrollmentState.sent`` and ``last_sent``), as
    ``nurture.runtime`` stores them; None before the first send."""


class Delivery(Base):
    """One touch, written before the channel is called.

    The unique (enrollment, step, iteration) key is what stops a redelivered
    job from sending twice; ``message_id`` is derived from the same key.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("enrollment_id", "step_id", "iteration"),
        CheckConstraint(one_of("status", DELIVERY_STATUSES), name="status"),
        Index(None, "lead_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollments.id", ondelete="CASCADE"))
    step_id: Mapped[str] = mapped_column(String(200))
    iteration: Mapped[int] = mapped_column(default=0, server_default="0")
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    template: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    """``pending`` (written, the channel not answered yet; see `handed_at`), ``sent``,
    ``failed`` (why in ``error``), ``deferred`` (the enrollment's next run sends it again: a
    transient failure, or released by an operator), ``unknown`` (handed to the channel and
    no answer stored: its job died mid-send, or the reply was lost; never resent on its
    own) or ``suppressed`` (withheld from a suppressed lead). See `nurture.runtime.executor`."""
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    handed_at: Mapped[datetime | None]
    """When the message was handed to its channel (committed just before the call); NULL:
    never handed, so a ``pending`` row without it was not sent and is simply due again."""
    handed_by: Mapped[str | None] = mapped_column(String(80))
    """The job (its claim token) that handed it over; only that job stores the answer."""
    links: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONList)
    """The rendered message's tracked links, ``[{"index", "name", "url"}]`` with
    ``index`` the list position (`nurture.tracking.stored_links` builds it); a
    click redirects only to a URL stored here. None: no tracked links."""


class LifecycleTransition(Base):
    """A change of stage, with its cause: the lead's funnel history."""

    __tablename__ = "lifecycle_transitions"
    __table_args__ = (
        CheckConstraint(one_of("to_stage", STAGES), name="to_stage"),
        Index(None, "lead_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    from_stage: Mapped[str | None] = mapped_column(String(16))
    """None for the first stage a lead is given."""
    to_stage: Mapped[str] = mapped_column(String(16))
    cause: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]
    by: Mapped[str | None] = mapped_column(String(320))
    """Who made the change, when a person did (a salesperson's address)."""
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    """The deal's amount, for an opportunity or a won (customer) stage."""


class MqlRecord(Base):
    """One MQL episode: the rule that fired, the scores then, and the SLA clock."""

    __tablename__ = "mql_records"
    __table_args__ = (Index(None, "lead_id", "at"), Index(None, "accepted_at", "sla_due_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(Text)
    cause_event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))
    fit: Mapped[int]
    interest: Mapped[float] = mapped_column(Double)
    grade: Mapped[str | None] = mapped_column(String(1))
    at: Mapped[datetime]
    owner: Mapped[str | None] = mapped_column(String(200))
    sla_due_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    returned_at: Mapped[datetime | None]
    """When sales sent the lead back to nurture; a returned MQL's SLA clock has stopped."""
    return_reason: Mapped[str | None] = mapped_column(Text)
    team: Mapped[str | None] = mapped_column(String(200))
    """The team the MQL was routed to; a reassignment draws the next member from it."""
    remind_at: Mapped[datetime | None] = mapped_column(index=True)
    """When the owner is reminded before the deadline; cleared once reminded."""
    escalated_at: Mapped[datetime | None]
    """When the SLA ran out with nobody left to reassign to, and the MQL was escalated."""


class Assignment(Base):
    """Who got an MQL, when, and why, in words: every hand-over is a row."""

    __tablename__ = "assignments"
    __table_args__ = (
        CheckConstraint(one_of("how", ASSIGNED_HOW), name="how"),
        Index(None, "lead_id", "at"),
        Index(None, "owner", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    mql_id: Mapped[int | None] = mapped_column(ForeignKey("mql_records.id", ondelete="CASCADE"))
    owner: Mapped[str | None] = mapped_column(String(320))
    """None: nobody could be assigned (no rule held, or nobody was available)."""
    team: Mapped[str | None] = mapped_column(String(200))
    rule: Mapped[int | None]
    """The routing rule's number (1-based), when a rule chose the owner."""
    how: Mapped[str] = mapped_column(String(16))
    previous: Mapped[str | None] = mapped_column(String(320))
    """Who held the MQL before (a reassignment or escalation took it from them)."""
    cause: Mapped[str] = mapped_column(Text)
    """Why an assignment happened now: the MQL, or "not accepted within 24 hours"."""
    reason: Mapped[str] = mapped_column(Text)
    """How the owner was chosen, e.g. 'rule 3 (lead.region in [...]) → team east → li.na@…'."""
    at: Mapped[datetime]


class Notice(Base):
    """One message to an MQL's owner (a new MQL, or a reminder), on one channel.

    Written ``pending`` in the transaction that assigned the MQL, so nothing
    is lost when a process dies; ``sending`` while a sender holds it (a crash
    then leaves it there, reported, never sent twice); ``sent`` or ``failed``.
    """

    __tablename__ = "notices"
    __table_args__ = (
        CheckConstraint(one_of("kind", NOTICE_KINDS), name="kind"),
        CheckConstraint(one_of("status", NOTICE_STATUSES), name="status"),
        Index(None, "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(
        ForeignKey("assignments.id", ondelete="CASCADE"), index=True
    )
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    owner: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    """``email`` (to the owner), ``webhook`` (to the CRM), ``wecom`` (to the owner's id)."""
    template: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class Account(Base):
    """A company from the CRM: its owner and whether it is a customer or an open deal."""

    __tablename__ = "accounts"
    __table_args__ = (CheckConstraint(one_of("status", ACCOUNT_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(200), unique=True)
    """The name normalised (`nurture.handoff.accounts.company_key`): leads match on it."""
    owner: Mapped[str | None] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(16))
    imported_at: Mapped[datetime]


class AccountDomain(Base):
    """An email domain of an account: a lead whose address is at it belongs to the account."""

    __tablename__ = "account_domains"

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )


class Cost(Base):
    """What a lead source or a campaign cost in one month, for cost per MQL and ROMI."""

    __tablename__ = "costs"
    __table_args__ = (
        UniqueConstraint("kind", "name", "month"),
        CheckConstraint(one_of("kind", COST_KINDS), name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    """The source (``lead.source``) or the campaign's name."""
    month: Mapped[date]
    """The month's first day."""
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    imported_at: Mapped[datetime]


class LeadNote(Base):
    """A note sales or an SDR wrote on a lead; part of its story (`nurture leads note`)."""

    __tablename__ = "lead_notes"
    __table_args__ = (Index(None, "lead_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    author: Mapped[str] = mapped_column(String(320))
    """The sales member's address."""
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]


class SalesMember(Base):
    """A salesperson's availability: operational state, changed without a deploy."""

    __tablename__ = "sales_members"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    away_until: Mapped[datetime | None]
    """Not assigned anything before this moment; None: available."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RoundRobinTurn(Base):
    """How many MQLs round robin has given each member of a team: fairness that survives
    restarts and is shared by every worker (the rows are locked while one is chosen)."""

    __tablename__ = "round_robin"

    team: Mapped[str] = mapped_column(String(200), primary_key=True)
    member: Mapped[str] = mapped_column(String(320), primary_key=True)
    turns: Mapped[int] = mapped_column(default=0, server_default="0")


class LeadMerge(Base):
    """A lead merged into another by dedup; the old id still finds the lead it became."""

    __tablename__ = "lead_merges"

    merged_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    """The id of the lead that is gone; its unsubscribe links still carry it."""
    into_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    """The lead that holds both histories now (updated when that one is merged in turn)."""
    at: Mapped[datetime]
    cause: Mapped[str] = mapped_column(Text)
    merged: Mapped[dict[str, Any]]
    """The merged lead's profile as it was, for the record."""


class Definition(Base):
    """One deployed version of a scoring model, the routing, a segment or the field list.

    Versions of one (kind, name) are numbered from 1 and never edited; the
    active one is the newest. Scoring, routing and fields are one per
    program, so the active one of those kinds is the newest of any name.
    """

    __tablename__ = "definitions"
    __table_args__ = (
        UniqueConstraint("kind", "name", "version"),
        CheckConstraint(one_of("kind", DEFINITION_KINDS), name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int]
    content_hash: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]]
    """The compiled JSON, as ``dsl.CompiledProgram`` holds it."""
    source: Mapped[str] = mapped_column(Text)
    deployed_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    """Someone who signs in to the console. A ``sales`` user is the routing's team member
    with the same address: the leads they see are the leads that address owns."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(one_of("role", ROLES), name="role"),
        CheckConstraint("email = lower(email)", name="email_lower_case"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(Text)
    """argon2id, as ``argon2.PasswordHasher`` writes it (parameters and salt included)."""
    failed_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    """Wrong passwords since the last sign-in; at the limit the user is locked."""
    locked_until: Mapped[datetime | None]
    """No sign-in before this moment, even with the right password; None: not locked."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    signed_in_at: Mapped[datetime | None]
    invite_nonce: Mapped[str | None] = mapped_column(String(64))
    """The nonce the user's invitation link carries; None: no invitation to take. Choosing a
    password clears it (the link works once), a new invitation replaces it."""
    invited_at: Mapped[datetime | None]
    """When the latest invitation was made."""

    @validates("email")
    def _lower_email(self, _key: str, email: str) -> str:
        """Addresses compare exactly (with `Lead.owner` too), so they are stored lower-case."""
        return email.strip().lower()


class WechatToken(Base):
    """A WeChat app's access token, shared by every worker; its row is the lock that lets
    one of them at a time fetch a new one (see `nurture.runtime.wechat_tokens`)."""

    __tablename__ = "wechat_tokens"

    appid: Mapped[str] = mapped_column(String(64), primary_key=True)
    access_token: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None]
    fetched_at: Mapped[datetime | None]
    fetches: Mapped[int] = mapped_column(default=0, server_default="0")
    """Tokens fetched for this app so far (the endpoint's daily limit is counted by WeChat)."""


SUPPRESSION_CHANNELS: Final = ("email", "sms", "wechat", "all")
"""What a suppression closes: one channel, or ``all`` (the address receives nothing, ever)."""


class Suppression(Base):
    """One address closed on one channel: a WeChat 43004 closes WeChat for the openid, an SMS
    STOP closes SMS for the number, a hard bounce closes email for the address. The address is
    kept as a hash, so a forgotten person's address still stops a re-import from mailing them
    (see `nurture.store.suppressions`)."""

    __tablename__ = "suppressions"
    __table_args__ = (
        CheckConstraint(one_of("channel", SUPPRESSION_CHANNELS), name="channel"),
        UniqueConstraint("channel", "address_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    address_hash: Mapped[str] = mapped_column(String(64), index=True)
    """SHA-256 (hex) of the normalised address: an email lower-case, a phone or openid as is."""
    lead_id: Mapped[int | None] = mapped_column(
        ForeignKey("leads.id", ondelete="SET NULL"), index=True
    )
    """The lead it was recorded for; None once that lead was forgotten."""
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


CONSENT_CHANNELS: Final = ("email", "sms", "wechat")


class Consent(Base):
    """A lead's consent on one channel: given or withdrawn, where it came from and when
    (see `nurture.store.consents`); the latest answer per channel is kept."""

    __tablename__ = "consents"
    __table_args__ = (CheckConstraint(one_of("channel", CONSENT_CHANNELS), name="channel"),)

    lead_id: Mapped[int] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    granted: Mapped[bool]
    source: Mapped[str] = mapped_column(String(200))
    """Where the answer came from: ``import``, ``api``, or what the record said (a form)."""
    at: Mapped[datetime]


FEEDBACK_KINDS: Final = ("delivered", "bounced", "complained", "opened", "clicked", "unsubscribed")


class FeedbackReceipt(Base):
    """One piece of delivery feedback already recorded (a DSN, an ARF report, an ESP event),
    by its source's own key: a replayed webhook or a DSN sent twice finds its row and records
    nothing again. Soft bounces are counted here per address (see
    `nurture.deliverability.feedback`)."""

    __tablename__ = "feedback_receipts"
    __table_args__ = (
        CheckConstraint(one_of("kind", FEEDBACK_KINDS), name="kind"),
        UniqueConstraint("source", "key"),
        Index(None, "address_hash", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(255))
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    hard: Mapped[bool | None]
    """For a bounce: permanent (True) or transient (False, counted toward becoming hard)."""
    address_hash: Mapped[str | None] = mapped_column(String(64))
    """The bounced address (hashed as suppressions are), for counting soft bounces."""
    at: Mapped[datetime]


class ThrottleDeferral(Base):
    """One email held back because its receiving domain's rate was reached: deferred, sent
    later (see `nurture.runtime.throttling`); counted per domain in the reports."""

    __tablename__ = "throttle_deferrals"
    __table_args__ = (Index(None, "domain", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    domain: Mapped[str] = mapped_column(String(255))
    """The receiving domain's rate group (``qq.com`` for a foxmail.com address too)."""
    at: Mapped[datetime]
