"""Checks of a record's file and image values against the environment's uploaded files.

Part of the save pipeline, next to the lookup checks of
:mod:`formloom.platform.record_checks`: after a payload has been normalised
(each file value is then ``{"id": …}`` or a list of them), every referenced
file must exist in the environment's ``fl_file`` table and fit the field
(``max_bytes``, ``accept``; image fields take raster images only, see
:meth:`~formloom.engine.fields.files.FileFieldType.check_file`). The stored
value is completed from the upload's row (``name``, ``size``, ``content_type``),
so a client cannot make a record claim another name, size or type than the
file has.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select

from formloom.engine.errors import Issue, pointer
from formloom.engine.fields import FieldValueError
from formloom.engine.fields.files import FileFieldType, FileOptions
from formloom.engine.records.compiled import CompiledField
from formloom.platform.entity_runtime import RuntimeEntity
from formloom.platform.files import FileInfo, info_from_row
from formloom.platform.record_errors import say
from formloom.platform.record_references import chunks
from formloom.platform.tables import uploaded_file


def check_file_values(
    conn: Connection,
    entity: RuntimeEntity,
    values: dict[str, Any],
    *,
    before: Mapping[str, Any] | None = None,
    at: str = "",
    lang: str = "en",
) -> list[Issue]:
    """Issues for file and image values in ``values`` that name no upload or do not fit.

    ``values`` holds normalised values (as :func:`check_payload` returns them);
    other fields and empty values are left alone. **Mutates** ``values``: each
    file field's value is replaced by the completed reference(s)
    (``{"id", "name", "size", "content_type"}`` from ``fl_file``), so call it
    before comparing with the stored row or running rules. Issues point at the
    field (``/attachment``) or, for a list, at the element (``/attachments/1``).

    ``before`` is the stored row an update changes: files it already holds in a
    field are completed but not checked against the field's limits again, so
    tightening ``max_bytes`` or ``accept`` never blocks saving a record that
    keeps its files (limits apply when a file is attached).
    """
    fields = [
        (name, compiled)
        for name, compiled in entity.compiled.fields_of(FileFieldType).items()
        if values.get(name) is not None
    ]
    if not fields:
        return []
    wanted = {ref["id"] for name, _ in fields for ref in _references(values[name])}
    found = _files(conn, sorted(wanted))
    issues: list[Issue] = []
    for name, compiled in fields:
        value = values[name]
        kept = _ids(before.get(name)) if before is not None else set()
        completed = []
        for position, ref in enumerate(_references(value)):
            path = at + (pointer(name, position) if isinstance(value, list) else pointer(name))
            info = found.get(ref["id"])
            if info is None:
                issues.append(_unknown_file(compiled, ref["id"], path, lang))
                continue
            problem = None if info.id in kept else _misfit(compiled, info)
            if problem is not None:
                separator = "：" if lang == "zh" else ": "
                message = compiled.label(lang) + separator + problem.message(lang)
                issues.append(Issue(path, problem.code, message))
            completed.append(info.reference())
        if len(completed) == len(_references(value)):
            values[name] = completed if isinstance(value, list) else completed[0]
    return issues


def _references(value: Any) -> list[dict[str, Any]]:
    return list(value) if isinstance(value, list) else [value]


def _ids(stored: Any) -> set[str]:
    """The file ids a stored value holds (none for an empty or malformed one)."""
    if stored is None:
        return set()
    return {ref["id"] for ref in _references(stored) if isinstance(ref, dict) and "id" in ref}


def _files(conn: Connection, ids: list[str]) -> dict[str, FileInfo]:
    """The uploads ``ids`` name; on PostgreSQL their rows stay locked ``FOR SHARE`` until the
    save commits, so the orphan cleanup (:mod:`formloom.platform.orphan_files`) cannot
    delete a file this save attaches."""
    found: dict[str, FileInfo] = {}
    for batch in chunks(ids):
        query = select(uploaded_file).where(uploaded_file.c.id.in_(batch))
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(read=True)
        rows = conn.execute(query)
        found.update({row.id: info_from_row(row._mapping) for row in rows})
    return found


def _misfit(compiled: CompiledField, info: FileInfo) -> FieldValueError | None:
    field_type, options = compiled.field_type, compiled.options
    assert isinstance(field_type, FileFieldType) and isinstance(options, FileOptions)
    try:
        field_type.check_file(
            options,
            name=info.name,
            size=info.size,
            content_type=info.content_type,
        )
    except FieldValueError as exc:
        return exc
    return None


def _unknown_file(compiled: CompiledField, file_id: str, path: str, lang: str) -> Issue:
    label = compiled.label(lang)
    return Issue(
        path,
        "unknown_file",
        say(
            lang,
            f"{label}: file `{file_id}` does not exist in this environment; upload it with "
            "POST /api/envs/{env}/files and send the id it returns",
            f"{label}：本环境中不存在文件 `{file_id}`；请先通过 POST /api/envs/{{env}}/files "
            "上传，再提交返回的 id",
        ),
    )
