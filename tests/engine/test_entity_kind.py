"""The `entity` document kind: every problem of a document is reported, with a JSON pointer."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from formloom.engine.entities import EntityDoc, entity_kind
from formloom.engine.entities.kind import _has_record_rules, _OtherEntities
from formloom.engine.entities.model import MAX_FIELDS
from formloom.engine.errors import DocumentInvalid
from formloom.engine.fields import field_types
from formloom.engine.fields.computed import ComputedFieldType
from formloom.engine.meta import CheckContext
from formloom.engine.records.rules import EntityRules, compile_rules

LABEL = {"zh": "名称", "en": "Name"}
COMPANY_PUBLISHED = CheckContext(published={"entity": {"company": {"name": "company"}}})


def field(name: str, type_: str = "text", **extra: Any) -> dict[str, Any]:
    return {"name": name, "label": LABEL, "type": type_, **extra}


def entity(*fields: dict[str, Any], name: str = "deal", **extra: Any) -> dict[str, Any]:
    return {"name": name, "label": LABEL, "fields": list(fields), **extra}


def problems(raw: Any, context: CheckContext | None = None) -> list[tuple[str, str]]:
    """(path, code) of every issue of ``raw``; fails when the document is valid."""
    with pytest.raises(DocumentInvalid) as exc:
        entity_kind.validate(raw, context)
    return [(i.path, i.code) for i in exc.value.issues]


def messages(raw: Any, context: CheckContext | None = None) -> dict[str, str]:
    with pytest.raises(DocumentInvalid) as exc:
        entity_kind.validate(raw, context)
    return {i.path: i.message for i in exc.value.issues}


def test_a_valid_entity_parses() -> None:
    raw = entity(
        field("title", options={"max_length": 80}),
        field("amount", "currency", options={"currency": "USD"}),
        field("company", "lookup", options={"entity": "company"}),
        field("parent", "lookup", options={"entity": "deal"}),
        title_field="title",
        indexes=[{"name": "by_amount", "fields": ["amount", "created_at"]}],
    )

    document = entity_kind.validate(raw, COMPANY_PUBLISHED)

    assert isinstance(document, EntityDoc)
    assert [f.name for f in document.fields] == ["title", "amount", "company", "parent"]


def test_a_lookup_may_point_at_an_entity_published_in_the_same_batch() -> None:
    context = CheckContext(pending={"entity": {"company": {"name": "company"}}})

    document = entity_kind.validate(
        entity(field("company", "lookup", options={"entity": "company"})), context
    )

    assert document.fields[0].options == {"entity": "company"}


@pytest.mark.parametrize(
    ("name", "code", "hint"),
    [
        ("select", "reserved_name", "SQL reserved word"),
        ("Bad Name", "pattern", "not a valid API name"),
        ("fl_x", "reserved_name", "reserved for the platform"),
        ("9lives", "pattern", "starting with a letter"),
    ],
)
def test_entity_names_that_cannot_name_a_table_are_refused(name: str, code: str, hint: str) -> None:
    found = messages(entity(field("title"), name=name))

    assert problems(entity(field("title"), name=name)) == [("/name", code)]
    assert hint in found["/name"]


@pytest.mark.parametrize(
    ("name", "code", "hint"),
    [
        ("select", "reserved_name", "`select` is an SQL reserved word"),
        ("Bad Name", "pattern", "`Bad Name` is not a valid API name"),
        ("id", "system_column", "collides with a system column"),
        ("version", "system_column", "collides with a system column"),
        ("created_at", "system_column", "collides with a system column"),
    ],
)
def test_field_names_that_cannot_name_a_column_are_refused(name: str, code: str, hint: str) -> None:
    raw = entity(field("title"), field(name))

    assert problems(raw) == [("/fields/1/name", code)]
    assert hint in messages(raw)["/fields/1/name"]


def test_duplicate_field_names_are_reported_at_each_occurrence() -> None:
    raw = entity(field("title"), field("code"), field("title", "integer"))

    assert problems(raw) == [
        ("/fields/0/name", "duplicate_field"),
        ("/fields/2/name", "duplicate_field"),
    ]
    assert "defined 2 times" in messages(raw)["/fields/0/name"]


def test_duplicate_field_ids_are_refused() -> None:
    raw = entity(field("a", id="fld_1"), field("b", id="fld_1"))

    assert problems(raw) == [("/fields/0/id", "duplicate_id"), ("/fields/1/id", "duplicate_id")]


def test_an_unknown_field_type_suggests_the_closest_one() -> None:
    raw = entity(field("title", "txt"))

    assert problems(raw) == [("/fields/0/type", "unknown_type")]
    message = messages(raw)["/fields/0/type"]
    assert "did you mean `text`?" in message
    assert "long_text" in message


def test_invalid_type_options_point_at_the_option() -> None:
    raw = entity(
        field("amount", "decimal", options={"precision": 4, "scale": 6}),
        field("stage", "single_select", options={"choices": []}),
        field("notes", "text", options={"maxlength": 10}),
    )

    found = problems(raw)

    assert ("/fields/1/options/choices", "invalid_option") in found
    assert ("/fields/2/options/maxlength", "invalid_option") in found
    scale = problems(entity(field("amount", "decimal", options={"precision": 4, "scale": 6})))
    assert scale == [("/fields/0/options", "invalid_option")]


def test_a_lookup_to_an_unknown_entity_is_refused() -> None:
    raw = entity(field("company", "lookup", options={"entity": "compnay"}))

    assert problems(raw, COMPANY_PUBLISHED) == [("/fields/0/options/entity", "unknown_entity")]
    assert "publish that entity first" in messages(raw)["/fields/0/options/entity"]


def test_more_than_the_maximum_number_of_fields_is_refused_briefly() -> None:
    raw = entity(*(field(f"f{i}") for i in range(MAX_FIELDS + 1)))

    with pytest.raises(DocumentInvalid) as exc:
        entity_kind.validate(raw)

    (issue,) = exc.value.issues
    assert (issue.path, issue.code) == ("/fields", "maxItems")
    assert issue.message == f"has {MAX_FIELDS + 1} items; at most {MAX_FIELDS} allowed"


def test_labels_longer_than_100_characters_are_refused() -> None:
    long_label = {"zh": "长" * 101, "en": "Name"}
    raw = entity(field("title", label=long_label), label={"zh": "名", "en": "x" * 150})

    found = messages(raw)

    assert sorted(found) == ["/fields/0/label/zh", "/label/en"]
    assert "101 characters" in found["/fields/0/label/zh"]
    assert "at most 100" in found["/label/en"]


def test_index_and_title_field_must_name_fields_of_the_entity() -> None:
    raw = entity(
        field("title"),
        title_field="name",
        indexes=[
            {"name": "by_title", "fields": ["title", "nope"]},
            {"name": "by_title", "fields": ["created_at"]},
        ],
    )

    assert problems(raw) == [
        ("/title_field", "unknown_field"),
        ("/indexes/0/name", "duplicate_index"),
        ("/indexes/0/fields/1", "unknown_field"),
        ("/indexes/1/name", "duplicate_index"),
    ]


def test_unknown_properties_name_the_allowed_ones() -> None:
    raw = entity(field("title", requird=True))

    assert problems(raw) == [("/fields/0", "additionalProperties")]
    assert "allowed properties:" in messages(raw)["/fields/0"]
    assert "required" in messages(raw)["/fields/0"]


def test_every_problem_of_a_document_is_listed_not_only_the_first() -> None:
    # given: schema problems and semantic problems in one document
    raw = entity(
        field("select"),
        field("Bad Name"),
        field("id"),
        field("code"),
        field("code"),
        field("amount", "numbr"),
        field("company", "lookup", options={"entity": "nowhere"}),
        field("version", label={"zh": "x" * 101, "en": "Version"}),
        name="fl_deal",
    )

    # when
    found = problems(raw)

    # then
    assert sorted(found) == sorted(
        [
            ("/name", "reserved_name"),
            ("/fields/0/name", "reserved_name"),
            ("/fields/1/name", "pattern"),
            ("/fields/2/name", "system_column"),
            ("/fields/3/name", "duplicate_field"),
            ("/fields/4/name", "duplicate_field"),
            ("/fields/5/type", "unknown_type"),
            ("/fields/6/options/entity", "unknown_entity"),
            ("/fields/7/name", "system_column"),
            ("/fields/7/label/zh", "maxLength"),
        ]
    )


def test_semantic_problems_are_listed_even_when_an_option_is_invalid() -> None:
    raw = entity(
        field("amount", "decimal", options={"scale": 40}),
        field("select"),
        field("company", "lookup", options={"entity": "nowhere"}),
    )

    assert problems(raw) == [
        ("/fields/0/options/scale", "invalid_option"),
        ("/fields/1/name", "reserved_name"),
        ("/fields/2/options/entity", "unknown_entity"),
    ]


def test_a_document_must_be_an_object() -> None:
    assert problems(["not", "an", "entity"]) == [("", "type")]


def test_a_newer_schema_version_is_refused() -> None:
    raw = entity(field("title"), schema_version=99)

    assert problems(raw) == [("/schema_version", "too_new")]
    assert "upgrade formloom" in messages(raw)["/schema_version"]


def test_the_published_json_schema_validates_raw_documents() -> None:
    schema = entity_kind.json_schema()
    validator = jsonschema.Draft202012Validator(schema)

    assert "lookup" in schema["$defs"]["FieldDef"]["properties"]["type"]["enum"]
    assert list(validator.iter_errors(entity(field("title")))) == []
    assert [e.validator for e in validator.iter_errors(entity(field("title", "txt")))] == ["enum"]


@pytest.mark.parametrize("field_type", ["long_text", "multi_select", "tags", "json"])
def test_long_and_structured_fields_cannot_be_unique_or_indexed(field_type):
    options = (
        {"choices": [{"value": "a", "label": {"zh": "甲", "en": "A"}}]}
        if field_type == "multi_select"
        else {}
    )
    document = {
        "name": "deal",
        "label": {"zh": "商机", "en": "Deal"},
        "fields": [
            {
                "name": "notes",
                "label": {"zh": "备注", "en": "Notes"},
                "type": field_type,
                "unique": True,
                "options": options,
            }
        ],
    }
    with pytest.raises(DocumentInvalid) as caught:
        entity_kind.validate(document)
    assert [(i.path, i.code) for i in caught.value.issues] == [
        ("/fields/0/unique", "not_indexable")
    ]


# -- record rules are compiled only when a document has some ------------------------------------

_SAMPLE_OPTIONS: dict[str, dict[str, Any]] = {
    "single_select": {"choices": [{"value": "a", "label": LABEL}]},
    "multi_select": {"choices": [{"value": "a", "label": LABEL}]},
    "lookup": {"entity": "company"},
    "multi_lookup": {"entity": "company"},
    "child_table": {"entity": "line", "field": "deal"},
}
_LINE = entity(
    field("deal", "lookup", options={"entity": "deal", "on_delete": "cascade"}), name="line"
)


def test_every_plain_field_type_is_sampled() -> None:
    needing = {t.name for t in field_types if t.check_options({}, at="")}
    computed = {t.name for t in field_types if isinstance(t, ComputedFieldType)}

    assert needing - computed == set(_SAMPLE_OPTIONS)


def test_a_document_without_record_rules_has_nothing_for_the_rule_compiler() -> None:
    """Skipping compile_rules for such documents loses no problem: it reports none."""
    # given: one field of every type that is not computed, none with required_when
    plain = [t.name for t in field_types if not isinstance(t, ComputedFieldType)]
    raw = entity(*(field(f"f_{n}", n, options=_SAMPLE_OPTIONS.get(n, {})) for n in plain))
    context = CheckContext(published={"entity": {"company": entity(name="company"), "line": _LINE}})

    # when
    document = entity_kind.validate(raw, context)

    # then
    assert not _has_record_rules(document)
    assert compile_rules(document) == EntityRules()


@pytest.mark.parametrize(
    "extra",
    [
        {
            "fields": [
                field("title"),
                field("code", required_when={"field": "title", "op": "is_set"}),
            ]
        },
        {
            "fields": [field("title")],
            "validation_rules": [
                {"name": "r", "when": "title == ''", "message": {"zh": "空", "en": "empty"}}
            ],
        },
        {"fields": [field("title")], "duplicate_rules": [{"name": "d", "fields": ["title"]}]},
    ],
)
def test_documents_with_record_rules_are_compiled(extra: dict[str, Any]) -> None:
    assert _has_record_rules(EntityDoc.model_validate({"name": "deal", "label": LABEL, **extra}))


@pytest.mark.parametrize("type_name", ["formula", "auto_number", "rollup"])
def test_computed_fields_count_as_record_rules(type_name: str) -> None:
    document = EntityDoc.model_validate(entity(field("n", type_name)))

    assert _has_record_rules(document)


def test_other_entities_hold_those_that_parse_and_find_them_by_field_type() -> None:
    # given: the environment's entities, one of them not parseable, one in the batch
    published = {
        "deal": entity(name="deal"),
        "company": entity(field("title"), name="company"),
        "legacy": {"name": "legacy"},
        "line": _LINE,
    }
    pending = {"order": entity(field("lines", "child_table", options={}), name="order")}
    context = CheckContext(published={"entity": published}, pending={"entity": pending})

    # when
    others = _OtherEntities(context, "deal")

    # then
    assert list(others) == ["company", "line", "order"]
    assert others.get("company") is not None and others.get("legacy") is None
    assert "deal" not in others
    assert list(others.with_field_type("lookup")) == ["line"]
    assert list(others.with_field_type("child_table")) == ["order"]
