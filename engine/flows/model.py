"""The flow document: an approval flow (审批流) as a graph of typed nodes.

Nodes link forward through their own ``next`` (one successor), a condition's
``branches`` (each a condition and a target) or a parallel split's
``branches`` (every target at once). Approver and handler nodes may declare the
earlier steps they can send the record back to (``returnable_to``, 退回); those
return links are the only cycles a flow may have. See ``docs/flows.md``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from formloom.engine.flows.approvers import (
    ApproverIsSubmitter,
    ApproverPolicies,
    Assignee,
    EmptyApproverPolicy,
    Mode,
    Recipient,
    RepeatedApprover,
    UserId,
)
from formloom.engine.labels import Label
from formloom.engine.names import API_NAME_PATTERN

FLOW_SCHEMA_VERSION = 1
MAX_NODES = 2000
MAX_ASSIGNEE_SOURCES = 20
MAX_CONDITION_BRANCHES = 50
MAX_PARALLEL_BRANCHES = 20
MAX_TIMEOUTS = 5
MAX_ACTIONS = 20
MAX_SET_FIELDS = 100
MESSAGE_MAX = 500
#: What a webhook URL looks like (checked semantically; the published schema has it too).
WEBHOOK_URL_PATTERN = r"^https?://[^\s/?#]+[^\s]*$"

NodeType = Literal[
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
StartBy = Literal["manual", "api", "rule"]
"""How an instance may start: from the record page (manual), through the records
API's "submit for approval" (api), or by an automation rule (rule)."""
WithdrawPolicy = Literal["never", "before_decision", "while_running"]
"""When the submitter may withdraw (撤回) a running instance: never, until the first
approver decides (the default), or at any time until the instance finishes."""
Outcome = Literal["approved", "rejected"]
Channel = Literal["in_app", "email", "dingtalk", "wecom", "feishu", "sms"]
"""Where a `notify` action writes: in the app, by email, or through a bot or SMS provider."""
FieldMode = Literal["hidden", "read_only", "editable"]
"""How a field shows to the people acting on a step (as in roles; defined here because
importing the access package from a kind would import the kind registry mid-way)."""
NodeRef = Annotated[str, Field(min_length=1, max_length=63, description="The id of a node")]

_STRICT = ConfigDict(extra="forbid", strict=True)


class Message(BaseModel):
    """A text for people, in Chinese and English."""

    model_config = _STRICT

    zh: str = Field(min_length=1, max_length=MESSAGE_MAX)
    en: str = Field(min_length=1, max_length=MESSAGE_MAX)


# -- timeouts ----------------------------------------------------------------------------------


class EscalateToUser(BaseModel):
    """Escalate to a specific user."""

    model_config = _STRICT

    type: Literal["user"]
    user: UserId


class EscalateToManager(BaseModel):
    """Escalate to the manager (level 1) or N-th level manager of the late assignee."""

    model_config = _STRICT

    type: Literal["manager"]
    level: int = Field(default=1, ge=1, le=10)


class EscalateToAdmin(BaseModel):
    """Escalate to the flow admin."""

    model_config = _STRICT

    type: Literal["admin"]


EscalationTarget = Annotated[
    EscalateToUser | EscalateToManager | EscalateToAdmin, Field(discriminator="type")
]


class Timeout(BaseModel):
    """What happens when a node's task is still open ``after`` a while (超时处理)."""

    model_config = _STRICT

    after: str = Field(
        max_length=40,
        description="ISO-8601 duration from the task's creation, e.g. `PT48H` or `P2D`",
    )
    action: Literal["remind", "escalate", "auto_approve", "auto_reject"]
    repeat_every: str | None = Field(
        default=None,
        max_length=40,
        description="`remind` only: remind again at this interval until the task is done",
    )
    max_reminders: int | None = Field(
        default=None,
        ge=2,
        le=10,
        description="`remind` with `repeat_every`: reminders in all (default 10)",
    )
    escalate_to: EscalationTarget | None = Field(
        default=None, description="`escalate` only: who the task is transferred to"
    )


# -- actions -----------------------------------------------------------------------------------


class SetFieldsAction(BaseModel):
    """Set fields of the record (e.g. `status` to `approved`)."""

    model_config = _STRICT

    type: Literal["set_fields"]
    values: dict[str, Any] = Field(
        min_length=1, max_length=MAX_SET_FIELDS, description="Field name → value (null clears)"
    )


class NotifyAction(BaseModel):
    """Send a message to people (in-app; email and bots through the platform's channels)."""

    model_config = _STRICT

    type: Literal["notify"]
    to: list[Recipient] = Field(min_length=1, max_length=MAX_ASSIGNEE_SOURCES)
    message: Message
    channels: list[Channel] = Field(
        default_factory=lambda: list[Channel](["in_app"]), min_length=1, max_length=6
    )


class WebhookAction(BaseModel):
    """Call a URL with the record and the instance (signed and retried by the platform)."""

    model_config = _STRICT

    type: Literal["webhook"]
    url: str = Field(min_length=1, max_length=2000, description="An http(s) URL")


Action = Annotated[SetFieldsAction | NotifyAction | WebhookAction, Field(discriminator="type")]


# -- nodes -------------------------------------------------------------------------------------


class _Node(BaseModel):
    model_config = _STRICT

    id: str = Field(pattern=API_NAME_PATTERN, description="Unique within the flow")
    label: Label


