"""Listing records on SQLite and PostgreSQL: filters, search, sort, keyset pages, titles, totals.

Rows are inserted with plain SQLAlchemy inserts into the entity tables (the
records service is tested on its own). The central check: the SQL form of a
condition selects exactly the records the in-memory ``matches`` accepts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from formloom.engine.conditions import parse_condition
from formloom.engine.relative_dates import timezone_named
from formloom.platform import record_query, schema_sync
from formloom.platform.database import Workspace
from formloom.platform.entity_runtime import RuntimeEntity, load_entity
from formloom.platform.errors import Invalid
from formloom.platform.list_cursor import SortKey, encode_cursor
from formloom.platform.metastore import MetaStore, PublishOptions, SourceDocument
from formloom.platform.record_query import ListPage, list_records

ENV = "production"
#: Sunday 15 March 2026, 20:00 in Shanghai.
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
SHANGHAI = timezone_named("Asia/Shanghai")
LABEL = {"zh": "字段", "en": "Field"}


def field(name: str, type_: str = "text", **extra: Any) -> dict[str, Any]:
    return {"name": name, "label": LABEL, "type": type_, **extra}


def choices(*values: str) -> dict[str, Any]:
    return {"choices": [{"value": v, "label": {"en": v}} for v in values]}


ACCOUNT = {
    "name": "account",
    "label": {"zh": "客户", "en": "Account"},
    "title_field": "name",
    "fields": [field("name"), field("city")],
}
OPPORTUNITY = {
    "name": "opportunity",
    "label": {"zh": "商机", "en": "Opportunity"},
    "title_field": "name",
    "fields": [
        field("name", searchable=True),
        field("description", "long_text", searchable=True),
        field("amount", "currency"),
        field("quantity", "integer"),
        field("stage", "single_select", options=choices("open", "won", "lost")),
        field("tags", "multi_select", options=choices("a", "b", "c")),
        field("won", "boolean"),
        field("close_date", "date"),
        field("closed_at", "datetime"),
        field("account", "lookup", options={"entity": "account"}),
        field("partner", "lookup", options={"entity": "account"}),
        field("email", "email"),
        field("labels", "tags"),
        field("address", "address"),
        field("location", "geo"),
    ],
}
NOTE = {"name": "note", "label": LABEL, "fields": [field("body", "long_text")]}


class Crm:
    """The published CRM entities of one test workspace, with helpers to fill and list them."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.namespace = workspace.cache_key

    def entity(self, conn: sa.Connection, name: str) -> RuntimeEntity:
        return load_entity(conn, namespace=self.namespace, env=ENV, name=name)

    def insert(self, name: str, *rows: dict[str, Any]) -> list[int]:
        """Insert rows (each may leave out any field) and return their ids in order."""
        ids = []
        with self.workspace.begin(ENV) as conn:
            table = self.entity(conn, name).table
            for row in rows:
                values = {"created_at": NOW, "updated_at": NOW, "version": 1, **row}
                ids.append(int(conn.execute(table.insert().values(values)).inserted_primary_key[0]))
        return ids

    def insert_many(self, name: str, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert rows that all have the same keys, in one statement."""
        with self.workspace.begin(ENV) as conn:
            table = self.entity(conn, name).table
            statement = table.insert().returning(table.c.id, sort_by_parameter_order=True)
            full = [{"created_at": NOW, "updated_at": NOW, "version": 1, **r} for r in rows]
            return [int(i) for i in conn.execute(statement, full).scalars()]

    def list(self, name: str = "opportunity", **options: Any) -> ListPage:
        with self.workspace.begin(ENV, readonly=True) as conn:
            return list_records(
                conn,
                self.entity(conn, name),
                now=NOW,
                entity_loader=lambda target: self.entity(conn, target),
                **options,
            )

    def ids(self, name: str = "opportunity", **options: Any) -> list[int]:
        return [item["id"] for item in self.list(name, limit=200, **options).items]

    def rows(self, name: str = "opportunity") -> list[dict[str, Any]]:
        with self.workspace.begin(ENV, readonly=True) as conn:
            table = self.entity(conn, name).table
            return [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id)).mappings()]

    def all_pages(self, sort: Sequence[str], limit: int, **options: Any) -> list[int]:
        """Follow ``next`` from the first page to the last; the ids in the order seen."""
        seen: list[int] = []
        after = None
        while True:
            page = self.list(sort=sort, limit=limit, after=after, with_total=False, **options)
            seen += [item["id"] for item in page.items]
            if page.next is None:
                return seen
            after = page.next


@pytest.fixture
def crm(workspace: Workspace) -> Iterator[Crm]:
    documents = [
        SourceDocument("entity", body, f"{body['name']}.json")
        for body in (ACCOUNT, OPPORTUNITY, NOTE)
    ]
    MetaStore(workspace).apply(ENV, documents, PublishOptions())
    yield Crm(workspace)
    assert workspace.engine.pool.checkedout() == 0


def problems(error: pytest.ExceptionInfo[Invalid]) -> list[tuple[str, str]]:
    return [(i.path, i.code) for i in error.value.issues]


# -- the same semantics in SQL and in memory ----------------------------------------------------

EDGE_ROWS: list[dict[str, Any]] = [
    {"name": "北京星辰科技有限公司", "amount": Decimal("150000.50"), "quantity": 3,
     "stage": "won", "tags": ["a", "b"], "won": True, "close_date": date(2026, 3, 1),
     "closed_at": datetime(2026, 3, 14, 16, 0, tzinfo=UTC), "email": "a@x.cn",
     "labels": ["vip", "北京"], "address": {"country": "CN", "street": "科技园 1 号"},
     "location": {"lat": 39.9, "lng": 116.4}},
    {"name": "ACME Ltd", "amount": Decimal(50000), "quantity": 0, "stage": "open",
     "tags": ["c"], "won": False, "close_date": date(2026, 2, 28),
     "closed_at": datetime(2026, 3, 15, 15, 59, tzinfo=UTC), "description": "100% sure_thing",
     "labels": ["新客户"], "address": sa.JSON.NULL, "location": sa.JSON.NULL},
    {"name": "", "amount": None, "quantity": None, "stage": None, "tags": [], "won": None,
     "close_date": None, "closed_at": None, "description": "", "labels": [], "address": None},
    {"name": "acme 100%", "amount": Decimal(100000), "quantity": -5, "stage": "lost",
     "tags": sa.JSON.NULL, "won": True, "close_date": date(2026, 4, 1), "labels": sa.JSON.NULL,
     "closed_at": datetime(2026, 3, 15, 16, 0, tzinfo=UTC), "description": "100 sure"},
    {"name": "O'Brien; DROP TABLE opportunity; --", "amount": Decimal("0.01"), "stage": "won",
     "tags": ["b"], "close_date": date(2026, 3, 31)},
]  # fmt: skip

CONDITIONS: list[Any] = [
    {"field": "stage", "op": "eq", "value": "won"},
    {"field": "stage", "op": "ne", "value": "won"},
    {"field": "stage", "op": "in", "value": ["won", "lost"]},
    {"field": "stage", "op": "not_in", "value": ["won", "lost"]},
    {"field": "amount", "op": "gt", "value": 50000},
    {"field": "amount", "op": "le", "value": "100000"},
    {"not": {"field": "amount", "op": "le", "value": "100000"}},
    {"field": "amount", "op": "between", "value": [50000, 100000]},
    {"field": "amount", "op": "between", "value": [None, 100000]},
    {"not": {"field": "amount", "op": "between", "value": [50000, 100000]}},
    {"field": "quantity", "op": "lt", "value": 1},
    {"field": "name", "op": "contains", "value": "科技"},
    {"field": "name", "op": "contains", "value": "acme"},
    {"field": "name", "op": "starts_with", "value": "ACME"},
    {"field": "name", "op": "contains", "value": "100%"},
    {"field": "description", "op": "contains", "value": "0%"},
    {"field": "description", "op": "contains", "value": "_"},
    {"not": {"field": "name", "op": "contains", "value": "acme"}},
    {"field": "name", "op": "eq", "value": "O'Brien; DROP TABLE opportunity; --"},
    {"field": "name", "op": "is_empty", "value": True},
    {"field": "name", "op": "is_empty", "value": False},
    {"field": "description", "op": "is_empty", "value": True},
    {"field": "tags", "op": "contains", "value": ["b", "c"]},
    {"not": {"field": "tags", "op": "contains", "value": "b"}},
    {"field": "tags", "op": "is_empty", "value": True},
    {"field": "tags", "op": "is_empty", "value": False},
    {"field": "won", "op": "eq", "value": True},
    {"field": "won", "op": "ne", "value": True},
    {"field": "close_date", "op": "eq", "value": {"relative": "this_month"}},
    {"field": "close_date", "op": "ne", "value": {"relative": "this_month"}},
    {"field": "close_date", "op": "gt", "value": {"relative": "this_month"}},
    {"field": "close_date", "op": "le", "value": {"relative": "last_month"}},
    {"field": "closed_at", "op": "eq", "value": {"relative": "today"}},
    {"field": "closed_at", "op": "ge", "value": {"relative": "last_n_days", "n": 2}},
    {"field": "email", "op": "eq", "value": "A@X.CN"},
    {"field": "id", "op": "in", "value": [1, 3, 5]},
    {"field": "created_at", "op": "eq", "value": {"relative": "today"}},
    {"or": [{"field": "stage", "op": "eq", "value": "won"}, {"field": "won", "op": "eq",
                                                            "value": False}]},
    {"and": [{"field": "stage", "op": "ne", "value": "open"},
             {"not": {"or": [{"field": "amount", "op": "ge", "value": 100000},
                             {"field": "tags", "op": "is_empty", "value": True}]}}]},
    {"not": {"not": {"field": "amount", "op": "gt", "value": 0}}},
    {"field": "labels", "op": "contains", "value": ["北京", "新客户"]},
    {"not": {"field": "labels", "op": "contains", "value": "vip"}},
    {"field": "labels", "op": "is_empty", "value": True},
    {"field": "address", "op": "is_empty", "value": True},
    {"not": {"field": "address", "op": "is_empty", "value": True}},
    {"field": "location", "op": "is_empty", "value": False},
    {"and": []},
    {"or": []},
]  # fmt: skip


def test_sql_selects_exactly_the_records_matches_accepts(crm: Crm) -> None:
    # given: rows with empty values of every kind (NULL, '', [], JSON null)
    crm.insert("opportunity", *EDGE_ROWS)
    crm.insert("opportunity", {"name": "no tags at all"})
    with crm.workspace.begin(ENV, readonly=True) as conn:
        entity = crm.entity(conn, "opportunity")
    rows = crm.rows()
    assert SHANGHAI is not None
    disagreements = []

    for raw in CONDITIONS:
        condition = parse_condition(raw, entity.compiled, now=NOW, tz=SHANGHAI)

        # when
        in_sql = sorted(crm.ids(where=condition))

        # then
        in_memory = [r["id"] for r in rows if condition.matches(r)]
        if in_sql != in_memory:
            disagreements.append((raw, in_sql, in_memory))
    assert disagreements == []
    assert crm.ids(where={"field": "stage", "op": "eq", "value": "won"}, sort=["id"]) == [1, 5]


def test_the_examples_of_the_brief_as_query_parameters(crm: Crm) -> None:
    # given
    [match, *_] = crm.insert(
        "opportunity",
        {"name": "北京星辰科技有限公司", "stage": "won", "amount": Decimal(120000),
         "close_date": date(2026, 2, 1), "tags": ["b"], "owner_id": 2},
        {"name": "北京星辰科技有限公司", "stage": "won", "amount": Decimal(99999),
         "close_date": date(2026, 2, 1), "tags": ["b"], "owner_id": 2},
        {"name": "上海科技", "stage": "won", "amount": Decimal(120000),
         "close_date": date(2026, 4, 1), "tags": ["a"], "owner_id": 1},
        {"name": "上海科技", "stage": "won", "amount": Decimal(120000),
         "close_date": date(2026, 3, 1), "tags": ["c"], "owner_id": 1},
        {"name": "上海科技", "stage": "won", "amount": Decimal(120000),
         "close_date": date(2026, 3, 1), "tags": ["a"], "owner_id": 3},
    )  # fmt: skip

    # when
    found = crm.ids(
        filters=[
            ("stage", "won"),
            ("amount__ge", "100000"),
            ("name__contains", "科技"),
            ("close_date__between", "2026-01-01,2026-03-31"),
            ("tags__contains", "a,b"),
            ("owner_id__in", "1,2"),
        ]
    )

    # then
    assert found == [match]
    assert crm.ids(filters=[("amount__gte", "120000"), ("amount__lte", "120000.00")]) == [
        5,
        4,
        3,
        1,
    ]


def test_where_and_query_parameters_combine(crm: Crm) -> None:
    crm.insert(
        "opportunity",
        {"name": "a", "stage": "won", "won": True},
        {"name": "b", "stage": "won", "won": False},
        {"name": "c", "stage": "lost", "won": True},
    )

    found = crm.ids(where={"field": "stage", "op": "eq", "value": "won"}, filters=[("won", "1")])

    assert found == [1]


# -- sorting and keyset pages -------------------------------------------------------------------


def expected_order(rows: list[dict[str, Any]], sort: Sequence[str]) -> list[int]:
    """Sort like the list does: given keys, empty values last either way, then id."""
    keys = [(s.lstrip("-"), s.startswith("-")) for s in sort]
    if not any(name == "id" for name, _ in keys):
        keys.append(("id", keys[0][1] if keys else True))
    ordered = list(rows)
    for name, descending in reversed(keys):
        present = [r for r in ordered if r[name] is not None]
        present.sort(key=lambda r, n=name: r[n], reverse=descending)  # stable
        ordered = present + [r for r in ordered if r[name] is None]
    return [r["id"] for r in ordered]


def many_rows(count: int) -> list[dict[str, Any]]:
    """Rows with many ties and NULLs in every sortable column."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    stages = ["open", "won", "lost", None]
    return [
        {
            "name": f"deal{(i * 7919) % 311:04d}",
            "amount": None if i % 7 == 0 else Decimal((i * 31) % 50 * 1000),
            "stage": stages[i % 4],
            "close_date": None if i % 5 == 0 else date(2026, 1, 1) + timedelta(days=i % 40),
            "won": None if i % 3 == 0 else i % 2 == 0,
            "owner_id": None if i % 6 == 0 else i % 9,
            "created_at": base + timedelta(seconds=i // 3),
        }
        for i in range(count)
    ]


SORTS = [
    [],
    ["-amount"],
    ["close_date"],
    ["stage"],
    ["amount", "name"],
    ["close_date", "-amount"],
    ["-stage", "-close_date", "name"],
    ["won", "-owner_id"],
    ["-created_at"],
    ["created_at", "id"],
    ["-name", "-id", "amount"],
]


def test_pages_visit_every_row_exactly_once_in_order_under_several_sorts(crm: Crm) -> None:
    # given: a few thousand rows
    crm.insert_many("opportunity", many_rows(2500))
    rows = crm.rows()

    for sort in SORTS:
        # when
        seen = crm.all_pages(sort, limit=200)

        # then
        assert len(seen) == len(set(seen)) == 2500, sort
        assert seen == expected_order(rows, sort), sort


def test_small_pages_cross_every_null_boundary(crm: Crm) -> None:
    crm.insert_many("opportunity", many_rows(60))
    rows = crm.rows()

    for sort in SORTS:
        for limit in (1, 7):
            assert crm.all_pages(sort, limit=limit) == expected_order(rows, sort), (sort, limit)


def test_a_next_page_by_a_field_with_empty_values_starts_at_the_cursor(crm: Crm) -> None:
    # given: a page boundary inside the filled values, then one at the empty values
    crm.insert_many("opportunity", many_rows(60))
    rows = crm.rows()
    first = crm.list(sort=["close_date"], limit=40, with_total=False)
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    sa.event.listen(crm.workspace.engine, "before_cursor_execute", record)
    try:
        # when
        second = crm.list(sort=["close_date"], limit=40, after=first.next, with_total=False)
    finally:
        sa.event.remove(crm.workspace.engine, "before_cursor_execute", record)

    # then: the filled values after the cursor are a row value range (an index seek, no
    # OR that walks the rows before the cursor again), then the empty values follow
    seen = [item["id"] for item in first.items + second.items]
    assert seen == expected_order(rows, ["close_date"])[: len(seen)]
    assert any(r["close_date"] is None for r in second.items)
    pages = [s for s in statements if "FROM" in s and "opportunity" in s and "ORDER BY" in s]
    assert len(pages) == 2
    assert " OR " not in pages[0] and "(" in pages[0].split("WHERE", 1)[1]
    assert "close_date IS NULL" in pages[1]


def test_pages_of_a_filtered_and_searched_list(crm: Crm) -> None:
    crm.insert_many("opportunity", many_rows(300))
    rows = crm.rows()
    wanted = [r for r in rows if r["stage"] == "won" and "01" in r["name"]]

    seen = crm.all_pages(["-amount"], limit=5, filters=[("stage", "won")], search="01")

    assert seen == expected_order(wanted, ["-amount"])


def test_a_cursor_from_another_sort_or_a_forged_one_is_refused(crm: Crm) -> None:
    # given
    crm.insert_many("opportunity", many_rows(10))
    cursor = crm.list(sort=["-amount"], limit=3).next
    assert cursor is not None

    # when
    with pytest.raises(Invalid) as other_sort:
        crm.list(sort=["name"], limit=3, after=cursor)
    with pytest.raises(Invalid) as garbage:
        crm.list(sort=["-amount"], after="not a cursor!")
    keys = [SortKey("amount", True, "decimal"), SortKey("id", True, "integer")]
    forged = encode_cursor(keys, {"amount": "lots", "id": 1})
    with pytest.raises(Invalid) as wrong_value:
        crm.list(sort=["-amount"], after=forged)

    # then
    assert problems(other_sort) == [("/after", "cursor_sort_mismatch")]
    assert "sorted by `-amount,-id`" in other_sort.value.issues[0].message
    assert "sorts by `name,id`" in other_sort.value.issues[0].message
    assert problems(garbage) == [("/after", "invalid_cursor")]
    assert problems(wrong_value) == [("/after", "invalid_cursor")]


def test_page_size_is_capped(crm: Crm) -> None:
    with pytest.raises(Invalid) as too_many:
        crm.list(limit=201)
    with pytest.raises(Invalid) as none:
        crm.list(limit=0)

    assert problems(too_many) == [("/limit", "limit_out_of_range")]
    assert "ask for 1 to 200 records per page" in too_many.value.issues[0].message
    assert problems(none) == [("/limit", "limit_out_of_range")]


def test_sorting_refuses_unknown_multi_valued_and_repeated_fields(crm: Crm) -> None:
    with pytest.raises(Invalid) as exc:
        crm.list(sort=["-nope", "tags", "name", "-name", "name;DROP TABLE opportunity"])

    assert problems(exc) == [
        ("/sort/0", "unknown_field"),
        ("/sort/1", "not_sortable"),
        ("/sort/3", "duplicate_sort"),
        ("/sort/4", "unknown_field"),
    ]


# -- fields, titles, search -----------------------------------------------------------------------


def test_field_selection_returns_system_fields_and_the_chosen_ones(crm: Crm) -> None:
    crm.insert("opportunity", {"name": "A", "amount": Decimal("12.5"), "stage": "won"})

    (item,) = crm.list(fields=["name", "amount"]).items

    assert item == {
        "id": 1,
        "version": 1,
        "created_at": NOW.isoformat(),
        "updated_at": NOW.isoformat(),
        "created_by": None,
        "updated_by": None,
        "owner_id": None,
        "name": "A",
        "amount": 12.5,
    }
    with pytest.raises(Invalid) as exc:
        crm.list(fields=["name", "nope", "id"])
    assert problems(exc) == [("/fields/1", "unknown_field")]


def test_lookup_titles_come_with_one_query_per_looked_up_entity(crm: Crm) -> None:
    # given
    star, acme = crm.insert("account", {"name": "北京星辰科技有限公司"}, {"name": "ACME"})
    crm.insert(
        "opportunity",
        {"name": "1", "account": star, "partner": acme},
        {"name": "2", "account": acme},
        {"name": "3"},
    )
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    sa.event.listen(crm.workspace.engine, "before_cursor_execute", record)
    try:
        # when
        items = crm.list(sort=["name"], fields=["name", "account", "partner"]).items
    finally:
        sa.event.remove(crm.workspace.engine, "before_cursor_execute", record)

    # then
    assert [item["_titles"] for item in items] == [
        {"account": "北京星辰科技有限公司", "partner": "ACME"},
        {"account": "ACME", "partner": None},
        {"account": None, "partner": None},
    ]
    schema = crm.workspace.env_schema(ENV)
    from_account = [s for s in statements if f"FROM {schema}.account" in s]
    assert len(from_account) == 1
    assert "_titles" not in crm.list(fields=["name"]).items[0]
    assert "_titles" not in crm.list(expand_titles=False).items[0]


def test_search_finds_chinese_substrings_case_insensitively_in_searchable_fields(
    crm: Crm,
) -> None:
    crm.insert(
        "opportunity",
        {"name": "北京星辰科技有限公司"},
        {"name": "Acme Ltd", "description": "科技 partner"},
        {"name": "Other", "description": "nothing here"},
        {"name": "100% done", "description": "under_score"},
        {"name": "1000 done", "description": "underXscore"},
    )

    assert crm.ids(search="科技", sort=["id"]) == [1, 2]
    assert crm.ids(search="ACME") == [2]
    assert crm.ids(search="  acme   科技 ") == [2]
    assert crm.ids(search="100%") == [4]
    assert crm.ids(search="under_score") == [4]
    assert crm.ids(search="%' OR '1'='1") == []
    assert crm.ids(search="   ") == [5, 4, 3, 2, 1]


def test_search_falls_back_to_the_title_field_and_needs_one(crm: Crm) -> None:
    crm.insert("account", {"name": "北京星辰科技有限公司", "city": "上海"}, {"name": "上海科技"})

    assert crm.ids("account", search="上海") == [2]
    with pytest.raises(Invalid) as exc:
        crm.list("note", search="x")
    assert problems(exc) == [("/q", "not_searchable")]


# -- totals, deleted rows, every error at once --------------------------------------------------


def test_totals_are_exact_up_to_the_bound(crm: Crm, monkeypatch: pytest.MonkeyPatch) -> None:
    # given
    crm.insert_many("opportunity", many_rows(120))
    monkeypatch.setattr(record_query, "COUNT_BOUND", 50)

    # when
    small = crm.list(limit=10, filters=[("stage", "won")])
    large = crm.list(limit=10)
    everything = crm.list(limit=200, filters=[("amount__ge", "0")])

    # then
    assert (small.total, small.total_is_exact) == (30, True)
    assert everything.next is None
    assert (everything.total, everything.total_is_exact) == (len(everything.items), True)
    assert large.total_is_exact is False
    assert large.total is not None and large.total >= 50
    assert crm.list(limit=10, with_total=False).total is None


def test_beyond_the_bound_postgresql_reports_the_planner_estimate(
    crm: Crm, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm.insert_many("opportunity", many_rows(2000))
    monkeypatch.setattr(record_query, "COUNT_BOUND", 100)
    if not crm.workspace.is_sqlite:
        with crm.workspace.begin(ENV) as conn:
            conn.execute(sa.text(f'ANALYZE "{crm.workspace.env_schema(ENV)}".opportunity'))

    page = crm.list(limit=10)

    assert page.total_is_exact is False
    if crm.workspace.is_sqlite:
        assert page.total == 100
    else:
        assert page.total is not None and 1000 <= page.total <= 4000


def test_soft_deleted_records_are_left_out_unless_asked_for(crm: Crm) -> None:
    crm.insert("opportunity", {"name": "kept"}, {"name": "gone", "deleted_at": NOW})

    assert crm.ids() == [1]
    assert crm.list().total == 1
    assert crm.ids(include_deleted=True) == [2, 1]
    assert crm.list(include_deleted=True).items[0]["deleted_at"] == NOW.isoformat()


def test_every_bad_input_is_reported_at_once(crm: Crm) -> None:
    with pytest.raises(Invalid) as exc:
        crm.list(
            where={"and": [{"field": "amount", "op": "ge", "value": "lots"}]},
            filters=[("stage__gt", "won")],
            sort=["nope"],
            after="!!",
            limit=500,
            fields=["ghost"],
            timezone="Mars/Base",
        )

    assert problems(exc) == [
        ("/timezone", "unknown_timezone"),
        ("/where/and/0/value", "type"),
        ("/stage__gt", "operator_not_allowed"),
        ("/sort/0", "unknown_field"),
        ("/after", "invalid_cursor"),
        ("/limit", "limit_out_of_range"),
        ("/fields/0", "unknown_field"),
    ]


def test_sql_looking_input_is_harmless(crm: Crm) -> None:
    # given
    crm.insert("opportunity", {"name": "x' OR '1'='1"}, {"name": "plain"})

    # when
    by_value = crm.ids(filters=[("name", "x' OR '1'='1")])
    by_contains = crm.ids(filters=[("name__contains", "'; DROP TABLE opportunity; --")])
    by_search = crm.ids(search="'; DELETE FROM opportunity; --")
    by_in = crm.ids(filters=[("name__in", "plain') OR ('1'='1")])
    with pytest.raises(Invalid) as bad_name:
        crm.ids(where={"field": 'name" OR 1=1 --', "op": "eq", "value": "x"})

    # then
    assert (by_value, by_contains, by_search, by_in) == ([1], [], [], [])
    assert problems(bad_name) == [("/where/field", "unknown_field")]
    assert crm.ids(sort=["id"]) == [1, 2]


# -- trigram indexes for search (PostgreSQL) ------------------------------------------------------


def search_indexes(workspace: Workspace, table: str) -> dict[str, str]:
    """Trigram indexes of ``table`` by name, with their definition (none on SQLite)."""
    if workspace.is_sqlite:
        with workspace.begin(ENV, readonly=True) as conn:
            found = sa.inspect(conn).get_indexes(table, schema=workspace.env_schema(ENV))
        return {str(ix["name"]): "" for ix in found if str(ix["name"]).startswith("tg_")}
    with workspace.begin(ENV, readonly=True) as conn:
        rows = conn.execute(
            sa.text(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = :schema AND tablename = :table AND indexname LIKE 'tg\\_%'"
            ),
            {"schema": workspace.env_schema(ENV), "table": table},
        )
        return {name: definition for name, definition in rows}


def publish(workspace: Workspace, body: dict[str, Any]) -> None:
    store = MetaStore(workspace)
    store.save_draft(ENV, "entity", body["name"], body)
    store.publish(ENV, "entity", body["name"], PublishOptions())


def test_searchable_text_fields_get_trigram_indexes_on_postgresql(crm: Crm) -> None:
    workspace = crm.workspace

    indexes = search_indexes(workspace, "opportunity")

    if workspace.is_sqlite:
        assert indexes == {}  # SQLite has no trigram index: search scans
        return
    assert set(indexes) == {"tg_opportunity__name", "tg_opportunity__description"}
    assert "USING gin" in indexes["tg_opportunity__name"]
    assert "gin_trgm_ops" in indexes["tg_opportunity__name"]
    # the planner can answer a search with it (three characters or more)
    with workspace.begin(ENV, readonly=True) as conn:
        conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = conn.execute(
            sa.text(
                f'EXPLAIN SELECT id FROM "{workspace.env_schema(ENV)}".opportunity '
                "WHERE name ILIKE :pattern ESCAPE '/'"
            ),
            {"pattern": "%星辰科技%"},
        )
        assert "tg_opportunity__name" in "\n".join(plan.scalars())


def test_trigram_indexes_follow_the_searchable_flag(crm: Crm) -> None:
    unflagged = {
        **OPPORTUNITY,
        "fields": [{**f, "searchable": f["name"] == "description"} for f in OPPORTUNITY["fields"]],
    }

    publish(crm.workspace, unflagged)
    after_unflagging = set(search_indexes(crm.workspace, "opportunity"))
    publish(crm.workspace, OPPORTUNITY)

    if crm.workspace.is_sqlite:
        assert after_unflagging == set()
        return
    assert after_unflagging == {"tg_opportunity__description"}
    assert set(search_indexes(crm.workspace, "opportunity")) == {
        "tg_opportunity__name",
        "tg_opportunity__description",
    }


def test_without_the_extension_publishing_works_and_search_scans(
    crm: Crm, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: an extension that cannot be created (as on a server without pg_trgm)
    monkeypatch.setattr(schema_sync, "TRIGRAM_EXTENSION", "formloom_missing_extension")
    lead = {"name": "lead", "label": LABEL, "fields": [field("name", searchable=True)]}

    # when
    publish(crm.workspace, lead)
    crm.insert("lead", {"name": "北京星辰科技有限公司"}, {"name": "other"})
    publish(crm.workspace, {**lead, "fields": [field("name")]})  # dropping a missing index
    publish(crm.workspace, lead)

    # then
    assert search_indexes(crm.workspace, "lead") == {}
    assert crm.ids("lead", search="星辰科技") == [1]
