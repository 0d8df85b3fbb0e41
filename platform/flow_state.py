"""The rows of running approvals: statuses, and the statements every action is made of.

State machine of an instance::

    running ──end node / approval──▶ approved
       │ ├───rejection / end node──▶ rejected
       │ ├───submitter withdraws───▶ withdrawn
       │ └───admin terminates──────▶ terminated
       └── return to the submitter keeps it running (a ``resubmit`` task)

and of a task::

    waiting ──its turn in the chain──▶ pending ──▶ approved / rejected / completed
                                          ├──▶ returned (sent back) / transferred (to another)
                                          └──▶ cancelled (the step or the instance ended)

**Concurrency.** Every action first *locks the instance*:
``UPDATE … SET rev = rev + 1 WHERE id = ? AND status = 'running'`` (on PostgreSQL the
row lock serialises actions on one instance until commit; SQLite's ``BEGIN
IMMEDIATE`` serialises every writer). Then it changes the task with
``UPDATE … WHERE id = ? AND rev = ? AND status = 'pending'`` and checks the row
count: of two approvers (or a double click) exactly one matches, the other gets
a 409. Locking the instance first also means two countersign approvals count
each other, and two branches reaching a join see each other's arrival.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from formloom.platform.tables import (
    approval_event,
    approval_instance,
    approval_task,
    approval_token,
)

# Instance statuses
RUNNING = "running"
APPROVED = "approved"
REJECTED = "rejected"
WITHDRAWN = "withdrawn"
TERMINATED = "terminated"
INSTANCE_STATUSES = (RUNNING, APPROVED, REJECTED, WITHDRAWN, TERMINATED)

# Task statuses (APPROVED and REJECTED too)
WAITING = "waiting"
PENDING = "pending"
COMPLETED = "completed"
RETURNED = "returned"
TRANSFERRED = "transferred"
CANCELLED = "cancelled"
SENT = "sent"
OPEN = (WAITING, PENDING)
#: Tasks that count for their step's outcome.
LIVE = (WAITING, PENDING, APPROVED, REJECTED, COMPLETED)
#: What an assignee has done (the "done" box of the inbox).
ACTED = (APPROVED, REJECTED, COMPLETED, RETURNED, TRANSFERRED)

# Task kinds
APPROVE = "approve"
HANDLE = "handle"
RESUBMIT = "resubmit"
CC = "cc"

# Token statuses (WAITING: a branch arrived at its parallel join)
ACTIVE = "active"
DONE = "done"

#: The start node's id is not fixed; tokens and tasks of the submitter's step use its id.
Values = dict[str, Any]


def lock_instance(conn: Connection, instance_id: int, now: datetime) -> Row[Any] | None:
    """Lock a running instance for this transaction (its row, with the new ``rev``); None
    when it is not running (or does not exist)."""
    table = approval_instance
    return conn.execute(
        update(table)
        .where(table.c.id == instance_id, table.c.status == RUNNING)
        .values(rev=table.c.rev + 1, updated_at=now)
        .returning(*table.c)
    ).first()


def read_instance(conn: Connection, instance_id: int) -> Row[Any] | None:
    return conn.execute(
        select(approval_instance).where(approval_instance.c.id == instance_id)
    ).first()


def update_instance(conn: Connection, instance_id: int, **values: Any) -> None:
    """Change the (locked, running) instance; the lock makes a rev check unnecessary."""
    table = approval_instance
    conn.execute(update(table).where(table.c.id == instance_id).values(**values))


def finish_instance(conn: Connection, instance_id: int, status: str, now: datetime) -> bool:
    """Set the outcome of a running instance; False when it had finished already."""
    table = approval_instance
    changed = conn.execute(
        update(table)
        .where(table.c.id == instance_id, table.c.status == RUNNING)
        .values(status=status, finished_at=now, updated_at=now, rev=table.c.rev + 1)
    ).rowcount
    return bool(changed == 1)


def read_task(conn: Connection, task_id: int) -> Row[Any] | None:
    return conn.execute(select(approval_task).where(approval_task.c.id == task_id)).first()


def close_task(conn: Connection, task: Row[Any], rev: int, **values: Any) -> bool:
    """The conditional update of an open task: only revision ``rev`` of a pending task
    changes. False when the task changed meanwhile (the caller lost the race)."""
    table = approval_task
    changed = conn.execute(
        update(table)
        .where(table.c.id == task.id, table.c.rev == rev, table.c.status == PENDING)
        .values(rev=table.c.rev + 1, **values)
    ).rowcount
    return bool(changed == 1)


def insert_task(conn: Connection, values: Values) -> int:
    task_id: int = conn.execute(
        insert(approval_task).values(**values).returning(approval_task.c.id)
    ).scalar_one()
    return task_id


def token_tasks(conn: Connection, token_id: int) -> list[Row[Any]]:
    """The tasks of a step's token that count (live), chain by chain."""
    table = approval_task
    query = (
        select(table)
        .where(table.c.token_id == token_id, table.c.status.in_(LIVE))
        .order_by(table.c.slot, table.c.seq, table.c.id)
    )
    return list(conn.execute(query))


def cancel_tasks(conn: Connection, task_ids: Sequence[int]) -> None:
    if task_ids:
        table = approval_task
        conn.execute(
            update(table)
            .where(table.c.id.in_(task_ids), table.c.status.in_(OPEN))
            .values(status=CANCELLED, rev=table.c.rev + 1)
        )


def insert_token(conn: Connection, values: Values) -> int:
    token_id: int = conn.execute(
        insert(approval_token).values(**values).returning(approval_token.c.id)
    ).scalar_one()
    return token_id


def set_tokens(
    conn: Connection, token_ids: Iterable[int], status: str, now: datetime | None
) -> None:
    ids = list(token_ids)
    if ids:
        table = approval_token
        conn.execute(
            update(table)
            .where(table.c.id.in_(ids))
            .values(status=status, finished_at=now, rev=table.c.rev + 1)
        )


def live_tokens(conn: Connection, instance_id: int) -> list[Row[Any]]:
    """The tokens still in play: active steps and branches waiting at a join."""
    table = approval_token
    query = (
        select(table)
        .where(table.c.instance_id == instance_id, table.c.status.in_((ACTIVE, WAITING)))
        .order_by(table.c.id)
    )
    return list(conn.execute(query))


def insert_event(conn: Connection, values: Values) -> None:
    conn.execute(insert(approval_event).values(**values))
