"""Removing uploads that no record references: the ``clean_orphan_files`` job.

A file uploaded through ``POST /api/envs/{env}/files`` is meant to be put in a
record's file or image field. One that no record holds once :data:`GRACE` has
passed since its upload (never attached, or replaced and no longer held) is an
orphan: the job deletes its ``fl_file`` row and then its bytes.

- "Held" means any row of any entity table whose file or image column names
  the file: records in the recycle bin included (a restore brings the file
  back; purging the record releases it), retired (soft-removed) fields and
  removed entities whose tables are kept included (their values come back too).
- Audit history is not a reference: an old value in a record's history keeps the
  file's id and name, but once the file is cleaned up it no longer downloads.
- The job repeats every :data:`EVERY_SECONDS` in each environment that ever had an
  upload (:func:`schedule_cleanup` runs after every upload; the job's ``dedupe_key``
  makes that one job per environment). It is idempotent: a second run finds
  nothing more to do, and bytes whose row is already gone are skipped.
- Two passes: a read-only one finds the orphans without locking anything (most runs
  stop there, finding none); a second transaction locks just those rows, reads the
  references again and deletes the files still unreferenced. Races with a save that
  attaches one: on PostgreSQL the job locks the rows ``FOR UPDATE`` before it reads
  the references, and the save reads the file's row ``FOR SHARE``
  (:mod:`formloom.platform.record_files`), so one of the two waits for the other:
  either the save commits first and the job sees the reference, or the job deletes
  the row first and the save reports ``unknown_file``. Saves that attach other files
  never wait. On SQLite writers take turns (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Column, Connection, MetaData, Table, delete, select

from formloom.engine.entities import EntityDoc
from formloom.engine.fields import field_types
from formloom.engine.fields.files import FileFieldType
from formloom.platform.database import Workspace
from formloom.platform.files import file_path
from formloom.platform.jobs import JobContext, JobType, enqueue, job_types
from formloom.platform.record_references import chunks
from formloom.platform.tables import ENV, BigId, meta_document, meta_version, uploaded_file

log = logging.getLogger(__name__)

JOB_TYPE = "clean_orphan_files"
#: One cleanup job per environment.
DEDUPE_KEY = "files:clean_orphan_files"
#: How long an upload may stay unreferenced (time to fill in the form that attaches it).
GRACE = timedelta(hours=24)
#: How often the job runs.
EVERY_SECONDS = 3600
#: Rows read per query while collecting references.
SCAN_BATCH = 1000


def schedule_cleanup(workspace: Workspace, env: str, *, now: datetime) -> None:
    """Make sure ``env`` has its repeating cleanup job (a no-op once it has one)."""
    with workspace.begin(env) as conn:
        enqueue(
            conn,
            job_type=JOB_TYPE,
            payload={},
            run_at=now + timedelta(seconds=EVERY_SECONDS),
            repeat_seconds=EVERY_SECONDS,
            dedupe_key=DEDUPE_KEY,
        )


def remove_orphan_files(
    workspace: Workspace, env: str, *, now: datetime, grace: timedelta = GRACE
) -> list[str]:
    """Delete the files of ``env`` uploaded before ``now - grace`` that no record holds.

    Returns their ids (sorted). Rows go in one transaction; the bytes are removed
    after it commits (a crash in between leaves bytes without a row, never a row
    without bytes).
    """
    cutoff = now - grace
    with workspace.begin(env, readonly=True) as conn:
        found = _candidates(conn, cutoff)
        found -= held_files(conn, found) if found else set()
    if not found:
        return []
    with workspace.begin(env) as conn:
        locked = _candidates(conn, cutoff, among=found)
        orphans = sorted(locked - held_files(conn, locked)) if locked else []
        for batch in chunks(orphans):
            conn.execute(delete(uploaded_file).where(uploaded_file.c.id.in_(batch)))
    for file_id in orphans:
        try:
            file_path(workspace, env, file_id).unlink(missing_ok=True)
        except (OSError, ValueError):
            log.exception("environment `%s`: cannot remove the bytes of file %s", env, file_id)
    if orphans:
        log.info("environment `%s`: removed %d orphan upload(s)", env, len(orphans))
    return orphans


def held_files(conn: Connection, wanted: set[str]) -> set[str]:
    """Which of the file ids ``wanted`` some row of some entity table holds."""
    held: set[str] = set()
    for table, columns in _file_columns(conn):
        for values in _scan(conn, table, columns):
            for value in values:
                held |= _ids(value) & wanted
        if held == wanted:
            break
    return held


def _candidates(conn: Connection, cutoff: datetime, *, among: set[str] | None = None) -> set[str]:
    """Files uploaded before ``cutoff``; with ``among``, those of them, locked (PostgreSQL)."""
    query = select(uploaded_file.c.id).where(uploaded_file.c.created_at < cutoff)
    if among is None:
        return {str(file_id) for file_id in conn.execute(query).scalars()}
    found: set[str] = set()
    for batch in chunks(sorted(among)):
        part = query.where(uploaded_file.c.id.in_(batch))
        if conn.dialect.name == "postgresql":
            part = part.with_for_update()
        found.update(str(file_id) for file_id in conn.execute(part).scalars())
    return found


def _file_columns(conn: Connection) -> Iterator[tuple[Table, list[str]]]:
    """Every entity table with file or image columns (live, retired, of removed entities)."""
    published = conn.execute(
        select(meta_version.c.name, meta_version.c.body)
        .join(
            meta_document,
            (meta_document.c.kind == meta_version.c.kind)
            & (meta_document.c.name == meta_version.c.name)
            & (meta_document.c.published_version == meta_version.c.version),
        )
        .where(meta_version.c.kind == "entity")
        .order_by(meta_version.c.name)
    ).all()
    for name, body in published:
        document = EntityDoc.model_validate(body)
        fields = [*document.fields, *(r.field for r in document.retired_fields)]
        columns = [
            f.name
            for f in fields
            if f.type in field_types and isinstance(field_types.get(f.type), FileFieldType)
        ]
        if columns:
            table = Table(
                name,
                MetaData(),
                Column("id", BigId, primary_key=True),
                *(Column(c, JSON) for c in columns),
                schema=ENV,
            )
            yield table, columns


def _scan(conn: Connection, table: Table, columns: list[str]) -> Iterator[list[Any]]:
    """The file values of every row (deleted ones too), in batches of :data:`SCAN_BATCH`."""
    last_id = 0
    while True:
        rows = conn.execute(
            select(table.c.id, *(table.c[c] for c in columns))
            .where(table.c.id > last_id)
            .order_by(table.c.id)
            .limit(SCAN_BATCH)
        ).all()
        if not rows:
            return
        last_id = int(rows[-1][0])
        yield [value for row in rows for value in row[1:] if value is not None]


def _ids(value: Any) -> set[str]:
    """The file ids a stored file value holds (one reference or a list of them)."""
    references = value if isinstance(value, list) else [value]
    return {str(r["id"]) for r in references if isinstance(r, dict) and "id" in r}


class CleanOrphanFiles(JobType):
    """Removes the environment's uploads no record has held for :data:`GRACE`."""

    name = JOB_TYPE

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> None:
        removed = remove_orphan_files(ctx.workspace, ctx.env, now=ctx.now())
        ctx.report_progress(len(removed), len(removed), f"{len(removed)} orphan file(s) removed")


job_types.register(CleanOrphanFiles())
