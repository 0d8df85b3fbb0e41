"""Uploaded files: stored under the data folder, one ``fl_file`` row each, per environment.

An upload is streamed to a temporary file under ``<data_dir>/files/<env>/.incoming/``
(refused beyond :data:`~formloom.engine.fields.files.MAX_FILE_BYTES` while it is
read), hashed (SHA-256), its real type sniffed from its bytes
(:func:`sniff_content_type`: the type the client declares is never trusted),
then moved to ``<data_dir>/files/<env>/<id[:2]>/<id>`` and recorded in the
environment's ``fl_file`` table. File ids are random UUIDs; paths are built from
the canonical id only, so no name a client sends ever reaches the file system
(names are sanitised for display and downloads: :func:`safe_file_name`).

Files belong to one environment: an id is looked up in that environment's own
table and folder, so another environment's file is "not found".

Orphans: a file no record holds (never attached, or replaced) is removed by the
``clean_orphan_files`` job a day after its upload (:mod:`formloom.platform.orphan_files`);
nothing is deleted with a record itself, which may be restored from the recycle bin.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import unicodedata
import uuid
import zipfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Connection, insert, select

from formloom.engine.errors import Issue
from formloom.engine.fields.files import MAX_FILE_BYTES, size_text
from formloom.platform.database import Workspace
from formloom.platform.environments import require_environment
from formloom.platform.errors import Invalid, NotFound, PlatformError
from formloom.platform.record_errors import say
from formloom.platform.tables import uploaded_file

log = logging.getLogger(__name__)

_INCOMING = ".incoming"
_CHUNK = 1024 * 1024
_SNIFF_BYTES = 64 * 1024
MAX_NAME_LENGTH = 255
_FALLBACK_NAME = "file"
#: Unicode categories removed from names: control, format (bidi overrides, zero-width),
#: line and paragraph separators, surrogates.
_REMOVED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)
_OOXML = "application/vnd.openxmlformats-officedocument."
#: Office Open XML documents, told apart by the part each one must contain.
_OFFICE_PARTS = (
    ("word/document.xml", _OOXML + "wordprocessingml.document"),
    ("xl/workbook.xml", _OOXML + "spreadsheetml.sheet"),
    ("ppt/presentation.xml", _OOXML + "presentationml.presentation"),
)
#: Legacy Office files share one container format (OLE); the name tells which one it is.
_OLE_TYPES = {
    ".doc": "application/msword",
    ".xls": "application/vnd.ms-excel",
    ".ppt": "application/vnd.ms-powerpoint",
}
_TEXT_CONTROLS = frozenset(b"\t\n\r\f\x1b")
OCTET_STREAM = "application/octet-stream"


class UploadTooLarge(PlatformError):
    """An upload is larger than the platform stores (HTTP 413)."""

    status = 413
    code = "file_too_large"


@dataclass(frozen=True)
class FileInfo:
    """What is known about one stored file (a row of ``fl_file``)."""

    id: str
    name: str
    size: int
    content_type: str
    sha256: str
    created_at: datetime
    created_by: int | None

    def reference(self) -> dict[str, Any]:
        """The file as a record's file field stores it."""
        return {
            "id": self.id,
            "name": self.name,
            "size": self.size,
            "content_type": self.content_type,
        }

    def as_json(self, env: str) -> dict[str, Any]:
        """The file as the API returns it, with its download ``url``."""
        return {
            **self.reference(),
            "url": file_url(env, self.id),
            "sha256": self.sha256,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class StoredFile:
    """A file's row and where its bytes are."""

    info: FileInfo
    path: Path


def file_url(env: str, file_id: str) -> str:
    """Where the file downloads: ``/api/envs/{env}/files/{id}``."""
    return f"/api/envs/{env}/files/{file_id}"


def too_large(size: int, *, lang: str, at_least: bool = False) -> UploadTooLarge:
    """The error for an upload of ``size`` bytes (``at_least``: reading stopped there)."""
    limit = size_text(MAX_FILE_BYTES)
    if at_least:
        message = say(
            lang,
            f"the file is larger than {limit}, the most a file may be; compress or split it",
            f"文件超过 {limit}（文件大小上限）；请压缩或拆分后再上传",
        )
    else:
        message = say(
            lang,
            f"the file is {size_text(size)}; files are at most {limit}: compress or split it",
            f"文件大小为 {size_text(size)}，文件最大为 {limit}：请压缩或拆分后再上传",
        )
    return UploadTooLarge(message, issues=[Issue("/file", UploadTooLarge.code, message)])


def store_upload(
    workspace: Workspace,
    env: str,
    *,
    filename: str | None,
    content_type: str | None,
    stream: BinaryIO,
    actor_id: int | None = None,
    lang: str = "en",
) -> dict[str, Any]:
    """Store an uploaded file in ``env``; the file as the API returns it (:meth:`FileInfo.as_json`).

    ``stream`` is read in chunks and refused (:class:`UploadTooLarge`, nothing kept)
    beyond :data:`MAX_FILE_BYTES`; an empty file is :class:`Invalid`. The stored
    type is sniffed from the bytes; ``content_type`` (what the client declared)
    only tells CSV from other plain text. :class:`NotFound` for an unknown environment.
    """
    require_environment(workspace, env)
    name = safe_file_name(filename)
    incoming = files_folder(workspace, env) / _INCOMING
    incoming.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=incoming, suffix=".part")
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            size, sha256, head = _copy(stream, out, lang=lang)
        if size == 0:
            message = say(lang, "the file is empty", "文件为空")
            raise Invalid(message, issues=[Issue("/file", "empty_file", message)])
        sniffed = sniff_content_type(temp, head, name=name, declared=content_type)
        info = FileInfo(
            id=str(uuid.uuid4()),
            name=name,
            size=size,
            content_type=sniffed,
            sha256=sha256,
            created_at=datetime.now(UTC),
            created_by=actor_id,
        )
        final = file_path(workspace, env, info.id)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    try:
        with workspace.begin(env) as conn:
            conn.execute(insert(uploaded_file).values(asdict(info)))
    except BaseException:
        final.unlink(missing_ok=True)
        raise
    return info.as_json(env)


