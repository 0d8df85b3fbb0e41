"""Hostile input against the records API: SQL-looking filters and searches, script labels,
names that try to reach object prototypes. Each is data, never code."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from formloom.designer_api import meta_routes
from formloom.platform.app import build_app
from formloom.platform.settings import Settings
from tests.clients import admin_client
from tests.platform.crm_entities import field, label

ENV = "production"
META = f"/api/envs/{ENV}/meta/entity"
BASE = f"/api/envs/{ENV}/records"
SCRIPT = "<script>alert('x')</script>"
NOTE = {
    "name": "note",
    "label": label(SCRIPT, "<img src=x onerror=alert(1)>"),
    "title_field": "title",
    "fields": [field("title", searchable=True), {**field("body"), "label": label(SCRIPT, SCRIPT)}],
}
SQL_LIKE = [
    "'; DROP TABLE note; --",
    "%' OR '1'='1",
    '" OR ""="',
    "\\'; SELECT pg_sleep(5); --",
    "_%",
]


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = build_app(settings, routers=[meta_routes.router], run_worker=False)
    with admin_client(app) as test_client:
        assert test_client.put(f"{META}/note", json=NOTE).status_code == 200
        assert test_client.post(f"{META}/note/publish").status_code == 200
        for title in ("plain", "100% sure", "under_score"):
            assert test_client.post(f"{BASE}/note", json={"title": title}).status_code == 201
        yield test_client


def test_sql_looking_filters_and_searches_are_plain_values(client: TestClient) -> None:
    for text in SQL_LIKE:
        by_query = client.get(f"{BASE}/note", params={"title": text})
        assert by_query.status_code == 200 and by_query.json()["items"] == [], text
        searched = client.get(f"{BASE}/note", params={"q": text})
        assert searched.status_code == 200 and searched.json()["items"] == [], text
        where = {"field": "title", "op": "contains", "value": text}
        body = client.post(f"{BASE}/note/query", json={"where": where})
        assert body.status_code == 200 and body.json()["items"] == [], text
    # LIKE wildcards in a search match themselves only
    found = client.get(f"{BASE}/note", params={"q": "%"}).json()["items"]
    assert [r["title"] for r in found] == ["100% sure"]
    found = client.get(f"{BASE}/note", params={"q": "_"}).json()["items"]
    assert [r["title"] for r in found] == ["under_score"]
    assert client.get(f"{BASE}/note").json()["total"] == 3  # the table is intact


def test_sql_looking_field_names_are_refused_with_the_reason(client: TestClient) -> None:
    sort = client.get(f"{BASE}/note", params={"sort": "title; DROP TABLE note"})
    assert sort.status_code == 422
    assert sort.json()["errors"][0]["code"] == "unknown_field"
    fields = client.get(f"{BASE}/note", params={"fields": 'title,"id"'})
    assert fields.status_code == 422
    assert client.get(f"{BASE}/note").json()["total"] == 3


def test_script_labels_come_back_as_inert_json_text(client: TestClient) -> None:
    schema = client.get(f"/api/envs/{ENV}/entities/note/schema")
    assert schema.headers["content-type"].startswith("application/json")
    assert schema.json()["properties"]["body"]["title"] == SCRIPT  # data, exactly as written
    document = client.get(f"{META}/note").json()
    assert SCRIPT in str(document)


@pytest.mark.parametrize("name", ["__proto__", "<script>", "id", "x'); DROP TABLE note;--"])
def test_names_that_reach_for_internals_are_refused(client: TestClient, name: str) -> None:
    bad = {**NOTE, "fields": [*NOTE["fields"], field("x") | {"name": name}]}
    response = client.put(f"{META}/note", json=bad)
    assert response.status_code == 200  # drafts are kept, with every problem listed
    errors = response.json()["issues"]
    assert any(e["path"].startswith("/fields/2/name") for e in errors), errors
    published = client.post(f"{META}/note/publish")
    assert published.status_code == 422
    assert client.get(f"{BASE}/note").status_code == 200  # the published version still works
    unknown = client.post(f"{BASE}/note", json={"title": "t", name: 1})
    assert unknown.status_code == 422
