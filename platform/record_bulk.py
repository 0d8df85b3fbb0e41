"""Bulk writes: creates, updates and deletes of one entity in one transaction.

Rows run in order (creates, then updates, then deletes), each through the same
:class:`RecordWriter` methods (and so the same save pipeline) as single
writes; rollups are recomputed once, after the last row. A failing row does not stop the
others from being checked, so the answer lists every failing row's problems
(paths such as ``/update/3/amount``); if any row failed, the caller rolls the
whole transaction back and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from sqlalchemy import Connection

from formloom.engine.errors import Issue
from formloom.platform.entity_runtime import RuntimeEntity
from formloom.platform.errors import Invalid, PlatformError
from formloom.platform.record_errors import BatchRejected, say
from formloom.platform.record_writer import RecordWriter

MAX_BATCH_ROWS = 1000


class _Rows:
    """Runs rows and collects what went wrong with each."""

    def __init__(self) -> None:
        self.issues: list[Issue] = []
        self.conflict_only = True
        self.current: dict[str, Any] = {}

    def run(
        self,
        at: str,
        write: Callable[[], dict[str, Any]],
        into: list[dict[str, Any]],
        *,
        savepoint: Connection | None = None,
    ) -> None:
        """Run one row; with ``savepoint`` a failing row's partial writes are undone at once."""
        try:
            if savepoint is None:
                into.append(write())
            else:
                with savepoint.begin_nested():
                    into.append(write())
        except PlatformError as exc:
            self.conflict_only = self.conflict_only and exc.status == 409
            self.issues += exc.issues or [Issue(at, exc.code, exc.message)]
            details = getattr(exc, "details", {})
            if "current" in details:
                self.current[at] = details["current"]


def run_bulk(
    writer: RecordWriter,
    entity: RuntimeEntity,
    *,
    create: Sequence[Any],
    update: Sequence[Any],
    delete: Sequence[Any],
) -> dict[str, list[dict[str, Any]]]:
    """Write every row or raise :class:`BatchRejected` listing each failing row's problems."""
    total = len(create) + len(update) + len(delete)
    if total > MAX_BATCH_ROWS:
        message = say(
            writer.lang,
            f"the batch has {total} rows; at most {MAX_BATCH_ROWS} are allowed per request: "
            "split it into smaller batches",
            f"本批次共 {total} 行，每次请求最多 {MAX_BATCH_ROWS} 行，请拆分为更小的批次",
        )
        raise Invalid(message, issues=[Issue("", "batch_too_large", message)])
    rows = _Rows()
    result: dict[str, list[dict[str, Any]]] = {"created": [], "updated": [], "deleted": []}
    with writer.deferred_rollups():
        for i, payload in enumerate(create):
            at = f"/create/{i}"
            rows.run(at, partial(writer.create, entity, payload, at=at), result["created"])
        for i, row in enumerate(update):
            at = f"/update/{i}"
            rows.run(at, partial(_update, writer, entity, row, at), result["updated"])
        for i, row in enumerate(delete):
            at = f"/delete/{i}"
            # A delete can fail after cascading; its savepoint keeps later rows from seeing that.
            write = partial(_delete, writer, entity, row, at)
            rows.run(at, write, result["deleted"], savepoint=writer.conn)
        if rows.issues:
            raise BatchRejected(rows.issues, conflict_only=rows.conflict_only, current=rows.current)
    return result


def _update(writer: RecordWriter, entity: RuntimeEntity, row: Any, at: str) -> dict[str, Any]:
    record_id = _row_id(writer, row, at)
    payload = {k: v for k, v in row.items() if k != "id"}
    return writer.update(entity, record_id, payload, version=None, replace=False, at=at)


def _delete(writer: RecordWriter, entity: RuntimeEntity, row: Any, at: str) -> dict[str, Any]:
    record_id = _row_id(writer, row, at)
    issues = [
        Issue(
            f"{at}/{key}",
            "unknown_field",
            say(
                writer.lang,
                f"a delete row takes `id` and optionally `version`, not `{key}`",
                f"删除行只接受 `id` 和可选的 `version`，不接受 `{key}`",
            ),
        )
        for key in row
        if key not in ("id", "version")
    ]
    version = row.get("version")
    if version is not None and not _positive_int(version):
        issues.append(_not_positive(writer, f"{at}/version", "version"))
    if issues:
        raise Invalid(issues[0].message, issues=issues)
    return writer.delete(entity, record_id, version=version, at=at)


def _row_id(writer: RecordWriter, row: Any, at: str) -> int:
    if not isinstance(row, dict):
        message = say(
            writer.lang,
            "expected a JSON object with the record's `id`",
            "应为包含记录 `id` 的 JSON 对象",
        )
        raise Invalid(message, issues=[Issue(at, "type", message)])
    record_id = row.get("id")
    if not _positive_int(record_id):
        issue = _not_positive(writer, f"{at}/id", "id")
        raise Invalid(issue.message, issues=[issue])
    assert isinstance(record_id, int)
    return record_id


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _not_positive(writer: RecordWriter, path: str, key: str) -> Issue:
    return Issue(
        path,
        "type",
        say(writer.lang, f"`{key}` must be a positive whole number", f"`{key}` 必须是正整数"),
    )
