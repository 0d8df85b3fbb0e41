"""The entity change planner: from two versions of an entity document to table operations.

Pure tests (no database): they pin down which operations a change produces, in
which order, and which changes are refused before anything touches a table.
"""

from __future__ import annotations

from typing import Any

import pytest

from formloom.engine.entities import EntityDoc
from formloom.engine.entities.changes import (
    MAX_IDENTIFIER,
    AddColumn,
    ColumnDef,
    ConvertColumn,
    CreateIndex,
    CreateTable,
    DropColumn,
    DropIndex,
    DropTable,
    EntityPlan,
    RecheckValues,
    RenameColumn,
    field_id,
    physical_indexes,
    plan_entity_change,
    plan_entity_removal,
)
from formloom.engine.errors import DocumentInvalid
from formloom.engine.fields import Storage
from formloom.engine.fields.conversion import LossCheck, plan_conversion

LABEL = {"zh": "字段", "en": "Field"}


def field(name: str, type_: str = "text", **extra: Any) -> dict[str, Any]:
    return {"name": name, "label": LABEL, "type": type_, **extra}


def choice(value: str) -> dict[str, Any]:
    return {"value": value, "label": {"en": value}}


def column(name: str, storage: Storage) -> ColumnDef:
    return ColumnDef(name, storage)


def entity(*fields: dict[str, Any], name: str = "deal", **extra: Any) -> EntityDoc:
    return EntityDoc.model_validate({"name": name, "label": LABEL, "fields": list(fields), **extra})


def published(*fields: dict[str, Any], version: int = 1, **extra: Any) -> EntityDoc:
    """The document as the platform stores it after publishing ``version`` on a new table."""
    plan = plan_entity_change(None, entity(*fields, **extra), version=version)
    assert plan.document is not None
    return plan.document


def as_published(previous: EntityDoc, new: EntityDoc, *, version: int = 2) -> EntityDoc:
    plan = plan_entity_change(previous, new, version=version)
    assert plan.document is not None
    return plan.document


def ddl(plan: EntityPlan) -> list[Any]:
    """The plan's table operations, without the checks of stored values."""
    return [op for op in plan.operations if not isinstance(op, RecheckValues)]


def kinds(plan: EntityPlan) -> list[str]:
    return [type(op).__name__ for op in ddl(plan)]


def issues_of(exc: pytest.ExceptionInfo[DocumentInvalid]) -> list[tuple[str, str]]:
    return [(i.path, i.code) for i in exc.value.issues]


def ids(document: EntityDoc) -> dict[str, str | None]:
    return {f.name: f.id for f in document.fields}


# -- creating a table -------------------------------------------------------------------------


def test_create_makes_the_table_with_typed_columns_and_indexes() -> None:
    # given
    new = entity(
        field("title", "text", options={"max_length": 120}),
        field("amount", "decimal", options={"precision": 12, "scale": 2}),
        field("code", "text", unique=True),
        field("stage", "single_select", indexed=True, options={"choices": [choice("open")]}),
        field("company", "lookup", options={"entity": "company"}),
    )

    # when
    plan = plan_entity_change(None, new, version=1)

    # then
    create = ddl(plan)[0]
    assert isinstance(create, CreateTable)
    assert [(c.name, c.storage) for c in create.columns] == [
        ("title", Storage("string", length=120)),
        ("amount", Storage("decimal", precision=12, scale=2)),
        ("code", Storage("string", length=255)),
        ("stage", Storage("string", length=63)),
        ("company", Storage("integer", references="company")),
    ]
    indexes = {op.index.name: op for op in ddl(plan)[1:] if isinstance(op, CreateIndex)}
    assert {name: (ix.index.columns, ix.index.unique) for name, ix in indexes.items()} == {
        "uq_deal__code": (("code",), True),
        "ix_deal__stage": (("stage",), False),
        "ix_deal__company": (("company",), False),
    }
    assert indexes["uq_deal__code"].field_path == "/fields/2/unique"
    assert indexes["ix_deal__stage"].field_path == "/fields/3/indexed"


def test_create_assigns_stable_field_ids_and_forgets_renamed_from() -> None:
    plan = plan_entity_change(None, entity(field("title", renamed_from="name")), version=3)

    assert plan.document is not None
    (title,) = plan.document.fields
    assert title.id == field_id("deal", "title", 3)
    assert title.renamed_from is None
    assert plan_entity_change(None, entity(field("title")), version=3).document == plan.document


