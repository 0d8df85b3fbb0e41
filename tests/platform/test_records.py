"""The records service on both databases: CRUD, validation, versions, delete rules, bulk, audit."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from formloom.platform import record_writer, records
from formloom.platform.database import Workspace
from formloom.platform.environments import create_environment, initialise_workspace
from formloom.platform.errors import Invalid, PlatformError
from formloom.platform.record_errors import (
    BatchRejected,
    DeleteRestricted,
    NotInRecycleBin,
    RecordInRecycleBin,
    RecordNotFound,
    RestoreBlocked,
    StaleVersion,
    VersionRequired,
    WriteConflict,
)
from formloom.platform.tables import audit
from tests.platform.crm_entities import ALL, DEAL, ENV, FULL_DEAL, FULL_DEAL_JSON, publish
from tests.principals import SYSTEM, acting_as


@pytest.fixture
def crm(workspace: Workspace) -> Workspace:
    publish(workspace, *ALL)
    return workspace


@pytest.fixture(autouse=True)
def _no_leftover_connections(workspace: Workspace) -> Iterator[None]:
    """Every test leaves the pool idle (a failed write must not leak its connection)."""
    yield
    assert workspace.engine.pool.checkedout() == 0


def create(ws: Workspace, entity: str, **values: Any) -> dict[str, Any]:
    return records.create_record(ws, env=ENV, entity=entity, payload=values, principal=SYSTEM)


def get(ws: Workspace, entity: str, record_id: int) -> dict[str, Any]:
    return records.get_record(ws, env=ENV, entity=entity, record_id=record_id, principal=SYSTEM)


def patch(ws: Workspace, entity: str, record: dict[str, Any], **values: Any) -> dict[str, Any]:
    return records.update_record(
        ws,
        env=ENV,
        entity=entity,
        record_id=record["id"],
        payload={"version": record["version"], **values},
        principal=SYSTEM,
    )


def delete(ws: Workspace, entity: str, record_id: int) -> dict[str, Any]:
    return records.delete_record(ws, env=ENV, entity=entity, record_id=record_id, principal=SYSTEM)


def stored(ws: Workspace, entity: str) -> list[dict[str, Any]]:
    """Every row of the entity's table, deleted or not, by id."""
    with ws.begin(ENV, readonly=True) as conn:
        table = sa.Table(entity, sa.MetaData(), autoload_with=conn, schema=ws.env_schema(ENV))
        return [dict(r._mapping) for r in conn.execute(sa.select(table).order_by(table.c.id))]


def history(ws: Workspace, entity: str, record_id: int) -> list[dict[str, Any]]:
    page = records.record_history(ws, env=ENV, entity=entity, record_id=record_id, principal=SYSTEM)
    items: list[dict[str, Any]] = page["items"]
    return items


def issues(error: PlatformError) -> list[tuple[str, str]]:
    return [(i.path, i.code) for i in error.issues]


# -- create, read, update --------------------------------------------------------------------


def test_every_field_type_round_trips(crm: Workspace) -> None:
    # given
    account = create(crm, "account", name="Acme")

    # when
    deal = create(crm, "deal", **FULL_DEAL, account=account["id"])

    # then
    expected = {**FULL_DEAL_JSON, "account": account["id"]}
    assert {k: deal[k] for k in expected} == expected
    assert get(crm, "deal", deal["id"]) == deal
    assert deal["version"] == 1
    assert deal["created_at"] == deal["updated_at"]
    assert list(deal)[:7] == [
        "id",
        "version",
        "created_at",
        "updated_at",
        "created_by",
        "updated_by",
        "owner_id",
    ]


def test_empty_values_and_defaults(crm: Workspace) -> None:
    deal = create(crm, "deal", title="T", notes="", email="  ", tags=[])

    assert deal["stage"] == "open"  # the default
    assert deal["email"] is None  # blank text is empty
    assert deal["notes"] == ""  # long text keeps what it is given
    assert deal["tags"] == []
    assert deal["amount"] is None


