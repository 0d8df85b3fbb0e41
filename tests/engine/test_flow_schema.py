"""The published JSON Schema of flows: its shape, and that tools validate documents with it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from formloom.engine.flows import flow_kind, parse_duration
from formloom.engine.flows.durations import DURATION_PATTERN, DurationInvalid
from formloom.engine.names import API_NAME_PATTERN
from tests.engine.test_flow_contract import contract_flow

ROOT = Path(__file__).resolve().parents[2]
NODE_TYPES = [
    "start",
    "approver",
    "handler",
    "cc",
    "condition",
    "parallel_split",
    "parallel_join",
    "action",
    "end",
]


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(flow_kind.json_schema())


def test_the_schema_describes_the_document() -> None:
    schema = flow_kind.json_schema()

    assert schema["title"] == "flow"
    assert schema["$id"] == "https://formloom.dev/schemas/flow.schema.json"
    assert schema["required"] == ["name", "label", "entity", "nodes"]
    assert schema["properties"]["withdraw"]["enum"] == ["never", "before_decision", "while_running"]
    assert schema["properties"]["start_by"]["items"]["enum"] == ["manual", "api", "rule"]
    jsonschema.Draft202012Validator.check_schema(schema)


def test_nodes_are_chosen_by_their_type() -> None:
    items = flow_kind.json_schema()["properties"]["nodes"]["items"]

    assert items["properties"]["type"]["enum"] == NODE_TYPES
    assert items["required"] == ["type"]
    assert [rule["if"]["properties"]["type"]["const"] for rule in items["allOf"]] == NODE_TYPES
    assert "oneOf" not in json.dumps(flow_kind.json_schema())


def test_the_node_types_carry_their_own_settings() -> None:
    defs = flow_kind.json_schema()["$defs"]

    approver = defs["ApproverNode"]["properties"]
    assert approver["mode"]["enum"] == ["sequential", "countersign", "or_sign"]
    assert approver["mode"]["default"] == "countersign"
    assert set(approver) >= {
        "assignees",
        "percentage",
        "empty_approver",
        "approver_is_submitter",
        "repeated_approver",
        "field_permissions",
        "comment_required_on_reject",
        "timeouts",
        "returnable_to",
        "next",
    }
    assert approver["field_permissions"]["additionalProperties"]["enum"] == [
        "hidden",
        "read_only",
        "editable",
    ]
    sources = approver["assignees"]["items"]["properties"]["type"]["enum"]
    assert sources == [
        "users",
        "role",
        "manager",
        "manager_chain",
        "team_head",
        "record_field",
        "submitter",
        "submitter_choice",
        "previous_approver_choice",
    ]
    assert defs["EndNode"]["properties"]["outcome"]["enum"] == ["approved", "rejected"]
    assert "next" not in defs["EndNode"]["properties"]
    assert defs["EmptyApproverPolicy"]["properties"]["action"]["enum"] == [
        "auto_approve",
        "auto_reject",
        "assign_to_user",
        "assign_to_admin",
    ]
    assert defs["Timeout"]["properties"]["action"]["enum"] == [
        "remind",
        "escalate",
        "auto_approve",
        "auto_reject",
    ]


def test_the_published_schema_constrains_names_and_durations() -> None:
    schema = flow_kind.json_schema()
    defs = schema["$defs"]

    assert schema["properties"]["entity"]["pattern"] == API_NAME_PATTERN
    assert defs["Branch"]["properties"]["to"]["pattern"] == API_NAME_PATTERN
    assert defs["ApproverNode"]["properties"]["next"]["else"]["pattern"] == API_NAME_PATTERN
    assert defs["Timeout"]["properties"]["after"]["pattern"] == DURATION_PATTERN
    # The semantic checks report these with suggestions; the validation schema leaves them out.
    assert "pattern" not in flow_kind.validation_schema()["properties"]["entity"]


def test_the_schema_validates_documents_as_tools_would() -> None:
    good = contract_flow()
    bad: dict[str, Any] = contract_flow()
    bad["nodes"][2]["timeouts"][0]["after"] = "48h"
    bad["nodes"][5]["next"] = "Review Join"
    bad["nodes"][4]["type"] = "fork"

    assert list(validator().iter_errors(good)) == []
    errors = sorted(list(e.absolute_path) for e in validator().iter_errors(bad))
    assert errors == [
        ["nodes", 2, "timeouts", 0, "after"],
        ["nodes", 4, "type"],
        ["nodes", 5, "next"],
    ]


@pytest.mark.parametrize(
    "text",
    ["PT30M", "PT48H", "P2D", "P1W", "P1DT12H", "PT1H30M15S", "48h", "P1M", "PT", "P", "P1DT"],
)
def test_the_duration_pattern_agrees_with_the_parser_on_the_syntax(text: str) -> None:
    try:
        parse_duration(text)
        parses = True
    except DurationInvalid as exc:
        parses = "is not an ISO-8601 duration" not in str(exc)

    assert bool(re.match(DURATION_PATTERN, text)) == parses


def test_the_schema_file_in_docs_is_current() -> None:
    path = ROOT / "docs" / "schemas" / "flow.schema.json"
    text = json.dumps(flow_kind.json_schema(), ensure_ascii=False, indent=2) + "\n"

    assert path.read_text(encoding="utf-8") == text, (
        f"{path} is stale: run `formloom meta schemas docs/schemas`"
    )
