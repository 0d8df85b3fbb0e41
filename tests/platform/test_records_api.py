"""The records REST API on both databases: status codes, headers, problem+json bodies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from formloom.designer_api import meta_routes
from formloom.platform.app import build_app
from formloom.platform.settings import Settings
from tests.clients import admin_client
from tests.platform.crm_entities import ALL, ENV, FULL_DEAL, FULL_DEAL_JSON, publish

BASE = f"/api/envs/{ENV}"
ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = build_app(settings, routers=[meta_routes.router], run_worker=False)
    publish(app.state.workspace, *ALL)
    with admin_client(app) as test_client:
        yield test_client


def create(client: TestClient, entity: str, **values: Any) -> dict[str, Any]:
    response = client.post(f"{BASE}/records/{entity}", json=values)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def errors(response: Any) -> list[tuple[str, str]]:
    assert response.headers["content-type"].startswith("application/problem+json")
    return [(e["path"], e["code"]) for e in response.json()["errors"]]


def test_create_and_read(client: TestClient) -> None:
    # when
    response = client.post(f"{BASE}/records/deal", json=FULL_DEAL)

    # then
    assert response.status_code == 201
    deal = response.json()
    assert response.headers["location"] == f"{BASE}/records/deal/{deal['id']}"
    assert response.headers["etag"] == '"1"'
    assert {k: deal[k] for k in FULL_DEAL_JSON} == FULL_DEAL_JSON
    read = client.get(f"{BASE}/records/deal/{deal['id']}")
    assert read.json() == deal
    assert read.headers["etag"] == '"1"'


def test_entity_schema_follows_accept_language(client: TestClient) -> None:
    english = client.get(f"{BASE}/entities/deal/schema").json()
    chinese = client.get(f"{BASE}/entities/deal/schema", headers=ZH).json()

    assert (english["title"], chinese["title"]) == ("Deal", "商机")
    assert chinese["properties"]["amount"]["title"] == "金额"
    assert client.get(f"{BASE}/entities/nothing/schema").status_code == 404


def test_bad_input_is_422_with_every_error(client: TestClient) -> None:
    response = client.post(
        f"{BASE}/records/deal",
        json={
            "title": "x" * 256,
            "quantity": 1.5,
            "phone": "555",
            "stage": "maybe",
            "account": 99,
            "colour": "red",
            "created_at": "2026-01-01T00:00:00Z",
        },
    )

    assert response.status_code == 422
    assert errors(response) == [
        ("/title", "too_long"),
        ("/quantity", "type"),
        ("/phone", "invalid_phone"),
        ("/stage", "unknown_choice"),
        ("/colour", "unknown_field"),
        ("/created_at", "read_only"),
        ("/account", "unknown_record"),
    ]
    assert client.get(f"{BASE}/records/deal/1").status_code == 404


def test_messages_in_chinese(client: TestClient) -> None:
    response = client.post(f"{BASE}/records/deal", json={"phone": "555", "account": 99}, headers=ZH)

    messages = {e["path"]: e["message"] for e in response.json()["errors"]}
    assert messages["/title"] == "标题为必填项"
    assert messages["/phone"].startswith("电话：“555”不是有效的电话号码")
    assert messages["/account"] == "客户：`account` 记录 99 不存在，请选择已有的记录"


def test_a_body_that_is_not_an_object_is_422(client: TestClient) -> None:
    response = client.post(f"{BASE}/records/deal", json=[1, 2])

    assert response.status_code == 422
    assert errors(response) == [("", "type")]


def test_patch_with_if_match_and_etag(client: TestClient) -> None:
    deal = create(client, "deal", title="T", amount=1)

    response = client.patch(
        f"{BASE}/records/deal/{deal['id']}", json={"amount": 2}, headers={"If-Match": '"1"'}
    )

    assert response.status_code == 200
    assert response.json()["amount"] == 2
    assert response.headers["etag"] == '"2"'
    by_body = client.patch(f"{BASE}/records/deal/{deal['id']}", json={"amount": 3, "version": 2})
    assert by_body.json()["version"] == 3


def test_a_stale_update_is_409_with_the_current_record(client: TestClient) -> None:
    deal = create(client, "deal", title="T")
    current = client.patch(f"{BASE}/records/deal/{deal['id']}", json={"title": "A", "version": 1})

    response = client.put(
        f"{BASE}/records/deal/{deal['id']}", json={"title": "B"}, headers={"If-Match": '"1"'}
    )

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "stale_version"
    assert body["current"] == current.json()
    assert response.headers["etag"] == '"2"'
    assert errors(response) == [("/version", "stale_version")]


def test_an_update_without_version_is_428(client: TestClient) -> None:
    deal = create(client, "deal", title="T")

    response = client.patch(f"{BASE}/records/deal/{deal['id']}", json={"title": "B"})

    assert response.status_code == 428
    assert "If-Match" in response.json()["detail"]
    bad = client.patch(
        f"{BASE}/records/deal/{deal['id']}", json={"title": "B"}, headers={"If-Match": "*"}
    )
    assert bad.status_code == 422
    assert errors(bad) == [("/headers/If-Match", "invalid_if_match")]


def test_put_replaces_and_patch_merges(client: TestClient) -> None:
    deal = create(client, "deal", title="T", amount=5, won=True)
    url = f"{BASE}/records/deal/{deal['id']}"

    patched = client.patch(url, json={"version": 1, "won": False}).json()
    put = client.put(url, json={"version": 2, "title": "New"}).json()

    assert (patched["amount"], patched["won"]) == (5, False)
    assert (put["title"], put["amount"], put["won"], put["stage"]) == ("New", None, None, None)
    missing = client.put(url, json={"version": 3, "amount": 1})
    assert missing.status_code == 422
    assert errors(missing) == [("/title", "required")]


def test_duplicate_is_422_naming_the_record(client: TestClient) -> None:
    first = create(client, "account", name="Acme")

    response = client.post(f"{BASE}/records/account", json={"name": "Acme"})

    assert response.status_code == 422
    assert errors(response) == [("/name", "duplicate")]
    assert f"`account` {first['id']}" in response.json()["errors"][0]["message"]


def test_delete_restore_and_purge(client: TestClient) -> None:
    deal = create(client, "deal", title="T")
    url = f"{BASE}/records/deal/{deal['id']}"

    # soft delete
    deleted = client.delete(url)
    assert deleted.status_code == 200
    assert deleted.json()["deleted_at"] is not None
    gone = client.get(url)
    assert gone.status_code == 404
    assert gone.json()["code"] == "in_recycle_bin"
    assert f"{url}/restore" in gone.json()["detail"]
    assert client.patch(url, json={"version": 2, "title": "x"}).status_code == 404
    assert [r["id"] for r in client.get(f"{BASE}/records/deal/recycle-bin").json()["items"]] == [
        deal["id"]
    ]

    # restore
    restored = client.post(f"{url}/restore")
    assert restored.status_code == 200
    assert restored.headers["etag"] == '"3"'
    assert client.get(url).status_code == 200

    # purge only from the recycle bin
    assert client.delete(f"{url}?purge=true").status_code == 409
    client.delete(url, headers={"If-Match": '"3"'})
    assert client.delete(f"{url}?purge=true").status_code == 204
    missing = client.get(url)
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    actions = [e["action"] for e in client.get(f"{url}/history").json()["items"]]
    assert actions == ["purge", "delete", "restore", "delete", "create"]


def test_delete_with_a_stale_if_match_is_409(client: TestClient) -> None:
    deal = create(client, "deal", title="T")
    client.patch(f"{BASE}/records/deal/{deal['id']}", json={"title": "A", "version": 1})

    response = client.delete(f"{BASE}/records/deal/{deal['id']}", headers={"If-Match": '"1"'})

    assert response.status_code == 409
    assert response.json()["current"]["title"] == "A"


def test_restricted_delete_is_409_and_explains(client: TestClient) -> None:
    account = create(client, "account", name="Acme")
    deal = create(client, "deal", title="T", account=account["id"])

    response = client.delete(f"{BASE}/records/account/{account['id']}", headers=ZH)

    assert response.status_code == 409
    assert errors(response) == [("", "delete_restricted")]
    assert f"编号 {deal['id']}" in response.json()["detail"]


def test_bulk_success(client: TestClient) -> None:
    deal = create(client, "deal", title="T")

    response = client.post(
        f"{BASE}/records/deal/bulk",
        json={
            "create": [{"title": "A"}, {"title": "B"}],
            "update": [{"id": deal["id"], "version": 1, "won": True}],
        },
    )

    assert response.status_code == 200
    body = response.json()
    assert [r["title"] for r in body["created"]] == ["A", "B"]
    assert body["updated"][0]["won"] is True
    assert body["deleted"] == []


def test_bulk_failure_lists_row_errors_and_writes_nothing(client: TestClient) -> None:
    deal = create(client, "deal", title="T")

    response = client.post(
        f"{BASE}/records/deal/bulk",
        json={
            "create": [{"title": "A"}, {"title": "B", "amount": "lots"}],
            "update": [{"id": deal["id"], "version": 1, "stage": "maybe"}],
            "delete": [{"id": 404}],
        },
        headers=ZH,
    )

    assert response.status_code == 422
    assert errors(response) == [
        ("/create/1/amount", "type"),
        ("/update/0/stage", "unknown_choice"),
        ("/delete/0", "not_found"),
    ]
    assert response.json()["errors"][0]["message"].startswith("金额：应为数字")
    assert client.get(f"{BASE}/records/deal/{deal['id'] + 1}").status_code == 404


def test_bulk_stale_rows_are_409_with_current(client: TestClient) -> None:
    deal = create(client, "deal", title="T")
    client.patch(f"{BASE}/records/deal/{deal['id']}", json={"title": "A", "version": 1})

    response = client.post(
        f"{BASE}/records/deal/bulk",
        json={"update": [{"id": deal["id"], "version": 1, "title": "B"}]},
    )

    assert response.status_code == 409
    assert response.json()["current"]["/update/0"]["title"] == "A"


def test_bulk_limits(client: TestClient) -> None:
    too_many = client.post(f"{BASE}/records/deal/bulk", json={"create": [{"title": "x"}] * 1001})
    wrong_shape = client.post(f"{BASE}/records/deal/bulk", json={"insert": []})

    assert too_many.status_code == 422
    assert errors(too_many) == [("", "batch_too_large")]
    assert wrong_shape.status_code == 422


def test_history_shows_field_changes(client: TestClient) -> None:
    deal = create(client, "deal", title="T", amount=5)
    client.patch(f"{BASE}/records/deal/{deal['id']}", json={"amount": 6, "version": 1})

    entries = client.get(f"{BASE}/records/deal/{deal['id']}/history").json()["items"]

    assert [e["action"] for e in entries] == ["update", "create"]
    assert entries[0]["changes"] == {"amount": [5, 6]}
    assert entries[0]["actor"] == entries[1]["actor"] == deal["created_by"] is not None
    assert client.get(f"{BASE}/records/deal/99/history").status_code == 404


def test_unknown_environment_and_entity(client: TestClient) -> None:
    assert client.get("/api/envs/nowhere/records/deal/1").status_code == 404
    unknown = client.post(f"{BASE}/records/nothing", json={})
    assert unknown.status_code == 404
    assert "`nothing`" in unknown.json()["detail"]