class StartNode(_Node):
    """Where an instance starts; returning to it sends the record back to the submitter."""

    type: Literal["start"]
    next: NodeRef | None = None


class _PersonNode(_Node):
    """A node where people act (approver and handler)."""

    assignees: list[Assignee] = Field(
        default_factory=list,
        max_length=MAX_ASSIGNEE_SOURCES,
        description="Who acts: the union of these sources, in this order",
    )
    mode: Mode = Field(default="countersign", description="How several assignees act")
    empty_approver: EmptyApproverPolicy | None = Field(
        default=None, description="Overrides the flow's `policies.empty_approver`"
    )
    field_permissions: dict[str, FieldMode] = Field(
        default_factory=dict,
        description="Field → hidden / read_only / editable at this step (others: read_only)",
    )
    timeouts: list[Timeout] = Field(default_factory=list, max_length=MAX_TIMEOUTS)
    returnable_to: list[NodeRef] | Literal["earlier"] = Field(
        default_factory=list,
        description=(
            "Earlier steps (start, approver, handler) this step may return the record to "
            '(退回); `"earlier"`: any of them'
        ),
    )
    next: NodeRef | None = None


class ApproverNode(_PersonNode):
    """Approvers decide: approve or reject (审批人)."""

    type: Literal["approver"]
    auto_decision: Literal["auto_approve", "auto_reject"] | None = Field(
        default=None, description="Decide without asking anyone (e.g. a step switched off)"
    )
    percentage: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="`countersign` only: approved once this share of the assignees approve",
    )
    approver_is_submitter: ApproverIsSubmitter | None = None
    repeated_approver: RepeatedApprover | None = None
    comment_required_on_reject: bool = False


class HandlerNode(_PersonNode):
    """Handlers must act (e.g. file the contract) but do not decide (办理人)."""

    type: Literal["handler"]


class CcNode(_Node):
    """Recipients get a copy to read (抄送); the flow does not wait for them."""

    type: Literal["cc"]
    recipients: list[Assignee] = Field(min_length=1, max_length=MAX_ASSIGNEE_SOURCES)
    next: NodeRef | None = None


class Branch(BaseModel):
    """One branch of a condition node: a condition and the node it leads to."""

    model_config = _STRICT

    label: Label | None = None
    condition: dict[str, Any] | None = Field(
        default=None, description="A structured condition on the record (not on the default)"
    )
    default: bool = Field(default=False, description="Taken when no other branch matches")
    to: NodeRef


class ConditionNode(_Node):
    """Routes to the first branch whose condition the record matches, else the default."""

    type: Literal["condition"]
    branches: list[Branch] = Field(min_length=2, max_length=MAX_CONDITION_BRANCHES)


class ParallelSplitNode(_Node):
    """Starts every branch at once; the branches meet again at one parallel join."""

    type: Literal["parallel_split"]
    branches: list[NodeRef] = Field(min_length=2, max_length=MAX_PARALLEL_BRANCHES)


class ParallelJoinNode(_Node):
    """Waits for every branch of its parallel split, then goes on."""

    type: Literal["parallel_join"]
    next: NodeRef | None = None


class ActionNode(_Node):
    """Automatic actions, run through the platform's jobs; the flow goes on at once."""

    type: Literal["action"]
    actions: list[Action] = Field(min_length=1, max_length=MAX_ACTIONS)
    next: NodeRef | None = None


class EndNode(_Node):
    """Ends the instance with an outcome."""

    type: Literal["end"]
    outcome: Outcome


Node = Annotated[
    StartNode
    | ApproverNode
    | HandlerNode
    | CcNode
    | ConditionNode
    | ParallelSplitNode
    | ParallelJoinNode
    | ActionNode
    | EndNode,
    Field(discriminator="type"),
]
PersonNode = ApproverNode | HandlerNode
#: Nodes that link to one successor through ``next``.
LinearNode = StartNode | ApproverNode | HandlerNode | CcNode | ParallelJoinNode | ActionNode


class FlowDoc(BaseModel):
    """An approval flow on the records of one entity."""

    model_config = ConfigDict(extra="forbid", strict=True, title="flow")

    schema_version: int = Field(default=FLOW_SCHEMA_VERSION, ge=1)
    name: str = Field(pattern=API_NAME_PATTERN, description="API name of the flow")
    label: Label
    description: str = Field(default="", max_length=2000)
    entity: str = Field(
        min_length=1, max_length=63, description="The entity whose records it approves"
    )
    entry_condition: dict[str, Any] | None = Field(
        default=None,
        description="A structured condition: the flow applies only to records that match it",
    )
    start_by: list[StartBy] = Field(
        default_factory=lambda: list[StartBy](["manual", "api"]),
        min_length=1,
        max_length=3,
        description="How instances may start",
    )
    withdraw: WithdrawPolicy = "before_decision"
    admin: UserId | None = Field(
        default=None, description="The flow admin (流程管理员): gets hand-offs and escalations"
    )
    policies: ApproverPolicies = Field(
        default_factory=ApproverPolicies, description="Policies of every approver node"
    )
    nodes: list[Node] = Field(min_length=1, max_length=MAX_NODES)

    def node(self, node_id: str) -> Node | None:
        return next((n for n in self.nodes if n.id == node_id), None)
