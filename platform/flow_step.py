"""Moving an instance through its flow: one :class:`Step` per action, in its transaction.

A step holds the locked instance (:func:`~formloom.platform.flow_state.lock_instance`),
the pinned flow version compiled for the runtime, and the record. It enters
nodes the way :func:`~formloom.engine.flows.next_nodes` routes (conditions and
parallel splits pass through there):

- **approver / handler**: a token, the people (:mod:`flow_approvers`) after the
  policies (:mod:`flow_policies`), and their tasks in chains (``slot``/``seq``):
  one chain per person (countersign, or-sign) or one for everyone (sequential).
  The first open task of each chain is pending; the step decides when the mode
  says so (:func:`outcome_of`).
- **cc**: a copy for each recipient, then on at once;
- **action**: set fields now, notify and webhook as jobs, then on at once;
- **parallel join**: waits until a token of every branch of its split arrived;
- **end**: the instance ends with the node's outcome.

Everything happens in the caller's transaction: task changes, new tasks, record
changes, jobs, notifications and timeline entries commit together.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, select, update

from formloom.engine.flows import next_nodes, node_policies, parse_duration
from formloom.engine.flows.model import (
    ActionNode,
    ApproverNode,
    CcNode,
    EndNode,
    HandlerNode,
    NotifyAction,
    ParallelJoinNode,
    ParallelSplitNode,
    SetFieldsAction,
    WebhookAction,
)
from formloom.platform.flow_actions import FlowWriter, enqueue_notify, enqueue_webhook, set_fields
from formloom.platform.flow_approvers import ChoiceMissing, Choices, Organisation
from formloom.platform.flow_definitions import pinned_flow
from formloom.platform.flow_errors import ApprovalInvalid, status_zh, task_closed
from formloom.platform.flow_notifications import notify
from formloom.platform.flow_policies import History, staff
from formloom.platform.flow_state import (
    ACTIVE,
    APPROVE,
    APPROVED,
    CANCELLED,
    CC,
    COMPLETED,
    DONE,
    HANDLE,
    OPEN,
    PENDING,
    REJECTED,
    RESUBMIT,
    RUNNING,
    SENT,
    WAITING,
    cancel_tasks,
    close_task,
    finish_instance,
    insert_event,
    insert_task,
    insert_token,
    live_tokens,
    read_task,
    set_tokens,
    token_tasks,
    update_instance,
)
from formloom.platform.jobs import enqueue
from formloom.platform.record_errors import say
from formloom.platform.tables import approval_task, approval_token

#: The job type of a step's timeouts (registered by :mod:`formloom.platform.flow_timers`).
TIMEOUT_JOB = "approval_timeout"

#: A node to enter, and the person step completed just before it (None after a join).
Entry = tuple[str, str | None]
PersonNode = ApproverNode | HandlerNode


class Step:
    """One action on one running instance (locked by the caller), inside its transaction."""

    def __init__(
        self,
        conn: Connection,
        *,
        cache_key: str,
        env: str,
        instance: Row[Any],
        now: datetime,
        actor_id: int | None,
        lang: str,
    ) -> None:
        self.conn = conn
        self.env = env
        self.now = now
        self.actor_id = actor_id
        self.lang = lang
        self.instance_id: int = instance.id
        self.submitter_id: int = instance.submitter_id
        self.record_id: int = instance.record_id
        self.status: str = instance.status
        self.round: int = instance.round
        self.decided_at: datetime | None = instance.decided_at
        self.choices: dict[str, dict[str, list[int]]] = {
            "submitter": dict(instance.choices.get("submitter", {})),
            "previous": dict(instance.choices.get("previous", {})),
        }
        self.writer = FlowWriter(
            conn, cache_key=cache_key, env=env, lang=lang, instance_id=instance.id
        )
        self.entity = self.writer.entity(instance.entity)
        self.pinned = pinned_flow(
            conn,
            cache_key=cache_key,
            env=env,
            name=instance.flow,
            version=instance.flow_version,
            entity=self.entity,
        )
        self.flow = self.pinned.compiled
        self.org = Organisation(conn, env)
        #: Which kind of choice the acting person may be asked for now (see ChoiceMissing).
        self.choosing: str | None = None
        self.record: dict[str, Any] = self._read_record()

    @property
    def start_id(self) -> str:
        start = self.flow.graph.start
        assert start is not None, "a compiled flow has a start node"
        return start

    def person_node(self, node_id: str) -> PersonNode:
        node = self.flow.node(node_id)
        assert isinstance(node, ApproverNode | HandlerNode), f"{node_id} is a {node.type} node"
        return node

    # -- the timeline ------------------------------------------------------------------------

    def event(
        self,
        action: str,
        node_id: str | None = None,
        task_id: int | None = None,
        *,
        by: int | None,
        comment: str | None = None,
        attachments: Sequence[str] = (),
        details: dict[str, Any] | None = None,
    ) -> None:
        """Append an entry to the instance's timeline (``by`` None: the platform decided)."""
        insert_event(
            self.conn,
            {
                "instance_id": self.instance_id,
                "at": self.now,
                "actor_id": by,
                "action": action,
                "node_id": node_id,
                "task_id": task_id,
                "comment": comment,
                "attachments": list(attachments),
                "details": details or {},
            },
        )

    def mark_decided(self) -> None:
        """Note that a person decided (withdrawing ``before_decision`` is over)."""
        if self.decided_at is None:
            self.decided_at = self.now
            update_instance(self.conn, self.instance_id, decided_at=self.now)

    def save_choices(self) -> None:
        update_instance(self.conn, self.instance_id, choices=self.choices)

    # -- moving on ---------------------------------------------------------------------------

    def proceed(self, entries: Sequence[Entry]) -> None:
        """Enter the nodes, and the nodes after those that do not wait, until all wait."""
        queue = deque(entries)
        while queue and self.status == RUNNING:
            node_id, previous = queue.popleft()
            queue.extend(self._enter(node_id, previous))

    def after(self, node_id: str, previous: str | None) -> list[Entry]:
        """The entries that follow ``node_id`` for the record as it is now."""
        found = next_nodes(self.flow, node_id, self.record, now=self.now)
        return [(n, previous) for n in found]

    def _enter(self, node_id: str, previous: str | None) -> list[Entry]:
        node = self.flow.node(node_id)
        if isinstance(node, EndNode):
            self.end(node.outcome, by=None, node_id=node.id)
            return []
        if isinstance(node, CcNode):
            self._copy(node)
            return self.after(node.id, previous)
        if isinstance(node, ActionNode):
            self._act(node)
            return self.after(node.id, previous)
        if isinstance(node, ParallelJoinNode):
            return self._arrive(node)
        if isinstance(node, ApproverNode | HandlerNode):
            return self._activate(node, previous)
        raise AssertionError(f"next_nodes never routes to a {node.type} node")

    def _copy(self, node: CcNode) -> None:
        try:
            people = self._resolve(node.id, node.recipients)
        except ChoiceMissing:
            people = []
        for person in people:
            task_id = insert_task(self.conn, self._task_values(None, node.id, CC, person, SENT))
            self._notify([person], "cc", task_id)
        self.event("cc", node.id, by=None, details={"users": people})

    def _act(self, node: ActionNode) -> None:
        for action in node.actions:
            if isinstance(action, SetFieldsAction):
                set_fields(self.writer, self.entity, self.record_id, action.values, node_id=node.id)
                self.record = self._read_record()
                details: dict[str, Any] = {"type": "set_fields", "fields": sorted(action.values)}
            elif isinstance(action, NotifyAction):
                people = self._resolve(node.id, action.to)
                message = action.message.model_dump()
                enqueue_notify(
                    self.conn,
                    people,
                    message=message,
                    channels=list(action.channels),
                    instance_id=self.instance_id,
                    node_id=node.id,
                )
                details = {"type": "notify", "users": people}
            else:
                assert isinstance(action, WebhookAction)
                job_id = enqueue_webhook(self.conn, url=action.url, body=self._webhook_body(node))
                details = {"type": "webhook", "url": action.url, "job_id": job_id}
            self.event("action", node.id, by=None, details=details)

    def _webhook_body(self, node: ActionNode) -> dict[str, Any]:
        return {
            "event": "approval.action",
            "env": self.env,
            "flow": self.flow.name,
            "flow_version": self.pinned.version,
            "instance_id": self.instance_id,
            "node": node.id,
            "entity": self.entity.name,
            "record_id": self.record_id,
            "record": self.writer.json(
                self.entity, self.writer.existing_row(self.entity, self.record_id, at="")
            ),
            "at": self.now.isoformat(),
        }

    def _arrive(self, join: ParallelJoinNode) -> list[Entry]:
        """A branch reached the join: go on once every branch of its split has."""
        insert_token(self.conn, self.token_values(join.id, WAITING, None))
        split = next(s for s, j in self.flow.graph.joins.items() if j == join.id)
        split_node = self.flow.node(split)
        assert isinstance(split_node, ParallelSplitNode)
        arrived = [t.id for t in live_tokens(self.conn, self.instance_id) if t.node_id == join.id]
        if len(arrived) < len(split_node.branches):
            return []
        set_tokens(self.conn, arrived, DONE, self.now)
        return self.after(join.id, None)

    # -- people steps ------------------------------------------------------------------------

    def _activate(self, node: PersonNode, previous: str | None) -> list[Entry]:
        token_id = insert_token(self.conn, self.token_values(node.id, ACTIVE, previous))
        try:
            people = self._resolve(node.id, node.assignees)
        except ChoiceMissing as missing:
            if missing.kind == self.choosing:
                raise self._choice_required(missing) from None
            people = []
        history = History(
            approved_before=lambda: self._approvers(None),
            approved_previous_step=lambda: self._approvers(previous) if previous else set(),
        )
        staffing = staff(
            node,
            people,
            policies=node_policies(self.flow, node.id),
            submitter_id=self.submitter_id,
            admins=self.admins,
            manager_of=self.org.manager_of,
            history=history,
        )
        for decision in staffing.decisions:
            details = {"reason": decision.reason, **decision.details}
            self.event(decision.action, node.id, by=None, details=details)
        if staffing.outcome is not None:
            return self._decided(token_id, node, staffing.outcome)
        kind = APPROVE if isinstance(node, ApproverNode) else HANDLE
        chains = [staffing.people] if node.mode == "sequential" else [[p] for p in staffing.people]
        planned = []
        for slot, chain in enumerate(chains):
            opened = False
            for seq, person in enumerate(chain):
                values = self._task_values(token_id, node.id, kind, person, WAITING)
                values.update(slot=slot, seq=seq)
                if person in staffing.auto_approved:
                    values.update(status=APPROVED, auto="repeated_approver", decided_at=self.now)
                elif not opened:
                    values.update(status=PENDING, activated_at=self.now)
                    opened = True
                planned.append(values)
        outcome = outcome_of(node, [TaskState(v["slot"], v["status"]) for v in planned])
        if outcome is not None:  # the policies decided every chain it needs
            for values in planned:
                if values["status"] in OPEN:
                    values.update(status=CANCELLED, activated_at=None)
        for values in planned:
            task_id = insert_task(self.conn, values)
            if values["status"] == PENDING:
                self.task_opened(task_id, values["assignee_id"], node)
        return [] if outcome is None else self._decided(token_id, node, outcome)

    def settle(self, token_id: int, node_id: str) -> list[Entry]:
        """Decide the step of token ``token_id`` (at ``node_id``) if its mode says so; else
        open the next task of each chain. Returns what to enter next (see :meth:`proceed`)."""
        node = self.person_node(node_id)
        tasks = token_tasks(self.conn, token_id)
        outcome = outcome_of(node, tasks)
        if outcome is None:
            self._open_chains(node, tasks)
            return []
        cancel_tasks(self.conn, [t.id for t in tasks if t.status in OPEN])
        return self._decided(token_id, node, outcome)

    def _decided(self, token_id: int, node: PersonNode, outcome: str) -> list[Entry]:
        """The step is decided: a rejection ends the instance, an approval goes on."""
        set_tokens(self.conn, [token_id], DONE, self.now)
        if outcome == REJECTED:
            self.end(REJECTED, by=None, node_id=node.id)
            return []
        return self.after(node.id, node.id)

    def _open_chains(self, node: PersonNode, tasks: Sequence[Row[Any]]) -> None:
        chains: dict[int, list[Row[Any]]] = defaultdict(list)
        for task in tasks:
            chains[task.slot].append(task)
        for chain in chains.values():
            first = next((t for t in chain if t.status in OPEN), None)
            if first is None or first.status != WAITING:
                continue
            self.conn.execute(
                update(approval_task)
                .where(approval_task.c.id == first.id, approval_task.c.status == WAITING)
                .values(status=PENDING, activated_at=self.now, rev=approval_task.c.rev + 1)
            )
            self.task_opened(first.id, first.assignee_id, node)

    def task_opened(self, task_id: int, assignee_id: int, node: PersonNode) -> None:
        """A task became pending: tell its assignee and start its timeouts."""
        self._notify([assignee_id], "task", task_id)
        for index, timeout in enumerate(node.timeouts):
            enqueue(
                self.conn,
                job_type=TIMEOUT_JOB,
                payload={
                    "instance_id": self.instance_id,
                    "task_id": task_id,
                    "activated_at": self.now.isoformat(),
                    "index": index,
                    "timeout": timeout.model_dump(),
                    "count": 1,
                },
                run_at=self.now + parse_duration(timeout.after),
            )

    def new_task(self, like: Row[Any], assignee_id: int, *, status: str, **values: Any) -> int:
        """A task on the same step as ``like`` (a transfer, an added approver)."""
        row = self._task_values(like.token_id, like.node_id, like.kind, assignee_id, status)
        row.update({"slot": like.slot, "seq": like.seq})
        row.update(values)
        if status == PENDING:
            row["activated_at"] = self.now
        task_id = insert_task(self.conn, row)
        if status == PENDING:
            self.task_opened(task_id, assignee_id, self.person_node(like.node_id))
        return task_id

    # -- deciding ----------------------------------------------------------------------------

    def close(self, task: Row[Any], rev: int, status: str, **values: Any) -> None:
        """The conditional update of ``task`` (revision ``rev``, pending) to ``status``;
        :class:`TaskAlreadyDecided` (409) when someone else changed it first."""
        if not close_task(self.conn, task, rev, status=status, **values):
            current = read_task(self.conn, task.id)
            assert current is not None
            raise task_closed(self.lang, task.id, current.status, current.decided_by)

    def decide(
        self,
        task: Row[Any],
        rev: int,
        status: str,
        *,
        by: int | None,
        comment: str | None = None,
        auto: str | None = None,
    ) -> None:
        """Approve, reject or complete ``task``, then settle its step and move on."""
        self.close(
            task, rev, status, decided_by=by, decided_at=self.now, comment=comment, auto=auto
        )
        self.proceed(self.settle(task.token_id, task.node_id))

    def end(
        self,
        status: str,
        *,
        by: int | None,
        node_id: str | None = None,
        comment: str | None = None,
        attachments: Sequence[str] = (),
    ) -> None:
        """Finish the instance with ``status``: open tasks and tokens are cancelled."""
        if not finish_instance(self.conn, self.instance_id, status, self.now):
            return
        self.status = status
        open_tasks = self.conn.execute(
            select(approval_task.c.id).where(
                approval_task.c.instance_id == self.instance_id,
                approval_task.c.status.in_(OPEN),
            )
        ).scalars()
        cancel_tasks(self.conn, list(open_tasks))
        tokens = [t.id for t in live_tokens(self.conn, self.instance_id)]
        set_tokens(self.conn, tokens, CANCELLED, self.now)
        self.event(status, node_id, by=by, comment=comment, attachments=attachments)
        if by != self.submitter_id:
            self._notify([self.submitter_id], "outcome", None, outcome=status)

    def return_to(self, target: str) -> list[Entry]:
        """Send the instance back to ``target`` (退回): the steps in its region are cancelled
        and a new round starts. Returns what to enter next (nothing for the submitter, who
        gets a ``resubmit`` task)."""
        graph = self.flow.graph
        region = graph.region(target)
        doomed = [
            t
            for t in live_tokens(self.conn, self.instance_id)
            if graph.region(t.node_id)[: len(region)] == region
        ]
        doomed_ids = [t.id for t in doomed]
        if doomed_ids:
            open_tasks = self.conn.execute(
                select(approval_task.c.id).where(
                    approval_task.c.token_id.in_(doomed_ids), approval_task.c.status.in_(OPEN)
                )
            ).scalars()
            cancel_tasks(self.conn, list(open_tasks))
            set_tokens(self.conn, doomed_ids, CANCELLED, self.now)
        self.round += 1
        update_instance(self.conn, self.instance_id, round=self.round)
        if target != self.start_id:
            return [(target, None)]
        token_id = insert_token(self.conn, self.token_values(target, ACTIVE, None))
        values = self._task_values(token_id, target, RESUBMIT, self.submitter_id, PENDING)
        values["activated_at"] = self.now
        task_id = insert_task(self.conn, values)
        self._notify([self.submitter_id], "returned", task_id)
        return []

    def resubmitted(self, token_id: int) -> None:
        """The submitter resubmitted after a return: start again after the start node."""
        set_tokens(self.conn, [token_id], DONE, self.now)
        self.decided_at = None
        update_instance(self.conn, self.instance_id, decided_at=None)
        self.record = self._read_record()
        self.proceed(self.after(self.start_id, None))

    # -- helpers -----------------------------------------------------------------------------

    def _resolve(self, node_id: str, sources: Sequence[Any]) -> list[int]:
        return self.org.resolve(
            node_id,
            sources,
            submitter_id=self.submitter_id,
            record=self.record,
            choices=Choices.of(self.choices),
        )

    def admins(self) -> list[int]:
        """The flow admin, else the environment's administrators (oldest first)."""
        admin = self.flow.document.admin
        if admin is not None and self.org.active([admin]):
            return [admin]
        return self.org.administrators()

    def _approvers(self, node_id: str | None) -> set[int]:
        """Who approved in this round (on ``node_id`` only, when given)."""
        query = select(approval_task.c.assignee_id).where(
            approval_task.c.instance_id == self.instance_id,
            approval_task.c.round == self.round,
            approval_task.c.kind == APPROVE,
            approval_task.c.status == APPROVED,
        )
        if node_id is not None:
            query = query.where(approval_task.c.node_id == node_id)
        return set(self.conn.execute(query).scalars())

    def _choice_required(self, missing: ChoiceMissing) -> ApprovalInvalid:
        key = "approvers" if missing.kind == "submitter" else "next_approvers"
        message = say(
            self.lang,
            f"step `{missing.node}` of flow `{self.flow.name}` is assigned by "
            f"{'the submitter' if missing.kind == 'submitter' else 'the previous approver'}: "
            f'choose who approves it, e.g. "{key}": {{"{missing.node}": [<user id>]}}',
            f"流程 `{self.flow.name}` 的步骤 `{missing.node}` 由"
            f"{'发起人' if missing.kind == 'submitter' else '上一步审批人'}指定审批人："
            f'请选择，例如 "{key}": {{"{missing.node}": [<用户编号>]}}',
        )
        return ApprovalInvalid(message, code="choice_required", at=f"/{key}/{missing.node}")

    def _read_record(self) -> dict[str, Any]:
        row = self.writer.row(self.entity, self.record_id)
        return {} if row is None else dict(row)

    def token_values(self, node_id: str, status: str, previous: str | None) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "node_id": node_id,
            "status": status,
            "previous_node": previous,
            "round": self.round,
            "created_at": self.now,
        }

    def _task_values(
        self, token_id: int | None, node_id: str, kind: str, assignee_id: int, status: str
    ) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "token_id": token_id,
            "node_id": node_id,
            "kind": kind,
            "assignee_id": assignee_id,
            "status": status,
            "round": self.round,
            "created_at": self.now,
            "activated_at": self.now if status == SENT else None,
        }

    def _notify(
        self,
        users: list[int],
        kind: str,
        task_id: int | None,
        *,
        outcome: str | None = None,
        dedupe_key: str | None = None,
    ) -> int:
        label = self.flow.document.label
        zh_name, en_name = label.zh, label.en
        what = f"`{self.entity.name}` {self.record_id}"
        texts = {
            "task": (f"{en_name}: {what} waits for you", f"{zh_name}：{what} 待您处理"),
            "cc": (f"{en_name}: {what} was copied to you", f"{zh_name}：{what} 抄送给您"),
            "returned": (
                f"{en_name}: {what} was returned to you; edit and resubmit it",
                f"{zh_name}：{what} 已退回给您，请修改后重新提交",
            ),
            "remind": (
                f"{en_name}: a reminder, {what} waits for you",
                f"{zh_name}：催办，{what} 待您处理",
            ),
            "outcome": (
                f"{en_name}: {what} is {outcome}",
                f"{zh_name}：{what} 审批结束（{status_zh(outcome or '')}）",
            ),
        }
        en, zh = texts[kind]
        return notify(
            self.conn,
            users,
            kind=kind,
            message={"en": en, "zh": zh},
            at=self.now,
            instance_id=self.instance_id,
            task_id=task_id,
            dedupe_key=dedupe_key,
        )

    def remind(
        self, task_ids: Sequence[int] | None = None, *, dedupe_key: str | None = None
    ) -> list[int]:
        """Remind the assignees of the pending tasks (``task_ids``: only those); who was."""
        query = select(approval_task.c.id, approval_task.c.assignee_id).where(
            approval_task.c.instance_id == self.instance_id,
            approval_task.c.status == PENDING,
        )
        if task_ids is not None:
            query = query.where(approval_task.c.id.in_(list(task_ids)))
        reminded = []
        for row in self.conn.execute(query).all():
            if self._notify([row.assignee_id], "remind", row.id, dedupe_key=dedupe_key):
                reminded.append(row.assignee_id)
        return reminded