def test_actor_is_recorded_and_owner_defaults_to_it(crm: Workspace) -> None:
    mine = records.create_record(
        crm, env=ENV, entity="account", payload={"name": "A"}, principal=acting_as(7)
    )
    theirs = records.create_record(
        crm, env=ENV, entity="account", payload={"name": "B", "owner_id": 9}, principal=acting_as(7)
    )
    changed = records.update_record(
        crm,
        env=ENV,
        entity="account",
        record_id=mine["id"],
        payload={"level": "a"},
        version=1,
        principal=acting_as(8),
    )

    assert (mine["created_by"], mine["updated_by"], mine["owner_id"]) == (7, 7, 7)
    assert theirs["owner_id"] == 9
    assert (changed["created_by"], changed["updated_by"], changed["owner_id"]) == (7, 8, 7)
    assert history(crm, "account", mine["id"])[0]["actor"] == 8


def test_bad_values_are_all_reported_and_nothing_is_written(crm: Workspace) -> None:
    # when
    with pytest.raises(Invalid) as caught:
        create(
            crm,
            "deal",
            title="x" * 300,
            quantity="many",
            amount=1.234,
            stage="maybe",
            phone="12345",
            email="nobody",
            website="ftp://example.com",
            closed_at="2026-03-31T09:30:00",
            won="yes",
            account=99,
            colour="red",
            id=5,
        )

    # then
    assert sorted(issues(caught.value)) == sorted(
        [
            ("/title", "too_long"),
            ("/quantity", "type"),
            ("/amount", "too_precise"),
            ("/stage", "unknown_choice"),
            ("/phone", "invalid_phone"),
            ("/email", "invalid_email"),
            ("/website", "invalid_url"),
            ("/closed_at", "no_timezone"),
            ("/won", "type"),
            ("/account", "unknown_record"),
            ("/colour", "unknown_field"),
            ("/id", "read_only"),
        ]
    )
    messages = {i.path: i.message for i in caught.value.issues}
    assert (
        messages["/account"]
        == "Account: `account` 99 does not exist; choose an existing `account` record"
    )
    assert "at most 255" in messages["/title"]
    assert stored(crm, "deal") == []
    assert stored(crm, "account") == []


def test_required_fields_are_reported_in_chinese(crm: Workspace) -> None:
    with pytest.raises(Invalid) as caught:
        records.create_record(
            crm, env=ENV, entity="deal", payload={"stage": "maybe"}, lang="zh", principal=SYSTEM
        )

    messages = {i.path: i.message for i in caught.value.issues}
    assert messages["/title"] == "标题为必填项"
    assert messages["/stage"].startswith("阶段：'maybe' 不是可选值之一")


def test_lookup_to_a_deleted_record_is_refused(crm: Workspace) -> None:
    account = create(crm, "account", name="Gone")
    delete(crm, "account", account["id"])

    with pytest.raises(Invalid) as caught:
        create(crm, "deal", title="T", account=account["id"])

    assert issues(caught.value) == [("/account", "deleted_record")]
    assert "recycle bin" in caught.value.issues[0].message


def test_patch_changes_only_the_fields_sent(crm: Workspace) -> None:
    deal = create(crm, "deal", **FULL_DEAL)

    changed = patch(crm, "deal", deal, amount="10.50", won=True)

    assert changed["version"] == 2
    assert (changed["amount"], changed["won"]) == (10.5, True)
    assert {k: changed[k] for k in ("title", "tags", "phone")} == {
        k: deal[k] for k in ("title", "tags", "phone")
    }
    assert changed["updated_at"] > deal["updated_at"]
    assert changed["created_at"] == deal["created_at"]


def test_patch_cannot_empty_a_required_field(crm: Workspace) -> None:
    deal = create(crm, "deal", title="T")

    with pytest.raises(Invalid) as caught:
        patch(crm, "deal", deal, title=None)

    assert issues(caught.value) == [("/title", "required")]


