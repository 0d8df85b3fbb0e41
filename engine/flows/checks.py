"""Checks of a flow's nodes against the environment: entity fields, roles, users, timeouts.

What a node names must exist where the flow is published: the record fields
of `record_field` approvers (`user` fields), field permissions and `set_fields`
actions; the roles of `role` sources (published `role` documents, or in the same
batch); user ids, when the context knows the workspace's users. Each issue
names the node and says how to fix it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import ValidationError

from formloom.engine.entities.model import EntityDoc
from formloom.engine.errors import EngineError, Issue, pointer
from formloom.engine.fields import FieldValueError
from formloom.engine.fields.computed import ComputedFieldType
from formloom.engine.fields.relations import ChildTableOptions
from formloom.engine.flows.approvers import (
    ChoiceRange,
    EmptyApproverPolicy,
    ManagerChainSource,
    PreviousApproverChoiceSource,
    RecordFieldSource,
    RoleSource,
    SubmitterChoiceSource,
    UsersSource,
)
from formloom.engine.flows.durations import DurationInvalid, parse_duration
from formloom.engine.flows.model import (
    WEBHOOK_URL_PATTERN,
    ActionNode,
    ApproverNode,
    CcNode,
    EscalateToUser,
    HandlerNode,
    Node,
    NotifyAction,
    SetFieldsAction,
    Timeout,
    WebhookAction,
)
from formloom.engine.meta.kinds import CheckContext

if TYPE_CHECKING:
    from formloom.engine.records.compiled import CompiledEntity, CompiledField

#: System columns that hold a user id and may name approvers.
USER_COLUMNS = ("owner_id", "created_by")
_LISTED = 20
_DECIDING = ("auto_approve", "auto_reject")
_WEBHOOK_URL = re.compile(WEBHOOK_URL_PATTERN)


@dataclass(frozen=True)
class Environment:
    """What the environment holds that flows refer to."""

    entity_names: frozenset[str]
    roles: frozenset[str]
    users: frozenset[int] | None
    context: CheckContext

    @classmethod
    def of(cls, context: CheckContext) -> Environment:
        def names(kind: str) -> frozenset[str]:
            return frozenset(context.published.get(kind, {})) | frozenset(
                context.pending.get(kind, {})
            )

        return cls(names("entity"), names("role"), context.users, context)

    def entity(self, name: str) -> CompiledEntity | None:
        """The entity as published in this batch or before; None when missing or unusable."""
        body = self.context.pending.get("entity", {}).get(name)
        if body is None:
            body = self.context.published.get("entity", {}).get(name)
        if body is None:
            return None
        # Imported here: compiled entities import the entities package, which imports
        # the kind registry, which imports this package to register the `flow` kind.
        from formloom.engine.records.compiled import compile_entity

        try:
            return compile_entity(EntityDoc.model_validate(body))
        except (ValidationError, EngineError):
            return None  # its own publication reports what is wrong with it


def entity_issues(name: str, env: Environment) -> list[Issue]:
    if name in env.entity_names:
        return []
    return [
        Issue(
            "/entity",
            "unknown_entity",
            f"unknown entity `{name}`{_hint(name, env.entity_names, 'entities')}; a flow "
            "approves the records of an entity published in this environment (or in the "
            "same batch)",
        )
    ]


def user_issues(users: Iterable[int], env: Environment, *, at: str, who: str) -> list[Issue]:
    if env.users is None:
        return []
    return [
        Issue(
            at,
            "unknown_user",
            f"{who}: user {user} does not exist in this workspace; choose an existing user, or "
            "name a role so that the flow works in every environment",
        )
        for user in users
        if user not in env.users
    ]


class NodeChecker:
    """Checks one node at a time against the environment and the flow's entity."""

    def __init__(self, env: Environment, entity: CompiledEntity | None) -> None:
        self.env, self.entity = env, entity

    def check(self, node: Node, at: str) -> list[Issue]:
        who = f"node `{node.id}`"
        if isinstance(node, ApproverNode | HandlerNode):
            return self._person(node, at, who)
        if isinstance(node, CcNode):
            return self.sources(node.recipients, at + "/recipients", who)
        if isinstance(node, ActionNode):
            issues = []
            for k, action in enumerate(node.actions):
                where = at + pointer("actions", k)
                if isinstance(action, SetFieldsAction):
                    issues += self._set_fields(action, where, who)
                elif isinstance(action, NotifyAction):
                    issues += self.sources(action.to, where + "/to", who)
                elif isinstance(action, WebhookAction) and not _WEBHOOK_URL.match(action.url):
                    issues.append(
                        Issue(
                            where + "/url",
                            "invalid_url",
                            f"{who}: webhook URL `{action.url[:80]}` is not an http(s) URL; "
                            "write it in full, e.g. `https://erp.example.com/hooks/contracts`",
                        )
                    )
            return issues
        return []

    def _person(self, node: ApproverNode | HandlerNode, at: str, who: str) -> list[Issue]:
        issues = []
        decides_alone = isinstance(node, ApproverNode) and node.auto_decision is not None
        if not node.assignees and not decides_alone:
            what = "approvers" if isinstance(node, ApproverNode) else "handlers"
            issues.append(
                Issue(
                    at + "/assignees",
                    "no_assignees",
                    f"{who} names no {what}; add at least one source to `assignees` (a role, "
                    "the submitter's manager, a user field…)",
                )
            )
        issues += self.sources(node.assignees, at + "/assignees", who)
        countersign = node.mode == "countersign"
        if isinstance(node, ApproverNode) and node.percentage is not None and not countersign:
            issues.append(
                Issue(
                    at + "/percentage",
                    "percentage_without_countersign",
                    f"{who}: `percentage` applies to countersign (会签) only, but the mode is "
                    f"`{node.mode}`; set `mode` to `countersign` or remove `percentage`",
                )
            )
        if node.empty_approver is not None:
            issues += self.empty_approver(
                node.empty_approver, at + "/empty_approver", who, handler=_is_handler(node)
            )
        issues += self._field_permissions(node, at, who)
        issues += self._timeouts(node.timeouts, at, who, handler=_is_handler(node))
        return issues

    # -- people --------------------------------------------------------------------------------

    def sources(self, sources: Sequence[object], at: str, who: str) -> list[Issue]:
        issues = []
        for k, source in enumerate(sources):
            where = at + pointer(k)
            if isinstance(source, UsersSource):
                issues += user_issues(source.users, self.env, at=where + "/users", who=who)
            elif isinstance(source, RoleSource):
                issues += self.role(source.role, where + "/role", who)
            elif isinstance(source, ManagerChainSource):
                issues += self._chain(source, where, who)
            elif isinstance(source, RecordFieldSource):
                issues += self._record_field(source.field, where + "/field", who)
            elif isinstance(source, SubmitterChoiceSource | PreviousApproverChoiceSource):
                issues += self._range(source.among, where + "/among", who)
        return issues

    def role(self, name: str, at: str, who: str) -> list[Issue]:
        if name in self.env.roles:
            return []
        return [
            Issue(
                at,
                "unknown_role",
                f"{who}: role `{name}` does not exist{_hint(name, self.env.roles, 'roles')}; "
                "publish the role first (or in the same batch) or fix the name",
            )
        ]

    def _chain(self, source: ManagerChainSource, at: str, who: str) -> list[Issue]:
        if (source.up_to_level is None) == (source.up_to_role is None):
            return [
                Issue(
                    at,
                    "invalid_assignee",
                    f"{who}: a manager chain (连续多级主管) climbs up to a level or up to a role; "
                    "give exactly one of `up_to_level` and `up_to_role`",
                )
            ]
        if source.up_to_role is not None:
            return self.role(source.up_to_role, at + "/up_to_role", who)
        return []

    def _range(self, among: ChoiceRange, at: str, who: str) -> list[Issue]:
        issues = user_issues(among.users, self.env, at=at + "/users", who=who)
        for k, role in enumerate(among.roles):
            issues += self.role(role, at + pointer("roles", k), who)
        return issues

    def _record_field(self, name: str, at: str, who: str) -> list[Issue]:
        if self.entity is None:
            return []
        user_fields = [
            f.name for f in self.entity.fields.values() if f.field_type.name == "user"
        ] + list(USER_COLUMNS)
        if name in USER_COLUMNS:
            return []
        found = self.entity.fields.get(name)
        if found is None:
            return [
                Issue(
                    at,
                    "unknown_field",
                    f"{who}: entity `{self.entity.name}` has no field `{name}`"
                    f"{_hint(name, user_fields, 'user fields')}",
                )
            ]
        if found.field_type.name != "user":
            return [
                Issue(
                    at,
                    "not_a_user_field",
                    f"{who}: field `{name}` of `{self.entity.name}` is a "
                    f"`{found.field_type.name}` field, but people are named by `user` fields; "
                    f"use one of: {', '.join(user_fields)}",
                )
            ]
        return []

    def empty_approver(
        self, policy: EmptyApproverPolicy, at: str, who: str, *, handler: bool = False
    ) -> list[Issue]:
        if policy.action == "assign_to_user" and policy.user is None:
            return [
                Issue(
                    at,
                    "invalid_policy",
                    f"{who}: `assign_to_user` hands the task to a user; name them in `user`",
                )
            ]
        if policy.action != "assign_to_user" and policy.user is not None:
            return [
                Issue(
                    at + "/user",
                    "invalid_policy",
                    f"{who}: `user` goes with the action `assign_to_user` only, not "
                    f"`{policy.action}`; remove it or change the action",
                )
            ]
        if handler and policy.action == "auto_reject":
            return [_handler_cannot_reject(at + "/action", who, "`auto_reject`")]
        if policy.user is not None:
            return user_issues([policy.user], self.env, at=at + "/user", who=who)
        return []

    # -- fields --------------------------------------------------------------------------------

    def _field(self, name: str, at: str, who: str) -> CompiledField | Issue | None:
        """The entity's field ``name``, an issue when it has none, or None without an entity."""
        if self.entity is None:
            return None
        found = self.entity.fields.get(name)
        if found is None:
            return Issue(
                at,
                "unknown_field",
                f"{who}: entity `{self.entity.name}` has no field `{name}`"
                f"{_hint(name, self.entity.fields, 'fields')}",
            )
        return found

    def _field_permissions(
        self, node: ApproverNode | HandlerNode, at: str, who: str
    ) -> list[Issue]:
        issues = []
        for name, mode in node.field_permissions.items():
            where = at + pointer("field_permissions", name)
            found = self._field(name, where, who)
            if isinstance(found, Issue):
                issues.append(found)
            elif found is not None and mode == "editable" and not _editable(found):
                issues.append(
                    Issue(
                        where,
                        "not_editable",
                        f"{who}: field `{name}` is computed by the platform, so no step can "
                        "edit it; make it `read_only` or `hidden`",
                    )
                )
        return issues

    def _set_fields(self, action: SetFieldsAction, at: str, who: str) -> list[Issue]:
        issues: list[Issue] = []
        for name, value in action.values.items():
            where = at + pointer("values", name)
            found = self._field(name, where, who)
            if isinstance(found, Issue):
                issues.append(found)
            elif found is None:
                continue
            elif not _settable(found):
                issues.append(
                    Issue(
                        where,
                        "not_settable",
                        f"{who}: field `{name}` ({found.field_type.name}) is not set directly "
                        "(the platform computes it or keeps it in other records); remove it",
                    )
                )
            elif value is None:
                if found.definition.required:
                    issues.append(
                        Issue(
                            where,
                            "required_field",
                            f"{who}: field `{name}` is required, so it cannot be cleared; give "
                            "it a value",
                        )
                    )
            else:
                try:
                    found.field_type.normalise(value, found.options)
                except FieldValueError as exc:
                    issues.append(Issue(where, exc.code, f"{who}: field `{name}`: {exc.en}"))
        return issues

    # -- timeouts ------------------------------------------------------------------------------

    def _timeouts(
        self, timeouts: Sequence[Timeout], at: str, who: str, *, handler: bool
    ) -> list[Issue]:
        issues: list[Issue] = []
        lengths: dict[int, timedelta] = {}
        for k, timeout in enumerate(timeouts):
            where = at + pointer("timeouts", k)
            length = _duration(timeout.after, where + "/after", who, issues)
            if length is not None:
                lengths[k] = length
            issues += self._timeout_options(timeout, where, who, handler=handler)
        deciding = [k for k, t in enumerate(timeouts) if t.action in _DECIDING]
        for k in deciding[1:]:
            issues.append(
                Issue(
                    at + pointer("timeouts", k, "action"),
                    "conflicting_timeouts",
                    f"{who}: timeouts {deciding[0] + 1} and {k + 1} both decide the task; keep "
                    "one automatic decision per node",
                )
            )
        if deciding and deciding[0] in lengths:
            decided = lengths[deciding[0]]
            for k, length in lengths.items():
                if length > decided:
                    issues.append(
                        Issue(
                            at + pointer("timeouts", k, "after"),
                            "timeout_never_fires",
                            f"{who}: timeout {k + 1} ({timeouts[k].after}) comes after the "
                            f"automatic decision of timeout {deciding[0] + 1} "
                            f"({timeouts[deciding[0]].after}), when the task is already "
                            "closed; make it fire earlier or remove it",
                        )
                    )
        return issues

    def _timeout_options(
        self, timeout: Timeout, at: str, who: str, *, handler: bool
    ) -> list[Issue]:
        issues: list[Issue] = []
        if timeout.repeat_every is not None:
            if timeout.action != "remind":
                issues.append(_only_with(at + "/repeat_every", who, "repeat_every", "remind"))
            else:
                _duration(timeout.repeat_every, at + "/repeat_every", who, issues)
        if timeout.max_reminders is not None and timeout.repeat_every is None:
            issues.append(
                Issue(
                    at + "/max_reminders",
                    "invalid_timeout",
                    f"{who}: `max_reminders` counts repeated reminders; set `repeat_every` too, "
                    "or remove it",
                )
            )
        if timeout.action == "escalate" and timeout.escalate_to is None:
            issues.append(
                Issue(
                    at,
                    "invalid_timeout",
                    f"{who}: an `escalate` timeout needs `escalate_to` (a user, the late "
                    "assignee's manager, or the flow admin)",
                )
            )
        if timeout.action != "escalate" and timeout.escalate_to is not None:
            issues.append(_only_with(at + "/escalate_to", who, "escalate_to", "escalate"))
        if isinstance(timeout.escalate_to, EscalateToUser):
            issues += user_issues(
                [timeout.escalate_to.user], self.env, at=at + "/escalate_to/user", who=who
            )
        if handler and timeout.action == "auto_reject":
            issues.append(_handler_cannot_reject(at + "/action", who, "an `auto_reject` timeout"))
        return issues


