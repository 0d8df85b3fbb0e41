"""Importing CSV and XLSX files into an entity, as a background job.

:func:`submit_import` stores the upload under the data folder
(``imports/<env>/<uuid>/upload``), checks that it is a readable CSV or XLSX file
and that its columns fit the entity (every problem at once, before anything
runs), then records the import in ``fl_import`` and enqueues an
``import_records`` job in the same transaction. The job (:func:`run_import`)
reads the rows in batches of :data:`BATCH_ROWS` through
:class:`~formloom.platform.import_batch.ImportBatch` and reports progress.

Modes:

- ``all_or_nothing`` (default): the whole file in **one transaction** that also
  marks the import done. Batches are written until a bad row turns up; from
  then on they are only checked, so the summary still lists every bad cell, and
  the transaction rolls back. A clean file pays for one pass. On PostgreSQL
  progress is reported between batches; SQLite admits one writer, so there the
  progress stays at 0 until the transaction ends.
- ``skip_bad_rows``: each batch is checked and its good rows written in one
  transaction, which also records the last file row it covered (``last_row``)
  and the running summary. Bad rows are reported and skipped.
- ``dry_run``: the checking pass only; the summary says what would be created,
  updated or skipped.

**Idempotency** (a job can run twice: a retry, or another worker taking over):
writes and the record of what they covered commit together. A finished import
is never run again; an all-or-nothing import that died mid-write rolled back
and starts over; a skip-bad-rows import goes on after ``last_row``. So no row
is written twice.

The summary (``fl_import.summary``): ``rows``, ``created``, ``updated``,
``unchanged``, ``skipped`` (bad rows not written), ``error_count``, the first
:data:`MAX_ERRORS` errors as ``{row, column, field, code, message}``, ``written``
and the column plan (``columns``: each header, its field, how it matched, suggestions).
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection, RowMapping, insert, select, update
from sqlalchemy.exc import IntegrityError

from formloom.engine.errors import Issue, pointer
from formloom.engine.relative_dates import DEFAULT_TIMEZONE, timezone_named
from formloom.platform.access import Access, access_of_user, load_access
from formloom.platform.cell_formats import CellContext
from formloom.platform.database import Workspace
from formloom.platform.entity_runtime import RuntimeEntity, load_entity
from formloom.platform.environments import require_environment
from formloom.platform.errors import Invalid, NotFound, PlatformError
from formloom.platform.import_batch import BatchResult, ImportBatch, ImportState, RowError
from formloom.platform.import_columns import ColumnPlan, plan_columns
from formloom.platform.import_files import (
    FileFormat,
    Sheet,
    SheetRow,
    detect_format,
    open_sheet,
    store_upload,
)
from formloom.platform.jobs import FAILED, JobContext, JobType, enqueue, job_types
from formloom.platform.principal import Principal
from formloom.platform.record_errors import say
from formloom.platform.record_writer import RecordWriter
from formloom.platform.tables import job
from formloom.platform.tables import record_import as import_table

log = logging.getLogger(__name__)

JOB_TYPE = "import_records"
BATCH_ROWS = 500
MAX_ERRORS = 1000
IMPORTS_FOLDER = "imports"
MAX_LIST_LIMIT = 200

QUEUED, RUNNING, DONE = "queued", "running", "done"
#: An import that could not run at all (its file is gone, its columns no longer fit).
FAILED_IMPORT = "failed"

#: Reports progress: ``(done, total, message)`` (a job's ``report_progress``).
ProgressReport = Callable[[int, int, str], None]


class ImportOptions(BaseModel):
    """How to import a file; sent as JSON next to the file."""

    model_config = ConfigDict(extra="forbid")

    mapping: dict[str, str | None] = Field(
        default_factory=dict,
        description='Column header → field API name (null or "" ignores the column); '
        "columns not named here match fields by API name or label (zh/en)",
    )
    mode: Literal["all_or_nothing", "skip_bad_rows"] = Field(
        default="all_or_nothing",
        description="all_or_nothing: any bad cell and nothing is written; "
        "skip_bad_rows: good rows are written, bad rows reported",
    )
    upsert_on: str | None = Field(
        default=None,
        description="A unique field (or `id`): rows whose value names an existing record "
        "update it, the others create records",
    )
    lookup_by: dict[str, str] = Field(
        default_factory=dict,
        description="Lookup field → field of the target that the cells name (default: the "
        "target's title field; a unique field or `id`)",
    )
    dry_run: bool = Field(default=False, description="Check every row, write nothing")
    confirm_duplicates: bool = Field(
        default=False,
        description="Save rows that `warn` duplicate rules find (otherwise they are bad rows)",
    )
    timezone: str = Field(
        default=DEFAULT_TIMEZONE, description="Timezone of date-times given without an offset"
    )
    sheet: str | None = Field(default=None, description="XLSX: the sheet to read (default first)")


def parse_options(raw: Any, *, lang: str) -> ImportOptions:
    """Options from JSON (a dict); :class:`Invalid` names each bad option at ``/options/…``."""
    if isinstance(raw, ImportOptions):
        options = raw
    else:
        try:
            options = ImportOptions.model_validate(raw or {})
        except ValidationError as exc:
            issues = [
                Issue(pointer("options", *e["loc"]), "invalid_option", f"{e['msg']}")
                for e in exc.errors()
            ]
            raise Invalid(
                say(lang, "the import options are not valid", "导入选项无效"), issues=issues
            ) from None
    if timezone_named(options.timezone) is None:
        message = say(
            lang,
            f"unknown timezone `{options.timezone}`; use an IANA name such as Asia/Shanghai",
            f"未知时区 `{options.timezone}`；请使用 IANA 时区名，例如 Asia/Shanghai",
        )
        raise Invalid(message, issues=[Issue("/options/timezone", "unknown_timezone", message)])
    return options


def submit_import(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    upload: BinaryIO,
    file_name: str,
    principal: Principal,
    options: Any = None,
    lang: str = "en",
    run_now: bool = False,
) -> dict[str, Any]:
    """Store the file, check it and its columns, record the import and enqueue its job.

    ``run_now`` runs it in the caller instead of enqueueing (small dry runs answer
    at once). :class:`Invalid`, :class:`FileTooLarge` or :class:`UnsupportedFile`
    when the file or its columns cannot be imported; nothing is kept then.
    ``principal`` needs the ``import`` and ``create`` permissions (and ``update``
    to upsert); columns mapped to fields hidden or read-only for them are refused.
    The job runs with the same principal's permissions (read again when it runs).
    """
    require_environment(workspace, env)
    checked = parse_options(options, lang=lang)
    relative = Path(IMPORTS_FOLDER) / env / uuid.uuid4().hex / "upload"
    path = workspace.settings.data_dir / relative
    size = store_upload(upload, path, lang=lang)
    try:
        file_format = detect_format(path, file_name, lang=lang)
        with workspace.begin(env, readonly=True) as conn:
            access = load_access(conn, cache_key=workspace.cache_key, env=env, principal=principal)
            for action in ("import", "create", *(("update",) if checked.upsert_on else ())):
                access.require(entity, action, lang=lang)
            runtime = _entity(workspace, conn, env, entity)
            with open_sheet(path, file_format, lang=lang, sheet_name=checked.sheet) as sheet:
                plan = _plan(workspace, conn, env, runtime, sheet, checked, lang)
            _refuse_protected_columns(access, entity, plan, lang)
        values = {
            "entity": entity,
            "file_name": file_name[:255],
            "file_path": relative.as_posix(),
            "file_format": file_format,
            "file_bytes": size,
            "options": checked.model_dump(),
            "status": QUEUED,
            "summary": {"columns": plan.as_list()},
            "lang": lang,
            "actor": principal.user_id,
            "created_at": datetime.now(UTC),
            "last_row": 1,
        }
        with workspace.begin(env) as conn:
            import_id = int(
                conn.execute(
                    insert(import_table).values(values).returning(import_table.c.id)
                ).scalar_one()
            )
            if not run_now:
                job_id = enqueue(
                    conn,
                    job_type=JOB_TYPE,
                    payload={"import_id": import_id},
                    dedupe_key=f"{JOB_TYPE}:{import_id}",
                    max_attempts=3,
                )
                conn.execute(
                    update(import_table).where(import_table.c.id == import_id).values(job_id=job_id)
                )
    except BaseException:
        shutil.rmtree(path.parent, ignore_errors=True)
        raise
    if run_now:
        run_import(workspace, env=env, import_id=import_id)
    return get_import(workspace, env=env, import_id=import_id, principal=principal)


def get_import(
    workspace: Workspace, *, env: str, import_id: int, principal: Principal
) -> dict[str, Any]:
    """An import: options, status (with its job's progress) and summary; 404 if unknown.

    Admins see every import; others only their own.
    """
    require_environment(workspace, env)
    with workspace.begin(env, readonly=True) as conn:
        load_access(conn, cache_key=workspace.cache_key, env=env, principal=principal)
        query = select(import_table).where(import_table.c.id == import_id)
        if not principal.admin:
            query = query.where(import_table.c.actor == principal.user_id)
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(
                f"import {import_id} does not exist in environment `{env}`; list them with "
                f"GET /api/envs/{env}/imports"
            )
        job_row = None
        if row.job_id is not None:
            job_row = conn.execute(select(job).where(job.c.id == row.job_id)).first()
    return _as_dict(row._mapping, job_row._mapping if job_row is not None else None, env)


def list_imports(
    workspace: Workspace,
    *,
    env: str,
    principal: Principal,
    entity: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Recent imports of the environment (optionally of one entity), newest first.

    Admins see every import; others only their own.
    """
    if not 1 <= limit <= MAX_LIST_LIMIT:
        message = f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}"
        raise Invalid(message, issues=[Issue("/limit", "invalid_limit", message)])
    require_environment(workspace, env)
    query = select(import_table).order_by(import_table.c.id.desc()).limit(limit)
    if entity is not None:
        query = query.where(import_table.c.entity == entity)
    if not principal.admin:
        query = query.where(import_table.c.actor == principal.user_id)
    with workspace.begin(env, readonly=True) as conn:
        load_access(conn, cache_key=workspace.cache_key, env=env, principal=principal)
        rows = conn.execute(query).all()
        job_ids = [r.job_id for r in rows if r.job_id is not None]
        jobs = {j.id: j._mapping for j in conn.execute(select(job).where(job.c.id.in_(job_ids)))}
    return [_as_dict(r._mapping, jobs.get(r.job_id), env) for r in rows]