def test_put_replaces_every_field(crm: Workspace) -> None:
    deal = create(crm, "deal", **FULL_DEAL)

    replaced = records.update_record(
        crm,
        env=ENV,
        entity="deal",
        record_id=deal["id"],
        payload={"title": "Only this", "version": 1},
        replace=True,
        principal=SYSTEM,
    )

    assert replaced["title"] == "Only this"
    assert replaced["stage"] is None  # no default on replace: what is left out is emptied
    assert all(replaced[k] is None for k in FULL_DEAL_JSON if k != "title")
    assert replaced["version"] == 2


def test_put_enforces_required_fields(crm: Workspace) -> None:
    deal = create(crm, "deal", title="T")

    with pytest.raises(Invalid) as caught:
        records.update_record(
            crm,
            env=ENV,
            entity="deal",
            record_id=deal["id"],
            payload={"amount": 1},
            version=1,
            replace=True,
            principal=SYSTEM,
        )

    assert issues(caught.value) == [("/title", "required")]


def test_an_update_that_changes_nothing_writes_nothing(crm: Workspace) -> None:
    deal = create(crm, "deal", title="T", amount=5)

    same = patch(crm, "deal", deal, title=" T ", amount="5.00")

    assert same == deal
    assert [e["action"] for e in history(crm, "deal", deal["id"])] == ["create"]


# -- versions --------------------------------------------------------------------------------


def test_an_update_needs_a_version(crm: Workspace) -> None:
    deal = create(crm, "deal", title="T")

    with pytest.raises(VersionRequired) as caught:
        records.update_record(
            crm, env=ENV, entity="deal", record_id=deal["id"], payload={}, principal=SYSTEM
        )

    assert caught.value.status == 428
    assert "If-Match" in caught.value.message


def test_a_stale_version_is_refused_with_the_current_record(crm: Workspace) -> None:
    deal = create(crm, "deal", title="T")
    newer = patch(crm, "deal", deal, title="Newer")

    with pytest.raises(StaleVersion) as caught:
        patch(crm, "deal", deal, title="Lost update")

    assert caught.value.details["current"] == newer
    assert issues(caught.value) == [("/version", "stale_version")]
    assert "version 1" in caught.value.message and "version 2" in caught.value.message
    assert get(crm, "deal", deal["id"])["title"] == "Newer"


def test_header_and_body_versions_must_agree(crm: Workspace) -> None:
    deal = create(crm, "deal", title="T")

    with pytest.raises(Invalid) as caught:
        records.update_record(
            crm,
            env=ENV,
            entity="deal",
            record_id=deal["id"],
            payload={"version": 1},
            version=2,
            principal=SYSTEM,
        )

    assert issues(caught.value) == [("/version", "version_mismatch")]


def test_an_invalid_version_is_a_validation_error(crm: Workspace) -> None:
    deal = create(crm, "deal", title="T")

    with pytest.raises(Invalid) as caught:
        records.update_record(
            crm,
            env=ENV,
            entity="deal",
            record_id=deal["id"],
            payload={"version": "one"},
            principal=SYSTEM,
        )

    assert issues(caught.value) == [("/version", "type")]


