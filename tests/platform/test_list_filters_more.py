"""Filters on multi-lookups and on formulas by result type, and Chinese filter errors, over HTTP
on both databases."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from formloom.designer_api import meta_routes
from formloom.platform.app import build_app
from formloom.platform.database import Workspace
from formloom.platform.errors import Invalid
from formloom.platform.settings import Settings
from tests.clients import admin_client
from tests.platform.crm_entities import publish

ENV = "production"
LABEL = {"zh": "字段", "en": "Field"}
RECORDS = f"/api/envs/{ENV}/records"
ARTICLES = f"{RECORDS}/article"
ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}
#: Any CJK character: a Chinese message has some.
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def field(name: str, type_: str = "text", **extra: Any) -> dict[str, Any]:
    return {"name": name, "label": LABEL, "type": type_, **extra}


TAG = {"name": "tag", "label": LABEL, "title_field": "name", "fields": [field("name")]}
ARTICLE = {
    "name": "article",
    "label": LABEL,
    "title_field": "title",
    "fields": [
        field("title"),
        field("words", "integer"),
        field("tags", "multi_lookup", options={"entity": "tag"}),
        field("related", "multi_lookup", options={"entity": "article"}),
        field(
            "headline",
            "formula",
            options={"expression": 'title + " (" + string(words) + ")"', "result": "text"},
        ),
        field("long", "formula", options={"expression": "words > 1000", "result": "boolean"}),
        field("double", "formula", options={"expression": "words * 2", "result": "integer"}),
    ],
}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = build_app(settings, routers=[meta_routes.router], run_worker=False)
    with admin_client(app) as test_client:
        for body in (TAG, ARTICLE):
            url = f"/api/envs/{ENV}/meta/entity/{body['name']}"
            assert ok(test_client.put(url, json=body))
            assert ok(test_client.post(url + "/publish"))
        yield test_client


def ok(response: Any) -> Any:
    assert response.status_code < 300, response.text
    return response.json()


def create(client: TestClient, entity: str, **values: Any) -> int:
    return int(ok(client.post(f"{RECORDS}/{entity}", json=values))["id"])


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.text
    return sorted(item["id"] for item in response.json()["items"])


def errors(response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return [(e["path"], e["code"]) for e in response.json()["errors"]]


def where(client: TestClient, condition: dict[str, Any]) -> list[int]:
    return ids(client.post(ARTICLES + "/query", json={"where": condition}))


@pytest.fixture
def blog(client: TestClient) -> tuple[TestClient, dict[str, int]]:
    tag = {name: create(client, "tag", name=name) for name in ("crm", "erp", "bi", "old")}
    made = {
        "both": create(client, "article", title="Both", words=1200, tags=[tag["crm"], tag["erp"]]),
        "crm": create(client, "article", title="CRM", words=300, tags=[tag["crm"]]),
        "old": create(client, "article", title="Old", words=50, tags=[tag["old"]]),
        "none": create(client, "article", title="None", words=800),
    }
    made["linked"] = create(client, "article", title="Linked", words=5, related=[made["crm"]])
    ok(client.delete(f"{RECORDS}/tag/{tag['old']}"))  # in the recycle bin: its links are hidden
    return client, {**{f"tag_{k}": v for k, v in tag.items()}, **made}


# -- multi-lookups ------------------------------------------------------------------------------


def test_multi_lookup_contains_in_and_not_in(blog: tuple[TestClient, dict[str, int]]) -> None:
    client, n = blog

    assert where(client, {"field": "tags", "op": "contains", "value": n["tag_crm"]}) == sorted(
        [n["both"], n["crm"]]
    )
    assert where(client, {"field": "tags", "op": "in", "value": [n["tag_erp"], n["tag_bi"]]}) == [
        n["both"]
    ]
    assert where(client, {"field": "tags", "op": "not_in", "value": [n["tag_crm"]]}) == sorted(
        [n["old"], n["none"], n["linked"]]
    )
    assert where(client, {"field": "related", "op": "contains", "value": n["crm"]}) == [n["linked"]]


def test_multi_lookup_is_empty_counts_live_targets_only(
    blog: tuple[TestClient, dict[str, int]],
) -> None:
    client, n = blog

    empty = where(client, {"field": "tags", "op": "is_empty", "value": True})
    linked = where(client, {"field": "tags", "op": "is_empty", "value": False})
    deleted_tag = where(client, {"field": "tags", "op": "contains", "value": n["tag_old"]})

    # the article whose only tag is in the recycle bin reads as having no tags, and filters agree
    assert ok(client.get(f"{ARTICLES}/{n['old']}"))["tags"] == []
    assert empty == sorted([n["old"], n["none"], n["linked"]])
    assert linked == sorted([n["both"], n["crm"]])
    assert deleted_tag == []


def test_multi_lookup_filters_as_query_parameters_and_in_groups(
    blog: tuple[TestClient, dict[str, int]],
) -> None:
    client, n = blog

    assert ids(client.get(ARTICLES, params={"tags__contains": str(n["tag_crm"])})) == sorted(
        [n["both"], n["crm"]]
    )
    assert ids(client.get(ARTICLES, params={"tags__in": f"{n['tag_erp']},{n['tag_bi']}"})) == [
        n["both"]
    ]
    assert ids(client.get(ARTICLES, params={"tags__is_empty": "false", "words__lt": "1000"})) == [
        n["crm"]
    ]
    negated = {"not": {"or": [{"field": "tags", "op": "is_empty"}, {"field": "words", "op": "gt",
               "value": 1000}]}}  # fmt: skip
    assert where(client, negated) == [n["crm"]]
    assert ids(client.get(ARTICLES, params={"tags__contains": str(n["tag_crm"]), "q": "crm"})) == [
        n["crm"]
    ]


def test_multi_lookup_filters_refuse_bad_values_and_operators(
    blog: tuple[TestClient, dict[str, int]],
) -> None:
    client, _ = blog

    response = client.get(
        ARTICLES, params={"tags__contains": "x", "tags__gt": "1", "tags__in": "0", "tags": "1"}
    )

    assert errors(response) == [
        ("/query/tags__contains", "type"),
        ("/query/tags__gt", "operator_not_allowed"),
        ("/query/tags__in", "invalid_id"),
        ("/query/tags", "operator_not_allowed"),
    ]


# -- formulas by result type --------------------------------------------------------------------


def test_a_text_formula_takes_text_operators(blog: tuple[TestClient, dict[str, int]]) -> None:
    client, n = blog

    assert ids(client.get(ARTICLES, params={"headline__contains": "(12"})) == [n["both"]]
    assert ids(client.get(ARTICLES, params={"headline__starts_with": "crm"})) == [n["crm"]]
    assert errors(client.get(ARTICLES, params={"headline__gt": "A"})) == [
        ("/query/headline__gt", "operator_not_allowed")
    ]


def test_boolean_and_number_formulas_take_their_operators(
    blog: tuple[TestClient, dict[str, int]],
) -> None:
    client, n = blog

    assert ids(client.get(ARTICLES, params={"long": "true"})) == [n["both"]]
    assert ids(client.get(ARTICLES, params={"long__ne": "true"})) == sorted(
        [n["crm"], n["old"], n["none"], n["linked"]]
    )
    assert ids(client.get(ARTICLES, params={"double__between": "100,1000"})) == sorted(
        [n["old"], n["crm"]]
    )
    assert errors(client.get(ARTICLES, params={"long__gt": "false", "double__contains": "1"})) == [
        ("/query/long__gt", "operator_not_allowed"),
        ("/query/double__contains", "operator_not_allowed"),
    ]


# -- Chinese messages ---------------------------------------------------------------------------


def test_every_filter_problem_has_a_chinese_message(
    blog: tuple[TestClient, dict[str, int]],
) -> None:
    client, _ = blog
    condition = {
        "and": [
            {"field": "nope", "op": "eq", "value": 1},
            {"field": "words", "op": "lots", "value": 1},
            {"field": "words", "op": "between", "value": [5, 1]},
            {"field": "words", "op": "ge", "value": "many"},
            {"field": "words", "op": "in", "value": []},
            {"field": "title", "op": "eq"},
            {"field": "title", "op": "eq", "value": ""},
            {"field": "title", "op": "contains", "value": 3},
            {"field": "words", "op": "eq", "value": {"relative": "today"}},
            {"field": "tags", "op": "is_empty", "value": "yes"},
            {"field": "headline", "op": "lt", "value": "x"},
            {"field": "title", "op": "eq", "value": "a", "extra": 1},
            {"or": "x"},
            {"and": [], "or": []},
            7,
        ]
    }

    response = client.post(
        ARTICLES + "/query",
        json={"where": condition, "sort": ["ghost", "tags"], "limit": 0, "q": "x" * 300},
        headers=ZH,
    )

    assert response.status_code == 422, response.text
    problems = response.json()["errors"]
    assert len(problems) >= 18
    assert [p["message"] for p in problems if not CHINESE.search(p["message"])] == []


def test_query_parameter_problems_are_in_chinese_too(
    blog: tuple[TestClient, dict[str, int]],
) -> None:
    client, _ = blog
    params = {
        "where": "{not json",
        "limit": "ten",
        "with_total": "maybe",
        "after": "forged",
        "timezone": "Mars/Base",
        "fields": "ghost",
        "created_at": "last_n_days:0",
        "words__between": "1",
    }

    response = client.get(ARTICLES, params=params, headers=ZH)
    english = client.get(ARTICLES, params=params)

    assert response.status_code == 422
    messages = [p["message"] for p in response.json()["errors"]]
    assert len(messages) == 8
    assert [m for m in messages if not CHINESE.search(m)] == []
    assert [p["path"] for p in response.json()["errors"]] == [
        p["path"] for p in english.json()["errors"]
    ]
    assert not any(CHINESE.search(p["message"]) for p in english.json()["errors"])
    assert CHINESE.search(response.json()["detail"])


def test_a_bad_json_body_is_reported_in_chinese(blog: tuple[TestClient, dict[str, int]]) -> None:
    client, _ = blog

    response = client.post(
        ARTICLES + "/query",
        json={"limit": "many", "sort": 5, "bogus": True, "where": json.loads('{"field": 1}')},
        headers=ZH,
    )

    assert response.status_code == 422
    messages = [p["message"] for p in response.json()["errors"]]
    assert len(messages) == 5
    assert [m for m in messages if not CHINESE.search(m)] == []


def test_a_rollup_condition_cannot_test_a_multi_lookup(client: TestClient) -> None:
    shelf = {
        "name": "shelf",
        "label": LABEL,
        "fields": [
            field(
                "tagged",
                "rollup",
                options={
                    "relation": {"entity": "book", "field": "shelf"},
                    "aggregate": "count",
                    "condition": {"field": "tags", "op": "is_empty", "value": False},
                },
            )
        ],
    }
    book = {
        "name": "book",
        "label": LABEL,
        "fields": [
            field("shelf", "lookup", options={"entity": "shelf"}),
            field("tags", "multi_lookup", options={"entity": "tag"}),
        ],
    }
    workspace: Workspace = client.app.state.workspace  # type: ignore[attr-defined]

    with pytest.raises(Invalid) as refused:
        publish(workspace, book, shelf)

    assert "multi_lookup_not_allowed" in [i.code for i in refused.value.issues]
