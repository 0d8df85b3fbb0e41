"""Import files: storing an upload under the data folder, telling its kind, reading its rows.

Accepted: CSV (UTF-8 with or without a BOM, UTF-16 with a BOM as Excel's
"Unicode text" saves it, and GB18030/GBK as Chinese Excel saves "CSV"; comma,
semicolon or tab separated) and XLSX/XLSM workbooks (the first sheet unless one
is named). The kind is told from the content, not the name: a legacy ``.xls``,
a PDF or an image is refused with what to do instead.

Row numbers are the spreadsheet's: the header is row 1, the first record row 2,
so an error message points at the row a person sees in Excel. Blank rows keep
their number and are skipped.
"""

from __future__ import annotations

import codecs
import csv
import io
import shutil
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from formloom.engine.errors import Issue
from formloom.platform.cell_formats import Cell, is_empty
from formloom.platform.errors import Invalid, PlatformError
from formloom.platform.record_errors import say

FileFormat = Literal["csv", "xlsx"]

#: The largest file an import accepts.
MAX_FILE_BYTES = 50 * 1024 * 1024
#: The most record rows (after the header) one import accepts.
MAX_ROWS = 200_000
_CHUNK = 1024 * 1024
_SNIFF_BYTES = 64 * 1024
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_BINARY_MAGIC = {
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\x1f\x8b": "a gzip archive",
    b"Rar!": "a RAR archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
}
_DELIMITERS = (",", "\t", ";")


class FileTooLarge(PlatformError):
    """The upload is larger than an import accepts (HTTP 413)."""

    status = 413
    code = "file_too_large"


class UnsupportedFile(PlatformError):
    """The upload is neither CSV nor XLSX (HTTP 415)."""

    status = 415
    code = "unsupported_file"


@dataclass(frozen=True)
class SheetRow:
    """One record row: its number in the file and its cells (as many as there are headers)."""

    number: int
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class Sheet:
    """The header and the record rows of an import file."""

    headers: list[str]
    #: Record rows after the header (blank rows included; for XLSX the file's own estimate).
    row_count: int
    _read: Callable[[], Iterator[SheetRow]]

    def rows(self) -> Iterator[SheetRow]:
        """The non-blank record rows, in file order (each call reads the file again)."""
        return (row for row in self._read() if not all(is_empty(c) for c in row.cells))


def store_upload(
    source: BinaryIO, destination: Path, *, lang: str, max_bytes: int | None = None
) -> int:
    """Copy an upload to ``destination`` (created), refusing more than ``max_bytes``; its size.

    ``max_bytes`` defaults to :data:`MAX_FILE_BYTES`.
    """
    max_bytes = MAX_FILE_BYTES if max_bytes is None else max_bytes
    destination.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    try:
        with destination.open("wb") as out:
            while chunk := source.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise too_large(size, max_bytes, lang=lang, at_least=True)
                out.write(chunk)
    except BaseException:
        shutil.rmtree(destination.parent, ignore_errors=True)
        raise
    if size == 0:
        shutil.rmtree(destination.parent, ignore_errors=True)
        message = say(lang, "the file is empty", "文件为空")
        raise Invalid(message, issues=[Issue("/file", "empty_file", message)])
    return size


def too_large(size: int, max_bytes: int, *, lang: str, at_least: bool = False) -> FileTooLarge:
    """The error for a file of ``size`` bytes (``at_least``: reading stopped there)."""
    shown, limit = _megabytes(size), _megabytes(max_bytes)
    more = "more than " if at_least else ""
    message = say(
        lang,
        f"the file is {more}{shown}; an import takes at most {limit}: split it into smaller "
        "files, or remove columns you do not import",
        f"文件大小为{'超过 ' if at_least else ''}{shown}，每次导入最多 {limit}："
        "请拆分为多个较小的文件，或删除不需要导入的列",
    )
    return FileTooLarge(message, issues=[Issue("/file", FileTooLarge.code, message)])


