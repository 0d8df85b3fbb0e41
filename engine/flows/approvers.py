"""Who acts on a flow node: the approver-resolution specification and its policies.

This module only *describes* assignees (pure data): a node lists one or more
sources (:data:`Assignee`), each naming people relative to the submitter, the
record or the organisation. The runtime turns the sources into user ids with
the organisation's data, in the order of :data:`RESOLUTION_ORDER`.

Sources (DingTalk / Feishu names in parentheses):

- ``users``: specific users by id (指定成员);
- ``role``: every user holding a role (角色);
- ``manager``: the submitter's manager, or their N-th level manager (第 N 级主管);
- ``manager_chain``: the submitter's managers level by level, up to a level or up
  to the first manager holding a role (连续多级主管);
- ``team_head``: the head of the submitter's team, or of the team N levels up (部门负责人);
- ``record_field``: the user in a `user` field of the record (表单内成员字段);
- ``submitter``: the submitter themself (发起人本人, e.g. for a handler step);
- ``submitter_choice``: chosen by the submitter at submit time (发起人自选);
- ``previous_approver_choice``: chosen by the approver of the step before (上一节点审批人指定).
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

MAX_LEVEL = 10
MAX_USERS = 200
MAX_ROLES = 20

Mode = Literal["sequential", "countersign", "or_sign"]
"""How several assignees of one node act: one after another in the order resolved
(依次), all of them (会签, optionally a percentage of them), or any one (或签)."""

EmptyApproverAction = Literal["auto_approve", "auto_reject", "assign_to_user", "assign_to_admin"]
"""What happens when a node's sources resolve to nobody (审批人为空时)."""

ApproverIsSubmitter = Literal["approve_as_normal", "skip", "manager"]
"""What happens when the submitter is among a node's approvers (审批人与发起人为同一人时):
they approve like anyone else, their task is skipped (the node auto-approves when
nobody else is left), or their task goes to their manager instead."""

RepeatedApprover = Literal["once_for_all", "consecutive_only", "every_time"]
"""What happens when an approver already approved earlier in the instance (自动去重):
approved once counts for every later node, only for the next node in a row, or
they approve every time."""

MODES: tuple[Mode, ...] = get_args(Mode)
EMPTY_APPROVER_ACTIONS: tuple[EmptyApproverAction, ...] = get_args(EmptyApproverAction)

#: The order in which the runtime applies the automatic decisions of a node
#: (DESIGN §6, CordysCRM's order). Each automatic decision leaves a history entry.
RESOLUTION_ORDER = (
    "auto_decision",
    "empty_approver",
    "approver_is_submitter",
    "repeated_approver",
)

_STRICT = ConfigDict(extra="forbid", strict=True)
RoleName = Annotated[str, Field(min_length=1, max_length=63)]
UserId = Annotated[int, Field(ge=1)]


class UsersSource(BaseModel):
    """Specific users, by id (指定成员)."""

    model_config = _STRICT

    type: Literal["users"]
    users: list[UserId] = Field(min_length=1, max_length=MAX_USERS, description="User ids")


class RoleSource(BaseModel):
    """Every user holding the role in the flow's environment (角色)."""

    model_config = _STRICT

    type: Literal["role"]
    role: RoleName = Field(description="Name of a `role` document")


class ManagerSource(BaseModel):
    """The submitter's manager (level 1) or N-th level manager (第 N 级主管)."""

    model_config = _STRICT

    type: Literal["manager"]
    level: int = Field(default=1, ge=1, le=MAX_LEVEL, description="1 = the direct manager")


class ManagerChainSource(BaseModel):
    """The submitter's managers level by level (连续多级主管), from the direct manager
    up to ``up_to_level`` levels, or up to the first manager holding ``up_to_role``
    (when nobody holds it the chain climbs to the top). Give exactly one of them."""

    model_config = _STRICT

    type: Literal["manager_chain"]
    up_to_level: int | None = Field(default=None, ge=1, le=MAX_LEVEL)
    up_to_role: RoleName | None = None


class TeamHeadSource(BaseModel):
    """The head of the submitter's team (level 1), or of the team N levels up (部门负责人)."""

    model_config = _STRICT

    type: Literal["team_head"]
    level: int = Field(default=1, ge=1, le=MAX_LEVEL)


class RecordFieldSource(BaseModel):
    """The user named in a field of the record (表单内成员字段): a `user` field,
    or the system columns `owner_id` and `created_by`."""

    model_config = _STRICT

    type: Literal["record_field"]
    field: str = Field(min_length=1, max_length=63)


class SubmitterSource(BaseModel):
    """The submitter themself (发起人本人)."""

    model_config = _STRICT

    type: Literal["submitter"]


class ChoiceRange(BaseModel):
    """Whom a choice may pick: these users and the holders of these roles (both empty: anyone)."""

    model_config = _STRICT

    users: list[UserId] = Field(default_factory=list, max_length=MAX_USERS)
    roles: list[RoleName] = Field(default_factory=list, max_length=MAX_ROLES)


class SubmitterChoiceSource(BaseModel):
    """Chosen by the submitter when submitting (发起人自选)."""

    model_config = _STRICT

    type: Literal["submitter_choice"]
    multiple: bool = Field(default=False, description="May choose more than one user")
    among: ChoiceRange = Field(default_factory=ChoiceRange)


class PreviousApproverChoiceSource(BaseModel):
    """Chosen by the approver of the previous step when they approve (上一节点审批人指定)."""

    model_config = _STRICT

    type: Literal["previous_approver_choice"]
    multiple: bool = Field(default=False, description="May choose more than one user")
    among: ChoiceRange = Field(default_factory=ChoiceRange)


Assignee = Annotated[
    UsersSource
    | RoleSource
    | ManagerSource
    | ManagerChainSource
    | TeamHeadSource
    | RecordFieldSource
    | SubmitterSource
    | SubmitterChoiceSource
    | PreviousApproverChoiceSource,
    Field(discriminator="type"),
]
"""One source of the people who act on an approver, handler or CC node."""

Recipient = Annotated[
    UsersSource | RoleSource | ManagerSource | TeamHeadSource | RecordFieldSource | SubmitterSource,
    Field(discriminator="type"),
]
"""One source of the people a `notify` action writes to (nobody is asked to choose)."""


class EmptyApproverPolicy(BaseModel):
    """What to do when a node's sources resolve to nobody; ``user`` goes with `assign_to_user`."""

    model_config = _STRICT

    action: EmptyApproverAction
    user: UserId | None = Field(default=None, description="The user for `assign_to_user`")


class ApproverPolicies(BaseModel):
    """The policies of the flow's approver nodes (each node may override any of them)."""

    model_config = _STRICT

    empty_approver: EmptyApproverPolicy = Field(
        default_factory=lambda: EmptyApproverPolicy(action="assign_to_admin"),
        description="Nobody resolved: hand to the flow admin unless told otherwise",
    )
    approver_is_submitter: ApproverIsSubmitter = "approve_as_normal"
    repeated_approver: RepeatedApprover = "every_time"