def test_concurrent_updates_from_one_version_let_exactly_one_win(crm: Workspace) -> None:
    # given a record both writers read at version 1
    deal = create(crm, "deal", title="T")
    outcomes: list[Any] = []
    # On PostgreSQL both writers pass their version check before either writes (the
    # barrier), so the conditional UPDATE itself must decide. SQLite serialises writers
    # (BEGIN IMMEDIATE): the second one reads the first one's result.
    barrier = threading.Barrier(2, timeout=10) if not crm.is_sqlite else None
    original = record_writer.RecordWriter.write_update

    def write_update(self: record_writer.RecordWriter, *args: Any, **kwargs: Any) -> Any:
        if barrier is not None:
            barrier.wait()
        return original(self, *args, **kwargs)

    def writer(title: str) -> None:
        try:
            outcomes.append(patch(crm, "deal", deal, title=title))
        except StaleVersion as exc:
            outcomes.append(exc)

    # when
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(record_writer.RecordWriter, "write_update", write_update)
        threads = [threading.Thread(target=writer, args=(t,)) for t in ("first", "second")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    # then
    won = [o for o in outcomes if isinstance(o, dict)]
    lost = [o for o in outcomes if isinstance(o, StaleVersion)]
    assert len(won) == 1 and len(lost) == 1
    assert won[0]["version"] == 2
    assert lost[0].details["current"]["title"] == won[0]["title"]
    assert get(crm, "deal", deal["id"]) == won[0]
    assert [e["action"] for e in history(crm, "deal", deal["id"])] == ["update", "create"]


# -- unique values ---------------------------------------------------------------------------


def test_duplicate_unique_values_name_the_existing_record(crm: Workspace) -> None:
    first = create(crm, "account", name="Acme", code="A1", region="north")
    other = create(crm, "account", name="Other", code="A1", region="south")

    with pytest.raises(Invalid) as caught:
        create(crm, "account", name="Acme", code="A1", region="north")

    assert issues(caught.value) == [("/name", "duplicate"), ("/code", "duplicate")]
    assert caught.value.issues[0].message == (
        f"Company: `Acme` is already used by `account` {first['id']}; choose another value"
    )
    assert "Code + Region" in caught.value.issues[1].message
    # the record itself is no duplicate of itself
    other = patch(crm, "account", other, name="Other", level="a")
    assert other["level"] == "a"
    with pytest.raises(Invalid) as caught:
        patch(crm, "account", other, region="north")
    assert issues(caught.value) == [("/code", "duplicate")]


def test_a_deleted_record_still_holds_its_unique_value(crm: Workspace) -> None:
    first = create(crm, "account", name="Acme")
    delete(crm, "account", first["id"])

    with pytest.raises(Invalid) as caught:
        create(crm, "account", name="Acme")

    assert "recycle bin" in caught.value.issues[0].message


def test_a_unique_value_race_is_reported_as_a_duplicate(
    crm: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given another transaction committed the same value after our check ran
    create(crm, "account", name="Acme")
    calls: list[int] = []
    original = record_writer.unique_issues

    def check_too_early(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return [] if len(calls) == 1 else original(*args, **kwargs)

    monkeypatch.setattr(record_writer, "unique_issues", check_too_early)

    # when the database refuses the insert
    with pytest.raises(Invalid) as caught:
        create(crm, "account", name="Acme")

    # then the write is checked again and reported like any duplicate
    assert issues(caught.value) == [("/name", "duplicate")]
    assert len(calls) == 2


def test_a_constraint_that_fails_twice_is_a_clean_conflict(
    crm: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    create(crm, "account", name="Acme")
    monkeypatch.setattr(record_writer, "unique_issues", lambda *args, **kwargs: [])

    with pytest.raises(WriteConflict) as caught:
        create(crm, "account", name="Acme")

    assert caught.value.status == 409
    assert "concurrent change" in caught.value.message


# -- delete, recycle bin, restore, purge -----------------------------------------------------


def test_deleted_records_are_in_the_recycle_bin(crm: Workspace) -> None:
    deal = create(crm, "deal", title="T")

    deleted = delete(crm, "deal", deal["id"])

    assert deleted["deleted_at"] is not None and deleted["version"] == 2
    with pytest.raises(RecordInRecycleBin) as caught:
        get(crm, "deal", deal["id"])
    assert caught.value.status == 404
    assert f"POST /api/envs/{ENV}/records/deal/{deal['id']}/restore" in caught.value.message
    with pytest.raises(RecordInRecycleBin):
        patch(crm, "deal", deleted, title="x")
    with pytest.raises(RecordInRecycleBin):
        delete(crm, "deal", deal["id"])
    bin_page = records.recycle_bin(crm, env=ENV, entity="deal", principal=SYSTEM)
    assert bin_page == {"items": [deleted], "next_cursor": None}


def test_recycle_bin_pages_newest_first(crm: Workspace) -> None:
    made = [create(crm, "deal", title=f"D{i}") for i in range(5)]
    for deal in made:
        delete(crm, "deal", deal["id"])

    first = records.recycle_bin(crm, env=ENV, entity="deal", limit=2, principal=SYSTEM)
    second = records.recycle_bin(
        crm, env=ENV, entity="deal", limit=2, cursor=first["next_cursor"], principal=SYSTEM
    )
    third = records.recycle_bin(
        crm, env=ENV, entity="deal", limit=2, cursor=second["next_cursor"], principal=SYSTEM
    )

    ids = [r["id"] for page in (first, second, third) for r in page["items"]]
    assert ids == [d["id"] for d in reversed(made)]
    assert third["next_cursor"] is None
    with pytest.raises(Invalid):
        records.recycle_bin(crm, env=ENV, entity="deal", cursor="nonsense", principal=SYSTEM)


def test_restore_brings_a_record_back(crm: Workspace) -> None:
    deal = create(crm, "deal", title="T")
    delete(crm, "deal", deal["id"])

    restored = records.restore_record(
        crm, env=ENV, entity="deal", record_id=deal["id"], principal=SYSTEM
    )

    assert restored["version"] == 3 and "deleted_at" not in restored
    assert get(crm, "deal", deal["id"]) == restored
    with pytest.raises(NotInRecycleBin):
        records.restore_record(crm, env=ENV, entity="deal", record_id=deal["id"], principal=SYSTEM)


def test_purge_removes_a_deleted_record_for_good(crm: Workspace) -> None:
    deal = create(crm, "deal", title="T")
    with pytest.raises(NotInRecycleBin) as caught:
        records.purge_record(crm, env=ENV, entity="deal", record_id=deal["id"], principal=SYSTEM)
    assert "delete it first" in caught.value.message

    delete(crm, "deal", deal["id"])
    records.purge_record(crm, env=ENV, entity="deal", record_id=deal["id"], principal=SYSTEM)

    assert stored(crm, "deal") == []
    with pytest.raises(RecordNotFound):
        get(crm, "deal", deal["id"])
    assert [e["action"] for e in history(crm, "deal", deal["id"])] == [
        "purge",
        "delete",
        "create",
    ]


def test_restrict_refuses_and_explains(crm: Workspace) -> None:
    account = create(crm, "account", name="Acme")
    deals = [create(crm, "deal", title=f"D{i}", account=account["id"]) for i in range(7)]
    delete(crm, "deal", deals[0]["id"])  # deleted records do not block a delete

    with pytest.raises(DeleteRestricted) as caught:
        delete(crm, "account", account["id"])

    message = caught.value.message
    assert caught.value.status == 409
    assert "6 `deal` record(s)" in message and "field `account`" in message
    assert f"ids {', '.join(str(d['id']) for d in deals[1:6])}, …" in message
    assert "restrict" in message
    assert get(crm, "account", account["id"])["version"] == 1


def test_set_null_clears_the_lookups(crm: Workspace) -> None:
    account = create(crm, "account", name="Acme")
    contact = create(crm, "contact", name="Li Lei", account=account["id"])

    delete(crm, "account", account["id"])

    cleared = get(crm, "contact", contact["id"])
    assert cleared["account"] is None and cleared["version"] == 2
    entry = history(crm, "contact", contact["id"])[0]
    assert entry["action"] == "update"
    assert entry["changes"] == {"account": [account["id"], None]}
    assert entry["cause"] == {
        "entity": "account",
        "id": account["id"],
        "action": "delete",
        "field": "account",
        "on_delete": "set_null",
    }


def test_cascade_deletes_recursively_and_restore_brings_them_back(crm: Workspace) -> None:
    # given a deal with tasks, one of which has a sub-task, and a task deleted earlier
    deal = create(crm, "deal", title="T")
    task = create(crm, "task", subject="call", deal=deal["id"])
    sub = create(crm, "task", subject="dial", parent=task["id"])
    earlier = create(crm, "task", subject="old", deal=deal["id"])
    delete(crm, "task", earlier["id"])

    # when the deal is deleted, its tasks go with it
    delete(crm, "deal", deal["id"])
    for record in (task, sub):
        with pytest.raises(RecordInRecycleBin):
            get(crm, "task", record["id"])
    assert history(crm, "task", sub["id"])[0]["cause"]["entity"] == "task"

    # then restoring the deal restores what its delete took, not the earlier delete
    records.restore_record(crm, env=ENV, entity="deal", record_id=deal["id"], principal=SYSTEM)
    assert get(crm, "task", task["id"])["version"] == 3
    assert get(crm, "task", sub["id"])["subject"] == "dial"
    with pytest.raises(RecordInRecycleBin):
        get(crm, "task", earlier["id"])


def test_a_restrict_behind_a_cascade_refuses_the_whole_delete(crm: Workspace) -> None:
    deal = create(crm, "deal", title="T")
    task = create(crm, "task", deal=deal["id"])
    create(crm, "quote", number="Q1", deal=deal["id"])

    with pytest.raises(DeleteRestricted) as caught:
        delete(crm, "deal", deal["id"])

    assert "`quote`" in caught.value.message
    assert get(crm, "task", task["id"])["version"] == 1
    assert get(crm, "deal", deal["id"])["version"] == 1


def test_cascade_cycles_end(crm: Workspace) -> None:
    first = create(crm, "task", subject="a")
    second = create(crm, "task", subject="b", parent=first["id"])
    patch(crm, "task", first, parent=second["id"])

    delete(crm, "task", first["id"])

    assert all(r["deleted_at"] is not None for r in stored(crm, "task"))
    records.purge_record(crm, env=ENV, entity="task", record_id=first["id"], principal=SYSTEM)
    assert stored(crm, "task") == []


def test_restore_is_blocked_while_a_lookup_is_deleted(crm: Workspace) -> None:
    account = create(crm, "account", name="Acme")
    deal = create(crm, "deal", title="T", account=account["id"])
    delete(crm, "deal", deal["id"])
    delete(crm, "account", account["id"])

    with pytest.raises(RestoreBlocked) as caught:
        records.restore_record(crm, env=ENV, entity="deal", record_id=deal["id"], principal=SYSTEM)

    assert issues(caught.value) == [("/account", "deleted_record")]
    records.restore_record(
        crm, env=ENV, entity="account", record_id=account["id"], principal=SYSTEM
    )
    assert (
        records.restore_record(crm, env=ENV, entity="deal", record_id=deal["id"], principal=SYSTEM)[
            "title"
        ]
        == "T"
    )


def test_purge_follows_the_delete_rules(crm: Workspace) -> None:
    # given an account whose deleted deal (restrict) and contacts (set null) look it up
    account = create(crm, "account", name="Acme")
    deal = create(crm, "deal", title="T", account=account["id"])
    task = create(crm, "task", deal=deal["id"])
    contact = create(crm, "contact", name="Han Meimei", account=account["id"])
    delete(crm, "contact", contact["id"])
    delete(crm, "deal", deal["id"])
    delete(crm, "account", account["id"])

    # when it is purged: the deleted deal's restrict lookup stops it
    with pytest.raises(DeleteRestricted) as caught:
        records.purge_record(
            crm, env=ENV, entity="account", record_id=account["id"], principal=SYSTEM
        )
    assert "purge those records first" in caught.value.message

    # then purging the deal takes its cascaded task along
    records.purge_record(crm, env=ENV, entity="deal", record_id=deal["id"], principal=SYSTEM)
    assert stored(crm, "task") == []
    assert history(crm, "task", task["id"])[0]["cause"]["action"] == "purge"
    # and the account can go; the deleted contact's lookup is cleared
    records.purge_record(crm, env=ENV, entity="account", record_id=account["id"], principal=SYSTEM)
    assert [r["account"] for r in stored(crm, "contact")] == [None]


def test_purge_is_refused_while_active_records_look_it_up(crm: Workspace) -> None:
    # given an active deal that looks up a deleted account (written around the service)
    account = create(crm, "account", name="Acme")
    deal = create(crm, "deal", title="T")
    delete(crm, "account", account["id"])
    with crm.begin(ENV) as conn:
        table = sa.table("deal", sa.column("id"), sa.column("account"), schema=crm.env_schema(ENV))
        conn.execute(sa.update(table).where(table.c.id == deal["id"]).values(account=account["id"]))

    # when / then
    with pytest.raises(DeleteRestricted) as caught:
        records.purge_record(
            crm, env=ENV, entity="account", record_id=account["id"], principal=SYSTEM
        )
    assert f"active `deal` {deal['id']}" in caught.value.message
    assert len(stored(crm, "account")) == 1


def test_purge_clears_retired_lookup_fields(crm: Workspace) -> None:
    # given a deal whose `account` field was removed from the entity (column kept)
    account = create(crm, "account", name="Acme")
    create(crm, "deal", title="T", account=account["id"])
    without = {**DEAL, "fields": [f for f in DEAL["fields"] if f["name"] != "account"]}
    publish(crm, without)
    delete(crm, "account", account["id"])  # nothing looks it up any more

    records.purge_record(crm, env=ENV, entity="account", record_id=account["id"], principal=SYSTEM)

    assert [r["account"] for r in stored(crm, "deal")] == [None]


# -- bulk ------------------------------------------------------------------------------------


def test_bulk_writes_everything_in_one_transaction(crm: Workspace) -> None:
    old = create(crm, "deal", title="Old")
    gone = create(crm, "deal", title="Gone")

    result = records.bulk_write(
        crm,
        env=ENV,
        entity="deal",
        create=[{"title": "A"}, {"title": "B", "amount": 5}],
        update=[{"id": old["id"], "version": 1, "amount": 7}],
        delete=[{"id": gone["id"]}],
        principal=SYSTEM,
    )

    assert [r["title"] for r in result["created"]] == ["A", "B"]
    assert result["updated"][0]["amount"] == 7
    assert result["deleted"][0]["deleted_at"] is not None
    assert len(stored(crm, "deal")) == 4


def test_bulk_is_all_or_nothing_with_row_errors(crm: Workspace) -> None:
    old = create(crm, "deal", title="Old")
    patch(crm, "deal", old, title="Older")

    with pytest.raises(BatchRejected) as caught:
        records.bulk_write(
            crm,
            env=ENV,
            entity="deal",
            create=[{"title": "fine"}, {"title": "bad", "amount": "x"}, {}],
            update=[
                {"id": old["id"], "version": 1, "title": "stale"},
                {"id": old["id"], "title": "no version"},
                {"id": 999, "version": 1},
                {"version": 1},
            ],
            delete=[{"id": old["id"], "why": "no"}],
            principal=SYSTEM,
        )

    assert caught.value.status == 422
    assert issues(caught.value) == [
        ("/create/1/amount", "type"),
        ("/create/2/title", "required"),
        ("/update/0/version", "stale_version"),
        ("/update/1/version", "version_required"),
        ("/update/2", "not_found"),
        ("/update/3/id", "type"),
        ("/delete/0/why", "unknown_field"),
    ]
    assert caught.value.details["current"]["/update/0"]["title"] == "Older"
    assert [r["title"] for r in stored(crm, "deal")] == ["Older"]


def test_bulk_with_only_conflicts_is_a_409(crm: Workspace) -> None:
    account = create(crm, "account", name="Acme")
    create(crm, "deal", title="T", account=account["id"])
    free = create(crm, "account", name="Free")

    with pytest.raises(BatchRejected) as caught:
        records.bulk_write(
            crm,
            env=ENV,
            entity="account",
            delete=[{"id": free["id"]}, {"id": account["id"]}],
            principal=SYSTEM,
        )

    assert caught.value.status == 409
    assert issues(caught.value) == [("/delete/1", "delete_restricted")]
    assert get(crm, "account", free["id"])["version"] == 1


def test_bulk_rows_see_earlier_rows(crm: Workspace) -> None:
    with pytest.raises(BatchRejected) as caught:
        records.bulk_write(
            crm,
            env=ENV,
            entity="account",
            create=[{"name": "Same"}, {"name": "Same"}],
            principal=SYSTEM,
        )

    assert issues(caught.value) == [("/create/1/name", "duplicate")]
    assert stored(crm, "account") == []


def test_bulk_size_is_capped(crm: Workspace) -> None:
    with pytest.raises(Invalid) as caught:
        records.bulk_write(
            crm, env=ENV, entity="deal", create=[{"title": "x"}] * 1001, principal=SYSTEM
        )

    assert issues(caught.value) == [("", "batch_too_large")]
    assert "at most 1000" in caught.value.message


# -- audit -----------------------------------------------------------------------------------


def test_history_records_field_level_changes(crm: Workspace) -> None:
    deal = create(crm, "deal", title="T", amount=5, tags=["hot"])
    changed = patch(crm, "deal", deal, amount="7.25", tags=["hot", "vip"], title="T")
    delete(crm, "deal", deal["id"])
    records.restore_record(crm, env=ENV, entity="deal", record_id=deal["id"], principal=SYSTEM)

    entries = history(crm, "deal", deal["id"])

    assert [e["action"] for e in entries] == ["restore", "delete", "update", "create"]
    restore, removal, update, creation = entries
    assert update["changes"] == {"amount": [5, 7.25], "tags": [["hot"], ["hot", "vip"]]}
    assert creation["changes"]["title"] == "T" and creation["changes"]["amount"] == 5
    assert set(creation["changes"]) == {"owner_id", *FULL_DEAL_JSON, "account"}
    assert removal["changes"]["amount"] == 7.25
    assert restore["changes"]["deleted_at"][1] is None
    assert update["at"] == changed["updated_at"]
    page = records.record_history(
        crm, env=ENV, entity="deal", record_id=deal["id"], limit=3, principal=SYSTEM
    )
    rest = records.record_history(
        crm,
        env=ENV,
        entity="deal",
        record_id=deal["id"],
        cursor=page["next_cursor"],
        principal=SYSTEM,
    )
    assert [e["action"] for e in rest["items"]] == ["create"]


def test_history_of_an_unknown_record_is_404(crm: Workspace) -> None:
    with pytest.raises(RecordNotFound):
        records.record_history(crm, env=ENV, entity="deal", record_id=42, principal=SYSTEM)


def test_audit_rows_roll_back_with_the_change(crm: Workspace) -> None:
    with pytest.raises(Invalid):
        create(crm, "deal", title="T", account=5)

    with crm.begin(ENV, readonly=True) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(audit)).scalar_one() == 0


def test_environments_get_new_environment_tables(crm: Workspace) -> None:
    # given environments from before the audit table existed
    create_environment(crm, "sandbox")
    for env in (ENV, "sandbox"):
        with crm.begin(env) as conn:
            audit.drop(conn)

    # when the workspace starts (twice: the upgrade leaves existing tables alone)
    initialise_workspace(crm)
    initialise_workspace(crm)

    # then every environment has the table again, and records can be written
    for env in (ENV, "sandbox"):
        with crm.begin(env, readonly=True) as conn:
            assert sa.inspect(conn).has_table("fl_audit", schema=crm.env_schema(env))
    deal = create(crm, "deal", title="T")
    assert [e["action"] for e in history(crm, "deal", deal["id"])] == ["create"]


def test_schema_of_an_entity(crm: Workspace) -> None:
    schema = records.entity_schema(crm, env=ENV, entity="deal", lang="zh", principal=SYSTEM)

    assert schema["title"] == "商机"
    assert "title" in schema["required"]
    assert schema["properties"]["stage"]["default"] == "open"
    with pytest.raises(PlatformError):
        records.entity_schema(crm, env=ENV, entity="nothing", principal=SYSTEM)
