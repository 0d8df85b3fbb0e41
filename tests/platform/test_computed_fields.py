"""Formula, auto-number and rollup fields through the records service, on both databases."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from formloom.platform import records
from formloom.platform.database import Workspace
from formloom.platform.entity_runtime import load_entity
from formloom.platform.errors import Invalid
from formloom.platform.formula_jobs import RECOMPUTE_FORMULAS, RECOMPUTE_ROLLUPS
from formloom.platform.jobs import enqueue, get_job, list_jobs
from formloom.platform.metastore import MetaStore, PublishOptions
from formloom.platform.record_query import list_records
from formloom.platform.worker import Worker
from tests.platform.crm_entities import ENV, choices, field, label, lookup, publish
from tests.principals import SYSTEM

CAMPAIGN = {"name": "campaign", "label": label("Campaign", "活动"), "fields": [field("name")]}


def rollup(name: str, aggregate: str, of: str | None = None, **options: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "relation": {"entity": "deal", "field": "account"},
        "aggregate": aggregate,
    }
    if of is not None:
        spec["field"] = of
    return field(name, "rollup", options={**spec, **options})


ACCOUNT = {
    "name": "account",
    "label": label("Account", "客户"),
    "title_field": "name",
    "fields": [
        field("name", required=True),
        rollup("deal_count", "count"),
        rollup(
            "won_amount",
            "sum",
            "amount",
            condition={"field": "stage", "op": "eq", "value": "won"},
        ),
        rollup("avg_amount", "avg", "amount"),
        rollup("last_close", "max", "close_date", result="date"),
        field(
            "won_with_tax",
            "formula",
            options={"expression": "won_amount * 1.13", "result": "decimal"},
        ),
    ],
}

DEAL = {
    "name": "deal",
    "label": label("Deal", "商机"),
    "title_field": "title",
    "fields": [
        field("title", required=True),
        field("amount", "decimal", options={"precision": 12, "scale": 2}),
        field("discount", "decimal", options={"precision": 5, "scale": 2}),
        field("quantity", "integer"),
        field("stage", "single_select", options=choices("open", "won", "lost")),
        field("close_date", "date"),
        field(
            "net",
            "formula",
            options={
                "expression": "has(discount) ? amount * (1 - discount / 100.0) : amount",
                "result": "decimal",
            },
        ),
        field(
            "summary",
            "formula",
            options={"expression": "title + ' x' + string(quantity)", "result": "text"},
        ),
        field(
            "number",
            "auto_number",
            unique=True,
            options={"pattern": "HT-{YYYY}-{0000}", "reset": "yearly"},
        ),
        lookup("account", "account"),
        lookup("campaign", "campaign", "cascade"),
        lookup("partner", "account", "set_null"),
        field(
            "has_partner",
            "formula",
            options={"expression": "has(partner)", "result": "boolean"},
        ),
    ],
}


@pytest.fixture
def crm(workspace: Workspace) -> Workspace:
    publish(workspace, CAMPAIGN, ACCOUNT, DEAL)
    return workspace


@pytest.fixture(autouse=True)
def _no_leftover_connections(workspace: Workspace) -> Iterator[None]:
    yield
    assert workspace.engine.pool.checkedout() == 0


def create(ws: Workspace, entity: str, **values: Any) -> dict[str, Any]:
    return records.create_record(ws, env=ENV, entity=entity, payload=values, principal=SYSTEM)


def get(ws: Workspace, entity: str, record_id: int) -> dict[str, Any]:
    return records.get_record(ws, env=ENV, entity=entity, record_id=record_id, principal=SYSTEM)


def patch(ws: Workspace, entity: str, record: dict[str, Any], **values: Any) -> dict[str, Any]:
    current = get(ws, entity, record["id"])
    return records.update_record(
        ws,
        env=ENV,
        entity=entity,
        record_id=record["id"],
        payload={"version": current["version"], **values},
        principal=SYSTEM,
    )


def rollups(ws: Workspace, account_id: int) -> dict[str, Any]:
    found = get(ws, "account", account_id)
    names = ("deal_count", "won_amount", "avg_amount", "last_close", "won_with_tax")
    return {k: found[k] for k in names}


def with_fields(document: dict[str, Any], *replaced: dict[str, Any]) -> dict[str, Any]:
    by_name = {f["name"]: f for f in replaced}
    fields = [by_name.pop(f["name"], f) for f in document["fields"]]
    return {**document, "fields": fields + list(by_name.values())}


def publish_one(ws: Workspace, document: dict[str, Any]) -> None:
    store = MetaStore(ws)
    store.save_draft(ENV, "entity", document["name"], document)
    store.publish(ENV, "entity", document["name"], PublishOptions())


# -- formulas ------------------------------------------------------------------------------------


def test_formulas_are_computed_on_create_and_update(crm: Workspace) -> None:
    # when
    deal = create(crm, "deal", title="Big", amount="200", discount="10", quantity=3)
    changed = patch(crm, "deal", deal, discount=None, title="Bigger")

    # then
    assert (deal["net"], deal["summary"]) == (180, "Big x3")
    assert (changed["net"], changed["summary"]) == (200, "Bigger x3")
    assert get(crm, "deal", deal["id"])["net"] == 200


def test_lists_filter_and_sort_on_stored_computed_values(crm: Workspace) -> None:
    for amount in (50, 300, 120):
        create(crm, "deal", title=f"D{amount}", amount=amount, discount=10)

    with crm.begin(ENV, readonly=True) as conn:
        entity = load_entity(conn, namespace=crm.cache_key, env=ENV, name="deal")
        page = list_records(
            conn, entity, filters=[("net__gt", "100")], sort=["-net"], expand_titles=False
        )

    assert [r["net"] for r in page.items] == [270, 108]


def test_formulas_follow_lookups_that_on_delete_rules_clear(crm: Workspace) -> None:
    partner = create(crm, "account", name="Partner")
    deal = create(crm, "deal", title="D", partner=partner["id"])

    records.delete_record(crm, env=ENV, entity="account", record_id=partner["id"], principal=SYSTEM)

    after = get(crm, "deal", deal["id"])
    assert (deal["has_partner"], after["partner"], after["has_partner"]) == (True, None, False)


def test_a_formula_that_cannot_be_evaluated_is_empty(crm: Workspace) -> None:
    deal = create(crm, "deal", title="No quantity", amount=5)

    assert deal["summary"] is None  # string(null) fails: the value is empty, the save works


def test_formula_and_auto_number_fields_cannot_be_written(crm: Workspace) -> None:
    # given
    deal = create(crm, "deal", title="T", amount=1)

    # when
    with pytest.raises(Invalid) as caught:
        patch(crm, "deal", deal, net=5, number="HT-1", amount=2)

    # then
    assert [(i.path, i.code) for i in caught.value.issues] == [
        ("/net", "read_only"),
        ("/number", "read_only"),
    ]
    assert "`net` is a formula computed by the platform" in caught.value.issues[0].message
    assert get(crm, "deal", deal["id"])["amount"] == 1


def test_put_keeps_computed_fields(crm: Workspace) -> None:
    deal = create(crm, "deal", title="T", amount=10, quantity=1)

    replaced = records.update_record(
        crm,
        env=ENV,
        entity="deal",
        record_id=deal["id"],
        payload={"title": "New", "amount": 20, "version": 1},
        replace=True,
        principal=SYSTEM,
    )

    assert replaced["number"] == deal["number"]
    assert replaced["net"] == 20
    assert replaced["quantity"] is None


def test_publishing_a_formula_with_a_missing_field_is_refused(crm: Workspace) -> None:
    # given
    broken = with_fields(
        DEAL,
        field("net", "formula", options={"expression": "amout * 2.0", "result": "decimal"}),
    )

    # when
    with pytest.raises(Invalid) as caught:
        publish_one(crm, broken)

    # then
    ((path, message),) = [(i.path, i.message) for i in caught.value.issues]
    assert path == "/fields/6/options/expression"
    assert message == "formula `net`: unknown field `amout` (did you mean `amount`?) (column 1)"
    deal = create(crm, "deal", title="T", amount=1, discount=50)
    assert deal["net"] == 0.5  # the published formula still runs


def test_publishing_formula_type_errors_and_cycles_is_refused(crm: Workspace) -> None:
    broken = with_fields(
        DEAL,
        field("net", "formula", options={"expression": "title * 2", "result": "decimal"}),
        field("a", "formula", options={"expression": "b + 1", "result": "integer"}),
        field("b", "formula", options={"expression": "a + 1", "result": "integer"}),
    )

    with pytest.raises(Invalid) as caught:
        publish_one(crm, broken)

    found = {i.path: i.code for i in caught.value.issues}
    assert found["/fields/6/options/expression"] == "type_mismatch"
    assert "formula_cycle" in found.values()


def test_changing_a_formula_recomputes_every_row_in_a_background_job(crm: Workspace) -> None:
    # given
    deals = [create(crm, "deal", title=f"D{i}", amount=100, discount=i) for i in range(3)]
    records.delete_record(crm, env=ENV, entity="deal", record_id=deals[2]["id"], principal=SYSTEM)

    # when: the formula changes
    changed = with_fields(
        DEAL,
        field("net", "formula", options={"expression": "amount * 2.0", "result": "decimal"}),
    )
    publish_one(crm, changed)

    # then: a job is queued in the publish transaction; rows wait for it
    (job,) = list_jobs(crm, ENV, status="queued")
    assert (job["job_type"], job["payload"]) == (RECOMPUTE_FORMULAS, {"entity": "deal"})
    assert get(crm, "deal", deals[0]["id"])["net"] == 100
    assert Worker(crm).run_once() == 1
    done = get_job(crm, ENV, job["id"])
    assert done["status"] == "done"
    assert done["progress"]["done"] == done["progress"]["total"] == 3
    first = get(crm, "deal", deals[0]["id"])
    assert (first["net"], first["version"]) == (200, 1)  # derived data: no new version
    restored = records.restore_record(
        crm, env=ENV, entity="deal", record_id=deals[2]["id"], principal=SYSTEM
    )
    assert restored["net"] == 200  # deleted rows are recomputed too


def test_the_recompute_job_is_idempotent(crm: Workspace) -> None:
    # given: a formula change, recomputed once
    deal = create(crm, "deal", title="D", amount=100)
    publish_one(
        crm,
        with_fields(
            DEAL,
            field("net", "formula", options={"expression": "amount + 1.0", "result": "decimal"}),
        ),
    )
    Worker(crm).run_once()

    # when: the same work runs again (as after a retry or a worker's lost lease)
    with crm.begin(ENV) as conn:
        enqueue(conn, job_type=RECOMPUTE_FORMULAS, payload={"entity": "deal"})
    Worker(crm).run_once()

    # then
    assert get(crm, "deal", deal["id"])["net"] == 101
    assert [j["status"] for j in list_jobs(crm, ENV)] == ["done", "done"]
    assert list_jobs(crm, ENV)[0]["progress"]["message"] == "done: 0 row(s) changed"


def test_changing_a_formulas_result_type_replaces_its_column(crm: Workspace) -> None:
    # given: stored decimals
    deal = create(crm, "deal", title="D", amount=10, discount=50)

    # when: the formula now gives text (a conversion would be refused: its values are recomputed)
    text_net = field("net", "formula", options={"expression": "string(amount)", "result": "text"})
    publish_one(crm, with_fields(DEAL, text_net))
    Worker(crm).run_once()

    # then
    assert get(crm, "deal", deal["id"])["net"] == "10"


def test_publishing_without_formula_changes_queues_nothing(crm: Workspace) -> None:
    create(crm, "deal", title="D", amount=100)

    publish_one(crm, with_fields(DEAL, field("notes", "long_text")))

    assert list_jobs(crm, ENV) == []


# -- auto-numbers --------------------------------------------------------------------------------


def test_auto_numbers_count_up_without_gaps(crm: Workspace) -> None:
    year = datetime.now(UTC).year  # the pattern's date is the create's (Shanghai) date

    first = create(crm, "deal", title="A")
    with pytest.raises(Invalid):
        create(crm, "deal", title="B", stage="maybe")  # a failed create gives its number back
    second = create(crm, "deal", title="C")

    assert first["number"] in (f"HT-{year}-0001", f"HT-{year + 1}-0001")
    assert second["number"][-4:] == "0002"


def test_an_auto_number_column_has_a_unique_index(crm: Workspace) -> None:
    first = create(crm, "deal", title="A")
    second = create(crm, "deal", title="B")

    with pytest.raises(IntegrityError), crm.begin(ENV) as conn:
        table = sa.Table("deal", sa.MetaData(), autoload_with=conn, schema=crm.env_schema(ENV))
        conn.execute(
            sa.update(table).where(table.c.id == second["id"]).values(number=first["number"])
        )


def test_concurrent_creates_get_every_number_once(crm: Workspace) -> None:
    # given
    threads, per_thread = 4, 25
    numbers: list[str] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        try:
            for i in range(per_thread):
                deal = create(crm, "deal", title=f"w{worker}-{i}")
                with lock:
                    numbers.append(deal["number"])
        except BaseException as exc:  # reported below
            failures.append(exc)

    # when
    started = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()

    # then
    assert failures == []
    counters = sorted(int(n.rsplit("-", 1)[1]) for n in numbers)
    assert counters == list(range(1, threads * per_thread + 1))


def test_a_new_counter_passes_over_numbers_already_given(crm: Workspace) -> None:
    # given: two numbers under yearly resets
    create(crm, "deal", title="A")
    second = create(crm, "deal", title="B")

    # when: the counter no longer resets, so it starts again at 1 for the same pattern
    never = {"pattern": "HT-{YYYY}-{0000}", "reset": "never"}
    publish_one(crm, with_fields(DEAL, field("number", "auto_number", unique=True, options=never)))
    third = create(crm, "deal", title="C")

    # then
    assert third["number"] == second["number"][:-4] + "0003"


def test_an_auto_number_added_later_numbers_the_existing_rows(crm: Workspace) -> None:
    # given: records without the field, one of them created in 2025
    without = {**DEAL, "fields": [f for f in DEAL["fields"] if f["name"] != "number"]}
    publish_one(crm, without)
    old, mid, new = (create(crm, "deal", title=t) for t in ("old", "mid", "new"))
    with crm.begin(ENV) as conn:
        table = sa.Table("deal", sa.MetaData(), autoload_with=conn, schema=crm.env_schema(ENV))
        stamp = datetime(2025, 6, 1, tzinfo=UTC)
        conn.execute(sa.update(table).where(table.c.id == old["id"]).values(created_at=stamp))

    # when: the auto-number field is added and its backfill job runs
    publish_one(crm, DEAL)
    assert get(crm, "deal", mid["id"])["number"] is None  # the job has not run yet
    assert Worker(crm).run_once() == 1
    later = create(crm, "deal", title="later")

    # then: each existing row is numbered in its own year, and new ones continue
    year = datetime.now(ZoneInfo("Asia/Shanghai")).year
    numbers = [get(crm, "deal", r["id"])["number"] for r in (old, mid, new, later)]
    assert numbers == ["HT-2025-0001", f"HT-{year}-0001", f"HT-{year}-0002", f"HT-{year}-0003"]
    assert get(crm, "deal", mid["id"])["version"] == mid["version"]  # derived: no new version


def test_the_record_schema_marks_computed_fields_read_only(crm: Workspace) -> None:
    schema = records.entity_schema(crm, env=ENV, entity="deal", principal=SYSTEM)

    assert schema["properties"]["net"]["readOnly"] is True
    assert schema["properties"]["number"]["readOnly"] is True
    assert "readOnly" not in schema["properties"]["amount"]


# -- rollups -------------------------------------------------------------------------------------


def test_rollups_start_at_zero(crm: Workspace) -> None:
    account = create(crm, "account", name="Acme")

    assert rollups(crm, account["id"]) == {
        "deal_count": 0,
        "won_amount": 0,
        "avg_amount": None,
        "last_close": None,
        "won_with_tax": 0,
    }


def test_rollups_follow_every_change_to_the_related_records(crm: Workspace) -> None:
    # given
    acme = create(crm, "account", name="Acme")
    globex = create(crm, "account", name="Globex")

    # when: children are created
    won = create(
        crm, "deal", title="W", amount=100, stage="won", close_date="2026-03-01", account=acme["id"]
    )
    lost = create(
        crm, "deal", title="L", amount=50, stage="lost", close_date="2026-05-01", account=acme["id"]
    )

    # then
    assert rollups(crm, acme["id"]) == {
        "deal_count": 2,
        "won_amount": 100,
        "avg_amount": 75,
        "last_close": "2026-05-01",
        "won_with_tax": 113,
    }
    assert get(crm, "account", acme["id"])["version"] == 1  # derived: no new version

    # when: a child changes (its amount, and a field of the condition)
    patch(crm, "deal", lost, stage="won", amount=60)
    assert rollups(crm, acme["id"])["won_amount"] == 160
    assert rollups(crm, acme["id"])["avg_amount"] == 80

    # when: a child moves to another parent, both parents change
    patch(crm, "deal", won, account=globex["id"])
    assert rollups(crm, acme["id"])["deal_count"] == 1
    assert rollups(crm, acme["id"])["won_amount"] == 60
    assert rollups(crm, globex["id"]) == {
        "deal_count": 1,
        "won_amount": 100,
        "avg_amount": 100,
        "last_close": "2026-03-01",
        "won_with_tax": 113,
    }

    # when: deleted, restored, deleted and purged
    records.delete_record(crm, env=ENV, entity="deal", record_id=won["id"], principal=SYSTEM)
    assert rollups(crm, globex["id"])["deal_count"] == 0
    assert rollups(crm, globex["id"])["avg_amount"] is None
    records.restore_record(crm, env=ENV, entity="deal", record_id=won["id"], principal=SYSTEM)
    assert rollups(crm, globex["id"])["won_amount"] == 100
    records.delete_record(crm, env=ENV, entity="deal", record_id=won["id"], principal=SYSTEM)
    records.purge_record(crm, env=ENV, entity="deal", record_id=won["id"], principal=SYSTEM)
    assert rollups(crm, globex["id"])["deal_count"] == 0

    # when: a child loses its parent
    patch(crm, "deal", lost, account=None)
    assert rollups(crm, acme["id"])["deal_count"] == 0


def test_rollups_follow_cascades_and_bulk_writes(crm: Workspace) -> None:
    # given
    acme = create(crm, "account", name="Acme")
    campaign = create(crm, "campaign", name="Spring")

    # when: a bulk write adds three deals and changes one
    result = records.bulk_write(
        crm,
        env=ENV,
        entity="deal",
        create=[
            {"title": f"D{i}", "amount": 10, "stage": "won", "account": acme["id"]}
            | ({"campaign": campaign["id"]} if i < 2 else {})
            for i in range(3)
        ],
        principal=SYSTEM,
    )
    assert rollups(crm, acme["id"])["won_amount"] == 30
    first = result["created"][0]
    records.bulk_write(
        crm,
        env=ENV,
        entity="deal",
        update=[{"id": first["id"], "version": 1, "amount": 40}],
        principal=SYSTEM,
    )
    assert rollups(crm, acme["id"])["won_amount"] == 60

    # when: deleting the campaign cascades to two deals
    records.delete_record(
        crm, env=ENV, entity="campaign", record_id=campaign["id"], principal=SYSTEM
    )
    assert rollups(crm, acme["id"])["deal_count"] == 1
    records.restore_record(
        crm, env=ENV, entity="campaign", record_id=campaign["id"], principal=SYSTEM
    )
    assert rollups(crm, acme["id"])["deal_count"] == 3


def test_rollups_stay_correct_under_concurrent_child_writes(crm: Workspace) -> None:
    # given: one deal per thread (updates: creates are serialised by the auto-number counter)
    account = create(crm, "account", name="Busy")
    deals = [create(crm, "deal", title="D", amount=0, stage="won") for _ in range(4)]
    failures: list[BaseException] = []

    def work(deal: dict[str, Any]) -> None:
        try:
            patch(crm, "deal", deal, account=account["id"])
            for amount in range(1, 11):
                patch(crm, "deal", deal, amount=amount)
        except BaseException as exc:  # reported below
            failures.append(exc)

    # when
    started = [threading.Thread(target=work, args=(d,)) for d in deals]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()

    # then
    assert failures == []
    assert rollups(crm, account["id"])["deal_count"] == 4
    assert rollups(crm, account["id"])["won_amount"] == 40


def test_adding_a_rollup_fills_existing_records_in_a_job(crm: Workspace) -> None:
    # given
    account = create(crm, "account", name="Acme")
    create(crm, "deal", title="D", amount=7, account=account["id"])
    create(crm, "deal", title="E", amount=5, account=account["id"])

    # when
    publish_one(crm, with_fields(ACCOUNT, rollup("min_amount", "min", "amount")))

    # then
    (job,) = list_jobs(crm, ENV, status="queued")
    assert job["job_type"] == RECOMPUTE_ROLLUPS
    assert get(crm, "account", account["id"])["min_amount"] is None
    Worker(crm).run_once()
    assert get(crm, "account", account["id"])["min_amount"] == 5


def test_a_summarised_entity_cannot_drop_the_field_or_be_removed(crm: Workspace) -> None:
    without_amount = {
        **DEAL,
        "fields": [f for f in DEAL["fields"] if f["name"] not in ("amount", "net")],
    }

    with pytest.raises(Invalid) as dropped:
        publish_one(crm, without_amount)
    with pytest.raises(Invalid) as removed:
        MetaStore(crm).remove(ENV, "entity", "deal", PublishOptions())

    assert {i.code for i in dropped.value.issues} == {"rollup_broken"}
    assert (
        "rollup `account.won_amount` summarises `deal` records" in dropped.value.issues[0].message
    )
    assert "summarised by rollup `account.deal_count`" in removed.value.issues[0].message
