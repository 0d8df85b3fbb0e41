"""Exporting a filtered list of records to CSV or XLSX.

The export takes the same request as the records list (``where``, ``q``,
``sort``, ``fields``, simple filters) and pages through every matching record
with the list's keyset cursor (:data:`PAGE_ROWS` per page, each page its own
short read transaction), so an export of a big table neither holds a
transaction open nor loads every row at once. Without a sort, records come
oldest first (by id), the order an import would create them in.

What a person gets (:mod:`formloom.platform.cell_formats`):

- headers are the fields' labels in the request's language (``headers=names``:
  API names), the first column the record id (``编号``/``ID``/``id``);
- choices as their labels, lookups as the looked-up record's title (its id when
  the target has no title field), booleans ``是/否`` or ``Yes/No``, several
  values joined with ``; ``, date-times as local time in the request's
  ``timezone`` (default Asia/Shanghai), durations as ``1d 2h``;
- CSV: UTF-8 with a BOM (Excel then opens Chinese text correctly), streamed
  page by page; XLSX: numbers, dates and date-times as real cells, built in a
  temporary file before the first byte is sent.

Every value an export writes imports again unchanged (given the same
timezone), so an export is also a template for an import.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import IO, Any, Literal

from formloom.engine.errors import Issue
from formloom.engine.records.compiled import CompiledEntity
from formloom.engine.relative_dates import DEFAULT_TIMEZONE, timezone_named
from formloom.platform.access import load_access
from formloom.platform.cell_formats import Cell, CellContext, cell_text, format_of
from formloom.platform.database import Workspace
from formloom.platform.entity_runtime import load_entity
from formloom.platform.environments import require_environment
from formloom.platform.errors import Invalid
from formloom.platform.import_columns import is_virtual, lookup_target
from formloom.platform.list_request import MAX_LIMIT, ListRequest
from formloom.platform.principal import Principal
from formloom.platform.record_errors import say
from formloom.platform.record_query import ListPage, list_in_environment

ExportFormat = Literal["csv", "xlsx"]
HeaderStyle = Literal["labels", "names"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("csv", "xlsx")
PAGE_ROWS = MAX_LIMIT
#: The most rows an XLSX sheet holds below its header.
XLSX_MAX_ROWS = 1_048_575
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_STREAM_CHUNK = 256 * 1024


@dataclass(frozen=True)
class ExportFile:
    """A file to send: its name, media type and content (produced as it is read)."""

    file_name: str
    media_type: str
    chunks: Iterator[bytes]


def export_records(
    workspace: Workspace,
    *,
    env: str,
    entity: str,
    request: ListRequest,
    principal: Principal,
    file_format: ExportFormat = "csv",
    headers: HeaderStyle = "labels",
    lang: str = "en",
    max_rows: int | None = None,
) -> ExportFile:
    """Every record matching ``request`` as a CSV or XLSX file.

    The request is checked before anything is produced (:class:`Invalid` lists
    every problem, as for a list). ``max_rows`` stops after that many records.
    ``principal`` needs the ``export`` permission; the file holds the records and
    fields they may read, nothing more.
    """
    if file_format not in EXPORT_FORMATS:
        message = f"unknown export format `{file_format}`; use csv or xlsx"
        raise Invalid(message, issues=[Issue("/query/format", "unknown_format", message)])
    require_environment(workspace, env)
    with workspace.begin(env, readonly=True) as conn:
        access = load_access(conn, cache_key=workspace.cache_key, env=env, principal=principal)
        access.require(entity, "read", lang=lang)
        access.require(entity, "export", lang=lang)
        hidden = access.hidden(entity)
        compiled = load_entity(conn, namespace=workspace.cache_key, env=env, name=entity).compiled
    asked = replace(
        request,
        limit=PAGE_ROWS,
        after=None,
        with_total=False,
        expand_titles=True,
        sort=request.sort or ["id"],
    )
    first = list_in_environment(workspace, env, entity, asked, principal=principal, lang=lang)
    timezone = timezone_named(asked.timezone) or timezone_named(DEFAULT_TIMEZONE)
    assert timezone is not None
    sheet = _Sheet(
        compiled,
        [
            f
            for f in (asked.fields or compiled.fields)
            if f in compiled.fields and not is_virtual(compiled.fields[f]) and f not in hidden
        ],
        CellContext(lang, timezone),
        headers,
    )
    pages = _pages(workspace, env, entity, asked, first, principal)
    rows = _limited((sheet.cells(item) for page in pages for item in page.items), max_rows)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    file_name = f"{entity}-{stamp}.{file_format}"
    if file_format == "csv":
        return ExportFile(file_name, MEDIA_TYPES["csv"], _csv_chunks(sheet.header(), rows))
    content = _xlsx_file(sheet.header(), rows, title=compiled.document.label.en, lang=lang)
    return ExportFile(file_name, MEDIA_TYPES["xlsx"], _read_chunks(content))


class _Sheet:
    """The columns of an export and how a record fills them."""

    def __init__(
        self,
        entity: CompiledEntity,
        fields: list[str],
        cells: CellContext,
        headers: HeaderStyle,
    ) -> None:
        self.entity = entity
        self.fields = list(dict.fromkeys(fields))
        self.context = cells
        self.header_style = headers
        self.lookups = {n for n in self.fields if lookup_target(entity.fields[n]) is not None}

    def header(self) -> list[str]:
        if self.header_style == "names":
            return ["id", *self.fields]
        id_header = say(self.context.lang, "ID", "编号")
        labels = [self.entity.fields[n].label(self.context.lang) for n in self.fields]
        repeated = {label for label in labels if labels.count(label) > 1}
        return [
            id_header,
            *(
                f"{label} ({n})" if label in repeated else label
                for label, n in zip(labels, self.fields, strict=True)
            ),
        ]

    def cells(self, item: dict[str, Any]) -> list[Cell]:
        row: list[Cell] = [item["id"]]
        titles = item.get("_titles") or {}
        for name in self.fields:
            value = item.get(name)
            if value is None:
                row.append(None)
            elif name in self.lookups:
                title = titles.get(name)
                row.append(title if title is not None else value)
            else:
                field = self.entity.fields[name]
                row.append(format_of(field).render(value, field, self.context))
        return row


def _pages(
    workspace: Workspace,
    env: str,
    entity: str,
    request: ListRequest,
    first: ListPage,
    principal: Principal,
) -> Iterator[ListPage]:
    page = first
    yield page
    while page.next is not None:
        next_request = replace(request, after=page.next)
        page = list_in_environment(workspace, env, entity, next_request, principal=principal)
        yield page


def _limited(rows: Iterator[list[Cell]], max_rows: int | None) -> Iterator[list[Cell]]:
    for count, row in enumerate(rows, start=1):
        yield row
        if max_rows is not None and count >= max_rows:
            return


def _csv_chunks(header: list[str], rows: Iterator[list[Cell]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    yield "\ufeff".encode() + buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    for row in rows:
        writer.writerow([cell_text(c) for c in row])
        if buffer.tell() >= _STREAM_CHUNK:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def _xlsx_file(
    header: list[str], rows: Iterator[list[Cell]], *, title: str, lang: str
) -> IO[bytes]:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=_sheet_title(title))
    sheet.append(header)
    for count, row in enumerate(rows, start=1):
        if count > XLSX_MAX_ROWS:
            message = say(
                lang,
                f"more than {XLSX_MAX_ROWS:,} records match, more than an XLSX sheet holds; "
                "export to CSV or narrow the filter",
                f"匹配的记录超过 {XLSX_MAX_ROWS:,} 条，超出 XLSX 工作表的容量；"
                "请导出为 CSV 或缩小筛选范围",
            )
            raise Invalid(message, issues=[Issue("/query/format", "too_many_rows", message)])
        sheet.append(row)
    # Closed by _read_chunks once sent (or here if saving fails).
    content = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # noqa: SIM115
    try:
        workbook.save(content)
    except BaseException:
        content.close()
        raise
    content.seek(0)
    return content


def _read_chunks(content: IO[bytes]) -> Iterator[bytes]:
    with content:
        while chunk := content.read(_STREAM_CHUNK):
            yield chunk


def _sheet_title(text: str) -> str:
    cleaned = "".join("_" if c in "[]:*?/\\" else c for c in text).strip()
    return cleaned[:31] or "records"
