"""The `role` document kind: every problem of a role is reported, with a JSON pointer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from formloom.engine.access import RoleDoc, role_dependencies, role_kind
from formloom.engine.errors import DocumentInvalid
from formloom.engine.meta import CheckContext, document_kinds

ROOT = Path(__file__).resolve().parents[2]
LABEL = {"zh": "名称", "en": "Name"}


def field(name: str) -> dict[str, Any]:
    return {"name": name, "label": LABEL, "type": "text"}


OPPORTUNITY = {
    "name": "opportunity",
    "label": LABEL,
    "fields": [field("stage"), field("margin"), field("amount")],
    "retired_fields": [{"field": field("old_code"), "removed_in_version": 3}],
}
LEAD = {"name": "lead", "label": LABEL, "fields": [field("source")]}
CONTEXT = CheckContext(
    published={"entity": {"opportunity": OPPORTUNITY}},
    pending={"entity": {"lead": LEAD}},
)


def role(**extra: Any) -> dict[str, Any]:
    return {"name": "sales_rep", "label": {"zh": "销售代表", "en": "Sales rep"}, **extra}


def problems(raw: Any, context: CheckContext = CONTEXT) -> list[tuple[str, str]]:
    """(path, code) of every issue of ``raw``; fails when the document is valid."""
    with pytest.raises(DocumentInvalid) as exc:
        role_kind.validate(raw, context)
    return [(i.path, i.code) for i in exc.value.issues]


def messages(raw: Any, context: CheckContext = CONTEXT) -> dict[str, str]:
    with pytest.raises(DocumentInvalid) as exc:
        role_kind.validate(raw, context)
    return {i.path: i.message for i in exc.value.issues}


def test_a_valid_role_parses_with_defaults_for_missing_keys() -> None:
    raw = role(
        description="Works the deals of their team",
        permissions=["manage_metadata"],
        entities={
            "opportunity": {
                "create": True,
                "read": "team",
                "update": "own",
                "delete": "none",
                "export": True,
                "import": True,
                "fields": {"margin": "hidden", "stage": "read_only"},
            },
            "lead": {"create": True},
            "*": {"read": "all"},
        },
    )

    document = role_kind.validate(raw, CONTEXT)

    assert isinstance(document, RoleDoc)
    assert document.entities["opportunity"].import_ is True
    assert document.entities["opportunity"].fields == {"margin": "hidden", "stage": "read_only"}
    lead = document.entities["lead"]
    assert (lead.read, lead.update, lead.delete) == ("none", "none", "none")
    assert (lead.export, lead.import_, lead.fields) == (False, False, {})
    assert document.access("account").read == "all"
    assert document.access("lead").read == "none"


def test_a_role_body_round_trips_through_its_dump() -> None:
    document = role_kind.validate(
        role(entities={"opportunity": {"read": "all", "import": True, "update": "all"}}), CONTEXT
    )

    body = document.model_dump(mode="json", exclude_none=True)

    assert body["entities"]["opportunity"]["import"] is True
    assert role_kind.validate(body, CONTEXT) == document


def test_the_kind_is_registered() -> None:
    assert document_kinds.get("role") is role_kind


def test_an_unknown_entity_suggests_the_closest_one() -> None:
    raw = role(entities={"oportunity": {"read": "all"}})

    assert problems(raw) == [("/entities/oportunity", "unknown_entity")]
    message = messages(raw)["/entities/oportunity"]
    assert message.startswith("unknown entity `oportunity`; did you mean `opportunity`?")


def test_an_unknown_entity_without_a_close_one_lists_the_entities() -> None:
    raw = role(entities={"invoice": {"read": "all"}})

    assert "entities of this environment: lead, opportunity" in messages(raw)["/entities/invoice"]
    empty = messages(raw, CheckContext())["/entities/invoice"]
    assert "this environment has no entities yet" in empty


def test_entities_published_or_pending_both_count() -> None:
    raw = role(entities={"opportunity": {"read": "own"}, "lead": {"read": "own"}})

    document = role_kind.validate(raw, CONTEXT)

    assert set(document.entities) == {"opportunity", "lead"}


def test_a_pending_entity_replaces_its_published_version() -> None:
    pending = {**OPPORTUNITY, "fields": [field("stage")]}
    context = CheckContext(
        published={"entity": {"opportunity": OPPORTUNITY}},
        pending={"entity": {"opportunity": pending}},
    )
    raw = role(entities={"opportunity": {"read": "own", "fields": {"margin": "hidden"}}})

    assert problems(raw, context) == [("/entities/opportunity/fields/margin", "unknown_field")]


def test_an_unknown_field_suggests_the_closest_one() -> None:
    raw = role(entities={"opportunity": {"read": "all", "fields": {"marginn": "hidden"}}})

    assert problems(raw) == [("/entities/opportunity/fields/marginn", "unknown_field")]
    message = messages(raw)["/entities/opportunity/fields/marginn"]
    assert message == "entity `opportunity` has no field `marginn`; did you mean `margin`?"


def test_an_unknown_field_without_a_close_one_lists_the_fields() -> None:
    raw = role(entities={"opportunity": {"read": "all", "fields": {"zzz": "hidden"}}})

    message = messages(raw)["/entities/opportunity/fields/zzz"]
    assert message.endswith("its fields: amount, margin, stage")


def test_a_removed_field_does_not_count_and_says_so() -> None:
    raw = role(entities={"opportunity": {"read": "all", "fields": {"old_code": "hidden"}}})

    assert problems(raw) == [("/entities/opportunity/fields/old_code", "unknown_field")]
    message = messages(raw)["/entities/opportunity/fields/old_code"]
    assert "was removed from entity `opportunity` (in version 3)" in message


def test_system_columns_are_not_fields_a_role_can_name() -> None:
    raw = role(entities={"opportunity": {"read": "all", "fields": {"owner_id": "read_only"}}})

    assert problems(raw) == [("/entities/opportunity/fields/owner_id", "unknown_field")]


def test_the_default_entry_cannot_name_fields() -> None:
    raw = role(entities={"*": {"read": "all", "fields": {"margin": "hidden"}}})

    assert problems(raw) == [("/entities/*/fields", "fields_on_default")]
    assert "give the entity its own entry" in messages(raw)["/entities/*/fields"]


@pytest.mark.parametrize(
    ("entry", "path"),
    [
        ({"read": "own", "update": "team"}, "/entities/opportunity/update"),
        ({"read": "team", "delete": "all"}, "/entities/opportunity/delete"),
        ({"update": "own"}, "/entities/opportunity/update"),
    ],
)
def test_update_or_delete_wider_than_read_is_refused(entry: dict[str, Any], path: str) -> None:
    raw = role(entities={"opportunity": entry})

    assert problems(raw) == [(path, "wider_than_read")]
    assert "cannot" in messages(raw)[path]
    assert "records it cannot read" in messages(raw)[path]


def test_the_scope_check_applies_to_the_default_entry_too() -> None:
    raw = role(entities={"*": {"read": "own", "delete": "all"}})

    assert problems(raw) == [("/entities/*/delete", "wider_than_read")]
    assert "every entity the role does not name" in messages(raw)["/entities/*/delete"]


def test_create_without_read_is_allowed() -> None:
    document = role_kind.validate(role(entities={"lead": {"create": True}}), CONTEXT)

    assert document.entities["lead"].create is True


def test_export_needs_read_and_import_needs_create_or_update() -> None:
    raw = role(entities={"lead": {"create": True, "export": True}, "opportunity": {"import": True}})

    assert problems(raw) == [
        ("/entities/lead/export", "export_without_read"),
        ("/entities/opportunity/import", "import_without_write"),
    ]
    update_only = role(entities={"opportunity": {"read": "all", "update": "own", "import": True}})
    assert role_kind.validate(update_only, CONTEXT).entities["opportunity"].import_


def test_field_rules_of_an_entry_without_access_are_refused() -> None:
    raw = role(entities={"opportunity": {"fields": {"margin": "hidden"}}})

    assert problems(raw) == [("/entities/opportunity/fields", "fields_without_access")]
    assert "roles add access" in messages(raw)["/entities/opportunity/fields"]


def test_an_unknown_permission_lists_the_valid_ones() -> None:
    raw = role(permissions=["manage_user"])

    assert problems(raw) == [("/permissions/0", "enum")]
    message = messages(raw)["/permissions/0"]
    assert "did you mean `manage_users`?" in message
    assert "manage_metadata, manage_users, publish_production" in message


def test_a_permission_listed_twice_is_refused() -> None:
    raw = role(permissions=["manage_users", "publish_production", "manage_users"])

    assert problems(raw) == [("/permissions/2", "duplicate_permission")]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            role(entities={"opportunity": {"read": "mine"}}),
            [("/entities/opportunity/read", "enum")],
        ),
        (
            role(entities={"opportunity": {"read": "all", "fields": {"margin": "hiden"}}}),
            [("/entities/opportunity/fields/margin", "enum")],
        ),
        (
            role(entities={"opportunity": {"read": "all", "write": "all"}}),
            [("/entities/opportunity", "additionalProperties")],
        ),
        (
            role(entities={"opportunity": {"create": "yes"}}),
            [("/entities/opportunity/create", "type")],
        ),
        (role(name="Sales Rep"), [("/name", "pattern")]),
        ({"name": "sales_rep"}, [("", "required")]),
        (role(kind="role"), [("", "additionalProperties")]),
        (role(label={"en": "Sales rep"}), [("/label", "required")]),
        (role(entities=["opportunity"]), [("/entities", "type")]),
    ],
)
def test_schema_problems_point_at_their_place(raw: dict[str, Any], expected: list[Any]) -> None:
    assert problems(raw) == expected


def test_an_enum_problem_suggests_the_closest_value() -> None:
    raw = role(entities={"opportunity": {"read": "all", "fields": {"margin": "hiden"}}})

    message = messages(raw)["/entities/opportunity/fields/margin"]
    assert "did you mean `hidden`?" in message
    assert "hidden, read_only, editable" in message


def test_a_document_that_fails_its_schema_still_gets_its_names_checked() -> None:
    raw = role(
        permissions=["manage_users", "manage_users", "nope"],
        entities={
            "oportunity": {"read": "everything", "fields": {"margin": "hidden"}},
            "lead": {"read": "all", "fields": {"sorce": "hidden"}},
            "opportunity": {"read": "own", "delete": "all"},
        },
    )

    assert problems(raw) == [
        ("/entities/lead/fields/sorce", "unknown_field"),
        ("/entities/oportunity", "unknown_entity"),
        ("/entities/oportunity/read", "enum"),
        ("/entities/opportunity/delete", "wider_than_read"),
        ("/permissions/1", "duplicate_permission"),
        ("/permissions/2", "enum"),
    ]


def test_every_problem_is_reported_at_once() -> None:
    raw = role(
        entities={
            "opportunity": {"read": "own", "update": "all", "fields": {"cost": "hidden"}},
            "leads": {"read": "all"},
            "*": {"fields": {"margin": "hidden"}},
        }
    )

    assert sorted(problems(raw)) == [
        ("/entities/*/fields", "fields_on_default"),
        ("/entities/leads", "unknown_entity"),
        ("/entities/opportunity/fields/cost", "unknown_field"),
        ("/entities/opportunity/update", "wider_than_read"),
    ]


def test_role_dependencies_are_the_entities_a_raw_body_names() -> None:
    raw = role(entities={"opportunity": {"read": "x"}, "lead": 5, "*": {"read": "all"}})

    assert role_dependencies(raw) == {"opportunity", "lead"}
    assert role_dependencies({"entities": ["opportunity"]}) == set()
    assert role_dependencies({}) == set()


# -- the published JSON Schema -------------------------------------------------------------


def test_the_schema_describes_the_document() -> None:
    schema = role_kind.json_schema()

    assert schema["title"] == "role"
    assert schema["$id"] == "https://formloom.dev/schemas/role.schema.json"
    assert schema["properties"]["permissions"]["items"]["enum"] == [
        "manage_metadata",
        "manage_users",
        "publish_production",
    ]
    access = schema["$defs"]["EntityAccess"]
    assert set(access["properties"]) == {
        "create",
        "read",
        "update",
        "delete",
        "export",
        "import",
        "fields",
    }
    assert access["properties"]["read"]["enum"] == ["none", "own", "team", "all"]
    assert access["properties"]["fields"]["additionalProperties"]["enum"] == [
        "hidden",
        "read_only",
        "editable",
    ]


def test_the_schema_validates_documents_as_tools_would() -> None:
    validator = jsonschema.Draft202012Validator(role_kind.json_schema())
    good = role(
        permissions=["manage_users"],
        entities={"opportunity": {"read": "all", "fields": {"margin": "hidden"}}, "*": {}},
    )
    bad = role(entities={"Bad Name": {"read": "all"}, "opportunity": {"fields": {"X": "hidden"}}})

    assert list(validator.iter_errors(good)) == []
    assert len(list(validator.iter_errors(bad))) == 2


def test_the_schema_file_in_docs_is_current() -> None:
    path = ROOT / "docs" / "schemas" / "role.schema.json"
    text = json.dumps(role_kind.json_schema(), ensure_ascii=False, indent=2) + "\n"

    assert path.read_text(encoding="utf-8") == text, (
        f"{path} is stale: run `formloom meta schemas docs/schemas`"
    )


def test_entity_indexes_may_name_the_owner_but_not_in_a_unique_index() -> None:
    from formloom.engine.errors import DocumentInvalid
    from formloom.engine.meta import document_kinds

    kind = document_kinds.get("entity")
    body = {
        "name": "deal",
        "label": {"en": "Deal", "zh": "商机"},
        "fields": [{"name": "close_date", "label": {"en": "Close", "zh": "成交"}, "type": "date"}],
        "indexes": [{"name": "mine", "fields": ["owner_id", "close_date"]}],
    }
    assert kind.validate(body).indexes[0].fields == ["owner_id", "close_date"]
    unique = {**body, "indexes": [{"name": "mine", "fields": ["owner_id"], "unique": True}]}
    with pytest.raises(DocumentInvalid) as caught:
        kind.validate(unique)
    assert [(i.path, i.code) for i in caught.value.issues] == [
        ("/indexes/0/fields/0", "owner_in_unique_index")
    ]
