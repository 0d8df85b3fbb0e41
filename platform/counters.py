"""Counters of auto-number fields: every number once, none skipped, under concurrent creates.

One row of the environment's ``fl_counter`` table per (entity, field, period)
holds the last number given. :func:`next_number` takes the next one with a
single upsert, ``INSERT … ON CONFLICT DO UPDATE SET value = value + 1 RETURNING
value``, on the caller's connection, inside the transaction that creates the
record:

- **No duplicates.** PostgreSQL locks the counter row for the rest of the
  transaction: a concurrent create waits for it, then increments the committed
  value. SQLite's writers are serialised by ``BEGIN IMMEDIATE``.
- **No gaps.** The increment commits or rolls back with the record: a create
  that fails after taking a number gives it back.

The price is that creates of one entity with an auto-number run one at a time
from taking the number to commit; the records service takes it last, just
before the insert, to keep that short.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from formloom.engine.fields.computed import (
    AutoNumberOptions,
    auto_number_period,
    format_auto_number,
)
from formloom.platform.tables import counter


def next_number(conn: Connection, *, entity: str, field: str, period: str) -> int:
    """Take the next counter value of ``entity.field`` in ``period`` (1 for a new period)."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(counter).values(entity=entity, field=field, period=period, value=1)
    statement = statement.on_conflict_do_update(
        index_elements=[counter.c.entity, counter.c.field, counter.c.period],
        set_={"value": counter.c.value + 1},
    )
    return int(conn.execute(statement.returning(counter.c.value)).scalar_one())


def assign_auto_number(
    conn: Connection, *, table: Table, field: str, options: AutoNumberOptions, now: datetime
) -> str:
    """The auto-number of a new record of entity ``table`` created at ``now``: ``HT-2026-0042``.

    A number some record already has is passed over. That only happens after the
    field's ``pattern`` or ``reset`` changed (a counter starting again at 1 for
    the current year may meet numbers given under the old settings); without it
    every create would fail on the unique index until the counter got past them.
    """
    day = now.astimezone(ZoneInfo(options.timezone)).date()
    period = auto_number_period(options, day)
    column = table.c[field]
    while True:
        value = next_number(conn, entity=table.name, field=field, period=period)
        number = format_auto_number(options, value, day)
        taken = conn.execute(select(column).where(column == number).limit(1)).first()
        if taken is None:
            return number
