"""The `flow` document kind: schema and semantic checks of approval flows.

A flow is validated by the checks that compile it (its graph, and its
conditions against the entity: :func:`~formloom.engine.flows.compiled.check_nodes`)
and by checking what its nodes name in the environment
(:mod:`formloom.engine.flows.checks`). Node
references, durations and the names of entities, fields and roles are plain
strings in the model, so a misspelt one is reported with a suggestion rather
than as a pattern mismatch; the published schema still constrains them for tools.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError

from formloom.engine.errors import Issue, pointer
from formloom.engine.flows.approvers import ApproverPolicies, PreviousApproverChoiceSource
from formloom.engine.flows.checks import Environment, NodeChecker, entity_issues, user_issues
from formloom.engine.flows.compiled import check_nodes
from formloom.engine.flows.durations import DURATION_PATTERN
from formloom.engine.flows.graph import FlowGraph, approver_before
from formloom.engine.flows.model import (
    FLOW_SCHEMA_VERSION,
    WEBHOOK_URL_PATTERN,
    ApproverNode,
    FlowDoc,
    HandlerNode,
    Node,
)
from formloom.engine.meta.kinds import CheckContext, DocumentKind, document_kinds
from formloom.engine.names import API_NAME_PATTERN

_NODE = TypeAdapter[Node](Node)


class FlowKind(DocumentKind[FlowDoc]):
    name = "flow"
    model = FlowDoc
    current_version = FLOW_SCHEMA_VERSION

    def validation_schema(self) -> dict[str, Any]:
        """The model's schema, shaped so that each mistake is reported once, at its place.

        Tagged unions (node types, assignee sources, actions) are checked by their
        `type` alone, and optional values only when present: JSON Schema's
        ``oneOf``/``anyOf`` would report a mistake in an approver node once for
        every node type, and a bad value once more for not being null.
        """
        return _shaped(DocumentKind.json_schema(self))

    def json_schema(self) -> dict[str, Any]:
        """The validation schema plus the shapes the semantic checks report themselves."""
        schema = DocumentKind.json_schema(self)
        defs = schema["$defs"]
        schema["properties"]["entity"]["pattern"] = API_NAME_PATTERN
        for step in ("ApproverNode", "HandlerNode"):
            props = defs[step]["properties"]
            props["field_permissions"]["propertyNames"] = {"pattern": API_NAME_PATTERN}
        for ref_holder in _node_refs(defs):
            ref_holder["pattern"] = API_NAME_PATTERN
        timeout = defs["Timeout"]["properties"]
        timeout["after"]["pattern"] = DURATION_PATTERN
        timeout["repeat_every"]["anyOf"][0]["pattern"] = DURATION_PATTERN
        defs["SetFieldsAction"]["properties"]["values"]["propertyNames"] = {
            "pattern": API_NAME_PATTERN
        }
        defs["WebhookAction"]["properties"]["url"]["pattern"] = WEBHOOK_URL_PATTERN
        return _shaped(schema)

    def check(self, document: FlowDoc, context: CheckContext) -> list[Issue]:
        env = Environment.of(context)
        issues = entity_issues(document.entity, env)
        entity = env.entity(document.entity) if not issues else None
        issues += _document_issues(document.admin, document.policies, document.start_by, env)
        checker = NodeChecker(env, entity)
        for i, node in enumerate(document.nodes):
            issues += checker.check(node, pointer("nodes", i))
        checked = check_nodes(document.nodes, document.entry_condition, entity)
        issues += checked.issues
        if checked.graph.sound:
            issues += _previous_approver_issues(document.nodes, checked.graph)
        return sorted(issues, key=_document_order)

    def check_parts(
        self, raw: dict[str, Any], flagged: set[str], context: CheckContext
    ) -> list[Issue]:
        """Check the entity name and each node the schema did not flag (and the graph and
        conditions too when every node parses)."""
        env = Environment.of(context)
        issues: list[Issue] = []
        entity = None
        name = raw.get("entity")
        if isinstance(name, str) and name:
            issues += entity_issues(name, env)
            entity = env.entity(name) if not issues else None
        checker = NodeChecker(env, entity)
        raw_nodes = raw.get("nodes")
        raw_nodes = raw_nodes if isinstance(raw_nodes, list) else []
        nodes = []
        for i, raw_node in enumerate(raw_nodes):
            at = pointer("nodes", i)
            if any(path == at or path.startswith(at + "/") for path in flagged):
                continue
            try:
                node = _NODE.validate_python(raw_node)
            except ValidationError:
                continue
            nodes.append(node)
            issues += checker.check(node, at)
        if nodes and len(nodes) == len(raw_nodes) and "/nodes" not in flagged:
            entry = raw.get("entry_condition")
            entry = entry if isinstance(entry, dict) and "/entry_condition" not in flagged else None
            checked = check_nodes(nodes, entry, entity)
            issues += checked.issues
            if checked.graph.sound:
                issues += _previous_approver_issues(nodes, checked.graph)
        return issues


def _document_order(issue: Issue) -> tuple[tuple[int, int, str], ...]:
    """Issues in the order of the document (array indexes compared as numbers)."""
    parts = issue.path.split("/")[1:]
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def _document_issues(
    admin: int | None, policies: ApproverPolicies, start_by: Sequence[str], env: Environment
) -> list[Issue]:
    issues = []
    if admin is not None:
        issues += user_issues([admin], env, at="/admin", who="the flow admin")
    checker = NodeChecker(env, None)
    issues += checker.empty_approver(
        policies.empty_approver, "/policies/empty_approver", "the flow's policies"
    )
    seen: set[str] = set()
    for k, way in enumerate(start_by):
        if way in seen:
            issues.append(
                Issue(
                    pointer("start_by", k),
                    "duplicate_value",
                    f"`{way}` is listed twice in `start_by`; list each way once",
                )
            )
        seen.add(way)
    return issues


def _previous_approver_issues(nodes: Sequence[Node], graph: FlowGraph) -> list[Issue]:
    """A node chosen by the previous approver needs an approver before it on every path."""
    issues = []
    for i, node in enumerate(nodes):
        if not isinstance(node, ApproverNode | HandlerNode):
            continue
        for k, source in enumerate(node.assignees):
            if isinstance(source, PreviousApproverChoiceSource) and not approver_before(
                graph, node.id
            ):
                issues.append(
                    Issue(
                        pointer("nodes", i, "assignees", k),
                        "no_previous_approver",
                        f"node `{node.id}` is assigned by the previous approver, but some path "
                        "from the start reaches it without passing an approver or handler; "
                        "put one before it on every path, or choose another source",
                    )
                )
    return issues


def _shaped(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace ``oneOf`` + ``discriminator`` by ``if``/``then`` on the tag, and
    ``anyOf: [X, null]`` by ``if: null, else: X`` (both accept the same documents)."""

    def walk(value: Any) -> Any:
        if isinstance(value, list):
            return [walk(v) for v in value]
        if not isinstance(value, dict):
            return value
        out = {k: walk(v) for k, v in value.items()}
        options = out.get("anyOf")
        if isinstance(options, list) and len(options) == 2 and _NULL in options:
            del out["anyOf"]
            out["if"] = _NULL
            out["else"] = next(o for o in options if o != _NULL)
        discriminator = out.pop("discriminator", None)
        if discriminator is None or "oneOf" not in out:
            return out
        tag = discriminator["propertyName"]
        by_ref = {ref: key for key, ref in discriminator["mapping"].items()}
        variants = [(by_ref[option["$ref"]], option["$ref"]) for option in out.pop("oneOf")]
        out.update(
            {
                "type": "object",
                "required": [tag],
                "properties": {tag: {"enum": [key for key, _ in variants]}},
                "allOf": [
                    {
                        "if": {"properties": {tag: {"const": key}}, "required": [tag]},
                        "then": {"$ref": ref},
                    }
                    for key, ref in variants
                ],
            }
        )
        return out

    result: dict[str, Any] = walk(copy.deepcopy(schema))
    return result


_NULL = {"type": "null"}


def _node_refs(defs: dict[str, Any]) -> list[dict[str, Any]]:
    """The schemas of every string that names a node (next, branch targets, return targets)."""
    found = []
    for name, definition in defs.items():
        props = definition.get("properties", {})
        if name == "Branch":
            found.append(props["to"])
        if name == "ParallelSplitNode":
            found.append(props["branches"]["items"])
        if "next" in props:
            found.append(props["next"]["anyOf"][0])
        if "returnable_to" in props:
            found.append(props["returnable_to"]["anyOf"][0]["items"])
    return found


flow_kind = document_kinds.register(FlowKind())
