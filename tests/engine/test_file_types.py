"""The `file` and `image` field types: options, references, returned values, upload checks.

The platform side (uploads, sniffing, the existence checks) is in
``tests/platform/test_files.py``.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from formloom.engine.entities import entity_kind
from formloom.engine.expressions.types import is_declarable
from formloom.engine.fields import FieldValueError, field_types
from formloom.engine.fields.conversion import plan_conversion
from formloom.engine.fields.files import (
    MAX_FILE_BYTES,
    FileFieldType,
    FileOptions,
    content_type_matches,
    size_text,
)
from formloom.engine.records.compiled import compile_entity
from formloom.engine.records.payload import check_payload
from formloom.engine.records.schema import record_schema

LABEL = {"zh": "附件", "en": "Attachment"}
FILE_ID = "8c0d5c4e-1b1a-4b1b-9a4e-0f6a8d5e1c2b"
OTHER_ID = "1f3e2d4c-5b6a-4798-8a9b-0c1d2e3f4a5b"
MB = 1024 * 1024


def file_type(name: str = "file") -> FileFieldType:
    found = field_types.get(name)
    assert isinstance(found, FileFieldType)
    return found


def parsed(type_name: str, raw: dict[str, Any]) -> FileOptions:
    options = field_types.get(type_name).parse_options(raw)
    assert isinstance(options, FileOptions)
    return options


def normalise(type_name: str, value: Any, options: dict[str, Any] | None = None) -> Any:
    field_type = field_types.get(type_name)
    return field_type.normalise(value, field_type.parse_options(options or {}))


def refusal(type_name: str, value: Any, options: dict[str, Any] | None = None) -> FieldValueError:
    with pytest.raises(FieldValueError) as exc:
        normalise(type_name, value, options)
    return exc.value


def option_problems(type_name: str, options: dict[str, Any]) -> list[str]:
    return [i.message for i in field_types.get(type_name).check_options(options, at="/fields/0")]


def misfit(
    type_name: str, options: dict[str, Any], *, size: int, content_type: str
) -> FieldValueError:
    with pytest.raises(FieldValueError) as exc:
        file_type(type_name).check_file(
            parsed(type_name, options),
            name="报价单.pdf",
            size=size,
            content_type=content_type,
        )
    return exc.value


# -- registration, storage, operators, options -------------------------------------------------


@pytest.mark.parametrize("type_name", ["file", "image"])
def test_both_types_are_registered_as_json_with_is_empty_and_a_dyn_cel_type(
    type_name: str,
) -> None:
    field_type = field_types.get(type_name)

    assert field_type.storage({}).kind == "json"
    assert field_type.operators == ("is_empty",)
    assert field_type.cel_type == "dyn"
    assert is_declarable(field_type.cel_type)
    storage = field_type.storage({"multiple": True})
    assert not plan_conversion(storage, field_type.storage({})).changes_column


def test_defaults_differ_between_files_and_images() -> None:
    file_options, image_options = parsed("file", {}), parsed("image", {})

    assert (file_options.max_bytes, file_options.accept) == (20 * MB, [])
    assert image_options.max_bytes == 10 * MB
    assert image_options.accept == [
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
    ]
    assert not file_options.multiple


def test_accept_entries_are_trimmed_lowercased_and_deduplicated() -> None:
    options = parsed("file", {"accept": [" Application/PDF ", "image/*", "application/pdf"]})

    assert options.accept == ["application/pdf", "image/*"]


@pytest.mark.parametrize(
    ("type_name", "options", "expected"),
    [
        ("file", {"max_bytes": MAX_FILE_BYTES + 1}, "less than or equal to 104857600"),
        ("image", {"max_bytes": 0}, "greater than or equal to 1"),
        ("file", {"accept": ["pdf"]}, "'pdf' is not a content type"),
        ("file", {"accept": ["*/*"]}, "leave `accept` empty to take any type"),
        ("file", {"max_files": 3}, "`max_files` applies only when `multiple` is true"),
        ("file", {"multiple": True, "max_files": 101}, "less than or equal to 100"),
        ("image", {"accept": ["image/svg+xml"]}, "image fields do not take SVG"),
        ("image", {"accept": ["application/pdf"]}, "is not an image type an image field takes"),
        ("image", {"maxbytes": 5}, "Extra inputs are not permitted"),
    ],
)
def test_bad_options_are_refused_with_the_reason(
    type_name: str, options: dict[str, Any], expected: str
) -> None:
    problems = option_problems(type_name, options)

    assert len(problems) == 1
    assert expected in problems[0]


def test_the_entity_meta_schema_embeds_the_options_of_both_types() -> None:
    schema = entity_kind.json_schema()
    rules = {
        rule["if"]["properties"]["type"]["const"]: rule["then"]["properties"]["options"]
        for rule in schema["$defs"]["FieldDef"]["allOf"]
    }

    assert {"file", "image"} <= set(schema["$defs"]["FieldDef"]["properties"]["type"]["enum"])
    assert set(rules["file"]["properties"]) == {"max_bytes", "accept", "multiple", "max_files"}
    assert rules["image"]["properties"]["max_bytes"]["maximum"] == MAX_FILE_BYTES


# -- references in, stored values, returned values ------------------------------------------


def test_a_reference_keeps_only_the_canonical_id() -> None:
    sent = {
        "id": FILE_ID.upper(),
        "name": "made-up.exe",
        "size": 1,
        "content_type": "text/plain",
        "url": "files/whatever",
    }

    assert normalise("file", sent) == {"id": FILE_ID}
    assert normalise("image", {"id": "{" + FILE_ID + "}"}) == {"id": FILE_ID}


def test_multiple_files_are_a_list_without_repeats_in_the_order_given() -> None:
    options = {"multiple": True, "max_files": 2}

    stored = normalise("image", [{"id": OTHER_ID}, {"id": FILE_ID}, {"id": OTHER_ID}], options)

    assert stored == [{"id": OTHER_ID}, {"id": FILE_ID}]
    assert normalise("file", [], options) == []


@pytest.mark.parametrize(
    ("type_name", "value", "options", "code", "en", "zh"),
    [
        ("file", FILE_ID, {}, "type", "expected a reference such as", "已上传文件的引用"),
        (
            "file",
            [{"id": FILE_ID}],
            {},
            "type",
            'this field holds one file: send {"id": "…"}, not a list',
            "此字段只能有一个文件",
        ),
        ("image", {"id": "abc"}, {}, "invalid_file_id", "'abc' is not a file id", "不是文件 id"),
        ("image", {"id": 7}, {}, "invalid_file_id", "7 is not a file id", "不是文件 id"),
        ("file", {}, {}, "invalid_file_id", "None is not a file id", "不是文件 id"),
        (
            "file",
            {"id": FILE_ID, "path": "/etc/passwd"},
            {},
            "unknown_key",
            "unexpected key `path`",
            "不支持的键 `path`",
        ),
        (
            "image",
            {"id": FILE_ID},
            {"multiple": True},
            "type",
            "expected a list of images",
            "图片列表",
        ),
        (
            "image",
            [{"id": FILE_ID}, {"id": "nope"}],
            {"multiple": True},
            "invalid_file_id",
            "image 2: 'nope' is not a file id",
            "第 2 个图片",
        ),
        (
            "file",
            [{"id": FILE_ID}, {"id": OTHER_ID}],
            {"multiple": True, "max_files": 1},
            "too_many",
            "2 files given; at most 1 allowed",
            "共有 2 个文件，最多允许 1 个",
        ),
    ],
)
def test_bad_references_are_refused_in_english_and_chinese(
    type_name: str, value: Any, options: dict[str, Any], code: str, en: str, zh: str
) -> None:
    error = refusal(type_name, value, options)

    assert error.code == code
    assert en in error.en
    assert zh in error.zh


def test_returned_values_add_a_url_relative_to_the_environment_api() -> None:
    stored = {"id": FILE_ID, "name": "合同.pdf", "size": 10, "content_type": "application/pdf"}
    field_type = field_types.get("file")
    options = field_type.parse_options({"multiple": True})

    returned = field_type.to_json([stored], options)

    assert returned == [{**stored, "url": f"files/{FILE_ID}"}]
    assert field_type.normalise(returned, options) == [{"id": FILE_ID}]  # a GET can be sent back


def test_the_value_schema_takes_what_a_get_returns_and_names_the_limits() -> None:
    field_type = field_types.get("image")
    options = field_type.parse_options({"multiple": True, "max_files": 2})
    schema = field_type.value_schema(options)
    returned = field_type.to_json(
        [{"id": FILE_ID, "name": "a.png", "size": 3, "content_type": "image/png"}], options
    )

    jsonschema.validate(returned, schema)
    assert schema["maxItems"] == 2
    assert "at most 10 MB each" in schema["description"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([{"name": "no id"}], schema)


def test_a_get_record_with_file_fields_passes_check_payload_unchanged() -> None:
    document = entity_kind.validate(
        {
            "name": "contract",
            "label": LABEL,
            "fields": [
                {"name": "scan", "label": LABEL, "type": "file"},
                {"name": "photos", "label": LABEL, "type": "image", "options": {"multiple": True}},
            ],
        }
    )
    entity = compile_entity(document)
    record = {
        "scan": {"id": FILE_ID, "name": "a.pdf", "url": f"files/{FILE_ID}"},
        "photos": [{"id": OTHER_ID, "url": f"files/{OTHER_ID}"}],
    }

    checked = check_payload(entity, record, partial=False)

    assert checked.issues == []
    assert checked.values == {"scan": {"id": FILE_ID}, "photos": [{"id": OTHER_ID}]}
    assert record_schema(entity)["properties"]["scan"]["x-formloom-type"] == "file"


# -- what an upload must be to be attached -------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "content_type", "matches"),
    [
        ([], "application/x-anything", True),
        (["application/pdf"], "application/pdf", True),
        (["application/pdf"], "application/zip", False),
        (["text/*"], "text/csv", True),
        (["text/*"], "application/json", False),
        (["image/*"], "image/webp", True),
        (["image/*"], "image/svg+xml", False),
        (["image/svg+xml"], "image/svg+xml", True),
        (["application/pdf", "image/*"], "image/png", True),
    ],
)
def test_accept_matches_types_and_wildcards(
    accept: list[str], content_type: str, matches: bool
) -> None:
    assert content_type_matches(accept, content_type) is matches


def test_a_file_larger_than_the_field_takes_is_refused() -> None:
    error = misfit("file", {"max_bytes": MB}, size=MB + 1, content_type="application/pdf")

    assert error.code == "file_too_large"
    assert error.en == "`报价单.pdf` is 1 MB; this field takes files up to 1 MB"
    assert "最多允许 1 MB" in error.zh


def test_a_type_outside_accept_is_refused() -> None:
    error = misfit("file", {"accept": ["image/*"]}, size=10, content_type="application/pdf")

    assert error.code == "file_type_not_accepted"
    assert error.en == "`报价单.pdf` is application/pdf; this field takes image/*"


@pytest.mark.parametrize(
    ("content_type", "svg"), [("application/pdf", False), ("image/svg+xml", True)]
)
def test_an_image_field_takes_raster_images_only(content_type: str, svg: bool) -> None:
    error = misfit("image", {"accept": ["image/*"]}, size=10, content_type=content_type)

    assert error.code == "not_an_image"
    assert "not a PNG, JPEG, GIF or WebP image" in error.en
    assert ("SVG is refused: it can carry scripts" in error.en) is svg
    assert ("不接受 SVG" in error.zh) is svg


def test_an_image_within_the_limits_passes() -> None:
    options = parsed("image", {"accept": ["image/png"]})

    file_type("image").check_file(options, name="a.png", size=100, content_type="image/png")


def test_sizes_read_like_people_write_them() -> None:
    assert [size_text(n) for n in (512, 1536, 20 * MB, 100 * MB + 1)] == [
        "512 bytes",
        "1.5 KB",
        "20 MB",
        "100 MB",
    ]