def test_create_keeps_ids_given_in_the_document() -> None:
    plan = plan_entity_change(None, entity(field("title", id="fld_imported1")), version=1)

    assert plan.document is not None
    assert ids(plan.document) == {"title": "fld_imported1"}


def test_index_names_fit_the_identifier_limit() -> None:
    long_name = "a" * 63
    document = published(field(long_name, indexed=True), name="b" * 63)

    (index,) = physical_indexes(document).values()

    assert len(index.name) <= MAX_IDENTIFIER
    assert index.name.startswith("ix_bbbb")
    assert physical_indexes(document) == physical_indexes(document)


def test_searchable_text_fields_get_a_trigram_index() -> None:
    document = published(
        field("title", searchable=True),
        field("notes", "long_text", searchable=True),
        field("quantity", "integer", searchable=True),
        field("code", searchable=True, unique=True),
    )

    indexes = physical_indexes(document)

    assert {(ix.name, ix.method) for ix in indexes.values()} == {
        ("tg_deal__title", "trigram"),
        ("tg_deal__notes", "trigram"),
        ("tg_deal__code", "trigram"),
        ("uq_deal__code", "btree"),
    }
    plan = plan_entity_change(None, entity(field("title", searchable=True)), version=1)
    assert ddl(plan)[1] == CreateIndex("deal", indexes["tg_deal__title"], "/fields/0/searchable")


# -- adding, renaming, removing fields --------------------------------------------------------


def test_publishing_the_same_document_changes_nothing() -> None:
    old = published(field("title"), field("code", unique=True))

    plan = plan_entity_change(old, old, version=2)

    assert ddl(plan) == []
    assert plan.document == old


def test_adding_a_field_adds_a_nullable_column_with_a_new_id() -> None:
    old = published(field("title"))

    plan = plan_entity_change(old, entity(field("title"), field("amount", "integer")), version=4)

    assert ddl(plan) == [AddColumn("deal", column("amount", Storage("integer")))]
    assert plan.document is not None
    assert ids(plan.document) == {
        "title": ids(old)["title"],
        "amount": field_id("deal", "amount", 4),
    }


def test_rename_by_renamed_from_keeps_the_column_and_renames_its_index() -> None:
    old = published(field("title"), field("code", unique=True))

    plan = plan_entity_change(
        old, entity(field("title"), field("reference", unique=True, renamed_from="code")), version=2
    )

    assert ddl(plan) == [
        DropIndex("deal", physical_indexes(old)["uq_deal__code"]),
        RenameColumn("deal", "code", "reference"),
        CreateIndex(
            "deal", physical_indexes(plan.document)["uq_deal__reference"], "/fields/1/unique"
        ),
    ]
    assert plan.document is not None
    assert plan.document.fields[1].id == old.fields[1].id
    assert plan.document.fields[1].renamed_from is None


def test_rename_by_keeping_the_field_id() -> None:
    old = published(field("title"), field("code"))
    code_id = ids(old)["code"]

    plan = plan_entity_change(
        old, entity(field("title"), field("reference", id=code_id)), version=2
    )

    assert ddl(plan) == [RenameColumn("deal", "code", "reference")]
    assert plan.document is not None
    assert ids(plan.document)["reference"] == code_id


def test_renaming_away_and_adding_a_new_field_under_the_old_name() -> None:
    # given: `code` is renamed to `reference` (by id) and a new field takes the name `code`
    old = published(field("code"))
    new = entity(field("reference", id=ids(old)["code"]), field("code", "integer"))

    # when
    plan = plan_entity_change(old, new, version=2)

    # then: the old column moves, a new column is added; no field shares an id
    assert ddl(plan) == [
        RenameColumn("deal", "code", "reference"),
        AddColumn("deal", column("code", Storage("integer"))),
    ]
    assert plan.document is not None
    assert ids(plan.document) == {
        "reference": ids(old)["code"],
        "code": field_id("deal", "code", 2),
    }


def test_renamed_from_and_a_new_field_under_the_old_name() -> None:
    old = published(field("code"))
    new = entity(field("reference", renamed_from="code"), field("code", "integer"))

    plan = plan_entity_change(old, new, version=2)

    assert kinds(plan) == ["RenameColumn", "AddColumn"]


def test_a_published_field_is_continued_by_one_field_only() -> None:
    old = published(field("code"))
    new = entity(field("a", renamed_from="code"), field("b", renamed_from="code"))

    with pytest.raises(DocumentInvalid) as exc:
        plan_entity_change(old, new, version=2)

    assert issues_of(exc) == [("/fields/1/renamed_from", "renamed_twice")]
    assert "`a` already continues" in exc.value.issues[0].message