def run_import(
    workspace: Workspace, *, env: str, import_id: int, report: ProgressReport | None = None
) -> None:
    """Run (or go on with) an import; does nothing for one that has finished (idempotent)."""
    with workspace.begin(env) as conn:
        row = conn.execute(
            select(import_table).where(import_table.c.id == import_id).with_for_update()
        ).first()
        if row is None:
            raise NotFound(f"import {import_id} does not exist in environment `{env}`")
        if row.status in (DONE, FAILED_IMPORT):
            log.info("import %s in `%s` has finished already; nothing to do", import_id, env)
            return
        conn.execute(
            update(import_table).where(import_table.c.id == import_id).values(status=RUNNING)
        )
    run = _Run(workspace, env, row._mapping, report)
    try:
        run.start()
    except (Invalid, NotFound) as exc:
        # The file or the entity no longer allows the import: retrying cannot help.
        run.give_up(exc.issues or [Issue("", exc.code, exc.message)])
    except _Overtaken:
        log.warning("import %s in `%s`: another run went further; this one stops", import_id, env)


# -- running an import ---------------------------------------------------------------------


@dataclass
class _Totals:
    """The running summary of an import."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    error_count: int = 0

    def add(self, result: BatchResult, rows: int) -> _Totals:
        return _Totals(
            self.rows + rows,
            self.created + result.created,
            self.updated + result.updated,
            self.unchanged + result.unchanged,
            self.skipped + result.bad_rows,
            self.error_count + len(result.errors),
        )


class _Rejected(Exception):
    """An all-or-nothing write met bad rows: its transaction rolls back."""

    def __init__(self, errors: list[dict[str, Any]], totals: _Totals) -> None:
        super().__init__(f"{len(errors)} error(s)")
        self.errors, self.totals = errors, totals


class _Overtaken(Exception):
    """Another run of the same import has written further: this one stops."""


class _Run:
    """One run of one import (a job attempt, or a caller running it inline)."""

    def __init__(
        self,
        workspace: Workspace,
        env: str,
        row: RowMapping,
        report: ProgressReport | None,
    ) -> None:
        self.workspace = workspace
        self.env = env
        self.import_id = int(row["id"])
        self.entity_name = str(row["entity"])
        self.file_format: FileFormat = row["file_format"]
        self.path = workspace.settings.data_dir / row["file_path"]
        self.options = parse_options(row["options"], lang=row["lang"])
        self.lang = str(row["lang"])
        self.actor_id = row["actor"]
        self.last_row = int(row["last_row"])
        summary = dict(row["summary"] or {})
        self.columns = summary.get("columns", [])
        self.totals = _Totals(**{k: summary.get(k, 0) for k in _Totals.__dataclass_fields__})
        self.errors: list[dict[str, Any]] = list(summary.get("errors", []))
        self.report = report
        self.total = 0
        timezone = timezone_named(self.options.timezone)
        assert timezone is not None
        self.cells = CellContext(self.lang, timezone)

    def start(self) -> None:
        if not self.path.exists():
            message = say(
                self.lang,
                "the uploaded file is no longer in the data folder; upload it again",
                "上传的文件已不在数据目录中，请重新上传",
            )
            self.give_up([Issue("/file", "file_missing", message)])
            return
        with open_sheet(
            self.path, self.file_format, lang=self.lang, sheet_name=self.options.sheet
        ) as sheet:
            with self.workspace.begin(self.env, readonly=True) as conn:
                entity = _entity(self.workspace, conn, self.env, self.entity_name)
                plan = _plan(self.workspace, conn, self.env, entity, sheet, self.options, self.lang)
            self.columns = plan.as_list()
            self.total = sheet.row_count
            if self.options.dry_run:
                self._check_everything(sheet, entity, plan)
            elif self.options.mode == "skip_bad_rows":
                self._write_good_rows(sheet, entity, plan)
            else:
                self._write_all_or_nothing(sheet, entity, plan)
        shutil.rmtree(self.path.parent, ignore_errors=True)

    # -- the three ways to run -------------------------------------------------------------

    def _check_everything(self, sheet: Sheet, entity: RuntimeEntity, plan: ColumnPlan) -> None:
        """A dry run: every batch checked in a read-only transaction, nothing written."""
        state = ImportState()
        totals, errors = _Totals(), list[dict[str, Any]]()
        for batch in _batches(sheet.rows()):
            with self.workspace.begin(self.env, readonly=True) as conn:
                result = self._batch(conn, entity, plan, state).run(batch, write=False)
            state.commit(result.staged)
            totals = totals.add(result, len(batch))
            errors += [e.as_dict() for e in result.errors[: MAX_ERRORS - len(errors)]]
            self._progress(batch[-1].number - 1, self.total, "checking")
        self.totals, self.errors = totals, errors
        self._finish(written=False)

    def _write_all_or_nothing(self, sheet: Sheet, entity: RuntimeEntity, plan: ColumnPlan) -> None:
        """One transaction: batches are written until a bad row turns up, then only checked.

        A clean file commits with the import marked done; otherwise the transaction
        rolls back and the summary lists every bad cell, as a dry run would.
        """
        self._progress(0, self.total, "importing")
        try:
            self._retrying(partial(self._write_everything, sheet, entity, plan))
        except _Rejected as rejected:
            self.totals = rejected.totals
            self.totals.skipped = self.totals.rows
            self.totals.created = self.totals.updated = self.totals.unchanged = 0
            self.errors = rejected.errors
            self._finish(written=False)
            return
        self._progress(self.totals.rows, self.totals.rows, "done")

    def _write_everything(self, sheet: Sheet, entity: RuntimeEntity, plan: ColumnPlan) -> None:
        state, totals, errors = ImportState(), _Totals(), list[dict[str, Any]]()
        # SQLite has one writer: a progress report would wait for this very transaction.
        report_inside = not self.workspace.is_sqlite
        with self.workspace.begin(self.env) as conn:
            self._still_ours(conn)
            for batch in _batches(sheet.rows()):
                write = totals.error_count == 0
                result = self._batch(conn, entity, plan, state).run(batch, write=write)
                state.commit(result.staged)
                totals = totals.add(result, len(batch))
                errors += [e.as_dict() for e in result.errors[: MAX_ERRORS - len(errors)]]
                if report_inside:
                    self._progress(batch[-1].number - 1, self.total, "importing")
            if totals.error_count:
                raise _Rejected(errors, totals)
            self.totals, self.errors = totals, errors
            self._record(conn, done=True, written=True)

    def _write_good_rows(self, sheet: Sheet, entity: RuntimeEntity, plan: ColumnPlan) -> None:
        state = ImportState()
        rows = (r for r in sheet.rows() if r.number > self.last_row)
        for batch in _batches(rows):
            self._retrying(partial(self._write_batch, batch, entity, plan, state))
            self._progress(batch[-1].number - 1, self.total, "importing")
        self._finish(written=True)

    def _write_batch(
        self, batch: list[SheetRow], entity: RuntimeEntity, plan: ColumnPlan, state: ImportState
    ) -> None:
        with self.workspace.begin(self.env) as conn:
            self._still_ours(conn)
            result = self._batch(conn, entity, plan, state).run(batch, write=True)
            totals = self.totals.add(result, len(batch))
            room = MAX_ERRORS - len(self.errors)
            errors = self.errors + [e.as_dict() for e in result.errors[:room]]
            conn.execute(
                update(import_table)
                .where(import_table.c.id == self.import_id)
                .values(last_row=batch[-1].number, summary=self._summary(totals, errors, True))
            )
        state.commit(result.staged)
        self.totals, self.errors, self.last_row = totals, errors, batch[-1].number

    # -- helpers ---------------------------------------------------------------------------

    def _batch(
        self, conn: Connection, entity: RuntimeEntity, plan: ColumnPlan, state: ImportState
    ) -> ImportBatch:
        key = self.workspace.cache_key
        writer = RecordWriter(
            conn,
            cache_key=key,
            env=self.env,
            actor_id=self.actor_id,
            lang=self.lang,
            access=access_of_user(conn, cache_key=key, env=self.env, user_id=self.actor_id),
        )
        return ImportBatch(
            writer,
            entity,
            plan,
            cells=self.cells,
            state=state,
            confirm_duplicates=self.options.confirm_duplicates,
        )

    def _retrying(self, work: Callable[[], None]) -> None:
        """Run a write; a unique constraint that raced with another transaction: once more."""
        for attempt in (1, 2):
            try:
                work()
                return
            except IntegrityError as exc:
                if attempt == 2:
                    raise
                log.info("import %s: constraint race, checking again: %s", self.import_id, exc.orig)

    def _still_ours(self, conn: Connection) -> None:
        """Lock the import's row; raise :class:`_Overtaken` if another run got further.

        Two runs of one import can overlap when a stalled worker's job is taken over;
        the lock makes the later writer wait, and this check makes it stop.
        """
        row = conn.execute(
            select(import_table.c.status, import_table.c.last_row)
            .where(import_table.c.id == self.import_id)
            .with_for_update()
        ).one()
        if row.status != RUNNING or row.last_row != self.last_row:
            raise _Overtaken(self.import_id)

    def _progress(self, done: int, total: int, phase: str) -> None:
        if self.report is None:
            return
        messages = {
            "checking": ("checking rows", "正在检查"),
            "writing": ("writing rows", "正在写入"),
            "importing": ("importing rows", "正在导入"),
            "done": ("done", "完成"),
        }
        en, zh = messages[phase]
        self.report(done, max(total, done), say(self.lang, en, zh))

    def give_up(self, issues: Sequence[Issue]) -> None:
        """End the import without writing: the file or its columns no longer allow it."""
        self.errors = [
            RowError(None, None, None, i.code, i.message).as_dict() for i in issues[:MAX_ERRORS]
        ]
        self.totals.error_count = len(issues)
        with self.workspace.begin(self.env) as conn:
            self._record(conn, done=True, written=False, status=FAILED_IMPORT)
        shutil.rmtree(self.path.parent, ignore_errors=True)

    def _finish(self, *, written: bool) -> None:
        with self.workspace.begin(self.env) as conn:
            self._record(conn, done=True, written=written)
        self._progress(self.totals.rows, self.totals.rows, "done")

    def _record(self, conn: Connection, *, done: bool, written: bool, status: str = DONE) -> None:
        values: dict[str, Any] = {"summary": self._summary(self.totals, self.errors, written)}
        if done:
            values.update(status=status, finished_at=datetime.now(UTC))
        conn.execute(update(import_table).where(import_table.c.id == self.import_id).values(values))

    def _summary(
        self, totals: _Totals, errors: list[dict[str, Any]], written: bool
    ) -> dict[str, Any]:
        return {
            "rows": totals.rows,
            "created": totals.created,
            "updated": totals.updated,
            "unchanged": totals.unchanged,
            "skipped": totals.skipped,
            "error_count": totals.error_count,
            "errors": errors,
            "errors_truncated": totals.error_count > len(errors),
            "written": written,
            "dry_run": self.options.dry_run,
            "columns": self.columns,
        }


def _batches(rows: Iterator[SheetRow]) -> Iterator[list[SheetRow]]:
    batch: list[SheetRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


def _entity(workspace: Workspace, conn: Connection, env: str, name: str) -> RuntimeEntity:
    return load_entity(conn, namespace=workspace.cache_key, env=env, name=name)


def _refuse_protected_columns(access: Access, entity: str, plan: ColumnPlan, lang: str) -> None:
    protected = access.hidden(entity) | access.read_only(entity)
    issues = []
    for column in plan.mapped:
        if column.field in protected:
            message = say(
                lang,
                f"column `{column.column}` maps to field `{column.field}`, which your roles do "
                "not let you set; map the column to null (skip it) or remove it",
                f"列“{column.column}”对应字段 `{column.field}`，您的角色无权设置该字段；"
                "请将该列映射为 null（跳过）或删除该列",
            )
            issues.append(Issue(f"/mapping/{column.column}", "field_not_writable", message))
    if issues:
        raise Invalid(issues[0].message, issues=issues)


def _plan(
    workspace: Workspace,
    conn: Connection,
    env: str,
    entity: RuntimeEntity,
    sheet: Sheet,
    options: ImportOptions,
    lang: str,
) -> ColumnPlan:
    def target(name: str) -> Any:
        return _entity(workspace, conn, env, name).compiled

    return plan_columns(
        entity.compiled,
        sheet.headers,
        mapping=options.mapping,
        upsert_on=options.upsert_on,
        lookup_by=options.lookup_by,
        targets=target,
        lang=lang,
    )


def _as_dict(row: RowMapping, job_row: RowMapping | None, env: str) -> dict[str, Any]:
    status = row["status"]
    job_info = None
    if job_row is not None:
        job_info = {
            "id": job_row["id"],
            "status": job_row["status"],
            "attempts": job_row["attempts"],
            "progress": job_row["progress"],
            "last_error": job_row["last_error"],
        }
        if status in (QUEUED, RUNNING) and job_row["status"] == FAILED:
            status = FAILED_IMPORT
    summary = dict(row["summary"] or {})
    return {
        "id": row["id"],
        "env": env,
        "entity": row["entity"],
        "file_name": row["file_name"],
        "file_format": row["file_format"],
        "file_bytes": row["file_bytes"],
        "options": row["options"],
        "status": status,
        "progress": job_info["progress"] if job_info else None,
        "job": job_info,
        "columns": summary.pop("columns", []),
        "summary": summary or None,
        "created_at": row["created_at"].isoformat(),
        "finished_at": row["finished_at"].isoformat() if row["finished_at"] else None,
    }


class ImportRecords(JobType):
    """The ``import_records`` job: runs :func:`run_import` with progress reports."""

    name = JOB_TYPE

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> None:
        import_id = payload.get("import_id")
        if not isinstance(import_id, int):
            raise PlatformError(f"job {ctx.job_id}: payload needs an integer `import_id`")
        run_import(ctx.workspace, env=ctx.env, import_id=import_id, report=ctx.report_progress)


job_types.register(ImportRecords())