@dataclass(frozen=True)
class TaskState:
    """What :func:`outcome_of` reads of a task (a row has both too)."""

    slot: int
    status: str


def outcome_of(node: PersonNode, tasks: Sequence[TaskState | Row[Any]]) -> str | None:
    """Whether a step's live tasks decide it: ``approved``, ``rejected`` or None (not yet).

    Each chain (``slot``) is approved when all its tasks are, rejected when one is.
    Or-sign: the first chain decided decides. Countersign: approved once
    ``percentage`` (default 100) of the chains are, rejected once that share can no
    longer be reached. Sequential: every chain must approve, any rejection rejects.
    """
    chains: dict[int, list[str]] = defaultdict(list)
    for task in tasks:
        chains[task.slot].append(task.status)
    total = len(chains)
    if total == 0:
        return APPROVED
    approved = sum(1 for s in chains.values() if all(x in (APPROVED, COMPLETED) for x in s))
    rejected = sum(1 for s in chains.values() if REJECTED in s)
    if node.mode == "or_sign":
        return APPROVED if approved else REJECTED if rejected else None
    share = node.percentage if isinstance(node, ApproverNode) and node.percentage else 100
    if node.mode == "countersign":
        if approved * 100 >= share * total:
            return APPROVED
        if (total - rejected) * 100 < share * total:
            return REJECTED
        return None
    if rejected:
        return REJECTED
    return APPROVED if approved == total else None


def pending_tasks_of(conn: Connection, instance_id: int) -> list[Row[Any]]:
    """The instance's pending tasks, oldest first."""
    query = (
        select(approval_task)
        .where(approval_task.c.instance_id == instance_id, approval_task.c.status == PENDING)
        .order_by(approval_task.c.id)
    )
    return list(conn.execute(query))


def waiting_join_tokens(conn: Connection, instance_id: int) -> list[Row[Any]]:
    """Branches that reached a parallel join whose other branches have not (a half-done join)."""
    query = select(approval_token).where(
        and_(approval_token.c.instance_id == instance_id, approval_token.c.status == WAITING)
    )
    return list(conn.execute(query))
