"""Publishing entities creates and alters real tables, on SQLite and on PostgreSQL.

Every test runs on both databases (the ``workspace`` fixture). Tables are looked
at the way an operator would: SQLAlchemy inspection of the environment's
namespace, and plain SQL for rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from formloom.engine.entities.changes import Operation
from formloom.platform.column_types import SCALED_DECIMAL, from_scaled, to_scaled
from formloom.platform.database import Workspace
from formloom.platform.errors import Invalid, NotFound
from formloom.platform.metastore import (
    BatchInvalid,
    MetaStore,
    PublishOptions,
    PublishResult,
    SourceDocument,
)

ENV = "production"
LABEL = {"zh": "名称", "en": "Name"}
SYSTEM = {
    "id": "integer",
    "created_at": "datetime",
    "updated_at": "datetime",
    "created_by": "integer",
    "updated_by": "integer",
    "owner_id": "integer",
    "version": "integer",
    "deleted_at": "datetime",
}


def field(name: str, type_: str = "text", **extra: Any) -> dict[str, Any]:
    return {"name": name, "label": LABEL, "type": type_, **extra}


def entity(name: str, *fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "label": LABEL, "fields": list(fields), **extra}


def lookup(name: str, target: str) -> dict[str, Any]:
    return field(name, "lookup", options={"entity": target})


def choices(*values: str) -> dict[str, Any]:
    return {"choices": [{"value": v, "label": {"en": v}} for v in values]}


def describe(column_type: sa.types.TypeEngine[Any]) -> str:
    """A column type as the engine names storage, whatever the database reflected."""
    if isinstance(column_type, sa.Text):
        return "text"
    if isinstance(column_type, sa.String):
        return f"string({column_type.length})"
    if isinstance(column_type, sa.Integer):
        return "integer"
    if isinstance(column_type, sa.Numeric):
        return f"decimal({column_type.precision},{column_type.scale})"
    if isinstance(column_type, sa.Boolean):
        return "boolean"
    if isinstance(column_type, sa.DateTime):
        return "datetime"
    if isinstance(column_type, sa.Date):
        return "date"
    if isinstance(column_type, sa.JSON):
        return "json"
    return repr(column_type)


class Tables:
    """The physical tables of one environment, seen through SQLAlchemy inspection and SQL."""

    def __init__(self, workspace: Workspace, env: str = ENV) -> None:
        self.workspace = workspace
        self.env = env
        self.schema = workspace.env_schema(env)

    def _inspect(self, look: Callable[[sa.Inspector], Any]) -> Any:
        with self.workspace.begin(self.env, readonly=True) as conn:
            return look(sa.inspect(conn))

    def exists(self, table: str) -> bool:
        return bool(self._inspect(lambda i: i.has_table(table, schema=self.schema)))

    def columns(self, table: str) -> dict[str, str]:
        found = self._inspect(lambda i: i.get_columns(table, schema=self.schema))
        return {c["name"]: describe(c["type"]) for c in found}

    def user_columns(self, table: str) -> dict[str, str]:
        return {k: v for k, v in self.columns(table).items() if k not in SYSTEM}

    def indexes(self, table: str) -> dict[str, tuple[tuple[str, ...], bool]]:
        """The indexes of the entity's fields (not the system index every table has)."""
        found = self.all_indexes(table)
        return {name: spec for name, spec in found.items() if not name.startswith("sx_")}

    def all_indexes(self, table: str) -> dict[str, tuple[tuple[str, ...], bool]]:
        found = self._inspect(lambda i: i.get_indexes(table, schema=self.schema))
        return {ix["name"]: (tuple(ix["column_names"]), bool(ix["unique"])) for ix in found}

    def partial_indexes(self, table: str) -> set[str]:
        """The entity's indexes that hold live records only (``WHERE deleted_at IS NULL``)."""
        if self.workspace.is_sqlite:
            sql = (
                f'SELECT name, sql FROM "{self.schema}".sqlite_master '
                "WHERE type = 'index' AND tbl_name = :table"
            )
        else:
            sql = (
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = :schema AND tablename = :table"
            )
        with self.workspace.begin(self.env, readonly=True) as conn:
            found = conn.execute(sa.text(sql), {"schema": self.schema, "table": table}).all()
        return {
            str(name)
            for name, definition in found
            if "deleted_at IS NULL" in str(definition or "") and not str(name).startswith("sx_")
        }

    def foreign_keys(self, table: str) -> set[tuple[tuple[str, ...], str, tuple[str, ...]]]:
        found = self._inspect(lambda i: i.get_foreign_keys(table, schema=self.schema))
        return {
            (tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
            for fk in found
        }

    def scales(self, table: str) -> dict[str, int]:
        """SQLite: the scale of each decimal column, which holds its values scaled to integers
        (see ``formloom.platform.column_types``); nothing on PostgreSQL."""
        if not self.workspace.is_sqlite:
            return {}
        with self.workspace.begin(self.env, readonly=True) as conn:
            found = conn.exec_driver_sql(f'PRAGMA "{self.schema}".table_info("{table}")').all()
        declared = {str(row[1]): str(row[2]) for row in found}
        return {
            name: int(spec.rstrip(")").split(",")[1])
            for name, spec in declared.items()
            if spec.startswith(SCALED_DECIMAL)
        }

    def insert(self, table: str, **values: Any) -> int:
        names = ["created_at", "updated_at", *values]
        scales = self.scales(table)
        values = {
            k: to_scaled(v, scales[k]) if k in scales and v is not None else v
            for k, v in values.items()
        }
        params = {f"p{i}": _bindable(v) for i, v in enumerate(values.values())}
        placeholders = ["CURRENT_TIMESTAMP", "CURRENT_TIMESTAMP", *(f":{p}" for p in params)]
        sql = (
            f'INSERT INTO "{self.schema}"."{table}" ({", ".join(_q(n) for n in names)}) '
            f"VALUES ({', '.join(placeholders)}) RETURNING id"
        )
        with self.workspace.begin(self.env) as conn:
            return int(conn.execute(sa.text(sql), params).scalar_one())

    def values(self, table: str, column: str) -> list[Any]:
        """The column's values in insertion order; JSON comes back parsed on both databases."""
        sql = f'SELECT {_q(column)} FROM "{self.schema}"."{table}" ORDER BY id'
        with self.workspace.begin(self.env, readonly=True) as conn:
            found = list(conn.execute(sa.text(sql)).scalars())
        scale = self.scales(table).get(column)
        if scale is not None:
            return [None if v is None else from_scaled(v, scale) for v in found]
        return [json.loads(v) if isinstance(v, str) and v[:1] in "[{" else v for v in found]

    def decimals(self, table: str, column: str) -> list[Decimal | None]:
        return [None if v is None else Decimal(str(v)) for v in self.values(table, column)]


def _q(name: str) -> str:
    return f'"{name}"'


def _bindable(value: Any) -> Any:
    """Plain SQL parameters both drivers accept: JSON as text, decimals as strings."""
    if isinstance(value, list):
        return json.dumps(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


@pytest.fixture
def store(workspace: Workspace) -> MetaStore:
    return MetaStore(workspace)


@pytest.fixture
def tables(workspace: Workspace) -> Tables:
    return Tables(workspace)


@pytest.fixture(autouse=True)
def _no_leftover_connections(workspace: Workspace) -> Iterator[None]:
    """Every test leaves the pool idle (a failed publish must not leak its connection)."""
    yield
    assert workspace.engine.pool.checkedout() == 0


def publish(store: MetaStore, body: dict[str, Any], **options: Any) -> PublishResult:
    store.save_draft(ENV, "entity", body["name"], body)
    return store.publish(ENV, "entity", body["name"], PublishOptions(**options))


def refused(store: MetaStore, body: dict[str, Any], **options: Any) -> Invalid:
    """Publish ``body`` expecting a refusal; returns the error."""
    with pytest.raises(Invalid) as exc:
        publish(store, body, **options)
    return exc.value


def codes(error: Invalid) -> list[tuple[str, str]]:
    return [(i.path, i.code) for i in error.issues]


def published(store: MetaStore, name: str) -> dict[str, Any]:
    body: dict[str, Any] = store.get(ENV, "entity", name)["published"]
    return body


# -- 1. creating tables -----------------------------------------------------------------------


def test_creating_an_entity_makes_a_table_with_system_and_typed_columns(
    store: MetaStore, tables: Tables
) -> None:
    # when
    publish(
        store,
        entity(
            "deal",
            field("title", options={"max_length": 120}),
            field("notes", "long_text"),
            field("quantity", "integer"),
            field("amount", "decimal", options={"precision": 12, "scale": 2}),
            field("price", "currency"),
            field("probability", "percent"),
            field("won", "boolean"),
            field("close_date", "date"),
            field("closed_at", "datetime"),
            field("stage", "single_select", options=choices("open", "won")),
            field("tags", "multi_select", options=choices("hot", "cold")),
            field("email", "email"),
            field("phone", "phone"),
            field("website", "url"),
        ),
    )

    # then
    assert tables.columns("deal") == {
        **SYSTEM,
        "title": "string(120)",
        "notes": "text",
        "quantity": "integer",
        "amount": "decimal(12,2)",
        "price": "decimal(18,2)",
        "probability": "decimal(9,4)",
        "won": "boolean",
        "close_date": "date",
        "closed_at": "datetime",
        "stage": "string(63)",
        "tags": "json",
        "email": "string(254)",
        "phone": "string(32)",
        "website": "string(2048)",
    }
    assert list(tables.columns("deal"))[: len(SYSTEM)] == list(SYSTEM)


def test_unique_and_indexed_fields_get_indexes(store: MetaStore, tables: Tables) -> None:
    publish(
        store,
        entity(
            "deal",
            field("code", unique=True),
            field("stage", indexed=True),
            field("notes"),
            indexes=[{"name": "by_stage_code", "fields": ["stage", "code"]}],
        ),
    )

    assert tables.indexes("deal") == {
        "uq_deal__code": (("code",), True),
        "ix_deal__stage": (("stage",), False),
        "ix_deal__by_stage_code": (("stage", "code"), False),
    }


def test_indexes_that_serve_lists_only_hold_live_records(store: MetaStore, tables: Tables) -> None:
    # given
    publish(store, entity("company", field("name")))

    # when
    publish(
        store,
        entity(
            "deal",
            field("title", indexed=True),
            field("code", unique=True),
            field("stage", indexed=True),
            lookup("company", "company"),
            indexes=[
                {"name": "by_stage_title", "fields": ["stage", "title"]},
                {"name": "one_code_per_stage", "fields": ["stage", "code"], "unique": True},
            ],
            title_field="title",
        ),
    )

    # then: lists (which leave deleted records out) read the partial ones alone; the
    # title's, unique and lookup indexes also serve reads of the recycle bin
    assert tables.partial_indexes("deal") == {"ix_deal__stage", "ix_deal__by_stage_title"}
    assert set(tables.indexes("deal")) == {
        "ix_deal__title",
        "uq_deal__code",
        "ix_deal__stage",
        "ix_deal__company",
        "ix_deal__by_stage_title",
        "uq_deal__one_code_per_stage",
    }


def test_a_unique_field_refuses_duplicate_values(store: MetaStore, tables: Tables) -> None:
    publish(store, entity("deal", field("code", unique=True)))
    tables.insert("deal", code="D-1")

    with pytest.raises(IntegrityError):
        tables.insert("deal", code="D-1")

    assert tables.values("deal", "code") == ["D-1"]


def test_a_lookup_gets_a_foreign_key_to_the_target_id_and_an_index(
    store: MetaStore, tables: Tables
) -> None:
    # given
    publish(store, entity("company", field("title")))
    acme = tables.insert("company", title="ACME")

    # when
    publish(store, entity("contact", field("full_name"), lookup("company", "company")))

    # then
    assert tables.foreign_keys("contact") == {(("company",), "company", ("id",))}
    assert tables.indexes("contact") == {"ix_contact__company": (("company",), False)}
    tables.insert("contact", full_name="Ann", company=acme)
    with pytest.raises(IntegrityError):
        tables.insert("contact", full_name="Bob", company=acme + 1000)
    assert tables.values("contact", "full_name") == ["Ann"]


def test_a_lookup_added_to_an_existing_table_gets_a_foreign_key(
    store: MetaStore, tables: Tables
) -> None:
    publish(store, entity("company", field("title")))
    publish(store, entity("contact", field("full_name")))
    tables.insert("contact", full_name="Ann")

    publish(store, entity("contact", field("full_name"), lookup("employer", "company")))

    assert tables.foreign_keys("contact") == {(("employer",), "company", ("id",))}
    assert tables.indexes("contact") == {"ix_contact__employer": (("employer",), False)}
    assert tables.values("contact", "employer") == [None]
    with pytest.raises(IntegrityError):
        tables.insert("contact", full_name="Bob", employer=999)


def test_an_entity_may_look_itself_up(store: MetaStore, tables: Tables) -> None:
    publish(store, entity("company", field("title"), lookup("parent", "company")))

    assert tables.foreign_keys("company") == {(("parent",), "company", ("id",))}
    parent = tables.insert("company", title="Group")
    tables.insert("company", title="Branch", parent=parent)
    assert tables.values("company", "parent") == [None, parent]


def test_a_batch_of_entities_that_look_each_other_up_is_published_together(
    store: MetaStore, tables: Tables
) -> None:
    # given: a cycle, listed in the "wrong" order
    documents = [
        SourceDocument(
            "entity", entity("contact", field("full_name"), lookup("company", "company")), "c.json"
        ),
        SourceDocument(
            "entity",
            entity("company", field("title"), lookup("primary_contact", "contact")),
            "a.json",
        ),
    ]

    # when
    results = store.apply(ENV, documents, PublishOptions())

    # then
    assert sorted((r.name, r.version, r.changed) for r in results) == [
        ("company", 1, True),
        ("contact", 1, True),
    ]
    assert tables.foreign_keys("contact") == {(("company",), "company", ("id",))}
    assert tables.foreign_keys("company") == {(("primary_contact",), "contact", ("id",))}
    company = tables.insert("company", title="ACME")
    contact = tables.insert("contact", full_name="Ann", company=company)
    with pytest.raises(IntegrityError):
        tables.insert("company", title="Other", primary_contact=contact + 1000)


def test_a_batch_with_an_invalid_document_creates_no_table(
    store: MetaStore, tables: Tables
) -> None:
    documents = [
        SourceDocument("entity", entity("company", field("title")), "company.json"),
        SourceDocument("entity", entity("contact", field("id")), "contact.json"),
    ]

    with pytest.raises(BatchInvalid) as exc:
        store.apply(ENV, documents, PublishOptions())

    assert exc.value.failures.keys() == {"contact.json"}
    assert codes(exc.value) == [("contact.json#/fields/0/name", "system_column")]
    assert not tables.exists("company")
    assert not tables.exists("contact")


# -- 2. adding, renaming and removing fields --------------------------------------------------


def test_adding_a_field_keeps_the_rows_and_leaves_the_new_column_empty(
    store: MetaStore, tables: Tables
) -> None:
    publish(store, entity("deal", field("title")))
    tables.insert("deal", title="First")

    publish(store, entity("deal", field("title"), field("amount", "integer", required=True)))

    assert tables.user_columns("deal") == {"title": "string(255)", "amount": "integer"}
    assert tables.values("deal", "title") == ["First"]
    assert tables.values("deal", "amount") == [None]


def test_renaming_by_renamed_from_keeps_the_data_and_renames_the_index(
    store: MetaStore, tables: Tables
) -> None:
    # given
    publish(store, entity("deal", field("title"), field("code", unique=True)))
    tables.insert("deal", title="First", code="D-1")

    # when
    publish(
        store, entity("deal", field("title"), field("reference", unique=True, renamed_from="code"))
    )

    # then
    assert tables.user_columns("deal") == {"title": "string(255)", "reference": "string(255)"}
    assert tables.values("deal", "reference") == ["D-1"]
    assert tables.indexes("deal") == {"uq_deal__reference": (("reference",), True)}
    fields = published(store, "deal")["fields"]
    assert [f["name"] for f in fields] == ["title", "reference"]
    assert "renamed_from" not in fields[1]


def test_renaming_by_keeping_the_field_id(store: MetaStore, tables: Tables) -> None:
    # given
    publish(store, entity("deal", field("title"), field("stage", indexed=True)))
    tables.insert("deal", title="First", stage="open")
    stage_id = published(store, "deal")["fields"][1]["id"]

    # when
    publish(store, entity("deal", field("title"), field("phase", indexed=True, id=stage_id)))

    # then
    assert tables.values("deal", "phase") == ["open"]
    assert "stage" not in tables.columns("deal")
    assert tables.indexes("deal") == {"ix_deal__phase": (("phase",), False)}
    assert published(store, "deal")["fields"][1]["id"] == stage_id


def test_renaming_a_lookup_keeps_its_foreign_key(store: MetaStore, tables: Tables) -> None:
    publish(store, entity("company", field("title")))
    publish(store, entity("contact", lookup("company", "company")))
    acme = tables.insert("company", title="ACME")
    tables.insert("contact", company=acme)

    publish(store, entity("contact", {**lookup("employer", "company"), "renamed_from": "company"}))

    assert tables.values("contact", "employer") == [acme]
    assert tables.foreign_keys("contact") == {(("employer",), "company", ("id",))}
    assert tables.indexes("contact") == {"ix_contact__employer": (("employer",), False)}


def test_a_new_lookup_may_take_the_name_of_a_renamed_one(store: MetaStore, tables: Tables) -> None:
    publish(store, entity("company", field("title")))
    publish(store, entity("contact", lookup("company", "company")))
    publish(store, entity("contact", {**lookup("employer", "company"), "renamed_from": "company"}))

    publish(store, entity("contact", lookup("employer", "company"), lookup("company", "company")))

    assert tables.foreign_keys("contact") == {
        (("employer",), "company", ("id",)),
        (("company",), "company", ("id",)),
    }


def test_removing_a_field_keeps_its_column_and_data_as_a_retired_field(
    store: MetaStore, tables: Tables
) -> None:
    # given
    publish(store, entity("deal", field("title"), field("code", unique=True)))
    tables.insert("deal", title="First", code="D-1")

    # when
    result = publish(store, entity("deal", field("title")))

    # then
    assert tables.values("deal", "code") == ["D-1"]
    assert tables.indexes("deal") == {}
    body = published(store, "deal")
    assert [f["name"] for f in body["fields"]] == ["title"]
    assert [(r["field"]["name"], r["removed_in_version"]) for r in body["retired_fields"]] == [
        ("code", result.version)
    ]


def test_re_adding_a_removed_field_with_the_same_type_restores_its_data(
    store: MetaStore, tables: Tables
) -> None:
    publish(store, entity("deal", field("title"), field("code", unique=True)))
    tables.insert("deal", title="First", code="D-1")
    code_id = published(store, "deal")["fields"][1]["id"]
    publish(store, entity("deal", field("title")))
    tables.insert("deal", title="Second")

    publish(store, entity("deal", field("title"), field("code", unique=True)))

    assert tables.values("deal", "code") == ["D-1", None]
    assert tables.indexes("deal") == {"uq_deal__code": (("code",), True)}
    body = published(store, "deal")
    assert body["retired_fields"] == []
    assert body["fields"][1]["id"] == code_id


def test_re_adding_a_removed_field_with_another_type_is_refused(
    store: MetaStore, tables: Tables
) -> None:
    publish(store, entity("deal", field("title"), field("code")))
    tables.insert("deal", title="First", code="D-1")
    removed = publish(store, entity("deal", field("title")))

    error = refused(store, entity("deal", field("title"), field("code", "integer")))

    assert codes(error) == [("/fields/1/type", "retired_column")]
    assert "string(255)" in error.issues[0].message
    assert "purge" in error.issues[0].message
    assert tables.values("deal", "code") == ["D-1"]
    assert store.get(ENV, "entity", "deal")["published_version"] == removed.version


def test_purge_drops_the_columns_of_removed_fields(store: MetaStore, tables: Tables) -> None:
    # given: `code` removed earlier, `notes` removed now
    publish(store, entity("deal", field("title"), field("code"), field("notes", "long_text")))
    tables.insert("deal", title="First", code="D-1", notes="long")
    publish(store, entity("deal", field("title"), field("notes", "long_text")))

    # when
    publish(store, entity("deal", field("title")), purge=True)

    # then
    assert tables.user_columns("deal") == {"title": "string(255)"}
    assert tables.values("deal", "title") == ["First"]
    assert published(store, "deal")["retired_fields"] == []


def test_purge_then_re_adding_a_name_with_another_type_makes_a_fresh_column(
    store: MetaStore, tables: Tables
) -> None:
    publish(store, entity("deal", field("title"), field("code")))
    tables.insert("deal", title="First", code="D-1")
    publish(store, entity("deal", field("title")))

    publish(store, entity("deal", field("title"), field("code", "integer")), purge=True)

    assert tables.user_columns("deal") == {"title": "string(255)", "code": "integer"}
    assert tables.values("deal", "code") == [None]


def test_purging_a_lookup_field_drops_its_column_and_foreign_key(
    store: MetaStore, tables: Tables
) -> None:
    publish(store, entity("company", field("title")))
    publish(store, entity("contact", field("full_name"), lookup("company", "company")))
    acme = tables.insert("company", title="ACME")
    tables.insert("contact", full_name="Ann", company=acme)

    publish(store, entity("contact", field("full_name")), purge=True)

    assert tables.user_columns("contact") == {"full_name": "string(255)"}
    assert tables.foreign_keys("contact") == set()
    assert tables.values("contact", "full_name") == ["Ann"]


def test_purging_a_lookup_field_of_an_entity_that_others_look_up(
    store: MetaStore, tables: Tables
) -> None:
    # given: contact rows point at company rows; company has its own lookup to purge
    publish(store, entity("person", field("full_name")))
    publish(store, entity("company", field("title"), lookup("owner", "person")))
    publish(store, entity("contact", lookup("company", "company")))
    acme = tables.insert("company", title="ACME")
    tables.insert("contact", company=acme)

    # when
    publish(store, entity("company", field("title")), purge=True)

    # then
    assert tables.user_columns("company") == {"title": "string(255)"}
    assert tables.values("contact", "company") == [acme]
    assert tables.foreign_keys("contact") == {(("company",), "company", ("id",))}


# -- 3. indexes and uniqueness ----------------------------------------------------------------


def test_indexes_are_added_and_removed_with_the_document(store: MetaStore, tables: Tables) -> None:
    publish(store, entity("deal", field("stage"), field("code")))
    tables.insert("deal", stage="open", code="D-1")

    publish(
        store,
        entity(
            "deal",
            field("stage", indexed=True),
            field("code"),
            indexes=[{"name": "by_code", "fields": ["code", "created_at"], "unique": True}],
        ),
    )
    with_indexes = tables.indexes("deal")
    publish(store, entity("deal", field("stage"), field("code")))

    assert with_indexes == {
        "ix_deal__stage": (("stage",), False),
        "uq_deal__by_code": (("code", "created_at"), True),
    }
    assert tables.indexes("deal") == {}
    assert tables.values("deal", "code") == ["D-1"]


def test_making_a_field_unique_without_duplicates_enforces_it(
    store: MetaStore, tables: Tables
) -> None:
    publish(store, entity("deal", field("code")))
    tables.insert("deal", code="D-1")
    tables.insert("deal", code=None)
    tables.insert("deal", code=None)

    publish(store, entity("deal", field("code", unique=True)))

    assert tables.indexes("deal") == {"uq_deal__code": (("code",), True)}
    with pytest.raises(IntegrityError):
        tables.insert("deal", code="D-1")


def test_making_a_field_unique_with_duplicates_is_refused_and_lists_them(
    store: MetaStore, tables: Tables
) -> None:
    # given
    publish(store, entity("deal", field("code"), field("title")))
    for code in ("D-1", "D-1", "D-1", "D-2", "D-2", "D-3", None, None):
        tables.insert("deal", code=code)
    before = store.get(ENV, "entity", "deal")

    # when: the change also adds a field, so a rollback has DDL to undo
    error = refused(store, entity("deal", field("code", unique=True), field("amount", "integer")))

    # then
    assert codes(error) == [("/fields/0/unique", "duplicate_values")]
    message = error.issues[0].message
    assert "'D-1' (3 rows)" in message
    assert "'D-2' (2 rows)" in message
    assert "D-3" not in message
    assert "merge or correct those records first" in message
    assert tables.user_columns("deal") == {"code": "string(255)", "title": "string(255)"}
    assert tables.indexes("deal") == {}
    assert len(tables.values("deal", "code")) == 8
    after = store.get(ENV, "entity", "deal")
    assert after["published_version"] == before["published_version"]
    assert after["published"] == before["published"]
    assert len(store.versions(ENV, "entity", "deal")) == 1


def test_a_composite_unique_index_with_duplicates_is_refused(
    store: MetaStore, tables: Tables
) -> None:
    publish(store, entity("deal", field("region"), field("code")))
    tables.insert("deal", region="north", code="D-1")
    tables.insert("deal", region="north", code="D-1")
    tables.insert("deal", region="south", code="D-1")

    error = refused(
        store,
        entity(
            "deal",
            field("region"),
            field("code"),
            indexes=[{"name": "per_region", "fields": ["region", "code"], "unique": True}],
        ),
    )

    assert codes(error) == [("/indexes/0", "duplicate_values")]
    assert "'north' / 'D-1' (2 rows)" in error.issues[0].message
    assert tables.indexes("deal") == {}


# -- 4. type changes --------------------------------------------------------------------------


def test_integer_to_decimal_keeps_the_values(store: MetaStore, tables: Tables) -> None:
    publish(store, entity("deal", field("amount", "integer", indexed=True)))
    tables.insert("deal", amount=12)
    tables.insert("deal", amount=None)

    publish(store, entity("deal", field("amount", "decimal", indexed=True)))

    assert tables.user_columns("deal") == {"amount": "decimal(18,4)"}
    assert tables.decimals("deal", "amount") == [Decimal(12), None]
    assert tables.indexes("deal") == {"ix_deal__amount": (("amount",), False)}


def test_text_to_long_text_keeps_the_values(store: MetaStore, tables: Tables) -> None:
    publish(store, entity("deal", field("notes")))
    tables.insert("deal", notes="short note")

    publish(store, entity("deal", field("notes", "long_text")))

    assert tables.user_columns("deal") == {"notes": "text"}
    assert tables.values("deal", "notes") == ["short note"]


def test_a_longer_text_keeps_the_values(store: MetaStore, tables: Tables) -> None:
    publish(store, entity("deal", field("title", unique=True)))
    tables.insert("deal", title="x" * 255)

    publish(store, entity("deal", field("title", unique=True, options={"max_length": 500})))
    tables.insert("deal", title="y" * 500)

    assert tables.user_columns("deal") == {"title": "string(500)"}
    assert tables.values("deal", "title") == ["x" * 255, "y" * 500]
    assert tables.indexes("deal") == {"uq_deal__title": (("title",), True)}
    # every entity table is indexed on its owner, for record scopes (own, team)
    assert tables.all_indexes("deal")["sx_deal__owner"] == (("owner_id", "id"), False)


def test_single_select_to_multi_select_wraps_each_value_in_a_list(
    store: MetaStore, tables: Tables
) -> None:
    publish(store, entity("deal", field("stage", "single_select", options=choices("a", "b"))))
    tables.insert("deal", stage="a")
    tables.insert("deal", stage=None)

    publish(store, entity("deal", field("stage", "multi_select", options=choices("a", "b"))))

    assert tables.user_columns("deal") == {"stage": "json"}
    assert tables.values("deal", "stage") == [["a"], None]


def test_date_to_datetime_keeps_the_day(store: MetaStore, tables: Tables) -> None:
    publish(store, entity("deal", field("closed", "date")))
    tables.insert("deal", closed="2024-03-05")

    publish(store, entity("deal", field("closed", "datetime")))

    assert tables.user_columns("deal") == {"closed": "datetime"}
    (value,) = tables.values("deal", "closed")
    assert str(value).startswith("2024-03-05")


def test_decimal_to_integer_with_fractions_is_refused_with_the_row_count(
    store: MetaStore, tables: Tables
) -> None:
    # given
    publish(store, entity("deal", field("amount", "decimal")))
    for amount in ("1.25", "2.75", "3", None):
        tables.insert("deal", amount=Decimal(amount) if amount else None)

    # when
    error = refused(store, entity("deal", field("amount", "integer")))

    # then
    assert codes(error) == [("/fields/0/type", "lossy_type_change")]
    message = error.issues[0].message
    assert "would change 2 row(s)" in message
    assert "rounded" in message
    assert "publish with force" in message
    assert tables.user_columns("deal") == {"amount": "decimal(18,4)"}
    assert tables.decimals("deal", "amount") == [Decimal("1.25"), Decimal("2.75"), 3, None]


def test_decimal_to_integer_with_force_rounds(store: MetaStore, tables: Tables) -> None:
    publish(store, entity("deal", field("amount", "decimal")))
    for amount in ("1.25", "2.75", "3", None):
        tables.insert("deal", amount=Decimal(amount) if amount else None)

    publish(store, entity("deal", field("amount", "integer")), force=True)

    assert tables.user_columns("deal") == {"amount": "integer"}
    assert tables.values("deal", "amount") == [1, 3, 3, None]


def test_long_text_to_text_with_long_values_is_refused_unless_forced(
    store: MetaStore, tables: Tables
) -> None:
    publish(store, entity("deal", field("notes", "long_text")))
    tables.insert("deal", notes="n" * 300)
    tables.insert("deal", notes="short")

    error = refused(store, entity("deal", field("notes")))
    kept = tables.values("deal", "notes")
    publish(store, entity("deal", field("notes")), force=True)

    assert codes(error) == [("/fields/0/type", "lossy_type_change")]
    assert "would change 1 row(s)" in error.issues[0].message
    assert "longer than 255 characters" in error.issues[0].message
    assert kept == ["n" * 300, "short"]
    assert tables.user_columns("deal") == {"notes": "string(255)"}
    assert tables.values("deal", "notes") == ["n" * 255, "short"]


def test_multi_select_to_single_select_with_two_values_is_refused_unless_forced(
    store: MetaStore, tables: Tables
) -> None:
    options = choices("a", "b")
    publish(store, entity("deal", field("tags", "multi_select", options=options)))
    tables.insert("deal", tags=["a", "b"])
    tables.insert("deal", tags=["b"])
    tables.insert("deal", tags=None)

    error = refused(store, entity("deal", field("tags", "single_select", options=options)))
    kept = tables.values("deal", "tags")
    publish(store, entity("deal", field("tags", "single_select", options=options)), force=True)

    assert codes(error) == [("/fields/0/type", "lossy_type_change")]
    assert "would change 1 row(s)" in error.issues[0].message
    assert kept == [["a", "b"], ["b"], None]
    assert tables.user_columns("deal") == {"tags": "string(63)"}
    assert tables.values("deal", "tags") == ["a", "b", None]


def test_numbers_to_text_keep_their_digits(store: MetaStore, tables: Tables) -> None:
    publish(store, entity("deal", field("n", "integer")))
    tables.insert("deal", n=1234567)

    publish(store, entity("deal", field("n")))

    assert tables.user_columns("deal") == {"n": "string(255)"}
    assert tables.values("deal", "n") == ["1234567"]


def test_numbers_to_a_shorter_text_are_refused_unless_forced(
    store: MetaStore, tables: Tables
) -> None:
    publish(store, entity("deal", field("n", "integer")))
    tables.insert("deal", n=1234567)
    tables.insert("deal", n=12)
    short = entity("deal", field("n", options={"max_length": 3}))

    error = refused(store, short)
    kept = tables.values("deal", "n")
    publish(store, short, force=True)

    assert codes(error) == [("/fields/0/type", "lossy_type_change")]
    assert "would change 1 row(s)" in error.issues[0].message
    assert kept == [1234567, 12]
    assert tables.values("deal", "n") == ["123", "12"]


def test_a_lossy_change_without_affected_rows_needs_no_force(
    store: MetaStore, tables: Tables
) -> None:
    publish(store, entity("deal", field("amount", "decimal")))
    tables.insert("deal", amount=Decimal("4"))

    publish(store, entity("deal", field("amount", "integer")))

    assert tables.values("deal", "amount") == [4]


def test_every_lossy_change_of_a_publish_is_reported(store: MetaStore, tables: Tables) -> None:
    publish(store, entity("deal", field("amount", "decimal"), field("notes", "long_text")))
    tables.insert("deal", amount=Decimal("1.5"), notes="n" * 256)

    error = refused(store, entity("deal", field("amount", "integer"), field("notes")))

    assert codes(error) == [
        ("/fields/0/type", "lossy_type_change"),
        ("/fields/1/type", "lossy_type_change"),
    ]


@pytest.mark.parametrize(
    ("before", "after", "hint"),
    [
        (field("flag", "boolean"), field("flag", "date"), "boolean cannot be converted to date"),
        (lookup("flag", "company"), field("flag"), "a lookup cannot change its type"),
    ],
    ids=["boolean-date", "lookup-text"],
)
def test_unsupported_type_changes_are_refused_with_what_to_do(
    store: MetaStore, tables: Tables, before: dict[str, Any], after: dict[str, Any], hint: str
) -> None:
    publish(store, entity("company", field("title")))
    publish(store, entity("deal", before))
    columns = tables.columns("deal")

    error = refused(store, entity("deal", after), force=True)

    assert codes(error) == [("/fields/0/type", "unsupported_type_change")]
    assert hint in error.issues[0].message
    assert "add a new field, copy the data over, then remove the old field" in (
        error.issues[0].message
    )
    assert tables.columns("deal") == columns


# -- 6. atomicity -----------------------------------------------------------------------------


class FailOn:
    """A DDL observer that raises after the ``n``-th operation."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.seen: list[Operation] = []

    def __call__(self, operation: Operation) -> None:
        self.seen.append(operation)
        if len(self.seen) == self.n:
            raise RuntimeError(f"injected failure after {type(operation).__name__}")


def test_a_failure_between_ddl_steps_leaves_table_and_metadata_as_before(
    workspace: Workspace, store: MetaStore, tables: Tables
) -> None:
    # given
    publish(store, entity("deal", field("title"), field("code", unique=True)))
    tables.insert("deal", title="First", code="D-1")
    draft = entity(
        "deal",
        field("title"),
        field("reference", unique=True, renamed_from="code"),
        field("amount", "integer"),
        field("notes", "long_text"),
    )
    store.save_draft(ENV, "entity", "deal", draft)
    columns, indexes = tables.columns("deal"), tables.indexes("deal")
    before = store.get(ENV, "entity", "deal")
    failing = MetaStore(workspace, ddl_observer=(fail := FailOn(2)))

    # when
    with pytest.raises(RuntimeError, match="injected failure"):
        failing.publish(ENV, "entity", "deal", PublishOptions())

    # then: several steps were planned, two ran, none is left
    assert len(fail.seen) == 2
    assert tables.columns("deal") == columns
    assert tables.indexes("deal") == indexes
    assert tables.values("deal", "code") == ["D-1"]
    assert store.get(ENV, "entity", "deal") == before
    assert before["draft"] == draft
    assert [v["version"] for v in store.versions(ENV, "entity", "deal")] == [1]


def test_the_same_publish_succeeds_after_a_failed_attempt(
    workspace: Workspace, store: MetaStore, tables: Tables
) -> None:
    publish(store, entity("deal", field("code")))
    tables.insert("deal", code="D-1")
    store.save_draft(
        ENV, "entity", "deal", entity("deal", field("ref", renamed_from="code"), field("n"))
    )
    with pytest.raises(RuntimeError):
        MetaStore(workspace, ddl_observer=FailOn(1)).publish(
            ENV, "entity", "deal", PublishOptions()
        )

    result = store.publish(ENV, "entity", "deal", PublishOptions())

    assert result.version == 2
    assert tables.values("deal", "ref") == ["D-1"]


def test_a_failing_creation_leaves_no_table(workspace: Workspace, tables: Tables) -> None:
    # given: creating the table and its index are two steps
    failing = MetaStore(workspace, ddl_observer=FailOn(2))
    failing.save_draft(ENV, "entity", "deal", entity("deal", field("code", unique=True)))

    # when
    with pytest.raises(RuntimeError, match="injected failure"):
        failing.publish(ENV, "entity", "deal", PublishOptions())

    # then
    assert not tables.exists("deal")
    state = failing.get(ENV, "entity", "deal")
    assert (state["status"], state["published_version"], state["published"]) == (
        "draft",
        None,
        None,
    )
    with pytest.raises(NotFound):
        failing.versions(ENV, "entity", "deal")


def test_a_failing_batch_leaves_none_of_its_tables(workspace: Workspace, tables: Tables) -> None:
    failing = MetaStore(workspace, ddl_observer=FailOn(3))
    documents = [
        SourceDocument("entity", entity("company", field("title")), "company.json"),
        SourceDocument("entity", entity("contact", lookup("company", "company")), "contact.json"),
    ]

    with pytest.raises(RuntimeError):
        failing.apply(ENV, documents, PublishOptions())

    assert not tables.exists("company")
    assert not tables.exists("contact")
    assert failing.list_documents(ENV) == []


# -- 8. removing entities ---------------------------------------------------------------------


def test_removing_an_entity_keeps_its_table_and_publishing_brings_it_back(
    store: MetaStore, tables: Tables
) -> None:
    # given
    body = entity("deal", field("title"))
    publish(store, body)
    tables.insert("deal", title="First")

    # when
    removed = store.remove(ENV, "entity", "deal", PublishOptions())

    # then
    assert tables.values("deal", "title") == ["First"]
    assert store.get(ENV, "entity", "deal")["status"] == "removed"
    assert "deal" not in store.published(ENV).get("entity", {})
    assert store.versions(ENV, "entity", "deal")[-1]["action"] == "remove"

    # and when it is published again
    back = publish(store, body)

    assert (back.changed, back.version) == (True, removed.version + 1)
    assert store.get(ENV, "entity", "deal")["status"] == "published"
    assert tables.values("deal", "title") == ["First"]


def test_purging_an_entity_drops_its_table(store: MetaStore, tables: Tables) -> None:
    publish(store, entity("deal", field("title")))
    tables.insert("deal", title="First")

    store.remove(ENV, "entity", "deal", PublishOptions(purge=True))

    assert not tables.exists("deal")
    state = store.get(ENV, "entity", "deal")
    assert (state["status"], state["published_version"]) == ("draft", None)
    assert store.versions(ENV, "entity", "deal")[-1]["action"] == "purge"
    publish(store, entity("deal", field("title")))
    assert tables.values("deal", "title") == []


def test_a_removed_entity_can_be_purged_later(store: MetaStore, tables: Tables) -> None:
    publish(store, entity("deal", field("title")))
    store.remove(ENV, "entity", "deal", PublishOptions())

    store.remove(ENV, "entity", "deal", PublishOptions(purge=True))

    assert not tables.exists("deal")


@pytest.mark.parametrize("purge", [False, True], ids=["soft", "purge"])
def test_removing_an_entity_that_another_looks_up_is_refused(
    store: MetaStore, tables: Tables, purge: bool
) -> None:
    publish(store, entity("company", field("title")))
    publish(store, entity("contact", lookup("employer", "company")))

    with pytest.raises(Invalid) as exc:
        store.remove(ENV, "entity", "company", PublishOptions(purge=purge))

    assert codes(exc.value) == [("", "referenced")]
    assert "`contact.employer`" in exc.value.issues[0].message
    assert store.get(ENV, "entity", "company")["status"] == "published"
    assert tables.exists("company")


def test_purging_an_entity_still_referenced_by_a_removed_lookup_is_refused(
    store: MetaStore, tables: Tables
) -> None:
    # given: the lookup was removed from contact, but its column (and foreign key) is kept
    publish(store, entity("company", field("title")))
    publish(store, entity("contact", field("full_name"), lookup("employer", "company")))
    acme = tables.insert("company", title="ACME")
    tables.insert("contact", full_name="Ann", employer=acme)
    publish(store, entity("contact", field("full_name")))

    # when
    with pytest.raises(Invalid) as exc:
        store.remove(ENV, "entity", "company", PublishOptions(purge=True))
    store.remove(ENV, "entity", "company", PublishOptions())

    # then: a soft removal is fine (the table stays), a purge is not
    assert codes(exc.value) == [("", "referenced")]
    assert "`contact.employer`" in exc.value.issues[0].message
    assert "purge" in exc.value.issues[0].message
    assert tables.values("company", "title") == ["ACME"]


def test_purging_an_entity_that_a_removed_entity_looks_up_is_refused(
    store: MetaStore, tables: Tables
) -> None:
    # given: contact (removed, table kept) still points at company
    publish(store, entity("company", field("title")))
    publish(store, entity("contact", lookup("employer", "company")))
    tables.insert("contact", employer=tables.insert("company", title="ACME"))
    store.remove(ENV, "entity", "contact", PublishOptions())

    # when
    with pytest.raises(Invalid) as exc:
        store.remove(ENV, "entity", "company", PublishOptions(purge=True))
    store.remove(ENV, "entity", "contact", PublishOptions(purge=True))
    store.remove(ENV, "entity", "company", PublishOptions(purge=True))

    # then
    assert codes(exc.value) == [("", "referenced")]
    assert "`contact.employer`" in exc.value.issues[0].message
    assert not tables.exists("company")


def test_removing_an_unknown_entity_is_not_found(store: MetaStore) -> None:
    with pytest.raises(NotFound):
        store.remove(ENV, "entity", "nothing", PublishOptions())


# -- values that cannot fit the new type ------------------------------------------------------


def test_shrinking_a_decimal_is_refused_even_when_forced_if_values_do_not_fit(
    store: MetaStore, tables: Tables
) -> None:
    # given: a decimal(18,4) holding a value with six integer digits
    wide = field("amount", "decimal", options={"precision": 18, "scale": 4})
    publish(store, entity("deal", wide))
    tables.insert("deal", amount=123456.5)
    narrow = field("amount", "decimal", options={"precision": 6, "scale": 2})

    # when: the precision shrinks to four integer digits, even with force
    with pytest.raises(Invalid) as caught:
        publish(store, entity("deal", narrow), force=True)

    # then: refused, naming the count, and nothing changed
    assert caught.value.issues[0].code == "values_do_not_fit"
    assert "1 row(s)" in caught.value.issues[0].message
    assert [float(v) for v in tables.values("deal", "amount")] == [123456.5]


def test_shrinking_a_decimal_whose_values_fit_keeps_them(store: MetaStore, tables: Tables) -> None:
    publish(
        store, entity("deal", field("amount", "decimal", options={"precision": 18, "scale": 2}))
    )
    tables.insert("deal", amount=99.5)
    publish(store, entity("deal", field("amount", "decimal", options={"precision": 6, "scale": 2})))
    assert [float(v) for v in tables.values("deal", "amount")] == [99.5]


# -- stored values are checked against a field's new definition -------------------------------


def test_removing_a_choice_in_use_is_refused_unless_forced(
    store: MetaStore, tables: Tables
) -> None:
    # given: a stage field whose records use `lost`
    publish(store, entity("deal", field("stage", "single_select", options=choices("won", "lost"))))
    tables.insert("deal", stage="won")
    tables.insert("deal", stage="lost")
    narrower = entity("deal", field("stage", "single_select", options=choices("won")))

    # when: the choice is removed
    with pytest.raises(Invalid) as caught:
        publish(store, narrower)

    # then: refused, naming how many and which record, and nothing changed
    issue = caught.value.issues[0]
    assert (issue.path, issue.code) == ("/fields/0/options", "invalid_stored_values")
    assert "1 stored value(s)" in issue.message and "record 2" in issue.message
    assert sorted(tables.values("deal", "stage")) == ["lost", "won"]

    # and with force the invalid value is cleared
    publish(store, narrower, force=True)
    stages = tables.values("deal", "stage")
    assert sorted(stages, key=lambda v: (v is None, v or "")) == ["won", None]


def test_text_to_email_checks_every_stored_value(store: MetaStore, tables: Tables) -> None:
    publish(store, entity("contact", field("mail")))
    tables.insert("contact", mail="a@example.com")
    tables.insert("contact", mail="not an address")
    with pytest.raises(Invalid) as caught:
        publish(store, entity("contact", field("mail", "email")))
    assert caught.value.issues[0].code == "invalid_stored_values"


def test_changing_only_labels_does_not_recheck_values(store: MetaStore, tables: Tables) -> None:
    publish(store, entity("deal", field("stage", "single_select", options=choices("won"))))
    tables.insert("deal", stage="won")
    relabelled = field("stage", "single_select", options=choices("won"))
    relabelled["label"] = {"zh": "阶段", "en": "Stage"}
    result = publish(store, entity("deal", relabelled))
    assert result.changed