def _copy(stream: BinaryIO, out: BinaryIO, *, lang: str) -> tuple[int, str, bytes]:
    """Copy ``stream`` to ``out`` (synced to disk): size, SHA-256 (hex) and the first bytes."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    while chunk := stream.read(_CHUNK):
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise too_large(size, lang=lang, at_least=True)
        if len(head) < _SNIFF_BYTES:
            head += chunk[: _SNIFF_BYTES - len(head)]
        digest.update(chunk)
        out.write(chunk)
    out.flush()
    os.fsync(out.fileno())
    return size, digest.hexdigest(), head


def file_info(conn: Connection, file_id: str) -> FileInfo | None:
    """The file ``file_id`` of the connection's environment, or None (also for a malformed id)."""
    canonical = canonical_id(file_id)
    if canonical is None:
        return None
    row = conn.execute(select(uploaded_file).where(uploaded_file.c.id == canonical)).first()
    return None if row is None else info_from_row(row._mapping)


def info_from_row(row: Any) -> FileInfo:
    """A :class:`FileInfo` from an ``fl_file`` row mapping."""
    return FileInfo(
        id=row["id"],
        name=row["name"],
        size=int(row["size"]),
        content_type=row["content_type"],
        sha256=row["sha256"],
        created_at=row["created_at"],
        created_by=row["created_by"],
    )


def locate_file(workspace: Workspace, env: str, file_id: str, *, lang: str = "en") -> StoredFile:
    """The file ``file_id`` of ``env`` and the path of its bytes; :class:`NotFound` otherwise."""
    require_environment(workspace, env)
    with workspace.begin(env, readonly=True) as conn:
        info = file_info(conn, file_id)
    if info is None:
        message = say(
            lang,
            f"file `{file_id}` does not exist in environment `{env}`; upload it with "
            f"POST /api/envs/{env}/files",
            f"环境 `{env}` 中不存在文件 `{file_id}`；请通过 POST /api/envs/{env}/files 上传",
        )
        raise NotFound(message)
    path = file_path(workspace, env, info.id)
    if not path.is_file():
        log.error("file %s of environment %s is recorded but missing at %s", info.id, env, path)
        message = say(
            lang,
            f"the content of file `{info.id}` is missing from the data folder; restore the "
            "data folder from a backup",
            f"文件 `{info.id}` 的内容在数据目录中缺失；请从备份恢复数据目录",
        )
        raise NotFound(message)
    return StoredFile(info, path)


