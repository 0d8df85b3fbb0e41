"""The save pipeline on both databases: conditional required fields, validation rules,
duplicate rules (warn and block), every error of a request together, nothing half-written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from formloom.designer_api import meta_routes
from formloom.platform import records
from formloom.platform.app import build_app
from formloom.platform.database import Workspace
from formloom.platform.errors import Invalid, PlatformError
from formloom.platform.record_duplicates import DuplicateWarning
from formloom.platform.record_errors import BatchRejected
from formloom.platform.settings import Settings
from tests.clients import admin_client
from tests.platform.crm_entities import ENV, choices, field, label, publish
from tests.principals import SYSTEM

ACCOUNT = {
    "name": "account",
    "label": label("Account", "客户"),
    "title_field": "name",
    "fields": [
        {"name": "name", "label": label("Company", "公司名称"), "type": "text", "required": True},
        {"name": "phone", "label": label("Phone", "电话"), "type": "phone"},
        field("email", "email"),
        field("code"),
    ],
    "duplicate_rules": [
        {"name": "same_name", "fields": ["name"], "match": "normalised", "action": "warn"},
        {
            "name": "same_phone",
            "fields": ["phone"],
            "action": "block",
            "message": {"zh": "电话号码已被其他客户使用", "en": "The phone number is taken"},
        },
        {
            "name": "same_email_and_code",
            "fields": ["email", "code"],
            "match": "normalised",
            "action": "block",
        },
    ],
}

DEAL = {
    "name": "deal",
    "label": label("Deal", "商机"),
    "title_field": "title",
    "fields": [
        {"name": "title", "label": label("Title", "标题"), "type": "text", "required": True},
        {
            "name": "amount",
            "label": label("Amount", "金额"),
            "type": "decimal",
            "options": {"precision": 12, "scale": 2},
        },
        field("discount", "decimal", options={"precision": 5, "scale": 2}),
        field("stage", "single_select", options=choices("open", "won", "lost")),
        {
            "name": "reason",
            "label": label("Win reason", "赢单原因"),
            "type": "text",
            "required_when": {"field": "stage", "op": "eq", "value": "won"},
        },
        field(
            "loss_review",
            required_when={
                "and": [
                    {"field": "stage", "op": "eq", "value": "lost"},
                    {"field": "amount", "op": "ge", "value": 10000},
                ]
            },
        ),
        field("close_date", "date"),
    ],
    "validation_rules": [
        {
            "name": "no_negative_amount",
            "when": "has(amount) && amount < 0",
            "message": {"zh": "金额不能为负数", "en": "The amount must not be negative"},
            "field": "amount",
        },
        {
            "name": "close_after_creation",
            "when": "has(close_date) && close_date < created_at - duration('24h')",
            "message": {
                "zh": "结束日期必须晚于创建日期",
                "en": "Close date must be after the creation date",
            },
            "field": "close_date",
        },
        {
            "name": "discount_limit",
            "when": "has(discount) && discount > 50.0",
            "message": {"zh": "折扣不能超过 50%", "en": "A discount above 50% needs approval"},
        },
    ],
}


@pytest.fixture
def crm(workspace: Workspace) -> Workspace:
    publish(workspace, ACCOUNT, DEAL)
    return workspace


@pytest.fixture(autouse=True)
def _no_leftover_connections(workspace: Workspace) -> Iterator[None]:
    yield
    assert workspace.engine.pool.checkedout() == 0


def create(ws: Workspace, entity: str, lang: str = "en", **values: Any) -> dict[str, Any]:
    return records.create_record(
        ws, env=ENV, entity=entity, payload=values, lang=lang, principal=SYSTEM
    )


def patch(ws: Workspace, entity: str, record: dict[str, Any], **values: Any) -> dict[str, Any]:
    current = records.get_record(
        ws, env=ENV, entity=entity, record_id=record["id"], principal=SYSTEM
    )
    return records.update_record(
        ws,
        env=ENV,
        entity=entity,
        record_id=record["id"],
        payload={"version": current["version"], **values},
        principal=SYSTEM,
    )


def refused(write: Any) -> PlatformError:
    with pytest.raises(PlatformError) as caught:
        write()
    return caught.value


def issues(error: PlatformError) -> list[tuple[str, str]]:
    return [(i.path, i.code) for i in error.issues]


def count(ws: Workspace, entity: str) -> int:
    with ws.begin(ENV, readonly=True) as conn:
        table = sa.Table(entity, sa.MetaData(), autoload_with=conn, schema=ws.env_schema(ENV))
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


# -- validation rules ----------------------------------------------------------------------------


def test_a_validation_rule_blocks_the_save_with_its_message(crm: Workspace) -> None:
    english = refused(lambda: create(crm, "deal", title="T", amount=-5))
    chinese = refused(lambda: create(crm, "deal", "zh", title="T", amount=-5))

    assert english.status == 422
    assert [(i.path, i.code, i.message) for i in english.issues] == [
        ("/amount", "validation_rule", "The amount must not be negative")
    ]
    assert chinese.issues[0].message == "金额不能为负数"
    assert count(crm, "deal") == 0


def test_a_rule_without_a_field_points_at_the_record(crm: Workspace) -> None:
    error = refused(lambda: create(crm, "deal", title="T", discount=60))

    assert [(i.path, i.message) for i in error.issues] == [
        ("", "A discount above 50% needs approval")
    ]


def test_rules_see_the_record_as_it_would_be_saved(crm: Workspace) -> None:
    # given
    deal = create(crm, "deal", title="T", amount=10)

    # when: each change alone is fine with the stored values, or not
    fine = patch(crm, "deal", deal, discount=20)
    too_much = refused(lambda: patch(crm, "deal", deal, discount=51))
    too_early = refused(lambda: patch(crm, "deal", deal, close_date="2020-01-01"))

    # then
    assert fine["discount"] == 20
    assert issues(too_much) == [("", "validation_rule")]
    assert issues(too_early) == [("/close_date", "validation_rule")]  # system field created_at


# -- conditional required ------------------------------------------------------------------------


def test_required_when_applies_on_create_and_update(crm: Workspace) -> None:
    # when
    missing = refused(lambda: create(crm, "deal", "zh", title="T", stage="won"))
    deal = create(crm, "deal", title="T", stage="open")
    on_update = refused(lambda: patch(crm, "deal", deal, stage="won"))
    won = patch(crm, "deal", deal, stage="won", reason="Best price")
    emptied = refused(lambda: patch(crm, "deal", won, reason=None))

    # then
    assert [(i.path, i.code, i.message) for i in missing.issues] == [
        ("/reason", "required", "赢单原因为必填项（符合该字段的必填条件）")
    ]
    assert issues(on_update) == issues(emptied) == [("/reason", "required")]
    assert won["reason"] == "Best price"


def test_required_when_with_a_group_condition(crm: Workspace) -> None:
    small = create(crm, "deal", title="Small", stage="lost", amount=100)
    big = refused(lambda: create(crm, "deal", title="Big", stage="lost", amount=20000))

    assert small["loss_review"] is None
    assert issues(big) == [("/loss_review", "required")]


def test_every_error_of_a_request_comes_back_together(crm: Workspace) -> None:
    # when: payload errors, a conditional required field and two rules, all at once
    error = refused(
        lambda: create(
            crm,
            "deal",
            title="x" * 300,
            stage="won",
            discount=60,
            close_date="2020-01-01",
            colour="red",
        )
    )

    # then
    assert sorted(issues(error)) == sorted(
        [
            ("/title", "too_long"),
            ("/colour", "unknown_field"),
            ("/reason", "required"),
            ("/close_date", "validation_rule"),
            ("", "validation_rule"),
        ]
    )
    assert count(crm, "deal") == 0


# -- duplicate rules -----------------------------------------------------------------------------


def test_a_warn_rule_needs_confirmation(crm: Workspace) -> None:
    # given
    acme = create(crm, "account", name="Acme  Ltd")

    # when
    with pytest.raises(DuplicateWarning) as caught:
        create(crm, "account", name=" acme ltd ")
    confirmed = records.create_record(
        crm,
        env=ENV,
        entity="account",
        payload={"name": " acme ltd "},
        confirm_duplicates=True,
        principal=SYSTEM,
    )

    # then
    warning = caught.value
    assert warning.status == 409
    assert issues(warning) == [("/name", "duplicate_warning")]
    assert warning.details == {
        "duplicates": [
            {
                "rule": "same_name",
                "action": "warn",
                "fields": ["name"],
                "records": [{"id": acme["id"], "title": "Acme  Ltd"}],
            }
        ]
    }
    assert "X-Formloom-Confirm-Duplicates: true" in warning.message
    assert confirmed["name"] == "acme ltd"
    assert count(crm, "account") == 2


def test_normalised_matching_folds_case_and_spaces_in_any_script(crm: Workspace) -> None:
    create(crm, "account", name="Straße Café")
    create(crm, "account", name="北京星辰科技有限公司")

    for name in ("STRASSE  café", "straße CAFÉ", "北京星辰科技有限公司 "):
        with pytest.raises(DuplicateWarning):
            create(crm, "account", name=name)
    assert create(crm, "account", name="北京星辰科技")["name"] == "北京星辰科技"


def test_a_block_rule_refuses_the_duplicate_listing_ids_and_titles(crm: Workspace) -> None:
    # given
    first = create(crm, "account", name="First", phone="13800138000")

    # when: the same number written differently
    error = refused(lambda: create(crm, "account", name="Second", phone="+86 138-0013-8000"))
    chinese = refused(lambda: create(crm, "account", "zh", name="Third", phone="13800138000"))

    # then
    assert error.status == 422
    assert [(i.path, i.code, i.message) for i in error.issues] == [
        (
            "/phone",
            "duplicate_record",
            f"The phone number is taken (`account` {first['id']} (First))",
        )
    ]
    assert (
        chinese.issues[0].message == f"电话号码已被其他客户使用（`account` {first['id']} (First)）"
    )


def test_a_rule_over_several_fields_needs_all_of_them_to_match(crm: Workspace) -> None:
    create(crm, "account", name="A", email="sales@acme.com", code="X1")

    other_code = create(crm, "account", name="B", email="Sales@ACME.com", code="X2")
    no_code = create(crm, "account", name="C", email="sales@acme.com")
    error = refused(lambda: create(crm, "account", name="D", email="SALES@acme.com", code=" x1"))

    assert other_code["code"] == "X2" and no_code["code"] is None
    assert issues(error) == [("/email", "duplicate_record")]
    assert "Email + Code match existing `account` record(s) 1 (A)" in error.issues[0].message


def test_records_in_the_recycle_bin_are_not_duplicates(crm: Workspace) -> None:
    gone = create(crm, "account", name="Gone", phone="13800138000")
    records.delete_record(crm, env=ENV, entity="account", record_id=gone["id"], principal=SYSTEM)

    again = create(crm, "account", name="Gone", phone="13800138000")

    assert again["phone"] == "+8613800138000"


def test_updates_check_duplicates_only_when_the_rule_fields_change(crm: Workspace) -> None:
    # given: two records that already clash (the second was confirmed)
    create(crm, "account", name="Twin")
    twin = records.create_record(
        crm,
        env=ENV,
        entity="account",
        payload={"name": "twin"},
        confirm_duplicates=True,
        principal=SYSTEM,
    )
    other = create(crm, "account", name="Other")

    # when
    edited = patch(crm, "account", twin, code="C1")
    renamed = refused(lambda: patch(crm, "account", other, name="TWIN"))

    # then
    assert edited["code"] == "C1"
    assert isinstance(renamed, DuplicateWarning)
    assert len(renamed.details["duplicates"][0]["records"]) == 2


def test_block_duplicates_come_back_with_the_other_errors(crm: Workspace) -> None:
    create(crm, "account", name="Acme", phone="13800138000")

    error = refused(
        lambda: create(crm, "account", name="Acme", phone="13800138000", email="nobody", colour=1)
    )

    # a warning is only raised when nothing else is wrong
    assert isinstance(error, Invalid)
    assert sorted(issues(error)) == sorted(
        [("/email", "invalid_email"), ("/colour", "unknown_field"), ("/phone", "duplicate_record")]
    )


# -- bulk writes ----------------------------------------------------------------------------------


def test_bulk_rows_go_through_the_pipeline(crm: Workspace) -> None:
    # when
    error = refused(
        lambda: records.bulk_write(
            crm,
            env=ENV,
            entity="deal",
            create=[
                {"title": "ok"},
                {"title": "neg", "amount": -1},
                {"title": "won", "stage": "won"},
            ],
            principal=SYSTEM,
        )
    )

    # then
    assert isinstance(error, BatchRejected)
    assert issues(error) == [
        ("/create/1/amount", "validation_rule"),
        ("/create/2/reason", "required"),
    ]
    assert count(crm, "deal") == 0


def test_bulk_duplicates_warn_within_the_batch_until_confirmed(crm: Workspace) -> None:
    rows = [{"name": "Acme"}, {"name": "ACME"}]

    error = refused(
        lambda: records.bulk_write(crm, env=ENV, entity="account", create=rows, principal=SYSTEM)
    )
    written = records.bulk_write(
        crm, env=ENV, entity="account", create=rows, confirm_duplicates=True, principal=SYSTEM
    )

    assert error.status == 409
    assert issues(error) == [("/create/1/name", "duplicate_warning")]
    assert [r["name"] for r in written["created"]] == ["Acme", "ACME"]


# -- the HTTP API ---------------------------------------------------------------------------------


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = build_app(settings, routers=[meta_routes.router], run_worker=False)
    publish(app.state.workspace, ACCOUNT, DEAL)
    with admin_client(app) as test_client:
        yield test_client


BASE = f"/api/envs/{ENV}/records"


def test_the_api_warns_with_409_until_the_client_confirms(client: TestClient) -> None:
    # given
    first = client.post(f"{BASE}/account", json={"name": "Acme"}).json()

    # when
    warned = client.post(f"{BASE}/account", json={"name": "acme"})
    by_header = client.post(
        f"{BASE}/account",
        json={"name": "ACME"},
        headers={"X-Formloom-Confirm-Duplicates": "true"},
    )
    by_query = client.post(f"{BASE}/account?confirm_duplicates=true", json={"name": "acme "})
    bad_header = client.post(
        f"{BASE}/account", json={"name": "Acme"}, headers={"X-Formloom-Confirm-Duplicates": "sure"}
    )

    # then
    assert warned.status_code == 409
    assert warned.headers["content-type"].startswith("application/problem+json")
    body = warned.json()
    assert body["code"] == "duplicate_warning"
    assert body["errors"][0]["path"] == "/name"
    assert body["duplicates"][0]["records"] == [{"id": first["id"], "title": "Acme"}]
    assert (by_header.status_code, by_query.status_code) == (201, 201)
    assert bad_header.status_code == 422


def test_the_api_blocks_with_422_and_rule_messages_in_chinese(client: TestClient) -> None:
    client.post(f"{BASE}/account", json={"name": "A", "phone": "13800138000"})

    blocked = client.post(
        f"{BASE}/account",
        json={"name": "B", "phone": "13800138000"},
        headers={"X-Formloom-Confirm-Duplicates": "true"},
    )
    rule = client.post(
        f"{BASE}/deal", json={"title": "T", "amount": -1}, headers={"Accept-Language": "zh-CN"}
    )

    assert blocked.status_code == 422  # confirming does not override a block
    assert blocked.json()["errors"][0]["code"] == "duplicate_record"
    assert rule.status_code == 422
    assert rule.json()["errors"] == [
        {"path": "/amount", "code": "validation_rule", "message": "金额不能为负数"}
    ]


def test_the_api_patch_confirms_duplicates_too(client: TestClient) -> None:
    client.post(f"{BASE}/account", json={"name": "Acme"})
    other = client.post(f"{BASE}/account", json={"name": "Other"}).json()

    warned = client.patch(f"{BASE}/account/{other['id']}", json={"name": "acme", "version": 1})
    confirmed = client.patch(
        f"{BASE}/account/{other['id']}?confirm_duplicates=true",
        json={"name": "acme", "version": 1},
    )

    assert warned.status_code == 409
    assert confirmed.status_code == 200
    assert confirmed.json()["name"] == "acme"