def test_republishing_a_draft_that_still_names_its_rename_changes_nothing() -> None:
    draft = entity(field("reference", renamed_from="code"))
    renamed = as_published(published(field("code")), draft)

    plan = plan_entity_change(renamed, draft, version=3)

    assert ddl(plan) == []
    assert plan.document == renamed


def test_chained_renames_free_each_name_before_it_is_taken() -> None:
    old = published(field("a"), field("b"))
    new = entity(field("b", renamed_from="a"), field("c", renamed_from="b"))

    plan = plan_entity_change(old, new, version=2)

    assert ddl(plan) == [RenameColumn("deal", "b", "c"), RenameColumn("deal", "a", "b")]


def test_swapping_two_names_is_refused() -> None:
    old = published(field("a"), field("b"))
    new = entity(field("b", id=ids(old)["a"]), field("a", id=ids(old)["b"]))

    with pytest.raises(DocumentInvalid) as exc:
        plan_entity_change(old, new, version=2)

    assert issues_of(exc) == [("/fields", "rename_cycle")]
    assert "temporary name" in exc.value.issues[0].message


def test_renamed_from_an_unknown_field_is_refused() -> None:
    old = published(field("title"))

    with pytest.raises(DocumentInvalid) as exc:
        plan_entity_change(old, entity(field("title"), field("b", renamed_from="nope")), version=2)

    assert issues_of(exc) == [("/fields/1/renamed_from", "unknown_field")]


def test_removing_a_field_retires_it_and_keeps_its_column() -> None:
    old = published(field("title"), field("code", unique=True))

    plan = plan_entity_change(old, entity(field("title")), version=5)

    assert ddl(plan) == [DropIndex("deal", physical_indexes(old)["uq_deal__code"])]
    assert plan.document is not None
    assert [
        (r.field.name, r.field.id, r.removed_in_version) for r in plan.document.retired_fields
    ] == [("code", ids(old)["code"], 5)]


def test_re_adding_a_retired_field_with_the_same_storage_restores_it() -> None:
    old = published(field("title"), field("code", unique=True))
    removed = as_published(old, entity(field("title")), version=2)

    plan = plan_entity_change(
        removed, entity(field("title"), field("code", unique=True)), version=3
    )

    assert ddl(plan) == [
        CreateIndex("deal", physical_indexes(old)["uq_deal__code"], "/fields/1/unique")
    ]
    assert plan.document is not None
    assert plan.document.retired_fields == []
    assert ids(plan.document) == ids(old)


def test_re_adding_a_retired_field_with_another_storage_is_refused() -> None:
    old = published(field("title"), field("code"))
    removed = as_published(old, entity(field("title")))

    with pytest.raises(DocumentInvalid) as exc:
        plan_entity_change(removed, entity(field("title"), field("code", "integer")), version=3)

    assert issues_of(exc) == [("/fields/1/type", "retired_column")]
    assert "string(255)" in exc.value.issues[0].message
    assert "purge" in exc.value.issues[0].message


def test_purge_drops_removed_and_retired_columns() -> None:
    old = published(field("title"), field("code", unique=True), field("notes", "long_text"))
    removed = as_published(old, entity(field("title"), field("code", unique=True)))

    plan = plan_entity_change(removed, entity(field("title")), version=3, purge=True)

    assert ddl(plan) == [
        DropIndex("deal", physical_indexes(old)["uq_deal__code"]),
        DropColumn("deal", column("notes", Storage("text"))),
        DropColumn("deal", column("code", Storage("string", length=255))),
    ]
    assert plan.document is not None
    assert plan.document.retired_fields == []


def test_purge_re_adds_a_retired_name_with_another_type_as_a_new_column() -> None:
    old = published(field("title"), field("code"))
    removed = as_published(old, entity(field("title")))

    plan = plan_entity_change(
        removed, entity(field("title"), field("code", "integer")), version=3, purge=True
    )

    assert ddl(plan) == [
        DropColumn("deal", column("code", Storage("string", length=255))),
        AddColumn("deal", column("code", Storage("integer"))),
    ]


def test_renaming_onto_a_retired_name_is_refused_unless_purged() -> None:
    old = published(field("code"), field("title"))
    removed = as_published(old, entity(field("title")))
    rename = entity(field("code", renamed_from="title"))

    with pytest.raises(DocumentInvalid) as exc:
        plan_entity_change(removed, rename, version=3)
    plan = plan_entity_change(removed, rename, version=3, purge=True)

    assert issues_of(exc) == [("/fields/0/name", "name_taken")]
    assert ddl(plan) == [
        DropColumn("deal", column("code", Storage("string", length=255))),
        RenameColumn("deal", "title", "code"),
    ]


