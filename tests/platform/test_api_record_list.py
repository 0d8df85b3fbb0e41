"""The list routes over HTTP, on both databases: query parameters, JSON bodies, 422 problems."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from formloom.designer_api import meta_routes
from formloom.platform.app import build_app
from formloom.platform.database import Workspace
from formloom.platform.entity_runtime import load_entity
from formloom.platform.settings import Settings
from tests.clients import admin_client

ENV = "production"
NOW = datetime.now(UTC)
LABEL = {"zh": "字段", "en": "Field"}
URL = f"/api/envs/{ENV}/records/opportunity"


def field(name: str, type_: str = "text", **extra: Any) -> dict[str, Any]:
    return {"name": name, "label": LABEL, "type": type_, **extra}


def choices(*values: str) -> dict[str, Any]:
    return {"choices": [{"value": v, "label": {"en": v}} for v in values]}


ACCOUNT = {"name": "account", "label": LABEL, "title_field": "name", "fields": [field("name")]}
OPPORTUNITY = {
    "name": "opportunity",
    "label": LABEL,
    "title_field": "name",
    "fields": [
        field("name", searchable=True),
        field("amount", "currency"),
        field("stage", "single_select", options=choices("open", "won", "lost")),
        field("tags", "multi_select", options=choices("a", "b", "c")),
        field("won", "boolean"),
        field("close_date", "date"),
        field("account", "lookup", options={"entity": "account"}),
    ],
}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = build_app(settings, routers=[meta_routes.router], run_worker=False)
    with admin_client(app) as test_client:
        for body in (ACCOUNT, OPPORTUNITY):
            url = f"/api/envs/{ENV}/meta/entity/{body['name']}"
            assert client_ok(test_client.put(url, json=body))
            assert client_ok(test_client.post(url + "/publish"))
        yield test_client


def client_ok(response: Any) -> bool:
    assert response.status_code < 300, response.text
    return True


def insert(settings: Settings, entity: str, *rows: dict[str, Any]) -> None:
    workspace = Workspace(settings)
    try:
        with workspace.begin(ENV) as conn:
            runtime = load_entity(conn, namespace=workspace.cache_key, env=ENV, name=entity)
            for row in rows:
                values = {"created_at": NOW, "updated_at": NOW, "version": 1, **row}
                conn.execute(runtime.table.insert().values(values))
    finally:
        workspace.dispose()


@pytest.fixture
def deals(client: TestClient, settings: Settings) -> TestClient:
    today = NOW.astimezone(ZoneInfo("Asia/Shanghai")).date()
    insert(settings, "account", {"name": "北京星辰科技有限公司"})
    insert(
        settings,
        "opportunity",
        {"name": "北京星辰科技有限公司 ERP", "amount": Decimal(150000), "stage": "won",
         "tags": ["a"], "won": True, "close_date": date(2026, 2, 1), "account": 1,
         "owner_id": 1},
        {"name": "Acme CRM", "amount": Decimal(90000), "stage": "won", "tags": ["b"],
         "won": False, "close_date": today, "owner_id": 2},
        {"name": "上海科技 OA", "amount": Decimal(200000), "stage": "open", "tags": ["c"],
         "close_date": date(2026, 3, 31), "owner_id": 3},
        {"name": "No amount", "stage": "lost"},
    )  # fmt: skip
    return client


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def errors(response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return [(e["path"], e["code"]) for e in response.json()["errors"]]


def test_a_list_answers_items_next_and_total(deals: TestClient) -> None:
    response = deals.get(URL, params={"limit": 2, "sort": "-amount,name"})

    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"items", "next", "total", "total_is_exact"}
    assert [i["name"] for i in body["items"]] == ["上海科技 OA", "北京星辰科技有限公司 ERP"]
    assert (body["total"], body["total_is_exact"]) == (4, True)
    following = deals.get(URL, params={"limit": 2, "sort": "-amount,name", "after": body["next"]})
    assert [i["name"] for i in following.json()["items"]] == ["Acme CRM", "No amount"]
    assert following.json()["next"] is None


def test_filters_as_query_parameters(deals: TestClient) -> None:
    query = (
        "stage=won&amount__ge=100000&name__contains=科技&close_date__between=2026-01-01,2026-03-31"
        "&tags__contains=a,b&owner_id__in=1,2"
    )

    assert ids(deals.get(f"{URL}?{query}")) == [1]
    assert ids(deals.get(URL, params={"amount__gte": "90000", "amount__lte": "150000"})) == [2, 1]
    assert ids(deals.get(URL, params={"won": "false"})) == [2]
    assert ids(deals.get(URL, params={"won__is_empty": "true"})) == [4, 3]
    assert ids(deals.get(URL, params={"close_date": "today"})) == [2]
    assert ids(deals.get(URL, params={"q": "科技", "sort": "id"})) == [1, 3]


def test_a_where_condition_in_the_query_string(deals: TestClient) -> None:
    where = {
        "or": [
            {"field": "stage", "op": "eq", "value": "lost"},
            {"field": "amount", "op": "gt", "value": 160000},
        ]
    }

    assert ids(deals.get(URL, params={"where": json.dumps(where), "sort": "id"})) == [3, 4]


def test_a_query_as_a_json_body(deals: TestClient) -> None:
    response = deals.post(
        URL + "/query",
        json={
            "where": {"and": [{"field": "stage", "op": "eq", "value": "won"}]},
            "sort": ["name"],
            "fields": ["name", "account"],
            "limit": 10,
        },
    )

    items = response.json()["items"]
    assert [i["name"] for i in items] == ["Acme CRM", "北京星辰科技有限公司 ERP"]
    assert items[1]["_titles"] == {"account": "北京星辰科技有限公司"}
    assert "amount" not in items[1]
    assert ids(deals.post(URL + "/query")) == [4, 3, 2, 1]


def test_bad_query_parameters_are_all_reported(deals: TestClient) -> None:
    response = deals.get(
        URL,
        params={
            "amount__ge": "lots",
            "color": "red",
            "sort": "-nope",
            "limit": "500",
            "after": "forged",
            "fields": "name,ghost",
            "with_total": "maybe",
        },
    )

    assert errors(response) == [
        ("/query/with_total", "type"),
        ("/query/amount__ge", "type"),
        ("/query/color", "unknown_field"),
        ("/query/sort/0", "unknown_field"),
        ("/query/after", "invalid_cursor"),
        ("/query/limit", "limit_out_of_range"),
        ("/query/fields/1", "unknown_field"),
    ]
    assert response.json()["status"] == 422


def test_malformed_where_and_a_non_number_limit(deals: TestClient) -> None:
    response = deals.get(URL, params={"where": "{not json", "limit": "ten"})

    assert errors(response) == [("/query/where", "invalid_json"), ("/query/limit", "type")]


def test_bad_json_bodies_are_reported_at_their_paths(deals: TestClient) -> None:
    response = deals.post(
        URL + "/query",
        json={
            "where": {
                "and": [
                    {"field": "stage", "op": "eq", "value": "won"},
                    {"field": "amount", "op": "ge", "value": "lots"},
                ]
            },
            "limit": 1000,
            "sort": "name",
            "extra": True,
            "q": 5,
        },
    )

    assert errors(response) == [
        ("/extra", "unexpected_key"),
        ("/q", "type"),
        ("/where/and/1/value", "type"),
        ("/limit", "limit_out_of_range"),
    ]
    assert errors(deals.post(URL + "/query", json=[1])) == [("", "type")]


def test_a_cursor_of_another_sort_is_refused(deals: TestClient) -> None:
    cursor = deals.get(URL, params={"limit": 1, "sort": "name"}).json()["next"]

    response = deals.get(URL, params={"limit": 1, "sort": "-amount", "after": cursor})

    assert errors(response) == [("/query/after", "cursor_sort_mismatch")]


def test_unknown_entities_and_environments_are_not_found(deals: TestClient) -> None:
    assert deals.get("/api/envs/production/records/ghost").status_code == 404
    assert deals.get("/api/envs/nowhere/records/opportunity").status_code == 404


def test_sql_looking_input_over_http_is_harmless(deals: TestClient, settings: Settings) -> None:
    hostile = "'; DROP TABLE opportunity; --"

    assert ids(deals.get(URL, params={"name": hostile})) == []
    assert ids(deals.get(URL, params={"q": "%' OR 1=1 --"})) == []
    assert errors(deals.get(URL, params={"sort": "name; DROP TABLE opportunity"})) == [
        ("/query/sort/0", "unknown_field")
    ]
    assert errors(deals.get(URL, params={'name" OR 1=1 --': "x"})) == [
        ('/query/name" OR 1=1 --', "unknown_field")
    ]
    workspace = Workspace(settings)
    try:
        with workspace.begin(ENV, readonly=True) as conn:
            schema = workspace.env_schema(ENV)
            count = conn.execute(sa.text(f'SELECT count(*) FROM "{schema}".opportunity'))
            assert count.scalar_one() == 4
    finally:
        workspace.dispose()


def test_the_routes_are_described_in_openapi(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    listing = spec["paths"]["/api/envs/{env}/records/{entity}"]["get"]

    names = [p["name"] for p in listing["parameters"]]
    assert {"env", "entity", "where", "sort", "limit", "after", "fields", "q"} <= set(names)
    assert "amount__ge" in listing["description"] or "field__op" in listing["description"]
    assert "/api/envs/{env}/records/{entity}/query" in spec["paths"]
