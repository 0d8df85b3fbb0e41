"""Decimals stay exact on both databases (scaled integers on SQLite): storage, filters, sort,
rollups, and the upgrade of SQLite columns created before."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from formloom.platform import records
from formloom.platform.app import build_app
from formloom.platform.column_types import SCALED_DECIMAL
from formloom.platform.database import Workspace
from formloom.platform.entity_runtime import load_entity
from formloom.platform.record_query import list_records
from formloom.platform.schema_sync import upgrade_decimal_columns
from tests.clients import admin_client
from tests.platform.crm_entities import ENV, field, label, publish
from tests.principals import SYSTEM

#: Adjacent values a double cannot tell apart (both read 12345678901234568.0 as REAL).
BIG = Decimal("12345678901234567.89")
BIG_LESS = Decimal("12345678901234567.88")

LEDGER = {
    "name": "ledger",
    "label": label("Ledger", "账簿"),
    "fields": [
        field("title"),
        field("amount", "decimal", indexed=True, options={"precision": 20, "scale": 2}),
        field(
            "total",
            "rollup",
            options={
                "relation": {"entity": "entry", "field": "ledger"},
                "aggregate": "sum",
                "field": "amount",
            },
        ),
        field(
            "mean",
            "rollup",
            options={
                "relation": {"entity": "entry", "field": "ledger"},
                "aggregate": "avg",
                "field": "amount",
            },
        ),
    ],
}
ENTRY = {
    "name": "entry",
    "label": label("Entry", "分录"),
    "fields": [
        field("ledger", "lookup", options={"entity": "ledger"}),
        field("amount", "decimal", options={"precision": 20, "scale": 2}),
    ],
}


@pytest.fixture
def books(workspace: Workspace) -> Workspace:
    publish(workspace, LEDGER, ENTRY)
    return workspace


def create(ws: Workspace, entity: str, **values: Any) -> int:
    record = records.create_record(ws, env=ENV, entity=entity, payload=values, principal=SYSTEM)
    return int(record["id"])


def stored(ws: Workspace, entity: str, column: str) -> dict[int, Any]:
    """The column's values as the runtime table reads them, by id."""
    with ws.begin(ENV, readonly=True) as conn:
        table = load_entity(conn, namespace=ws.cache_key, env=ENV, name=entity).table
        rows = conn.execute(sa.select(table.c.id, table.c[column]))
        return {int(row[0]): row[1] for row in rows}


def listed(ws: Workspace, **query: Any) -> list[int]:
    with ws.begin(ENV, readonly=True) as conn:
        entity = load_entity(conn, namespace=ws.cache_key, env=ENV, name="ledger")
        page = list_records(conn, entity, expand_titles=False, **query)
    return [item["id"] for item in page.items]


def test_values_beyond_a_double_round_trip_filter_and_sort(books: Workspace) -> None:
    # given
    big = create(books, "ledger", title="big", amount=str(BIG))
    less = create(books, "ledger", title="less", amount=str(BIG_LESS))
    small = create(books, "ledger", title="small", amount="0.1")

    # when
    values = stored(books, "ledger", "amount")
    greater = listed(books, filters=[("amount__gt", str(BIG_LESS))])
    between = listed(books, filters=[("amount__between", f"{BIG_LESS},{BIG_LESS}")])
    equal = listed(books, where={"field": "amount", "op": "eq", "value": str(BIG)})
    ascending = listed(books, sort=["amount"])
    descending = listed(books, sort=["-amount"])

    # then
    assert values == {big: BIG, less: BIG_LESS, small: Decimal("0.10")}
    assert greater == [big]
    assert between == [less]
    assert equal == [big]
    assert ascending == [small, less, big]
    assert descending == [big, less, small]


def test_rollups_sum_and_average_exactly(books: Workspace) -> None:
    # given
    ledger = create(books, "ledger", title="L")
    tenths = create(books, "ledger", title="T")

    # when
    create(books, "entry", ledger=ledger, amount=str(BIG))
    create(books, "entry", ledger=ledger, amount="0.01")
    for _ in range(3):
        create(books, "entry", ledger=tenths, amount="0.1")
    create(books, "entry", ledger=tenths, amount="0.2")

    # then
    assert stored(books, "ledger", "total") == {
        ledger: BIG + Decimal("0.01"),
        tenths: Decimal("0.50"),
    }
    # an average goes through a double on SQLite (then rounded half up to the scale)
    assert stored(books, "ledger", "mean")[tenths] == Decimal("0.13")


