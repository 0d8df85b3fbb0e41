"""Field types holding uploaded files: ``file`` (any document) and ``image`` (raster pictures).

The bytes never travel inside a record. A client uploads a file first
(``POST /api/envs/{env}/files``) and puts the id it gets back in the record:
``{"id": "8c0d…"}``, or a list of them when the field takes ``multiple`` files.
The engine checks the shape of that reference; the platform checks that the
file exists in the environment and fits the field's limits (:meth:`FileFieldType.check_file`)
and fills in what the upload recorded, so a stored value is::

    {"id": "8c0d…", "name": "合同.pdf", "size": 48213, "content_type": "application/pdf"}

Returned values add ``url``: ``files/<id>``, a reference **relative to the
environment's API root** ``/api/envs/{env}/`` (the engine does not know the
environment), i.e. ``/api/envs/{env}/files/<id>`` downloads the file. On input
``name``, ``size``, ``content_type`` and ``url`` are ignored, so a record read
with GET can be sent back as it is.

Content types are the ones the platform sniffed from the bytes, never what the
client declared. Image fields take raster images only (PNG, JPEG, GIF, WebP): an
SVG can carry scripts, so it is never an image here (a ``file`` field may accept
it when ``image/svg+xml`` is named in ``accept``, and it is then only ever
downloaded as an attachment).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from formloom.engine.fields import values
from formloom.engine.fields.base import FieldType, FieldValueError, register
from formloom.engine.fields.objects import shown
from formloom.engine.fields.storage import Storage

_MB = 1024 * 1024
#: The largest file the platform stores at all; ``max_bytes`` options may not exceed it.
MAX_FILE_BYTES = 100 * _MB
#: The image types browsers show without running anything: the only ones image fields take.
RASTER_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
#: The most files one ``multiple`` field may hold.
MAX_FILES_LIMIT = 100
#: The keys a file reference may carry on input; all but ``id`` are ignored.
REFERENCE_KEYS = ("id", "name", "size", "content_type", "url")
#: The keys of a stored file reference (the platform fills all but ``id``).
STORED_KEYS = ("id", "name", "size", "content_type")
_TOKEN = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}"
_MEDIA_RANGE = re.compile(rf"^{_TOKEN}/(\*|{_TOKEN})$")


def content_type_matches(accept: Sequence[str], content_type: str) -> bool:
    """Whether ``content_type`` is one of ``accept`` (an empty list accepts every type).

    Entries are exact types (``application/pdf``) or wildcards (``text/*``).
    ``image/*`` matches the raster types of :data:`RASTER_IMAGE_TYPES` only: an
    SVG must be named (``image/svg+xml``) to be accepted.
    """
    if not accept:
        return True
    family = content_type.split("/", 1)[0]
    for entry in accept:
        if entry == content_type:
            return True
        if entry == "image/*":
            if content_type in RASTER_IMAGE_TYPES:
                return True
        elif entry.endswith("/*") and entry[:-2] == family:
            return True
    return False


def size_text(size: int) -> str:
    """A byte count as people read it: ``512 bytes``, ``12.5 KB``, ``20 MB``."""
    if size < 1024:
        return f"{size} bytes"
    for unit, scale in (("KB", 1024), ("MB", _MB), ("GB", 1024 * _MB)):
        if size < scale * 1024 or unit == "GB":
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    raise AssertionError("unreachable")


class FileOptions(BaseModel):
    """Options of a file field."""

    model_config = ConfigDict(extra="forbid")

    max_bytes: int = Field(
        default=20 * _MB,
        ge=1,
        le=MAX_FILE_BYTES,
        description="Largest file, in bytes (at most 100 MB)",
    )
    accept: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Content types taken, e.g. application/pdf or image/*; empty: any type",
    )
    multiple: bool = Field(default=False, description="Whether the field holds a list of files")
    max_files: int = Field(
        default=10,
        ge=1,
        le=MAX_FILES_LIMIT,
        description="Most files in the list (only with multiple)",
    )

    @field_validator("accept")
    @classmethod
    def _media_ranges(cls, accept: list[str]) -> list[str]:
        cleaned: list[str] = []
        for entry in accept:
            media_range = entry.strip().lower()
            if not _MEDIA_RANGE.match(media_range):
                raise ValueError(
                    f"{entry!r} is not a content type such as application/pdf or a wildcard "
                    "such as image/*; leave `accept` empty to take any type"
                )
            if media_range not in cleaned:
                cleaned.append(media_range)
        return cleaned

    @model_validator(mode="after")
    def _max_files_needs_multiple(self) -> FileOptions:
        if "max_files" in self.model_fields_set and not self.multiple:
            raise ValueError("`max_files` applies only when `multiple` is true")
        return self


class ImageOptions(FileOptions):
    """Options of an image field: raster types only (PNG, JPEG, GIF, WebP)."""

    max_bytes: int = Field(
        default=10 * _MB,
        ge=1,
        le=MAX_FILE_BYTES,
        description="Largest image, in bytes (at most 100 MB)",
    )
    accept: list[str] = Field(
        default_factory=lambda: list(RASTER_IMAGE_TYPES),
        max_length=50,
        description="Image types taken: image/png, image/jpeg, image/gif, image/webp or image/*",
    )

    @model_validator(mode="after")
    def _raster_only(self) -> ImageOptions:
        for entry in self.accept:
            if entry == "image/svg+xml":
                raise ValueError(
                    "image fields do not take SVG: it can carry scripts; "
                    "use a `file` field that accepts image/svg+xml instead"
                )
            if entry != "image/*" and entry not in RASTER_IMAGE_TYPES:
                raise ValueError(
                    f"{entry!r} is not an image type an image field takes; use "
                    f"{', '.join(RASTER_IMAGE_TYPES)} or image/*"
                )
        return self


def _reference_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "id": {
                "type": "string",
                "format": "uuid",
                "description": "The id that POST /api/envs/{env}/files returned",
            },
            "name": {"type": "string", "readOnly": True},
            "size": {"type": "integer", "readOnly": True},
            "content_type": {"type": "string", "readOnly": True},
            "url": {"type": "string", "readOnly": True},
        },
        "required": ["id"],
        "additionalProperties": False,
    }


class FileFieldType(FieldType):
    """What ``file`` and ``image`` share: references to uploads, stored as JSON.

    Input: ``{"id": "<uuid>"}`` (single) or a list of them (``multiple``; the
    same file given twice is kept once, in the order given). Any spelling
    :class:`uuid.UUID` reads is accepted; the id is stored in its canonical
    lowercase form. Limits (``max_bytes``, ``accept``) are checked by the
    platform with :meth:`check_file` when a file is attached, not when the
    options change later: files already attached stay.

    CEL sees the stored value (``dyn``: a map, or a list of maps with
    ``multiple``). Filters: ``is_empty``.
    """

    operators = ("is_empty",)
    cel_type = "dyn"
    #: What one value is called in messages.
    what_en: ClassVar[str] = "file"
    what_zh: ClassVar[str] = "文件"

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("json")

    def value_schema(self, options: FileOptions) -> dict[str, Any]:
        limits = f"at most {size_text(options.max_bytes)} each"
        if options.accept:
            limits += "; types: " + ", ".join(options.accept)
        if options.multiple:
            return {
                "type": "array",
                "items": _reference_schema(),
                "maxItems": options.max_files,
                "description": f"Uploaded {self.what_en}s ({limits})",
            }
        return {**_reference_schema(), "description": f"An uploaded {self.what_en} ({limits})"}

    def normalise(self, value: Any, options: FileOptions) -> Any:
        if not options.multiple:
            if isinstance(value, list):
                raise FieldValueError(
                    "type",
                    f'this field holds one {self.what_en}: send {{"id": "…"}}, not a list',
                    f'此字段只能有一个{self.what_zh}：请提交 {{"id": "…"}}，而不是列表',
                )
            return {"id": self._file_id(value, position=None)}
        if not isinstance(value, list):
            raise values.wrong_type(
                value,
                f'a list of {self.what_en}s such as [{{"id": "…"}}]',
                f'{self.what_zh}列表，例如 [{{"id": "…"}}]',
            )
        ids: list[str] = []
        for position, item in enumerate(value, start=1):
            file_id = self._file_id(item, position=position)
            if file_id not in ids:
                ids.append(file_id)
        if len(ids) > options.max_files:
            raise FieldValueError(
                "too_many",
                f"{len(ids)} {self.what_en}s given; at most {options.max_files} allowed",
                f"共有 {len(ids)} 个{self.what_zh}，最多允许 {options.max_files} 个",
            )
        return [{"id": file_id} for file_id in ids]

    def _file_id(self, item: Any, *, position: int | None) -> str:
        where_en = f"{self.what_en} {position}: " if position else ""
        where_zh = f"第 {position} 个{self.what_zh}：" if position else ""
        if not isinstance(item, dict):
            raise FieldValueError(
                "type",
                f'{where_en}expected a reference such as {{"id": "…"}} to an uploaded '
                f"{self.what_en}, got {shown(item)}",
                f'{where_zh}应为已上传{self.what_zh}的引用，例如 {{"id": "…"}}，'
                f"实际为 {shown(item)}",
            )
        unknown = [k for k in item if k not in REFERENCE_KEYS]
        if unknown:
            raise FieldValueError(
                "unknown_key",
                f"{where_en}unexpected key `{unknown[0]}`; a reference takes "
                f"{', '.join(REFERENCE_KEYS)} (only `id` is read)",
                f"{where_zh}不支持的键 `{unknown[0]}`；引用可含 {', '.join(REFERENCE_KEYS)}"
                "（只读取 `id`）",
            )
        raw = item.get("id")
        try:
            if not isinstance(raw, str):
                raise ValueError
            return str(uuid.UUID(raw.strip()))
        except ValueError:
            raise FieldValueError(
                "invalid_file_id",
                f"{where_en}{shown(raw)} is not a file id; upload the {self.what_en} with "
                'POST /api/envs/{env}/files and send the id it returns: {"id": "…"}',
                f"{where_zh}{shown(raw)} 不是文件 id；请先通过 POST /api/envs/{{env}}/files "
                '上传，再提交返回的 id：{"id": "…"}',
            ) from None

    def to_json(self, value: Any, options: Any) -> Any:
        if isinstance(value, list):
            return [_returned(item) for item in value]
        return _returned(value)

    def check_file(self, options: FileOptions, *, name: str, size: int, content_type: str) -> None:
        """Raise :class:`FieldValueError` unless an uploaded file fits this field's limits.

        ``size`` and ``content_type`` are what the platform recorded (sniffed) at upload.
        """
        if size > options.max_bytes:
            raise FieldValueError(
                "file_too_large",
                f"`{name}` is {size_text(size)}; this field takes {self.what_en}s up to "
                f"{size_text(options.max_bytes)}",
                f"`{name}` 大小为 {size_text(size)}，此字段最多允许 {size_text(options.max_bytes)}",
            )
        if not content_type_matches(options.accept, content_type):
            taken = ", ".join(options.accept)
            raise FieldValueError(
                "file_type_not_accepted",
                f"`{name}` is {content_type}; this field takes {taken}",
                f"`{name}` 的类型为 {content_type}，此字段只接受 {taken}",
            )


def _returned(item: Any) -> Any:
    """A stored reference as JSON: its known keys plus the relative ``url``."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return item
    returned = {key: item[key] for key in STORED_KEYS if key in item}
    returned["url"] = f"files/{item['id']}"
    return returned


@register
class FileType(FileFieldType):
    """An uploaded document of any type ``accept`` allows (default: every type, up to 20 MB)."""

    name = "file"
    options_model = FileOptions


@register
class ImageType(FileFieldType):
    """An uploaded raster image: PNG, JPEG, GIF or WebP by its bytes (default up to 10 MB).

    SVG and anything else whose bytes are not a raster image are refused, whatever
    the file's name or the type its uploader declared.
    """

    name = "image"
    options_model = ImageOptions
    what_en = "image"
    what_zh = "图片"

    def check_file(self, options: FileOptions, *, name: str, size: int, content_type: str) -> None:
        if content_type not in RASTER_IMAGE_TYPES:
            svg = content_type == "image/svg+xml"
            raise FieldValueError(
                "not_an_image",
                f"`{name}` is {content_type}, not a PNG, JPEG, GIF or WebP image"
                + ("; SVG is refused: it can carry scripts" if svg else ""),
                f"`{name}` 的类型为 {content_type}，不是 PNG、JPEG、GIF 或 WebP 图片"
                + ("；不接受 SVG：其中可能含有脚本" if svg else ""),
            )
        super().check_file(options, name=name, size=size, content_type=content_type)
