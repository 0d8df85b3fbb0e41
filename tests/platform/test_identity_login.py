"""Logging in: passwords, rate limits with an injected clock, session fixation, rehashing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from formloom.platform import credentials, login, user_passwords, users
from formloom.platform.caller import PLATFORM_CALLER
from formloom.platform.database import Workspace
from formloom.platform.environments import create_environment
from formloom.platform.errors import NotFound
from formloom.platform.login_throttle import LoginThrottled
from formloom.platform.tables import security_audit, user
from tests.identity import PASSWORD, create_user

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
ACCOUNT_MESSAGE = "too many failed logins for this account; try again in {} minutes"


def attempt(workspace, login_name="sam", password="wrong horse 1", *, at, ip="10.0.0.1", **more):
    return login.log_in(workspace, login=login_name, password=password, ip=ip, now=at, **more)


def fail(workspace, login_name="sam", *, at, ip="10.0.0.1"):
    with pytest.raises(login.LoginFailed):
        attempt(workspace, login_name, at=at, ip=ip)


def failure_reasons(workspace) -> list[str]:
    with workspace.begin(readonly=True) as conn:
        rows = conn.execute(
            select(security_audit.c.details)
            .where(security_audit.c.action == "login.failed")
            .order_by(security_audit.c.id)
        ).scalars()
        return [d["reason"] for d in rows]


def test_login_starts_a_session(workspace):
    user_id = create_user(workspace, "Sam")

    logged_in = attempt(workspace, "SAM", PASSWORD, at=T0)

    assert logged_in.user["id"] == user_id
    session = logged_in.session
    assert session.kind == "session" and session.secret.startswith("fls_")
    assert session.expires_at == T0 + credentials.SESSION_LIFETIME
    assert session.csrf_token and session.env is None
    assert "secret" not in repr(session) and session.secret not in repr(session)


def test_unknown_login_and_wrong_password_read_the_same(workspace):
    create_user(workspace, "sam")
    create_user(workspace, "nopass", password=None)
    create_user(workspace, "gone")
    users.set_active(workspace, 3, False, caller=PLATFORM_CALLER)

    messages = []
    for name, password in (
        ("sam", "wrong horse 1"),
        ("nobody", "wrong horse 1"),
        ("nopass", "wrong horse 1"),
        ("gone", PASSWORD),
    ):
        with pytest.raises(login.LoginFailed) as failed:
            attempt(workspace, name, password, at=T0, ip=None)
        messages.append(failed.value.message)

    assert len(set(messages)) == 1 and "wrong login or password" in messages[0]
    assert failure_reasons(workspace) == [
        "wrong_password",
        "unknown_login",
        "no_password",
        "inactive",
    ]


def test_five_failures_lock_the_account_even_for_the_right_password(workspace):
    create_user(workspace, "sam")
    for minute in range(5):
        fail(workspace, at=T0 + timedelta(minutes=minute))

    # when
    with pytest.raises(LoginThrottled) as locked:
        attempt(workspace, "sam", PASSWORD, at=T0 + timedelta(minutes=6))

    # then: locked for 15 minutes from the fifth failure
    assert locked.value.status == 429
    assert locked.value.retry_after == 13 * 60
    assert locked.value.headers == {"Retry-After": "780"}
    assert ACCOUNT_MESSAGE.format(13) in locked.value.message
    assert "ask an administrator" in locked.value.message
    assert failure_reasons(workspace)[-1] == "account_locked"


def test_the_lock_ends_after_fifteen_minutes(workspace):
    create_user(workspace, "sam")
    for minute in range(5):
        fail(workspace, at=T0 + timedelta(minutes=minute))
    with pytest.raises(LoginThrottled):
        attempt(workspace, "sam", PASSWORD, at=T0 + timedelta(minutes=18, seconds=59))

    logged_in = attempt(workspace, "sam", PASSWORD, at=T0 + timedelta(minutes=19))

    assert logged_in.user["login"] == "sam"


def test_refused_attempts_do_not_extend_the_lock(workspace):
    create_user(workspace, "sam")
    for minute in range(5):
        fail(workspace, at=T0 + timedelta(minutes=minute))
    for minute in range(5, 19):
        with pytest.raises(LoginThrottled):
            attempt(workspace, at=T0 + timedelta(minutes=minute))

    assert attempt(workspace, "sam", PASSWORD, at=T0 + timedelta(minutes=19))


def test_failures_spread_over_more_than_the_window_do_not_lock(workspace):
    create_user(workspace, "sam")
    for minute in (0, 4, 8, 12, 16, 20):
        fail(workspace, at=T0 + timedelta(minutes=minute))

    assert attempt(workspace, "sam", PASSWORD, at=T0 + timedelta(minutes=21))


def test_a_success_starts_the_count_again(workspace):
    create_user(workspace, "sam")
    for minute in range(4):
        fail(workspace, at=T0 + timedelta(minutes=minute))
    attempt(workspace, "sam", PASSWORD, at=T0 + timedelta(minutes=4))
    for minute in range(5, 9):
        fail(workspace, at=T0 + timedelta(minutes=minute))

    assert attempt(workspace, "sam", PASSWORD, at=T0 + timedelta(minutes=9))


def test_unknown_logins_lock_like_known_ones(workspace):
    for minute in range(5):
        fail(workspace, "ghost", at=T0 + timedelta(minutes=minute))

    with pytest.raises(LoginThrottled, match="this account"):
        attempt(workspace, "ghost", at=T0 + timedelta(minutes=5))


def test_twenty_failures_from_one_address_lock_the_address(workspace):
    create_user(workspace, "sam")
    for n in range(20):
        fail(workspace, f"guess{n}", at=T0 + timedelta(seconds=n), ip="10.9.9.9")

    with pytest.raises(LoginThrottled) as locked:
        attempt(workspace, "sam", PASSWORD, at=T0 + timedelta(minutes=1), ip="10.9.9.9")

    assert "network address" in locked.value.message
    assert locked.value.retry_after == 15 * 60 + 19 - 60
    assert attempt(workspace, "sam", PASSWORD, at=T0 + timedelta(minutes=1), ip="10.1.1.1")
    assert attempt(workspace, "sam", PASSWORD, at=T0 + timedelta(minutes=16), ip="10.9.9.9")


def test_lock_message_in_chinese(workspace):
    for minute in range(5):
        fail(workspace, "sam", at=T0 + timedelta(minutes=minute))

    with pytest.raises(LoginThrottled) as locked:
        attempt(workspace, "sam", at=T0 + timedelta(minutes=5), lang="zh")

    assert "该账号登录失败次数过多；请在 14 分钟后重试，或联系管理员" in locked.value.message


def test_an_administrator_lifts_the_lock(workspace):
    user_id = create_user(workspace, "sam")
    for minute in range(5):
        fail(workspace, at=T0 + timedelta(minutes=minute))

    user_passwords.unlock(workspace, user_id, caller=PLATFORM_CALLER, now=T0 + timedelta(minutes=5))

    assert attempt(workspace, "sam", PASSWORD, at=T0 + timedelta(minutes=6))


def test_setting_a_password_lifts_the_lock_and_ends_sessions(workspace):
    user_id = create_user(workspace, "sam")
    old = attempt(workspace, "sam", PASSWORD, at=T0).session
    for minute in range(1, 6):
        fail(workspace, at=T0 + timedelta(minutes=minute))

    user_passwords.set_password(
        workspace, user_id, "brand new 2026", caller=PLATFORM_CALLER, now=T0 + timedelta(minutes=6)
    )

    assert attempt(workspace, "sam", "brand new 2026", at=T0 + timedelta(minutes=7))
    with workspace.begin(readonly=True) as conn:
        assert credentials.find(conn, old.secret)["revoked_at"] is not None


def test_login_revokes_the_session_it_replaces(workspace):
    create_user(workspace, "sam")
    first = attempt(workspace, "sam", PASSWORD, at=T0).session

    second = attempt(workspace, "sam", PASSWORD, at=T0, replaced_session=first.secret).session

    assert second.secret != first.secret and second.id != first.id
    with workspace.begin(readonly=True) as conn:
        assert credentials.find(conn, first.secret)["revoked_at"] == T0
        assert credentials.find(conn, second.secret)["revoked_at"] is None


def test_a_session_can_be_bound_to_an_environment(workspace):
    create_environment(workspace, "sandbox")
    create_user(workspace, "sam")

    bound = attempt(workspace, "sam", PASSWORD, at=T0, env="sandbox").session

    assert bound.env == "sandbox"
    with pytest.raises(NotFound, match="nowhere"):
        attempt(workspace, "sam", PASSWORD, at=T0, env="nowhere")


def test_a_hash_made_with_old_parameters_is_replaced_at_login(workspace):
    # given: a user whose hash was made with the cheap parameters of the test settings
    user_id = create_user(workspace, "sam")
    standard = Workspace(replace(workspace.settings, password_hashing="standard"))

    # when
    try:
        attempt(standard, "sam", PASSWORD, at=T0)
        again = attempt(standard, "sam", PASSWORD, at=T0)
    finally:
        standard.dispose()

    # then
    with workspace.begin(readonly=True) as conn:
        stored = conn.execute(select(user.c.password_hash).where(user.c.id == user_id)).scalar()
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert again.user["id"] == user_id


def test_old_attempts_are_pruned(workspace):
    from formloom.platform.tables import login_attempt

    fail(workspace, at=T0)
    fail(workspace, at=T0 + timedelta(days=2))

    with workspace.begin(readonly=True) as conn:
        assert len(conn.execute(select(login_attempt)).all()) == 1


def test_deactivated_users_cannot_log_in(workspace):
    user_id = create_user(workspace, "sam")
    with workspace.begin() as conn:
        conn.execute(update(user).where(user.c.id == user_id).values(active=False))

    with pytest.raises(login.LoginFailed):
        attempt(workspace, "sam", PASSWORD, at=T0)

    assert failure_reasons(workspace) == ["inactive"]
