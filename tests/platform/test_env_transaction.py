"""Records requests authenticate inside the service's own transaction.

One connection, one transaction and one statement before the work; yet a bad
credential is still reported before anything else is wrong with the request,
and revocation, deactivation, roles and new entity versions apply on the very
next request.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from formloom.designer_api import meta_routes
from formloom.platform import credentials
from formloom.platform.app import build_app
from formloom.platform.metastore import MetaStore, PublishOptions, SourceDocument
from formloom.platform.settings import Settings
from formloom.platform.tables import credential, user
from tests.identity import bearer_headers, create_user

ENV = "production"
BASE = f"/api/envs/{ENV}/records/note"
NOTE = {
    "name": "note",
    "label": {"en": "Note", "zh": "笔记"},
    "title_field": "title",
    "fields": [{"name": "title", "label": {"en": "Title", "zh": "标题"}, "type": "text"}],
}
READER = {
    "name": "reader",
    "label": {"en": "Reader", "zh": "读者"},
    "entities": {"note": {"read": "all", "create": True}},
}


def publish(app: FastAPI, *documents: tuple[str, dict[str, Any]]) -> None:
    sources = [SourceDocument(kind, body, body["name"]) for kind, body in documents]
    MetaStore(app.state.workspace).apply(ENV, sources, PublishOptions())


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    built = build_app(settings, routers=[meta_routes.router], run_worker=False)
    publish(built, ("entity", NOTE), ("role", READER))
    return built


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def admin(app: FastAPI) -> dict[str, str]:
    return bearer_headers(app.state.workspace, create_user(app.state.workspace, "boss", admin=True))


@pytest.fixture
def reader(app: FastAPI) -> tuple[int, dict[str, str]]:
    workspace = app.state.workspace
    user_id = create_user(workspace, "rita", roles={ENV: ["reader"]})
    return user_id, bearer_headers(workspace, user_id)


class Traffic:
    """Connections checked out and statements sent while counting."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.checkouts = 0
        self.statements: list[str] = []

    def _checkout(self, *_: Any) -> None:
        self.checkouts += 1

    def _statement(self, *args: Any) -> None:
        self.statements.append(args[2])

    def __enter__(self) -> Traffic:
        sa.event.listen(self.engine, "checkout", self._checkout)
        sa.event.listen(self.engine, "before_cursor_execute", self._statement)
        return self

    def __exit__(self, *_: Any) -> None:
        sa.event.remove(self.engine, "checkout", self._checkout)
        sa.event.remove(self.engine, "before_cursor_execute", self._statement)


def test_a_read_authenticates_in_the_transaction_of_its_work(
    app: FastAPI, client: TestClient, admin: dict[str, str], reader: tuple[int, dict[str, str]]
) -> None:
    # given
    created = client.post(BASE, json={"title": "hello"}, headers=admin).json()
    for headers in (admin, reader[1]):
        client.get(f"{BASE}/{created['id']}", headers=headers)  # last use recorded, caches warm

        # when
        with Traffic(app.state.workspace.engine) as traffic:
            response = client.get(f"{BASE}/{created['id']}", headers=headers)

        # then: one connection; the credential, the roles and the entity's version in one
        # statement, then the record
        assert response.status_code == 200, response.text
        assert response.json()["title"] == "hello"
        assert traffic.checkouts == 1
        work = [s for s in traffic.statements if s.lstrip().upper().startswith("SELECT")]
        assert len(work) == 2, work


@pytest.mark.parametrize(
    ("method", "path", "extra"),
    [
        ("GET", f"{BASE}/not-a-number", {}),
        ("GET", f"{BASE}/recycle-bin?limit=0", {}),
        ("PATCH", f"{BASE}/1", {"headers": {"If-Match": "nonsense"}, "json": {}}),
        ("GET", f"{BASE}?limit=0", {}),
        ("GET", "/api/envs/nowhere/records/note/1", {}),
        ("GET", f"/api/envs/{ENV}/records/nothing/1", {}),
    ],
)
def test_a_bad_credential_is_reported_before_anything_else(
    client: TestClient, method: str, path: str, extra: dict[str, Any]
) -> None:
    headers = {"Authorization": "Bearer flt_00000000_not-a-real-token", **extra.get("headers", {})}

    response = client.request(method, path, headers=headers, json=extra.get("json"))

    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["code"] == "unauthenticated"


def test_without_a_credential_a_records_request_is_401_at_once(client: TestClient) -> None:
    response = client.get(f"{BASE}/1")

    assert response.status_code == 401
    assert "POST /api/auth/login" in response.json()["detail"]


def test_a_good_credential_then_meets_the_other_errors(
    client: TestClient, admin: dict[str, str]
) -> None:
    assert client.get(f"{BASE}/not-a-number", headers=admin).status_code == 422
    assert client.get("/api/envs/nowhere/records/note/1", headers=admin).status_code == 404
    missing = client.get(f"/api/envs/{ENV}/records/nothing/1", headers=admin)
    assert missing.status_code == 404 and "`nothing`" in missing.json()["detail"]


def test_revocation_and_deactivation_apply_to_the_next_request(
    app: FastAPI, client: TestClient, reader: tuple[int, dict[str, str]]
) -> None:
    user_id, headers = reader
    assert client.get(BASE, headers=headers).status_code == 200
    workspace = app.state.workspace

    with workspace.begin() as conn:
        conn.execute(sa.update(user).where(user.c.id == user_id).values(active=False))
    deactivated = client.get(BASE, headers=headers)
    with workspace.begin() as conn:
        conn.execute(sa.update(user).where(user.c.id == user_id).values(active=True))
        conn.execute(sa.update(credential).values(revoked_at=datetime.now(UTC)))
    revoked = client.post(BASE, json={"title": "x"}, headers=headers)

    assert deactivated.status_code == 401 and "deactivated" in deactivated.json()["detail"]
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]


def test_roles_and_entity_versions_apply_to_the_next_request(
    app: FastAPI, client: TestClient, reader: tuple[int, dict[str, str]]
) -> None:
    _, headers = reader
    assert client.post(BASE, json={"title": "one"}, headers=headers).status_code == 201

    # when: the role loses create, and the entity gains a field
    publish(
        app,
        ("role", {**READER, "entities": {"note": {"read": "all"}}}),
        (
            "entity",
            {
                **NOTE,
                "fields": [
                    *NOTE["fields"],
                    {"name": "body", "label": {"en": "Body", "zh": "正文"}, "type": "text"},
                ],
            },
        ),
    )

    # then
    refused = client.post(BASE, json={"title": "two"}, headers=headers)
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    listed = client.get(BASE, headers=headers).json()["items"]
    assert listed[0]["title"] == "one" and "body" in listed[0]


def test_the_use_of_a_credential_is_recorded_by_records_requests(
    app: FastAPI, client: TestClient, admin: dict[str, str]
) -> None:
    workspace = app.state.workspace
    secret = admin["Authorization"].removeprefix("Bearer ")
    hashed = credentials.secret_hash(secret)
    a_while_ago = datetime.now(UTC) - timedelta(minutes=5)
    with workspace.begin() as conn:
        conn.execute(
            sa.update(credential)
            .where(credential.c.secret_hash == hashed)
            .values(last_used_at=a_while_ago)
        )

    client.get(f"{BASE}/1", headers=admin)  # 404, but authenticated

    with workspace.begin(readonly=True) as conn:
        used = conn.execute(
            sa.select(credential.c.last_used_at).where(credential.c.secret_hash == hashed)
        ).scalar_one()
    assert used > a_while_ago
