"""The security audit log: what is recorded, querying, CSV export, and no secret anywhere."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from formloom.platform import security_audit, users
from formloom.platform.app import build_app
from formloom.platform.caller import PLATFORM_CALLER
from formloom.platform.credentials import Issued
from formloom.platform.settings import Settings
from formloom.platform.tables import credential, login_attempt, user
from formloom.platform.tables import security_audit as audit_table
from formloom.platform.user_passwords import PasswordChange
from tests.identity import PASSWORD, bearer_headers, create_user


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return build_app(settings, run_worker=False)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def all_rows(workspace, *tables) -> str:
    with workspace.begin(readonly=True) as conn:
        return json.dumps(
            [[list(map(str, row)) for row in conn.execute(select(t))] for t in tables],
            ensure_ascii=False,
        )


def test_no_secret_in_audit_rows_logs_or_errors(app, client, caplog):
    caplog.set_level(logging.DEBUG)
    workspace = app.state.workspace
    admin = bearer_headers(workspace, create_user(workspace, "root", admin=True))
    wrong_password = "Wr0ng-and-secret"
    new_password = "N3w-and-secret!"
    secrets = [PASSWORD, wrong_password, new_password, admin["Authorization"][7:]]

    # when: everything that handles a secret
    created = client.post(
        "/api/admin/users", json={"login": "sam", "password": PASSWORD}, headers=admin
    ).json()
    failed = client.post("/api/auth/login", json={"login": "sam", "password": wrong_password})
    logged_in = client.post("/api/auth/login", json={"login": "sam", "password": PASSWORD})
    csrf = {"X-CSRF-Token": logged_in.json()["csrf_token"]}
    secrets.append(client.cookies.get("formloom_session"))
    token = client.post("/api/auth/tokens", json={}, headers=csrf).json()["token"]
    key = client.post(
        "/api/auth/api-keys", json={"name": "k", "env": "production"}, headers=csrf
    ).json()["key"]
    secrets += [token, key]
    client.put(
        f"/api/admin/users/{created['id']}/password", json={"password": new_password}, headers=admin
    )
    policy = client.put(
        f"/api/admin/users/{created['id']}/password", json={"password": "samsamsam"}, headers=admin
    )
    client.get("/api/auth/me", headers={"Authorization": f"Bearer {key}"})
    client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}x"})

    # then
    assert failed.status_code == 401 and policy.status_code == 422
    stored = all_rows(workspace, audit_table, login_attempt, credential)
    logs = caplog.text + "".join(repr(r.args) for r in caplog.records)
    answers = failed.text + policy.text
    for secret in secrets:
        assert secret not in stored, secret[:6]
        assert secret not in logs, secret[:6]
        assert secret not in answers, secret[:6]
    assert "login failed for 'sam'" in caplog.text


def test_what_the_audit_records(app, client):
    workspace = app.state.workspace
    root = create_user(workspace, "root", admin=True)
    admin = bearer_headers(workspace, root)
    sam = client.post(
        "/api/admin/users", json={"login": "sam", "password": PASSWORD}, headers=admin
    ).json()
    client.post("/api/auth/login", json={"login": "sam", "password": "nope nope 1"})
    client.post("/api/auth/login", json={"login": "sam", "password": PASSWORD})
    client.post(f"/api/admin/users/{sam['id']}/deactivate", headers=admin)

    entries = client.get("/api/admin/audit", headers=admin).json()["items"]

    assert [e["action"] for e in entries] == [
        "user.deactivated",
        "login.succeeded",
        "login.failed",
        "user.created",
        "token.created",
        "admin.granted",
        "user.created",
    ]
    deactivated, succeeded, failed = entries[:3]
    assert deactivated["actor_id"] == root and deactivated["actor_login"] == "root"
    assert deactivated["target"] == "user:sam" and deactivated["ip"] == "testclient"
    assert deactivated["details"] == {"credentials_revoked": 1}
    assert succeeded["actor_id"] == sam["id"] and failed["details"] == {"reason": "wrong_password"}


def test_query_filters_and_keyset_pages(app, client):
    workspace = app.state.workspace
    admin = bearer_headers(workspace, create_user(workspace, "root", admin=True))
    for _ in range(5):
        client.post("/api/auth/login", json={"login": "ghost", "password": "nope nope 1"})

    first = client.get("/api/admin/audit?action=login.failed&limit=3", headers=admin).json()
    rest = client.get(
        f"/api/admin/audit?action=login.failed&limit=3&after={first['next']}", headers=admin
    ).json()

    assert len(first["items"]) == 3 and len(rest["items"]) == 2 and rest["next"] is None
    ids = [e["id"] for e in first["items"] + rest["items"]]
    assert ids == sorted(ids, reverse=True)
    assert client.get("/api/admin/audit?actor_id=999", headers=admin).json()["items"] == []
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert (
        client.get("/api/admin/audit", params={"since": future}, headers=admin).json()["items"]
        == []
    )
    assert (
        len(client.get("/api/admin/audit", params={"until": future}, headers=admin).json()["items"])
        == 8
    )
    assert (
        client.get("/api/admin/audit?since=2026-01-01T00:00:00", headers=admin).status_code == 422
    )


def test_csv_export(app, client):
    workspace = app.state.workspace
    admin = bearer_headers(workspace, create_user(workspace, "root", admin=True))
    client.post("/api/auth/login", json={"login": "=cmd", "password": "nope nope 1"})

    response = client.get("/api/admin/audit?format=csv&action=login.failed", headers=admin)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(rows) == 1
    assert rows[0]["action"] == "login.failed" and rows[0]["target"] == "login:=cmd"
    assert json.loads(rows[0]["details"]) == {"reason": "unknown_login"}


def test_csv_cells_never_start_a_formula(workspace):
    with workspace.begin() as conn:
        security_audit.record(
            conn, action="user.created", at=datetime.now(UTC), target="=HYPERLINK(1)"
        )

    text = b"".join(
        security_audit.export_csv(workspace, security_audit.AuditFilter(), caller=PLATFORM_CALLER)
    ).decode("utf-8-sig")

    assert "'=HYPERLINK(1)" in text


def test_users_table_never_holds_a_plain_password(workspace):
    create_user(workspace, "sam", password="plain text 99")

    assert "plain text 99" not in all_rows(workspace, user, audit_table)


def test_secrets_stay_out_of_reprs():
    new = users.NewUser(login="sam", password="hidden pass 1")
    change = PasswordChange(current="hidden pass 1", new="hidden pass 2")
    issued = Issued(
        id=1,
        kind="token",
        user_id=1,
        prefix="abcd1234",
        name="",
        env=None,
        created_at=datetime.now(UTC),
        expires_at=None,
        secret="flt_abcd1234_hidden",
        csrf_token="hidden csrf",
    )

    assert "hidden" not in repr(new) + repr(change) + repr(issued)
