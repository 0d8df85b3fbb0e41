"""The identity HTTP API on both databases: login, cookies, CSRF, tokens, keys, admin routes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from formloom.platform.app import build_app
from formloom.platform.auth import SESSION_COOKIE
from formloom.platform.settings import Settings
from formloom.platform.tables import credential
from tests.identity import PASSWORD, bearer_headers, create_user

ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return build_app(settings, run_worker=False)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def admin(app: FastAPI) -> dict[str, str]:
    """Bearer headers of an administrator."""
    workspace = app.state.workspace
    return bearer_headers(workspace, create_user(workspace, "root", admin=True))


def log_in(client: TestClient, login: str = "sam", password: str = PASSWORD) -> dict[str, Any]:
    response = client.post("/api/auth/login", json={"login": login, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def problem(response: Any) -> tuple[int, str]:
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.status_code, response.json()["code"]


def test_login_sets_a_safe_session_cookie(app, client):
    create_user(app.state.workspace, "sam")

    response = client.post("/api/auth/login", json={"login": "Sam", "password": PASSWORD})

    assert response.status_code == 200
    body = response.json()
    assert body["user"]["login"] == "sam" and body["csrf_token"] and body["expires_at"]
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=fls_")
    for attribute in ("HttpOnly", "Path=/", "SameSite=lax", "Max-Age=43200"):
        assert attribute in cookie
    assert "Secure" not in cookie
    me = client.get("/api/auth/me").json()
    assert me["credential"] == "session" and me["csrf_token"] == body["csrf_token"]
    assert me["user"]["login"] == "sam"


def test_the_cookie_is_secure_over_https_or_when_configured(app, settings):
    create_user(app.state.workspace, "sam")
    with TestClient(app, base_url="https://crm.example") as https:
        assert (
            "Secure"
            in https.post("/api/auth/login", json={"login": "sam", "password": PASSWORD}).headers[
                "set-cookie"
            ]
        )
    secure = build_app(replace(settings, secure_cookies=True), run_worker=False)
    with TestClient(secure) as plain:
        assert (
            "Secure"
            in plain.post("/api/auth/login", json={"login": "sam", "password": PASSWORD}).headers[
                "set-cookie"
            ]
        )


def test_failed_login_is_401_with_one_message(app, client):
    create_user(app.state.workspace, "sam")

    wrong = client.post("/api/auth/login", json={"login": "sam", "password": "nope nope 1"})
    unknown = client.post("/api/auth/login", json={"login": "who", "password": "nope nope 1"})

    assert problem(wrong) == (401, "login_failed") == problem(unknown)
    assert wrong.json()["detail"] == unknown.json()["detail"]
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert "set-cookie" not in wrong.headers


def test_lockout_is_429_with_retry_after(app, client):
    create_user(app.state.workspace, "sam")
    for _ in range(5):
        client.post("/api/auth/login", json={"login": "sam", "password": "nope nope 1"})

    locked = client.post("/api/auth/login", json={"login": "sam", "password": PASSWORD})
    locked_zh = client.post(
        "/api/auth/login", json={"login": "sam", "password": PASSWORD}, headers=ZH
    )

    assert problem(locked) == (429, "too_many_failed_logins")
    assert 14 * 60 < int(locked.headers["retry-after"]) <= 15 * 60
    assert locked.json()["detail"].startswith(
        "too many failed logins for this account; try again in 15 minutes"
    )
    assert "该账号登录失败次数过多" in locked_zh.json()["detail"]


def test_a_cookie_sent_before_login_is_not_the_session_after(app, client):
    create_user(app.state.workspace, "sam")
    log_in(client)
    planted = client.cookies.get(SESSION_COOKIE)

    log_in(client)
    fresh = client.cookies.get(SESSION_COOKIE)

    assert fresh and fresh != planted
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, planted)
    assert problem(client.get("/api/auth/me")) == (401, "unauthenticated")
    client.cookies.set(SESSION_COOKIE, fresh)
    assert client.get("/api/auth/me").status_code == 200


def test_csrf_on_cookie_authenticated_changes(app, client):
    create_user(app.state.workspace, "sam")
    csrf = log_in(client)["csrf_token"]

    missing = client.post("/api/auth/tokens", json={})
    wrong = client.post("/api/auth/tokens", json={}, headers={"X-CSRF-Token": "x" + csrf})
    right = client.post("/api/auth/tokens", json={}, headers={"X-CSRF-Token": csrf})

    assert problem(missing) == (403, "csrf_failed") == problem(wrong)
    assert right.status_code == 201
    token = right.json()["token"]
    assert (
        client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).json()[
            "credential"
        ]
        == "token"
    )


def test_bearer_requests_need_no_csrf_and_logout_revokes(app, client):
    user_id = create_user(app.state.workspace, "sam")
    headers = bearer_headers(app.state.workspace, user_id)

    assert (
        client.post("/api/auth/tokens", json={"expires_in": 60}, headers=headers).status_code == 201
    )
    assert client.post("/api/auth/logout", headers=headers).status_code == 204
    assert problem(client.get("/api/auth/me", headers=headers)) == (401, "unauthenticated")


def test_logout_ends_the_session_and_clears_the_cookie(app, client):
    create_user(app.state.workspace, "sam")
    csrf = log_in(client)["csrf_token"]
    session = client.cookies.get(SESSION_COOKIE)

    response = client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})

    assert response.status_code == 204
    assert f'{SESSION_COOKIE}=""' in response.headers["set-cookie"]
    client.cookies.set(SESSION_COOKIE, session)
    assert "revoked" in client.get("/api/auth/me").json()["detail"]


def test_api_keys_are_shown_once_listed_and_revoked(app, client):
    workspace = app.state.workspace
    headers = bearer_headers(workspace, create_user(workspace, "sam"))

    created = client.post(
        "/api/auth/api-keys", json={"name": "erp sync", "env": "production"}, headers=headers
    )
    key = created.json()["key"]
    listed = client.get("/api/auth/api-keys", headers=headers).json()

    assert created.status_code == 201 and key.startswith("flk_")
    assert [k["name"] for k in listed] == ["erp sync"]
    assert listed[0]["prefix"] == created.json()["prefix"] and key not in str(listed)
    assert listed[0]["last_used_at"] is None and listed[0]["revoked_at"] is None
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {key}"}).json()
    assert me["credential"] == "api_key" and me["environment"] == "production"
    with workspace.begin(readonly=True) as conn:
        assert key not in str([tuple(r) for r in conn.execute(select(credential))])
    assert (
        client.delete(f"/api/auth/api-keys/{listed[0]['id']}", headers=headers).status_code == 204
    )
    assert problem(client.get("/api/auth/me", headers={"Authorization": f"Bearer {key}"}))[0] == 401
    assert client.get("/api/auth/api-keys", headers=headers).json()[0]["revoked_at"]


def test_api_key_requests_are_checked(app, client):
    workspace = app.state.workspace
    sam = bearer_headers(workspace, create_user(workspace, "sam"))
    other = bearer_headers(workspace, create_user(workspace, "other"))
    created = client.post(
        "/api/auth/api-keys", json={"name": "k", "env": "production"}, headers=sam
    ).json()

    assert problem(
        client.post("/api/auth/api-keys", json={"name": "k", "env": "nowhere"}, headers=sam)
    ) == (404, "not_found")
    assert (
        client.post(
            "/api/auth/api-keys",
            json={"name": "k", "env": "production", "expires_at": "2030-01-01T00:00:00"},
            headers=sam,
        ).status_code
        == 422
    )
    assert problem(client.delete(f"/api/auth/api-keys/{created['id']}", headers=other)) == (
        404,
        "not_found",
    )


def test_change_own_password_keeps_this_session_only(app, client):
    workspace = app.state.workspace
    user_id = create_user(workspace, "sam")
    token_headers = bearer_headers(workspace, user_id)
    csrf = log_in(client)["csrf_token"]

    wrong = client.post(
        "/api/auth/password",
        json={"current_password": "not it 123", "new_password": "short"},
        headers={"X-CSRF-Token": csrf},
    )
    changed = client.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": "brand new 2026"},
        headers={"X-CSRF-Token": csrf},
    )

    assert problem(wrong) == (422, "invalid")
    assert [e["code"] for e in wrong.json()["errors"]] == [
        "wrong_password",
        "password_too_short",
        "password_too_simple",
    ]
    assert changed.status_code == 204
    assert client.get("/api/auth/me").status_code == 200
    assert client.get("/api/auth/me", headers=token_headers).status_code == 401
    client.cookies.clear()
    log_in(client, password="brand new 2026")


def test_admin_routes_refuse_non_admins(app, client):
    workspace = app.state.workspace
    clerk = bearer_headers(workspace, create_user(workspace, "clerk"))

    for method, path, body in (
        ("GET", "/api/admin/users", None),
        ("POST", "/api/admin/users", {"login": "x"}),
        ("PUT", "/api/admin/users/1/roles/production", {"roles": ["boss"]}),
        ("POST", "/api/admin/users/1/admin", None),
        ("GET", "/api/admin/teams", None),
        ("POST", "/api/admin/teams", {"name": "t"}),
        ("GET", "/api/admin/audit", None),
        ("GET", "/api/admin/audit?format=csv", None),
    ):
        response = client.request(method, path, json=body, headers=clerk)
        assert problem(response) == (403, "forbidden"), (method, path)
    assert problem(client.get("/api/admin/users")) == (401, "unauthenticated")


def test_admins_manage_users_roles_and_teams(client, admin):
    # users
    created = client.post(
        "/api/admin/users",
        json={
            "login": "Li.Na",
            "password": "li na 2026!",
            "display_name": {"en": "Li Na", "zh": "李娜"},
            "email": "li.na@example.com",
            "roles": {"production": ["sales_rep"]},
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    li = created.json()
    assert li["login"] == "li.na" and li["roles"] == {"production": ["sales_rep"]}
    patched = client.patch(
        f"/api/admin/users/{li['id']}",
        json={"display_name": {"zh": "李娜娜"}, "mobile": "13800138000", "email": None},
        headers=admin,
    ).json()
    assert patched["display_name"] == {"en": "Li Na", "zh": "李娜娜"}
    assert (patched["mobile"], patched["email"]) == ("+8613800138000", None)
    roles = client.put(
        f"/api/admin/users/{li['id']}/roles/production",
        json={"roles": ["manager", "sales_rep"]},
        headers=admin,
    )
    assert roles.json() == {"env": "production", "roles": ["manager", "sales_rep"]}
    assert client.get(f"/api/admin/users/{li['id']}/roles", headers=admin).json() == {
        "production": ["manager", "sales_rep"]
    }
    assert client.post(f"/api/admin/users/{li['id']}/admin", headers=admin).json()["admin"]
    assert not client.delete(f"/api/admin/users/{li['id']}/admin", headers=admin).json()["admin"]

    # teams
    sales = client.post(
        "/api/admin/teams",
        json={"name": "sales", "label": {"en": "Sales", "zh": "销售部"}},
        headers=admin,
    ).json()
    east = client.post(
        "/api/admin/teams", json={"name": "east", "parent_id": sales["id"]}, headers=admin
    ).json()
    added = client.post(
        f"/api/admin/teams/{east['id']}/members", json={"user_ids": [li["id"]]}, headers=admin
    )
    assert added.json()["member_ids"] == [li["id"]]
    loop = client.patch(
        f"/api/admin/teams/{sales['id']}", json={"parent_id": east["id"]}, headers=admin
    )
    assert problem(loop) == (422, "invalid")
    assert loop.json()["errors"][0]["code"] == "team_cycle"
    assert "sales → east" in loop.json()["detail"]
    leader = client.patch(
        f"/api/admin/teams/{east['id']}", json={"leader_id": li["id"]}, headers=admin
    )
    assert leader.json()["leader_id"] == li["id"]
    assert client.get(f"/api/admin/users/{li['id']}", headers=admin).json()["team_ids"] == [
        east["id"]
    ]
    assert [t["name"] for t in client.get("/api/admin/teams", headers=admin).json()] == [
        "east",
        "sales",
    ]
    removed = client.delete(f"/api/admin/teams/{east['id']}/members/{li['id']}", headers=admin)
    assert removed.status_code == 204
    assert client.get(f"/api/admin/teams/{east['id']}", headers=admin).json()["members"] == []


def test_deactivation_through_the_api_stops_the_users_requests(app, client, admin):
    workspace = app.state.workspace
    user_id = create_user(workspace, "sam")
    sam = bearer_headers(workspace, user_id)
    assert client.get("/api/auth/me", headers=sam).status_code == 200

    deactivated = client.post(f"/api/admin/users/{user_id}/deactivate", headers=admin)

    assert deactivated.json()["active"] is False
    assert problem(client.get("/api/auth/me", headers=sam)) == (401, "unauthenticated")
    bad_login = client.post("/api/auth/login", json={"login": "sam", "password": PASSWORD})
    assert problem(bad_login) == (401, "login_failed")
    assert client.post(f"/api/admin/users/{user_id}/activate", headers=admin).json()["active"]
    assert (
        client.put(
            f"/api/admin/users/{user_id}/password",
            json={"password": "another one 77"},
            headers=admin,
        ).status_code
        == 204
    )
    log_in(client, "sam", "another one 77")


def test_admin_errors_are_problems_in_the_callers_language(client, admin):
    duplicate = client.post("/api/admin/users", json={"login": "root"}, headers=admin)
    invalid = client.post(
        "/api/admin/users", json={"login": "x y", "email": "nope"}, headers={**admin, **ZH}
    )
    missing = client.get("/api/admin/users/999", headers=admin)

    assert problem(duplicate) == (409, "conflict")
    assert problem(invalid) == (422, "invalid")
    assert [(e["path"], e["code"]) for e in invalid.json()["errors"]] == [
        ("/login", "invalid_login"),
        ("/email", "invalid_email"),
    ]
    assert "登录名" in invalid.json()["errors"][0]["message"]
    assert problem(missing) == (404, "not_found")


def test_unlock_through_the_api(app, client, admin):
    user_id = create_user(app.state.workspace, "sam")
    for _ in range(5):
        client.post("/api/auth/login", json={"login": "sam", "password": "nope nope 1"})

    assert client.post(f"/api/admin/users/{user_id}/unlock", headers=admin).status_code == 204
    log_in(client)


def test_user_list_pages_with_a_cursor(app, client, admin):
    for n in range(3):
        create_user(app.state.workspace, f"user{n}", password=None)

    first = client.get("/api/admin/users?limit=2", headers=admin).json()
    second = client.get(f"/api/admin/users?limit=2&after={first['next']}", headers=admin).json()

    assert [u["login"] for u in first["items"]] == ["root", "user0"]
    assert [u["login"] for u in second["items"]] == ["user1", "user2"]
    assert second["next"] is None
    assert [
        u["login"] for u in client.get("/api/admin/users?q=user1", headers=admin).json()["items"]
    ] == ["user1"]
