"""Field types holding content a browser will render: rich text (HTML) and drawn signatures.

Both are checked on save, so that whatever is stored can be shown as it is.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from typing import Any

import nh3
from pydantic import BaseModel, ConfigDict, Field

from formloom.engine.fields import values
from formloom.engine.fields.base import FieldType, FieldValueError, register
from formloom.engine.fields.storage import Storage

_TEXT_TAGS = {"p", "br", "b", "strong", "i", "em", "u", "s", "span", "blockquote", "code", "pre"}
_TABLE_TAGS = {"table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td", "colgroup", "col"}
#: Tags kept by the sanitiser; every other tag is removed (its text kept, except for
#: script and style, whose content goes too).
ALLOWED_TAGS = frozenset(
    {*_TEXT_TAGS, "ul", "ol", "li", "a", "h1", "h2", "h3", "h4", "hr", "img", *_TABLE_TAGS}
)
#: Attributes kept per tag; event handlers (``on*``), ``style`` outside these, ``class``
#: and ``id`` are all removed.
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "span": {"style"},
    "p": {"style"},
    "td": {"colspan", "rowspan", "style"},
    "th": {"colspan", "rowspan", "scope", "style"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start"},
}
#: CSS properties kept inside ``style`` (colours and alignment from rich-text editors).
ALLOWED_STYLES = frozenset(
    {"color", "background-color", "text-align", "font-weight", "font-style", "text-decoration"}
)
#: Schemes of links (``a href``); images (``img src``) take http and https only.
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
_IMAGE_SCHEMES = ("http://", "https://")
#: Raw input may be this many times ``max_length`` before cleaning (editors add markup that
#: the sanitiser drops); beyond that it is refused without being parsed.
_RAW_ALLOWANCE = 4


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src" and not value.strip().lower().startswith(_IMAGE_SCHEMES):
        return None
    return value


_cleaner = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    attributes=ALLOWED_ATTRIBUTES,
    attribute_filter=_keep_attribute,
    url_schemes=set(LINK_SCHEMES),
    url_relative="deny",
    link_rel="noopener noreferrer",
    filter_style_properties=set(ALLOWED_STYLES),
    strip_comments=True,
)


def sanitise_html(html: str) -> str:
    """``html`` with everything outside the allowed tags, attributes and URL schemes removed."""
    return _cleaner.clean(html).strip()


class RichTextOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_length: int = Field(
        default=100_000, ge=1, le=1_000_000, description="Longest sanitised HTML, in characters"
    )


@register
class RichTextType(FieldType):
    """Formatted text as HTML, sanitised on save with nh3 (the ammonia sanitiser).

    Kept: paragraphs and line breaks, bold/italic/underline/strike, lists,
    headings h1-h4, blockquote, code and pre, tables, span, hr; links (``href``
    with http, https or mailto only; relative links removed; every link gets
    ``rel="noopener noreferrer"``); images with http or https ``src`` only (no
    ``data:`` URLs: pasted images belong in file or image fields, and records
    stay small); ``style`` on span, p, td and th limited to colours, alignment,
    weight, style and decoration. Removed: scripts and styles with their content,
    every other tag (its text kept), event handlers, ``javascript:`` and other
    URLs, comments, SVG and MathML. ``max_length`` applies to the sanitised HTML.

    Filters: ``contains`` (over the stored HTML) and ``is_empty``.
    """

    name = "rich_text"
    options_model = RichTextOptions
    operators = ("contains", "is_empty")

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("text")

    def value_schema(self, options: RichTextOptions) -> dict[str, Any]:
        return {"type": "string", "contentMediaType": "text/html", "maxLength": options.max_length}

    def normalise(self, value: Any, options: RichTextOptions) -> str:
        if not isinstance(value, str):
            raise values.wrong_type(value, "HTML text", "HTML 文本")
        if len(value) > options.max_length * _RAW_ALLOWANCE:
            raise FieldValueError(
                "too_long",
                f"is {len(value)} characters long; at most {options.max_length} allowed",
                f"长度为 {len(value)} 个字符，最多允许 {options.max_length} 个",
            )
        html = sanitise_html(value)
        if len(html) > options.max_length:
            raise FieldValueError(
                "too_long",
                f"is {len(html)} characters long after cleaning; at most "
                f"{options.max_length} allowed",
                f"清理后长度为 {len(html)} 个字符，最多允许 {options.max_length} 个",
            )
        return html


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_DATA_URL = re.compile(r"data:([^;,]*)(;base64)?,(.*)", re.IGNORECASE | re.DOTALL)
_PNG_PREFIX = "data:image/png;base64,"


class SignatureOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_bytes: int = Field(
        default=200 * 1024, ge=1024, le=2 * 1024 * 1024, description="Largest PNG, in bytes"
    )


@register
class SignatureType(FieldType):
    """A drawn signature as a PNG data URL: ``data:image/png;base64,iVBORw0KGgo…``.

    The base64 is decoded and checked: PNG signature, an IHDR header with a
    non-zero size first, the IEND chunk last, at most ``max_bytes`` decoded bytes
    (default 200 KB). Stored as a canonical data URL (text) and returned as it is.
    SVG is refused: it can carry scripts and links, and signature pads export PNG.
    """

    name = "signature"
    options_model = SignatureOptions
    operators = ("is_empty",)

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("text")

    def value_schema(self, options: SignatureOptions) -> dict[str, Any]:
        return {
            "type": "string",
            "pattern": "^data:image/png;base64,",
            "maxLength": len(_PNG_PREFIX) + (options.max_bytes + 2) // 3 * 4 + 1024,
        }

    def normalise(self, value: Any, options: SignatureOptions) -> str:
        if not isinstance(value, str):
            raise values.wrong_type(value, "a PNG data URL", "PNG 图片的 data URL")
        parts = _DATA_URL.fullmatch(value.strip())
        if parts is None or parts.group(2) is None:
            raise FieldValueError(
                "invalid_signature",
                "expected a base64 PNG data URL such as data:image/png;base64,iVBORw0KGgo…",
                "应为 base64 编码的 PNG data URL，例如 data:image/png;base64,iVBORw0KGgo…",
            )
        media_type = parts.group(1).strip().lower()
        if media_type != "image/png":
            raise FieldValueError(
                "unsupported_format",
                f"signatures must be PNG images, got {media_type or 'no media type'}; "
                "export the signature as PNG (SVG is refused: it can carry scripts)",
                f"签名必须是 PNG 图片，实际为 {media_type or '未知类型'}；"
                "请导出为 PNG（不接受 SVG：其中可能含有脚本）",
            )
        encoded = re.sub(r"\s+", "", parts.group(3))
        size = len(encoded) // 4 * 3 - encoded[-2:].count("=")  # exact for valid base64
        if size > options.max_bytes:
            raise _too_large(size, options.max_bytes)
        try:
            png = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise FieldValueError(
                "invalid_base64",
                "the signature's base64 data is damaged (invalid characters or padding)",
                "签名的 base64 数据已损坏（含有无效字符或填充错误）",
            ) from None
        _check_png(png)
        return _PNG_PREFIX + base64.b64encode(png).decode("ascii")


def _check_png(png: bytes) -> None:
    """Refuse data that is not a complete PNG image (magic, IHDR first, IEND last)."""
    if not png.startswith(_PNG_MAGIC):
        raise FieldValueError(
            "invalid_signature",
            "the data is not a PNG image (it does not start with the PNG signature)",
            "数据不是 PNG 图片（缺少 PNG 文件头）",
        )
    header = png[8:24]
    if len(header) < 16 or header[4:8] != b"IHDR":
        raise _damaged_png()
    width, height = struct.unpack(">II", header[8:16])
    if width == 0 or height == 0:
        raise FieldValueError(
            "invalid_signature",
            f"the PNG image is empty ({width}×{height} pixels)",
            f"PNG 图片为空（{width}×{height} 像素）",
        )
    if not png.endswith(_PNG_END):
        raise _damaged_png()


def _damaged_png() -> FieldValueError:
    return FieldValueError(
        "invalid_signature",
        "the PNG image is damaged or cut short (no IHDR header or no IEND end marker)",
        "PNG 图片已损坏或不完整（缺少 IHDR 头或 IEND 结束标记）",
    )


def _too_large(size: int, limit: int) -> FieldValueError:
    return FieldValueError(
        "too_large",
        f"the signature image is {size} bytes; at most {limit} allowed",
        f"签名图片为 {size} 字节，最多允许 {limit} 字节",
    )