# -- indexes and uniqueness -------------------------------------------------------------------


def test_making_a_field_unique_creates_a_unique_index_checked_against_the_data() -> None:
    old = published(field("code"))

    plan = plan_entity_change(old, entity(field("code", unique=True)), version=2)

    assert ddl(plan) == [
        CreateIndex("deal", physical_indexes(plan.document)["uq_deal__code"], "/fields/0/unique")
    ]


def test_switching_from_indexed_to_unique_replaces_the_index() -> None:
    old = published(field("code", indexed=True))

    plan = plan_entity_change(old, entity(field("code", unique=True)), version=2)

    assert kinds(plan) == ["DropIndex", "CreateIndex"]
    assert [op.index.name for op in ddl(plan)] == ["ix_deal__code", "uq_deal__code"]  # type: ignore[union-attr]


def test_dropping_uniqueness_drops_the_index() -> None:
    old = published(field("code", unique=True))

    plan = plan_entity_change(old, entity(field("code")), version=2)

    assert ddl(plan) == [DropIndex("deal", physical_indexes(old)["uq_deal__code"])]


def test_composite_indexes_are_added_and_removed() -> None:
    old = published(field("a"), field("b"))
    with_index = entity(
        field("a"), field("b"), indexes=[{"name": "a_b", "fields": ["a", "b"], "unique": True}]
    )

    added = plan_entity_change(old, with_index, version=2)
    removed = plan_entity_change(
        as_published(old, with_index), entity(field("a"), field("b")), version=3
    )

    assert [(type(op).__name__, op.index.name, op.index.columns) for op in ddl(added)] == [  # type: ignore[union-attr]
        ("CreateIndex", "uq_deal__a_b", ("a", "b"))
    ]
    assert ddl(added)[0].field_path == "/indexes/0"  # type: ignore[union-attr]
    assert kinds(removed) == ["DropIndex"]


def test_options_that_do_not_change_storage_change_no_table() -> None:
    old = published(field("stage", "single_select", options={"choices": [choice("open")]}))

    plan = plan_entity_change(
        old,
        entity(
            field("stage", "single_select", options={"choices": [choice("open"), choice("won")]})
        ),
        version=2,
    )

    assert ddl(plan) == []


# -- type changes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "transform", "loss"),
    [
        (field("n", "integer"), field("n", "decimal"), "cast", None),
        (field("n", "text"), field("n", "long_text"), "cast", None),
        (
            field("n", "text"),
            field("n", "text", options={"max_length": 500}),
            "cast",
            None,
        ),
        (
            field("n", "single_select", options={"choices": [choice("a")]}),
            field("n", "multi_select", options={"choices": [choice("a")]}),
            "wrap_json_array",
            None,
        ),
        (field("n", "date"), field("n", "datetime"), "cast", None),
        (field("n", "integer"), field("n", "text"), "cast", None),
        (field("n", "decimal"), field("n", "long_text"), "cast", None),
        (
            field("n", "integer"),
            field("n", "text", options={"max_length": 5}),
            "truncate",
            LossCheck("longer_than", 5),
        ),
        (
            field("n", "decimal", options={"precision": 12, "scale": 2}),
            field("n", "text", options={"max_length": 13}),
            "truncate",
            LossCheck("longer_than", 13),
        ),
        (
            field("n", "decimal", options={"precision": 12, "scale": 2}),
            field("n", "text", options={"max_length": 14}),
            "cast",
            None,
        ),
        (field("n", "decimal"), field("n", "integer"), "round", LossCheck("fraction_beyond", 0)),
        (
            field("n", "decimal", options={"scale": 4}),
            field("n", "decimal", options={"scale": 2}),
            "round",
            LossCheck("fraction_beyond", 2),
        ),
        (field("n", "long_text"), field("n", "text"), "truncate", LossCheck("longer_than", 255)),
        (
            field("n", "text", options={"max_length": 500}),
            field("n", "text"),
            "truncate",
            LossCheck("longer_than", 255),
        ),
        (
            field("n", "multi_select", options={"choices": [choice("a")]}),
            field("n", "single_select", options={"choices": [choice("a")]}),
            "first_json_element",
            LossCheck("more_than_one_element"),
        ),
    ],
    ids=lambda v: v["type"] if isinstance(v, dict) else str(v),
)
def test_type_changes_convert_the_column(
    before: dict[str, Any], after: dict[str, Any], transform: str, loss: LossCheck | None
) -> None:
    old = published(before)

    plan = plan_entity_change(old, entity(after), version=2)

    (convert,) = ddl(plan)
    assert isinstance(convert, ConvertColumn)
    assert (convert.column, convert.field_path) == ("n", "/fields/0/type")
    assert (convert.conversion.transform, convert.conversion.loss) == (transform, loss)
    assert plan.document is not None
    assert plan.document.fields[0].id == old.fields[0].id


