"""Authenticating requests: sessions with CSRF, login tokens, API keys, expiry, revocation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from formloom.platform import credentials, login, tokens
from formloom.platform.auth import CsrfFailed, Unauthenticated, authenticate
from formloom.platform.caller import Caller
from formloom.platform.environments import create_environment
from formloom.platform.errors import Forbidden
from formloom.platform.tables import credential, team, user
from tests.identity import PASSWORD, bearer_token, create_team, create_user, principal_of


def by_bearer(workspace, secret, *, method="GET", now=None, lang="en"):
    return authenticate(
        workspace,
        authorization=f"Bearer {secret}",
        session_cookie=None,
        csrf_header=None,
        method=method,
        now=now,
        lang=lang,
    )


def by_cookie(workspace, secret, *, method="GET", csrf=None, now=None):
    return authenticate(
        workspace,
        authorization=None,
        session_cookie=secret,
        csrf_header=csrf,
        method=method,
        now=now,
    )


def new_key(workspace, user_id, env="production", **more):
    caller = Caller(principal_of(workspace, user_id))
    return tokens.create_api_key(
        workspace, tokens.NewApiKey(name="erp sync", env=env, **more), caller=caller
    )


@pytest.fixture
def sam(workspace) -> int:
    return create_user(
        workspace, "sam", display_name="Sam", teams=[create_team(workspace, "sales")]
    )


def test_no_credential_says_how_to_log_in(workspace):
    with pytest.raises(Unauthenticated) as refused:
        authenticate(
            workspace, authorization=None, session_cookie=None, csrf_header=None, method="GET"
        )

    assert refused.value.status == 401 and refused.value.code == "unauthenticated"
    assert "POST /api/auth/login" in refused.value.message
    assert refused.value.headers == {"WWW-Authenticate": "Bearer"}


def test_a_login_token_authenticates_as_its_user(workspace, sam):
    principal = by_bearer(workspace, bearer_token(workspace, sam), method="POST")

    assert (principal.user_id, principal.login, principal.credential) == (sam, "sam", "token")
    assert principal.display_name == "Sam" and not principal.admin
    assert principal.environment is None
    with workspace.begin(readonly=True) as conn:
        sales = conn.execute(select(team.c.id).where(team.c.name == "sales")).scalar()
    assert principal.team_ids == frozenset({sales})


def test_malformed_and_unknown_bearers_are_refused(workspace, sam):
    for header in ("Basic abc", "Bearer", "Bearer flt_00000000_nothing"):
        with pytest.raises(Unauthenticated):
            authenticate(
                workspace,
                authorization=header,
                session_cookie=None,
                csrf_header=None,
                method="GET",
            )


def test_expired_and_revoked_tokens_say_so(workspace, sam):
    token = bearer_token(workspace, sam, lifetime=timedelta(hours=1))
    later = datetime.now(UTC) + timedelta(hours=2)

    with pytest.raises(Unauthenticated, match="expired at"):
        by_bearer(workspace, token, now=later)
    with workspace.begin() as conn:
        conn.execute(update(credential).values(revoked_at=datetime.now(UTC)))
    with pytest.raises(Unauthenticated, match="was revoked"):
        by_bearer(workspace, token)
    with pytest.raises(Unauthenticated, match="已于"):
        by_bearer(workspace, token, lang="zh")


def test_cookie_sessions_need_the_csrf_token_to_change_anything(workspace, sam):
    session = login.log_in(workspace, login="sam", password=PASSWORD).session

    assert by_cookie(workspace, session.secret).credential == "session"
    assert by_cookie(workspace, session.secret, method="HEAD").user_id == sam
    with pytest.raises(CsrfFailed, match="missing X-CSRF-Token") as missing:
        by_cookie(workspace, session.secret, method="POST")
    with pytest.raises(CsrfFailed, match="does not match"):
        by_cookie(workspace, session.secret, method="DELETE", csrf="guess")
    allowed = by_cookie(workspace, session.secret, method="PATCH", csrf=session.csrf_token)

    assert (missing.value.status, missing.value.code) == (403, "csrf_failed")
    assert allowed.user_id == sam


def test_secrets_only_work_through_their_own_channel(workspace, sam):
    session = login.log_in(workspace, login="sam", password=PASSWORD).session
    token = bearer_token(workspace, sam)

    with pytest.raises(Unauthenticated, match="not a valid login token or API key"):
        by_bearer(workspace, session.secret)
    with pytest.raises(Unauthenticated, match="session is not valid"):
        by_cookie(workspace, token)


def test_the_bearer_header_wins_over_the_cookie(workspace, sam):
    other = create_user(workspace, "other")
    session = login.log_in(workspace, login="sam", password=PASSWORD).session

    principal = authenticate(
        workspace,
        authorization=f"Bearer {bearer_token(workspace, other)}",
        session_cookie=session.secret,
        csrf_header=None,
        method="POST",
    )

    assert principal.user_id == other


def test_deactivation_stops_sessions_tokens_and_keys_at_once(workspace, sam):
    session = login.log_in(workspace, login="sam", password=PASSWORD).session
    token = bearer_token(workspace, sam)
    key = new_key(workspace, sam).secret

    # when: only the flag changes (no revocation): every request checks it
    with workspace.begin() as conn:
        conn.execute(update(user).where(user.c.id == sam).values(active=False))

    # then
    for check in (
        lambda: by_cookie(workspace, session.secret),
        lambda: by_bearer(workspace, token),
        lambda: by_bearer(workspace, key),
    ):
        with pytest.raises(Unauthenticated, match="`sam` is deactivated"):
            check()


def test_api_keys_are_bound_to_their_environment(workspace, sam):
    create_environment(workspace, "sandbox")
    key = new_key(workspace, sam, env="sandbox")

    principal = by_bearer(workspace, key.secret, method="POST")

    assert key.secret.startswith(f"flk_{key.prefix}_")
    assert principal.credential == "api_key" and principal.environment == "sandbox"
    assert principal.may_enter("sandbox") and not principal.may_enter("production")


def test_a_bound_credential_only_issues_credentials_for_its_environment(workspace, sam):
    create_environment(workspace, "sandbox")
    bound = Caller(principal_of(workspace, sam, env="sandbox"))

    token = tokens.create_token(workspace, caller=bound)
    with pytest.raises(Forbidden, match="bound to environment `sandbox`"):
        tokens.create_token(workspace, caller=bound, env="production")
    with pytest.raises(Forbidden):
        tokens.create_api_key(workspace, tokens.NewApiKey(name="x", env="production"), caller=bound)

    assert token.env == "sandbox"


def test_api_keys_expire_and_are_revoked(workspace, sam):
    soon = datetime.now(UTC) + timedelta(days=1)
    key = new_key(workspace, sam, expires_at=soon)

    with pytest.raises(Unauthenticated, match="API key expired"):
        by_bearer(workspace, key.secret, now=soon + timedelta(seconds=1))
    tokens.revoke_api_key(workspace, key.id, caller=Caller(principal_of(workspace, sam)))
    with pytest.raises(Unauthenticated, match="POST /api/auth/api-keys"):
        by_bearer(workspace, key.secret)


def test_last_use_is_written_at_most_once_a_minute(workspace, sam):
    token = bearer_token(workspace, sam)
    start = datetime.now(UTC)

    def last_used():
        with workspace.begin(readonly=True) as conn:
            return conn.execute(select(credential.c.last_used_at)).scalar()

    by_bearer(workspace, token, now=start)
    by_bearer(workspace, token, now=start + timedelta(seconds=59))
    assert last_used() == start
    by_bearer(workspace, token, now=start + timedelta(seconds=61))
    assert last_used() == start + timedelta(seconds=61)


def test_only_the_hash_of_a_key_is_stored(workspace, sam):
    key = new_key(workspace, sam)

    with workspace.begin(readonly=True) as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(credential))]

    assert key.secret not in repr(rows)
    assert rows[0]["secret_hash"] == credentials.secret_hash(key.secret)
    assert rows[0]["prefix"] == key.prefix
