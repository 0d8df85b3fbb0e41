"""The environment's audit trail for administrators: record writes and metadata publishes."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from formloom.designer_api import meta_routes
from formloom.platform.app import build_app
from formloom.platform.settings import Settings
from tests.clients import admin_client
from tests.identity import bearer_headers, create_user
from tests.platform.crm_entities import field, label

ENV = "production"
NOTE = {"name": "note", "label": label("Note", "笔记"), "fields": [field("title")]}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = build_app(settings, routers=[meta_routes.router], run_worker=False)
    with admin_client(app) as test_client:
        test_client.put(f"/api/envs/{ENV}/meta/entity/note", json=NOTE)
        published = test_client.post(
            f"/api/envs/{ENV}/meta/entity/note/publish", json={"comment": "first"}
        )
        assert published.status_code == 200, published.text
        yield test_client


def test_admins_query_record_writes_with_filters_and_export_them(client: TestClient) -> None:
    base = f"/api/envs/{ENV}/records/note"
    first = client.post(base, json={"title": "a"}).json()
    client.post(base, json={"title": "b"})
    client.patch(f"{base}/{first['id']}", json={"title": "c", "version": 1})
    url = f"/api/envs/{ENV}/audit/records"

    everything = client.get(url).json()
    updates = client.get(url, params={"action": "update"}).json()
    one = client.get(url, params={"record_id": first["id"], "limit": 1}).json()
    rest = client.get(url, params={"record_id": first["id"], "after": one["next"]}).json()
    exported = client.get(url, params={"format": "csv", "entity": "note"})

    assert [e["action"] for e in everything["items"]] == ["update", "create", "create"]
    assert [e["changes"] for e in updates["items"]] == [{"title": ["a", "c"]}]
    assert [e["action"] for e in one["items"] + rest["items"]] == ["update", "create"]
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0][:6] == ["id", "at", "actor", "entity", "record_id", "action"]
    assert [r[5] for r in rows[1:]] == ["update", "create", "create"]
    assert all(r[2] == str(first["created_by"]) for r in rows[1:])


def test_metadata_publishes_name_who_published(client: TestClient) -> None:
    entries = client.get(f"/api/envs/{ENV}/audit/metadata", params={"kind": "entity"}).json()
    assert [(e["name"], e["version"], e["comment"]) for e in entries] == [("note", 1, "first")]
    assert entries[0]["published_by"] == "test_admin"


def test_only_administrators_read_the_audit_trail(client: TestClient) -> None:
    workspace = client.app.state.workspace  # type: ignore[attr-defined]
    user = create_user(workspace, "curious")
    headers = bearer_headers(workspace, user)
    for path in ("records", "metadata"):
        response = client.get(f"/api/envs/{ENV}/audit/{path}", headers=headers)
        assert response.status_code == 403, path
