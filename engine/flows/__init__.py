"""Approval flows: the `flow` document kind, its graph checks and the runtime's pure questions.

See ``docs/flows.md`` for the document format and the rules.
"""

from formloom.engine.flows.approvers import (
    RESOLUTION_ORDER,
    ApproverPolicies,
    Assignee,
    EmptyApproverPolicy,
    Mode,
    Recipient,
)
from formloom.engine.flows.compiled import (
    CompiledFlow,
    FlowError,
    UnknownNode,
    applies_to,
    compile_flow,
    join_of,
    next_nodes,
    node_policies,
    return_targets,
)
from formloom.engine.flows.durations import DurationInvalid, parse_duration
from formloom.engine.flows.graph import FlowGraph, analyse
from formloom.engine.flows.kind import flow_kind
from formloom.engine.flows.model import FLOW_SCHEMA_VERSION, FlowDoc, Node, NodeType

__all__ = [
    "FLOW_SCHEMA_VERSION",
    "RESOLUTION_ORDER",
    "ApproverPolicies",
    "Assignee",
    "CompiledFlow",
    "DurationInvalid",
    "EmptyApproverPolicy",
    "FlowDoc",
    "FlowError",
    "FlowGraph",
    "Mode",
    "Node",
    "NodeType",
    "Recipient",
    "UnknownNode",
    "analyse",
    "applies_to",
    "compile_flow",
    "flow_kind",
    "join_of",
    "next_nodes",
    "node_policies",
    "parse_duration",
    "return_targets",
]