def open_file(
    workspace: Workspace, env: str, file_id: str, *, lang: str = "en"
) -> tuple[FileInfo, BinaryIO]:
    """The file ``file_id`` of ``env`` and its bytes opened for reading (the caller closes them)."""
    stored = locate_file(workspace, env, file_id, lang=lang)
    return stored.info, stored.path.open("rb")


def files_folder(workspace: Workspace, env: str) -> Path:
    """The folder holding the environment's files."""
    return workspace.env_files_dir(env)


def file_path(workspace: Workspace, env: str, file_id: str) -> Path:
    """Where the bytes of file ``file_id`` (a canonical UUID) are kept."""
    canonical = canonical_id(file_id)
    if canonical is None or canonical != file_id:
        raise ValueError(f"{file_id!r} is not a canonical file id")
    return files_folder(workspace, env) / canonical[:2] / canonical


def canonical_id(file_id: str) -> str | None:
    """``file_id`` as a lowercase hyphenated UUID, or None when it is not a UUID."""
    try:
        return str(uuid.UUID(file_id.strip()))
    except (ValueError, AttributeError):
        return None


def safe_file_name(raw: str | None) -> str:
    """A file name fit to show and to offer on download, whatever the client sent.

    Folders are dropped (``../../etc/passwd`` → ``passwd``, ``C:\\x\\a.pdf`` →
    ``a.pdf``); control and format characters (bidi overrides, zero-width) are
    removed; the name is NFC-normalised, trimmed and cut to 255 characters,
    keeping a short extension. Nothing is left → ``file``.
    """
    name = unicodedata.normalize("NFC", raw or "")
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in _REMOVED_CATEGORIES)
    name = name.strip()
    if name in ("", ".", ".."):
        return _FALLBACK_NAME
    if len(name) > MAX_NAME_LENGTH:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and 0 < len(extension) <= 16:
            name = stem[: MAX_NAME_LENGTH - len(extension) - 1].rstrip() + "." + extension
        else:
            name = name[:MAX_NAME_LENGTH]
    return name


def sniff_content_type(path: Path, head: bytes, *, name: str, declared: str | None) -> str:
    """The content type of the file at ``path`` told from its bytes (``head``: its start).

    Recognised by their bytes: PNG, JPEG, GIF, WebP, PDF; ZIP archives, and inside
    them Word, Excel and PowerPoint documents (.docx, .xlsx, .pptx); legacy Office
    files (.doc, .xls, .ppt: the container by its bytes, the kind by the name);
    SVG (markup mentioning ``<svg`` near its start: ``image/svg+xml``, never an
    image); other
    text is ``text/csv`` when named ``.csv`` or declared ``text/csv``, else
    ``text/plain``. Anything else is ``application/octet-stream``.
    """
    for magic, content_type in _MAGIC:
        if head.startswith(magic):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_type(path)
    if head.startswith(_OLE):
        return _OLE_TYPES.get(Path(name).suffix.lower(), OCTET_STREAM)
    if not _is_text(head):
        return OCTET_STREAM
    if _is_svg(head):
        return "image/svg+xml"
    declared_type = (declared or "").split(";", 1)[0].strip().lower()
    if Path(name).suffix.lower() == ".csv" or declared_type == "text/csv":
        return "text/csv"
    return "text/plain"


def _zip_type(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            parts = set(archive.namelist())
    except zipfile.BadZipFile:
        return OCTET_STREAM
    for part, content_type in _OFFICE_PARTS:
        if part in parts:
            return content_type
    return "application/zip"


def _is_svg(head: bytes) -> bool:
    """Markup mentioning ``<svg`` near its start (generous on purpose: never an image then)."""
    start = head.removeprefix(b"\xef\xbb\xbf").lstrip()[:4096].lower()
    return start.startswith(b"<") and b"<svg" in start


def _is_text(head: bytes) -> bool:
    """Whether the bytes read as text: no NUL, hardly any other control characters."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True  # UTF-16 with a byte order mark
    if b"\x00" in head:
        return False
    controls = sum(1 for byte in head if byte < 0x20 and byte not in _TEXT_CONTROLS)
    return controls * 100 <= len(head)
