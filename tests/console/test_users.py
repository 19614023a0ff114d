"""Console users: `nurture users add/list/remove`, argon2 hashes, routing members as sales,
and the lock-out after repeated wrong passwords."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from nurture.cli import app
from nurture.console.users import Lockout, SignInRefused, UserError, add_user, sign_in
from nurture.models import User
from tests.console.conftest import NOW, PASSWORD, ROUTING
from tests.handoff.test_route import deployed

runner = CliRunner()


@pytest.fixture
def url(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A migrated SQLite database with the routing deployed; the only one the commands see."""
    from nurture import db

    db.upgrade(sqlite_url)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NURTURE_DATABASE_URL", sqlite_url)
    engine = db.make_engine(sqlite_url)
    with Session(engine) as session:
        session.add(deployed(ROUTING))
        session.commit()
    engine.dispose()
    return sqlite_url


def nurture(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def users(url: str) -> list[dict[str, object]]:
    code, out, err = nurture("users", "list", "--json")
    assert code == 0, err
    found: list[dict[str, object]] = json.loads(out)
    return found


def test_add_list_and_remove_users(url: str) -> None:
    code, out, _ = nurture(
        "users", "add", "Chief@T.io", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert (code, out.strip()) == (0, "added chief@t.io (admin)")

    # a routing member needs no role: they are sales, linked by their address
    code, out, _ = nurture("users", "add", "li.na@t.io", "--password-stdin", stdin=PASSWORD)
    assert code == 0
    assert "added li.na@t.io (sales); a team member of the deployed routing" in out

    listed = users(url)
    assert [(u["email"], u["role"], u["member"]) for u in listed] == [
        ("chief@t.io", "admin", False),
        ("li.na@t.io", "sales", True),
    ]

    code, out, _ = nurture("users", "remove", "LI.NA@t.io")
    assert (code, out.strip()) == (0, "removed li.na@t.io")
    assert [u["email"] for u in users(url)] == ["chief@t.io"]


@pytest.mark.parametrize(
    ("args", "stdin", "said"),
    [
        (["nobody@t.io"], PASSWORD, "give --role (admin, marketer, sales, analyst)"),
        (["x@t.io", "--role", "boss"], PASSWORD, "no role 'boss'"),
        (["not-an-address", "--role", "admin"], PASSWORD, "'not-an-address' is not an email"),
        (["x@t.io", "--role", "admin"], "short", "at least 10 characters"),
    ],
)
def test_a_bad_user_is_refused_and_nothing_is_added(
    url: str, args: list[str], stdin: str, said: str
) -> None:
    code, _, err = nurture("users", "add", *args, "--password-stdin", stdin=stdin)

    assert code == 1
    assert said in err
    assert users(url) == []


def test_a_user_cannot_be_added_twice_nor_removed_when_absent(url: str) -> None:
    assert (
        nurture("users", "add", "a@t.io", "--role", "analyst", "--password-stdin", stdin=PASSWORD)[
            0
        ]
        == 0
    )
    code, _, err = nurture(
        "users", "add", "A@t.io", "--role", "admin", "--password-stdin", stdin=PASSWORD
    )
    assert (code, "a@t.io is a user already" in err) == (1, True)
    code, _, err = nurture("users", "remove", "b@t.io")
    assert (code, "no user 'b@t.io'" in err) == (1, True)


def test_without_a_terminal_the_password_must_come_from_stdin(url: str) -> None:
    code, _, err = nurture("users", "add", "a@t.io", "--role", "admin")
    assert (code, "use --password-stdin" in err) == (2, True)


@pytest.mark.real_hashes
def test_passwords_are_stored_as_argon2id_hashes(migrated_engine: Engine) -> None:
    with Session(migrated_engine) as session:
        user = add_user(session, "a@t.io", "admin", PASSWORD, None)
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        assert "$m=65536,t=3,p=4$" in user.password_hash  # argon2-cffi's recommended parameters


def test_wrong_passwords_lock_the_user_for_a_while(migrated_engine: Engine) -> None:
    lockout = Lockout(attempts=3, seconds=600)
    with Session(migrated_engine) as session:
        add_user(session, "a@t.io", "admin", PASSWORD, None)
        for _ in range(2):
            with pytest.raises(SignInRefused, match="Wrong email address or password"):
                sign_in(session, "a@t.io", "wrong password", NOW, lockout)
        with pytest.raises(SignInRefused, match="locked until 2026-03-02 10:10 UTC"):
            sign_in(session, "a@t.io", "wrong password", NOW, lockout)
        # locked: even the right password is refused, until the lock ends
        with pytest.raises(SignInRefused, match="locked"):
            sign_in(session, "a@t.io", PASSWORD, NOW + timedelta(minutes=9), lockout)
        user = sign_in(session, "A@t.io", PASSWORD, NOW + timedelta(minutes=11), lockout)
        assert (user.failed_attempts, user.locked_until) == (0, None)
        session.commit()
        stored = session.scalars(select(User)).one()
        assert stored.signed_in_at == NOW + timedelta(minutes=11)


def test_an_unknown_address_is_refused_like_a_wrong_password(migrated_engine: Engine) -> None:
    with Session(migrated_engine) as session, pytest.raises(SignInRefused) as refused:
        sign_in(session, "nobody@t.io", PASSWORD, NOW, Lockout())
    assert str(refused.value) == "Wrong email address or password."


def test_a_member_address_without_a_role_is_refused_when_no_routing_names_it(
    migrated_engine: Engine,
) -> None:
    with Session(migrated_engine) as session, pytest.raises(UserError, match="no routing member"):
        add_user(session, "li.na@t.io", None, PASSWORD, None)