def test_converting_an_indexed_column_rebuilds_its_index_after_the_conversion() -> None:
    old = published(field("n", "integer", unique=True))

    plan = plan_entity_change(old, entity(field("n", "decimal", unique=True)), version=2)

    assert kinds(plan) == ["DropIndex", "ConvertColumn", "CreateIndex"]


def test_rename_and_type_change_together_convert_under_the_new_name() -> None:
    old = published(field("n", "integer"))

    plan = plan_entity_change(old, entity(field("m", "decimal", renamed_from="n")), version=2)

    assert kinds(plan) == ["RenameColumn", "ConvertColumn"]
    assert ddl(plan)[1].column == "m"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("before", "after", "hint"),
    [
        (field("n", "boolean"), field("n", "date"), "cannot be converted"),
        (
            field("n", "lookup", options={"entity": "company"}),
            field("n", "text"),
            "a lookup cannot change",
        ),
        (
            field("n", "lookup", options={"entity": "company"}),
            field("n", "lookup", options={"entity": "contact"}),
            "a lookup cannot change",
        ),
        (field("n", "text"), field("n", "lookup", options={"entity": "company"}), "lookup"),
    ],
    ids=["boolean-date", "lookup-text", "lookup-target", "text-lookup"],
)
def test_unsupported_type_changes_are_refused_with_what_to_do(
    before: dict[str, Any], after: dict[str, Any], hint: str
) -> None:
    old = published(before)

    with pytest.raises(DocumentInvalid) as exc:
        plan_entity_change(old, entity(after), version=2)

    assert issues_of(exc) == [("/fields/0/type", "unsupported_type_change")]
    message = exc.value.issues[0].message
    assert hint in message
    assert "add a new field, copy the data over, then remove the old field" in message


def test_every_problem_of_a_change_is_reported_together() -> None:
    old = published(field("a", "boolean"), field("b", "text"), field("c", "date"))
    new = entity(
        field("a", "date"),
        field("b", "lookup", options={"entity": "company"}),
        field("d", renamed_from="nope"),
    )

    with pytest.raises(DocumentInvalid) as exc:
        plan_entity_change(old, new, version=2)

    assert issues_of(exc) == [
        ("/fields/0/type", "unsupported_type_change"),
        ("/fields/1/type", "unsupported_type_change"),
        ("/fields/2/renamed_from", "unknown_field"),
    ]


def test_conversion_between_equal_storage_changes_no_column() -> None:
    conversion = plan_conversion(Storage("string", length=63), Storage("string", length=63))

    assert conversion.possible
    assert not conversion.changes_column


def test_loss_checks_describe_what_would_change() -> None:
    assert "longer than 255" in LossCheck("longer_than", 255).describe()
    assert "more than 2 decimal places" in LossCheck("fraction_beyond", 2).describe()
    assert "only the first" in LossCheck("more_than_one_element").describe()


# -- removing an entity -----------------------------------------------------------------------


def test_removing_an_entity_keeps_its_table_unless_purged() -> None:
    old = published(field("title"))

    soft = plan_entity_removal(old, purge=False)
    purge = plan_entity_removal(old, purge=True)

    assert ddl(soft) == []
    assert ddl(purge) == [DropTable("deal")]


def test_a_changed_type_or_options_rechecks_stored_values_but_a_new_label_does_not() -> None:
    old = published(
        field("stage", "single_select", options={"choices": [choice("a"), choice("b")]})
    )
    narrower = entity(field("stage", "single_select", options={"choices": [choice("a")]}))
    retyped = entity(field("stage", "text"))
    relabelled = entity(
        {
            **field("stage", "single_select", options={"choices": [choice("a"), choice("b")]}),
            "label": {"zh": "阶段", "en": "Stage"},
        }
    )

    checks = [
        [
            op
            for op in plan_entity_change(old, new, version=2).operations
            if isinstance(op, RecheckValues)
        ]
        for new in (narrower, retyped, relabelled)
    ]

    assert [c.field_path for c in checks[0]] == ["/fields/0/options"]
    assert [c.field_path for c in checks[1]] == ["/fields/0/type"]
    assert checks[2] == []