def detect_format(path: Path, file_name: str, *, lang: str) -> FileFormat:
    """Tell CSV from XLSX by the content; refuse anything else with what to do instead."""
    with path.open("rb") as f:
        head = f.read(_SNIFF_BYTES)
    if head.startswith(b"PK\x03\x04"):
        if _is_workbook(path):
            return "xlsx"
        raise _unsupported(
            lang,
            f"`{file_name}` is a ZIP archive but not an Excel workbook (.xlsx)",
            f"`{file_name}` 是 ZIP 压缩包，但不是 Excel 工作簿（.xlsx）",
        )
    if head.startswith(_OLE):
        raise _unsupported(
            lang,
            f"`{file_name}` is an Excel 97-2003 workbook (.xls), which is not supported",
            f"`{file_name}` 是 Excel 97-2003 工作簿（.xls），暂不支持",
        )
    for magic, what in _BINARY_MAGIC.items():
        if head.startswith(magic):
            raise _unsupported(lang, f"`{file_name}` is {what}", f"`{file_name}` 不是表格文件")
    if not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and b"\x00" in head:
        raise _unsupported(
            lang, f"`{file_name}` is a binary file", f"`{file_name}` 是二进制文件，不是表格文件"
        )
    return "csv"


@contextmanager
def open_sheet(
    path: Path, file_format: FileFormat, *, lang: str, sheet_name: str | None = None
) -> Iterator[Sheet]:
    """The file's header and rows; :class:`Invalid` for a file without a header or too many rows."""
    if file_format == "csv":
        sheet = _csv_sheet(path, lang=lang)
        _check_shape(sheet, lang)
        yield sheet
        return
    from openpyxl import load_workbook

    with path.open("rb") as source:
        try:
            workbook = load_workbook(source, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a damaged workbook
            message = say(
                lang,
                f"the workbook cannot be read ({exc}); open it in Excel and save it again",
                f"无法读取该工作簿（{exc}）；请在 Excel 中打开后重新保存",
            )
            raise Invalid(
                message, issues=[Issue("/file", "unreadable_workbook", message)]
            ) from None
        try:
            sheet = _xlsx_sheet(workbook, sheet_name, lang=lang)
            _check_shape(sheet, lang)
            yield sheet
        finally:
            workbook.close()


def decode_text(data: bytes, *, lang: str) -> str:
    """Text of a CSV file: UTF-8 (BOM optional), UTF-16 with a BOM, else GB18030 (GBK)."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    message = say(
        lang,
        "the file's text encoding cannot be read (neither UTF-8 nor GBK); save it from Excel "
        "as “CSV UTF-8 (comma delimited)”",
        "无法识别文件的文本编码（既不是 UTF-8 也不是 GBK）；"
        "请在 Excel 中另存为“CSV UTF-8（逗号分隔）”",
    )
    raise Invalid(message, issues=[Issue("/file", "unknown_encoding", message)])


def _csv_sheet(path: Path, *, lang: str) -> Sheet:
    text = decode_text(path.read_bytes(), lang=lang)
    first_line = text.split("\n", 1)[0]
    delimiter = max(_DELIMITERS, key=first_line.count)
    if first_line.count(delimiter) == 0:
        delimiter = ","
    try:
        row_count = sum(1 for _ in csv.reader(io.StringIO(text), delimiter=delimiter)) - 1
    except csv.Error as exc:
        message = say(lang, f"the CSV file cannot be read: {exc}", f"无法读取 CSV 文件：{exc}")
        raise Invalid(message, issues=[Issue("/file", "invalid_csv", message)]) from None
    headers = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    width = len(headers)

    def rows() -> Iterator[SheetRow]:
        reader = csv.reader(io.StringIO(text), delimiter=delimiter)
        next(reader, None)
        for number, cells in enumerate(reader, start=2):
            padded = (*cells[:width], *([None] * (width - len(cells))))
            yield SheetRow(number, tuple(c if c != "" else None for c in padded))

    return Sheet(_header_names(headers), max(row_count, 0), rows)


def _xlsx_sheet(workbook: object, sheet_name: str | None, *, lang: str) -> Sheet:
    from openpyxl import Workbook
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    assert isinstance(workbook, Workbook)
    if sheet_name is not None and sheet_name not in workbook.sheetnames:
        names = ", ".join(workbook.sheetnames)
        message = say(
            lang,
            f"the workbook has no sheet named `{sheet_name}`; its sheets are: {names}",
            f"工作簿中没有名为 `{sheet_name}` 的工作表；现有工作表：{names}",
        )
        raise Invalid(message, issues=[Issue("/options/sheet", "unknown_sheet", message)])
    worksheet = workbook[sheet_name] if sheet_name else workbook.worksheets[0]
    assert isinstance(worksheet, ReadOnlyWorksheet)
    # The dimension a file declares is only an estimate (some writers leave it at A1):
    # it sizes the progress bar, but every row present is read.
    estimate = worksheet.max_row
    worksheet.reset_dimensions()
    header_cells = next(worksheet.iter_rows(values_only=True, max_row=1), ())
    headers = _header_names([plain_header(c) for c in header_cells])
    width = len(headers)

    def rows() -> Iterator[SheetRow]:
        values = worksheet.iter_rows(values_only=True, min_row=2, max_col=width or None)
        for number, cells in enumerate(values, start=2):
            if number - 1 > MAX_ROWS:
                raise _too_many_rows(number - 1, lang)
            padded = (*cells[:width], *([None] * (width - len(cells))))
            yield SheetRow(number, tuple(_xlsx_cell(c) for c in padded))

    return Sheet(headers, max((estimate or 1) - 1, 0), rows)


def plain_header(cell: object) -> str:
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell)


def _xlsx_cell(cell: object) -> Cell:
    if isinstance(cell, str):
        return cell if cell.strip() else None
    return cell  # type: ignore[return-value]


def _header_names(raw: list[str]) -> list[str]:
    """Trimmed headers; a blank one becomes ``(column N)``, a repeated one gets `` (2)``."""
    while raw and not raw[-1].strip():
        raw = raw[:-1]
    names: list[str] = []
    for position, header in enumerate(raw, start=1):
        name = header.strip() or f"(column {position})"
        candidate, copy = name, 2
        while candidate in names:
            candidate = f"{name} ({copy})"
            copy += 1
        names.append(candidate)
    return names


def _check_shape(sheet: Sheet, lang: str) -> None:
    if not sheet.headers:
        message = say(
            lang,
            "the file has no header row: put the column names in the first row",
            "文件没有表头：请在第一行填写列名",
        )
        raise Invalid(message, issues=[Issue("/file", "no_header", message)])
    if sheet.row_count > MAX_ROWS:
        raise _too_many_rows(sheet.row_count, lang)


def _too_many_rows(count: int, lang: str) -> Invalid:
    message = say(
        lang,
        f"the file has {count:,} rows or more; an import takes at most {MAX_ROWS:,}: "
        "split it into several files",
        f"文件至少有 {count:,} 行，每次导入最多 {MAX_ROWS:,} 行：请拆分为多个文件",
    )
    return Invalid(message, issues=[Issue("/file", "too_many_rows", message)])


def _is_workbook(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return "xl/workbook.xml" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def _unsupported(lang: str, en: str, zh: str) -> UnsupportedFile:
    message = say(
        lang,
        f"{en}; import a CSV file (UTF-8 or GBK) or an Excel workbook (.xlsx): in Excel use "
        "File → Save As → “Excel Workbook (*.xlsx)” or “CSV UTF-8”",
        f"{zh}；请导入 CSV 文件（UTF-8 或 GBK）或 Excel 工作簿（.xlsx）：在 Excel 中选择"
        "“文件 → 另存为 → Excel 工作簿（*.xlsx）”或“CSV UTF-8”",
    )
    return UnsupportedFile(message, issues=[Issue("/file", UnsupportedFile.code, message)])


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"
