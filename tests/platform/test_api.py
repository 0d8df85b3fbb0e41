"""The HTTP API: environments and the metadata lifecycle, on both databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect

from formloom.designer_api.app import create_app
from formloom.platform.database import Workspace
from formloom.platform.settings import Settings
from tests.clients import admin_client

ACCOUNT = {
    "name": "account",
    "label": {"zh": "客户", "en": "Account"},
    "title_field": "company",
    "fields": [
        {"name": "company", "label": {"zh": "公司名称", "en": "Company"}, "type": "text"},
        {
            "name": "level",
            "label": {"zh": "级别", "en": "Level"},
            "type": "single_select",
            "options": {"choices": [{"value": "a", "label": {"zh": "A", "en": "A"}}]},
        },
    ],
}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with admin_client(create_app(settings, run_worker=False)) as test_client:
        yield test_client


def table_columns(settings: Settings, env: str, table: str) -> list[str]:
    workspace = Workspace(settings)
    try:
        with workspace.begin(env) as conn:
            inspector = inspect(conn)
            schema = workspace.env_schema(env)
            if not inspector.has_table(table, schema=schema):
                return []
            return [c["name"] for c in inspector.get_columns(table, schema=schema)]
    finally:
        workspace.dispose()


def test_environments_lifecycle(client):
    # given a fresh workspace
    assert [e["name"] for e in client.get("/api/environments").json()] == ["production"]
    # when a sandbox is created
    created = client.post("/api/environments", json={"name": "sandbox_1"})
    # then it is listed, can be read and dropped
    assert created.status_code == 201
    assert client.get("/api/environments/sandbox_1").json()["name"] == "sandbox_1"
    assert client.delete("/api/environments/sandbox_1").status_code == 204
    assert client.get("/api/environments/sandbox_1").status_code == 404


def test_environment_errors_are_problem_json(client):
    missing = client.get("/api/environments/nowhere")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert "`nowhere`" in missing.json()["detail"]
    bad = client.post("/api/environments", json={"name": "Bad Name!"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["path"] == "/name"
    assert client.delete("/api/environments/production").status_code == 409
    client.post("/api/environments", json={"name": "twice"})
    assert client.post("/api/environments", json={"name": "twice"}).status_code == 409


def test_meta_schema_is_served(client):
    assert "entity" in client.get("/api/meta/schemas").json()["kinds"]
    schema = client.get("/api/meta/schemas/entity").json()
    assert schema["title"] == "entity"
    assert "text" in schema["$defs"]["FieldDef"]["properties"]["type"]["enum"]
    assert client.get("/api/meta/schemas/nope").status_code == 404


def test_draft_publish_versions_rollback(client, settings):
    base = "/api/envs/production/meta/entity/account"
    # a draft is saved and reported valid; no table yet
    saved = client.put(base, json=ACCOUNT)
    assert saved.status_code == 200
    assert saved.json()["issues"] == []
    assert table_columns(settings, "production", "account") == []
    # publishing creates the table
    published = client.post(base + "/publish", json={})
    assert published.json() == {"kind": "entity", "name": "account", "version": 1, "changed": True}
    assert "company" in table_columns(settings, "production", "account")
    # a second version adds a field
    v2 = {
        **ACCOUNT,
        "fields": [
            *ACCOUNT["fields"],
            {"name": "website", "label": {"zh": "网站", "en": "Website"}, "type": "url"},
        ],
    }
    client.put(base, json=v2)
    assert client.post(base + "/publish").json()["version"] == 2
    assert "website" in table_columns(settings, "production", "account")
    # history and a rollback
    assert [v["version"] for v in client.get(base + "/versions").json()] == [1, 2]
    rolled = client.post(base + "/rollback", json={"version": 1})
    assert rolled.json()["version"] == 3
    state = client.get(base).json()
    assert [f["name"] for f in state["published"]["fields"]] == ["company", "level"]
    assert [r["field"]["name"] for r in state["published"]["retired_fields"]] == ["website"]
    assert client.get(base + "/versions/1").json()["name"] == "account"


def test_invalid_documents_list_every_error(client):
    base = "/api/envs/production/meta/entity/account"
    bad = {
        **ACCOUNT,
        "label": {"zh": "客户"},
        "fields": [
            {"name": "company", "label": {"zh": "a", "en": "b"}, "type": "txt"},
            {"name": "Amount", "label": {"zh": "a", "en": "b"}, "type": "integer"},
        ],
    }
    saved = client.put(base, json=bad)
    paths = {e["path"] for e in saved.json()["issues"]}
    assert {"/label", "/fields/0/type", "/fields/1/name"} <= paths
    refused = client.post(base + "/publish")
    assert refused.status_code == 422
    assert {e["path"] for e in refused.json()["errors"]} == paths
    assert client.get(base + "/versions").status_code == 404


def test_unknown_environment_and_kind(client):
    assert client.put("/api/envs/nowhere/meta/entity/account", json=ACCOUNT).status_code == 404
    response = client.put("/api/envs/production/meta/widget/x", json={})
    assert response.status_code == 404
    assert "widget" in response.json()["detail"]


def test_name_in_body_must_match_url(client):
    response = client.put("/api/envs/production/meta/entity/contact", json=ACCOUNT)
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "name_mismatch"


def test_environments_are_isolated(client, settings):
    client.post("/api/environments", json={"name": "sandbox"})
    client.put("/api/envs/sandbox/meta/entity/account", json=ACCOUNT)
    client.post("/api/envs/sandbox/meta/entity/account/publish")
    assert "company" in table_columns(settings, "sandbox", "account")
    assert table_columns(settings, "production", "account") == []
    assert client.get("/api/envs/production/meta/entity/account").status_code == 404
    assert client.get("/api/envs/production/meta").json() == []


def test_remove_is_soft_then_purge(client, settings):
    base = "/api/envs/production/meta/entity/account"
    client.put(base, json=ACCOUNT)
    client.post(base + "/publish")
    assert client.delete(base).status_code == 200
    assert client.get(base).json()["status"] == "removed"
    assert "company" in table_columns(settings, "production", "account")
    assert client.delete(base + "?purge=true").status_code == 200
    assert table_columns(settings, "production", "account") == []


def test_api_docs_use_vendored_assets(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/static/swagger-ui/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    assert client.get("/static/swagger-ui/swagger-ui-bundle.js").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "formloom"


def test_openapi_describes_published_entities_with_their_fields(client):
    # given: no entity yet, then one published
    assert "/api/envs/production/records/account" not in client.get("/openapi.json").json()["paths"]
    client.put("/api/envs/production/meta/entity/account", json=ACCOUNT)
    client.post("/api/envs/production/meta/entity/account/publish")
    # then: its paths and schema (real fields) appear
    spec = client.get("/openapi.json").json()
    assert "/api/envs/production/records/account/{id}" in spec["paths"]
    schema = spec["components"]["schemas"]["production.account"]
    assert schema["properties"]["level"]["anyOf"][0]["enum"] == ["a"]
    # and another environment's document has no such paths
    client.post("/api/environments", json={"name": "sandbox"})
    other = client.get("/api/envs/sandbox/openapi.json").json()
    assert "/api/envs/production/records/account" not in other["paths"]
    assert client.get("/api/envs/nowhere/openapi.json").status_code == 404