def test_a_precision_change_keeps_exact_values(books: Workspace) -> None:
    # given
    big = create(books, "ledger", title="big", amount="1234567890123456.78")
    wider = {
        **LEDGER,
        "fields": [
            field("title"),
            field("amount", "decimal", indexed=True, options={"precision": 19, "scale": 3}),
            *LEDGER["fields"][2:],  # type: ignore[index]
        ],
    }

    # when
    publish(books, wider, ENTRY)

    # then
    assert stored(books, "ledger", "amount") == {big: Decimal("1234567890123456.780")}
    assert listed(books, filters=[("amount__ge", "1234567890123456.779")]) == [big]
    assert listed(books, filters=[("amount__gt", "1234567890123456.78")]) == []


def test_sqlite_refuses_what_a_scaled_integer_cannot_hold(workspace: Workspace) -> None:
    huge = {
        "name": "huge",
        "label": label("Huge", "大数"),
        "fields": [field("amount", "decimal", options={"precision": 30, "scale": 2})],
    }
    publish(workspace, huge)
    value = "123456789012345678901.23"

    if workspace.is_sqlite:
        with pytest.raises(sa.exc.StatementError, match="more significant digits"):
            create(workspace, "huge", amount=value)
        assert stored(workspace, "huge", "amount") == {}
    else:
        record = create(workspace, "huge", amount=value)
        assert stored(workspace, "huge", "amount") == {record: Decimal(value)}


def test_old_sqlite_columns_are_upgraded_once(books: Workspace) -> None:
    if not books.is_sqlite:
        assert upgrade_decimal_columns(books, ENV) == []
        return
    # given: `amount` as databases created before declare it, holding plain numbers
    schema = books.env_schema(ENV)
    first = create(books, "ledger", title="a")
    second = create(books, "ledger", title="b")
    with books.begin(ENV) as conn:
        conn.exec_driver_sql(f'DROP INDEX "{schema}"."ix_ledger__amount"')
        conn.exec_driver_sql(f'ALTER TABLE "{schema}"."ledger" DROP COLUMN "amount"')
        conn.exec_driver_sql(f'ALTER TABLE "{schema}"."ledger" ADD COLUMN "amount" NUMERIC(20, 2)')
        conn.exec_driver_sql(f'CREATE INDEX "{schema}"."ix_ledger__amount" ON "ledger" ("amount")')
        conn.exec_driver_sql(f'UPDATE "{schema}"."ledger" SET amount = 12.5 WHERE id = {first}')
        conn.exec_driver_sql(f'UPDATE "{schema}"."ledger" SET amount = 150000 WHERE id = {second}')

    # when
    converted = upgrade_decimal_columns(books, ENV)
    again = upgrade_decimal_columns(books, ENV)

    # then
    assert converted == ["ledger.amount"]
    assert again == []
    assert stored(books, "ledger", "amount") == {
        first: Decimal("12.50"),
        second: Decimal("150000.00"),
    }
    assert listed(books, filters=[("amount__gt", "100")]) == [second]
    with books.begin(ENV, readonly=True) as conn:
        declared = {
            row[1]: row[2]
            for row in conn.exec_driver_sql(f'PRAGMA "{schema}".table_info("ledger")')
        }
        indexes = {
            row[1] for row in conn.exec_driver_sql(f'PRAGMA "{schema}".index_list("ledger")')
        }
    assert declared["amount"] == f"{SCALED_DECIMAL}(20,2)"
    assert declared["total"].startswith(SCALED_DECIMAL)
    assert "ix_ledger__amount" in indexes


def test_over_http_a_value_sqlite_cannot_hold_is_a_422_in_the_callers_language(
    workspace: Workspace,
) -> None:
    huge = {
        "name": "huge",
        "label": label("Huge", "大数"),
        "fields": [field("amount", "decimal", options={"precision": 30, "scale": 2})],
    }
    publish(workspace, huge)
    app = build_app(workspace.settings, run_worker=False)

    with admin_client(app) as client:
        url = f"/api/envs/{ENV}/records/huge"
        english = client.post(url, json={"amount": "123456789012345678901.23"})
        chinese = client.post(
            url, json={"amount": "123456789012345678901.23"}, headers={"Accept-Language": "zh"}
        )
        listed_after = client.get(url).json()["items"]

    if workspace.is_sqlite:
        assert english.status_code == 422 and "significant digits" in english.json()["detail"]
        assert chinese.status_code == 422 and "有效位数" in chinese.json()["detail"]
        assert listed_after == []
    else:
        assert english.status_code == chinese.status_code == 201