def _duration(text: str, at: str, who: str, issues: list[Issue]) -> timedelta | None:
    try:
        return parse_duration(text)
    except DurationInvalid as exc:
        issues.append(Issue(at, "invalid_duration", f"{who}: {exc}"))
        return None


def _only_with(at: str, who: str, key: str, action: str) -> Issue:
    return Issue(
        at,
        "invalid_timeout",
        f"{who}: `{key}` goes with the `{action}` action only; remove it or change the action",
    )


def _handler_cannot_reject(at: str, who: str, what: str) -> Issue:
    return Issue(
        at,
        "handler_cannot_reject",
        f"{who} is a handler (办理人): handlers act but do not decide, so {what} is not "
        "possible; use an approver node, or pass the task on instead",
    )


def _is_handler(node: Node) -> bool:
    return isinstance(node, HandlerNode)


def _settable(found: CompiledField) -> bool:
    return not isinstance(found.field_type, ComputedFieldType) and not found.field_type.virtual


def _editable(found: CompiledField) -> bool:
    """Settable fields, and child tables: a step may let its approver change the rows."""
    return _settable(found) or isinstance(found.options, ChildTableOptions)


def _hint(name: str, known: Iterable[str], what: str) -> str:
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    if close:
        return f" (did you mean `{close[0]}`?)"
    if names:
        listed = ", ".join(names[:_LISTED]) + (", …" if len(names) > _LISTED else "")
        return f"; {what}: {listed}"
    return f"; there are no {what} yet"
