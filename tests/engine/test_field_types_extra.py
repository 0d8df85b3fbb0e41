"""The extra field types: rich_text, duration, tags, rating, progress, json, region, address,
geo, signature, user and team.

Good values are normalised; every bad value is refused with a code and a message in
English and Chinese.
"""

from __future__ import annotations

import base64
import struct
import zlib
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from formloom.engine.entities import entity_kind
from formloom.engine.errors import DocumentInvalid
from formloom.engine.expressions.types import is_declarable
from formloom.engine.fields import FieldValueError, field_types
from formloom.engine.fields.base import BASIC_OPERATORS, ORDERED_OPERATORS
from formloom.engine.fields.conversion import plan_conversion
from formloom.engine.fields.regions import Divisions, describe_region, divisions, level_of
from formloom.engine.fields.rich import ALLOWED_ATTRIBUTES, ALLOWED_TAGS
from formloom.engine.records.compiled import compile_entity
from formloom.engine.records.payload import check_payload
from formloom.engine.records.schema import record_schema

LABEL = {"zh": "名称", "en": "Name"}
NEW_TYPES = (
    "rich_text",
    "duration",
    "tags",
    "rating",
    "progress",
    "json",
    "region",
    "address",
    "geo",
    "signature",
    "user",
    "team",
)


def normalise(type_name: str, value: Any, options: dict[str, Any] | None = None) -> Any:
    field_type = field_types.get(type_name)
    return field_type.normalise(value, field_type.parse_options(options or {}))


def to_json(type_name: str, stored: Any, options: dict[str, Any] | None = None) -> Any:
    field_type = field_types.get(type_name)
    return field_type.to_json(stored, field_type.parse_options(options or {}))


def refusal(type_name: str, value: Any, options: dict[str, Any] | None = None) -> FieldValueError:
    with pytest.raises(FieldValueError) as exc:
        normalise(type_name, value, options)
    return exc.value


def option_problems(type_name: str, options: dict[str, Any]) -> list[tuple[str, str]]:
    issues = field_types.get(type_name).check_options(options, at="/fields/0")
    return [(i.path, i.message) for i in issues]


def png(width: int = 2, height: int = 1, *, extra: bytes = b"") -> bytes:
    """A real grayscale PNG; ``extra`` goes into a tEXt chunk (to make it larger)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    text = chunk(b"tEXt", b"Comment\x00" + extra) if extra else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + text
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def data_url(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64," + base64.b64encode(data).decode()


# -- the registry, storage, operators, meta-schema -------------------------------------------


@pytest.mark.parametrize(
    ("type_name", "storage", "operators", "cel_type"),
    [
        ("rich_text", "text", ("contains", "is_empty"), "string"),
        (
            "duration",
            "integer",
            ORDERED_OPERATORS,
            "duration",
        ),
        ("tags", "json", ("contains", "is_empty"), "list(string)"),
        (
            "rating",
            "integer",
            ORDERED_OPERATORS,
            "int",
        ),
        (
            "progress",
            "integer",
            ORDERED_OPERATORS,
            "int",
        ),
        ("json", "json", ("is_empty",), "dyn"),
        ("region", "json", ("eq", "in", "is_empty"), "map(string, string)"),
        ("address", "json", ("eq", "in", "contains", "is_empty"), "map(string, dyn)"),
        ("geo", "json", ("is_empty",), "map(string, dyn)"),
        ("signature", "text", ("is_empty",), "string"),
        ("user", "integer", BASIC_OPERATORS, "int"),
        ("team", "integer", BASIC_OPERATORS, "int"),
    ],
)
def test_each_type_declares_storage_operators_and_cel_type(
    type_name: str, storage: str, operators: tuple[str, ...], cel_type: str
) -> None:
    field_type = field_types.get(type_name)

    assert field_type.storage({}).kind == storage
    assert field_type.storage({}).references is None
    assert field_type.operators == operators
    assert field_type.cel_type == cel_type


@pytest.mark.parametrize("type_name", NEW_TYPES)
def test_each_cel_type_is_one_the_expression_engine_declares(type_name: str) -> None:
    assert is_declarable(field_types.get(type_name).cel_type)


@pytest.mark.parametrize("type_name", NEW_TYPES)
def test_a_field_keeps_its_storage_when_republished(type_name: str) -> None:
    storage = field_types.get(type_name).storage({})

    conversion = plan_conversion(storage, storage)

    assert conversion.possible and not conversion.changes_column


def test_integer_measures_convert_to_each_other_and_to_decimal() -> None:
    rating = field_types.get("rating").storage({})
    duration = field_types.get("duration").storage({})
    decimal = field_types.get("decimal").storage({})

    assert plan_conversion(rating, duration).possible
    assert plan_conversion(duration, decimal).possible


def test_the_entity_meta_schema_embeds_the_options_of_every_new_type() -> None:
    schema = entity_kind.json_schema()
    rules = {
        rule["if"]["properties"]["type"]["const"]: rule["then"]["properties"]["options"]
        for rule in schema["$defs"]["FieldDef"]["allOf"]
    }

    assert set(NEW_TYPES) <= set(schema["$defs"]["FieldDef"]["properties"]["type"]["enum"])
    assert rules["rating"]["properties"]["max"]["maximum"] == 10
    assert set(rules["json"]["properties"]) == {"schema", "max_bytes"}
    assert rules["region"]["properties"]["levels"]["enum"] == ["province", "city", "district"]
    assert set(rules["geo"]["properties"]["coordinate_system"]["enum"]) == {
        "wgs84",
        "gcj02",
        "bd09",
    }
    assert set(rules["tags"]["properties"]) == {"max_count", "max_length", "suggestions"}
    validator = jsonschema.Draft202012Validator(schema)
    bad = {"name": "deal", "label": LABEL, "fields": [_field("stars", "rating", max=11)]}
    assert [e.message for e in validator.iter_errors(bad)] == [
        "11 is greater than the maximum of 10"
    ]


def _field(name: str, type_name: str, **options: Any) -> dict[str, Any]:
    return {"name": name, "label": LABEL, "type": type_name, "options": options}


def every_type_entity() -> dict[str, Any]:
    return {
        "name": "visit",
        "label": LABEL,
        "fields": [
            _field("notes", "rich_text", max_length=5000),
            _field("length", "duration", min=60, max=86_400),
            _field("labels", "tags", max_count=5, suggestions=["VIP", "华东"]),
            _field("stars", "rating", max=10),
            _field("done", "progress"),
            _field("payload", "json", schema={"type": "object"}, max_bytes=1024),
            _field("area", "region", levels="city"),
            _field("office", "address", region_levels="district"),
            _field("spot", "geo", coordinate_system="wgs84"),
            _field("sign", "signature", max_bytes=4096),
            _field("owner", "user"),
            _field("squad", "team"),
        ],
    }


def test_an_entity_with_every_new_type_validates() -> None:
    document = entity_kind.validate(every_type_entity())

    assert [f.type for f in document.fields] == list(NEW_TYPES)


@pytest.mark.parametrize(
    ("type_name", "options", "path", "message"),
    [
        ("rating", {"max": 0}, "/fields/0/options/max", "greater than or equal to 1"),
        ("rating", {"max": 11}, "/fields/0/options/max", "less than or equal to 10"),
        ("duration", {"min": 600, "max": 60}, "/fields/0/options", "min 600 is more than max 60"),
        ("duration", {"min": -1}, "/fields/0/options/min", "greater than or equal to 0"),
        ("tags", {"suggestions": ["VIP", "vip"]}, "/fields/0/options", "'vip' appears twice"),
        ("tags", {"suggestions": [" VIP"]}, "/fields/0/options", "must be trimmed"),
        (
            "tags",
            {"max_length": 3, "suggestions": ["long"]},
            "/fields/0/options",
            "longer than max_length 3",
        ),
        ("region", {"levels": "town"}, "/fields/0/options/levels", "'province', 'city' or"),
        ("address", {"default_country": "XX"}, "/fields/0/options/default_country", "ISO 3166"),
        ("geo", {"coordinate_system": "utm"}, "/fields/0/options/coordinate_system", "'wgs84'"),
        ("signature", {"max_bytes": 10}, "/fields/0/options/max_bytes", "greater than or equal"),
        ("rich_text", {"max_length": 0}, "/fields/0/options/max_length", "greater than or equal"),
        ("user", {"entity": "users"}, "/fields/0/options/entity", "Extra inputs"),
        (
            "json",
            {"schema": {"type": "nope"}},
            "/fields/0/options/schema",
            "not a valid JSON Schema: at /type: 'nope' is not valid",
        ),
        (
            "json",
            {"schema": {"$ref": "https://example.com/customer.json"}},
            "/fields/0/options/schema",
            "points outside the schema; nothing is fetched",
        ),
        (
            "json",
            {"schema": {"properties": {"a": {"$ref": "#/$defs/missing"}}}},
            "/fields/0/options/schema",
            "at /properties/a/$ref: reference '#/$defs/missing' does not resolve",
        ),
        (
            "json",
            {"schema": {"$schema": "https://example.com/my-dialect"}},
            "/fields/0/options/schema",
            "unknown $schema",
        ),
        ("json", {"max_bytes": 0}, "/fields/0/options/max_bytes", "greater than or equal"),
    ],
)
def test_bad_options_are_refused_with_their_path(
    type_name: str, options: dict[str, Any], path: str, message: str
) -> None:
    problems = option_problems(type_name, options)

    assert [p for p, _ in problems] == [path]
    assert message in problems[0][1]


def test_an_invalid_json_schema_option_fails_entity_validation() -> None:
    raw = {
        "name": "hook",
        "label": LABEL,
        "fields": [_field("payload", "json", schema={"type": "object", "required": "id"})],
    }

    with pytest.raises(DocumentInvalid) as exc:
        entity_kind.validate(raw)

    assert [(i.path, i.code) for i in exc.value.issues] == [
        ("/fields/0/options/schema", "invalid_option")
    ]
    assert "at /required: 'id' is not of type 'array'" in exc.value.issues[0].message


# -- value schemas -----------------------------------------------------------------------------

GOOD_INPUTS: list[tuple[str, dict[str, Any], Any]] = [
    ("rich_text", {}, "<p>Hello <b>world</b></p>"),
    ("duration", {}, 5400),
    ("duration", {}, "1h30m"),
    ("tags", {}, ["VIP", "华东"]),
    ("rating", {}, 4),
    ("progress", {}, 45),
    ("json", {}, {"any": ["json", 1, None]}),
    ("region", {}, {"province": "广东省", "city": "深圳市", "district": "南山区"}),
    ("region", {}, "440305"),
    (
        "address",
        {},
        {
            "region": {"province": "440000", "city": "440300", "district": "440305"},
            "street": "科技园南区 1 号",
            "postcode": "518057",
        },
    ),
    ("geo", {}, {"lat": 22.54, "lng": 113.93, "accuracy_m": 12}),
    ("signature", {}, data_url(png())),
    ("user", {}, 7),
    ("team", {}, 3),
]


@pytest.mark.parametrize(("type_name", "options", "value"), GOOD_INPUTS)
def test_good_inputs_and_their_json_output_fit_the_value_schema(
    type_name: str, options: dict[str, Any], value: Any
) -> None:
    field_type = field_types.get(type_name)
    parsed = field_type.parse_options(options)
    schema = field_type.value_schema(parsed)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)

    output = field_type.to_json(field_type.normalise(value, parsed), parsed)

    assert list(validator.iter_errors(value)) == []
    assert list(validator.iter_errors(output)) == []


def test_to_json_output_normalises_back_to_the_same_stored_value() -> None:
    for type_name, options, value in GOOD_INPUTS:
        stored = normalise(type_name, value, options)

        again = normalise(type_name, to_json(type_name, stored, options), options)

        assert again == stored, type_name


# -- rich_text ---------------------------------------------------------------------------------


class _Markup(HTMLParser):
    """Every tag and attribute of an HTML fragment."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def assert_safe(html: str) -> None:
    """Only allowed tags and attributes; links http/https/mailto; images http/https."""
    markup = _Markup()
    markup.feed(html)
    for tag, attrs in markup.tags:
        assert tag in ALLOWED_TAGS, (tag, html)
        for name, value in attrs.items():
            assert name in ALLOWED_ATTRIBUTES.get(tag, set()) | {"rel"}, (tag, name, html)
            if name == "href":
                assert urlsplit(value or "").scheme in ("http", "https", "mailto"), html
            if name == "src":
                assert urlsplit(value or "").scheme in ("http", "https"), html
    lowered = html.lower()
    for needle in ("<script", "javascript:", "vbscript:", "<svg", "<iframe", "onerror", "onload"):
        assert needle not in lowered, (needle, html)


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p><strong>Hi</strong> <em>there</em></p>", "<p><strong>Hi</strong> <em>there</em></p>"),
        ("<ul><li>one</li><li>two</li></ul>", "<ul><li>one</li><li>two</li></ul>"),
        ("<h2>Plan</h2><blockquote>q</blockquote>", "<h2>Plan</h2><blockquote>q</blockquote>"),
        ("<pre><code>x = 1</code></pre>", "<pre><code>x = 1</code></pre>"),
        (
            '<a href="https://example.com" title="t">site</a>',
            '<a href="https://example.com" title="t" rel="noopener noreferrer">site</a>',
        ),
        (
            '<a href="mailto:sales@example.com">mail</a>',
            '<a href="mailto:sales@example.com" rel="noopener noreferrer">mail</a>',
        ),
        (
            '<table><thead><tr><th colspan="2">报价</th></tr></thead>'
            "<tbody><tr><td>A</td><td>1</td></tr></tbody></table>",
            '<table><thead><tr><th colspan="2">报价</th></tr></thead>'
            "<tbody><tr><td>A</td><td>1</td></tr></tbody></table>",
        ),
        (
            '<img src="https://cdn.example.com/a.png" alt="logo">',
            '<img src="https://cdn.example.com/a.png" alt="logo">',
        ),
        (
            '<span style="color: red; position: fixed">red</span>',
            '<span style="color:red">red</span>',
        ),
        ('<p class="x" id="y">p</p>', "<p>p</p>"),
        ("  <p>trimmed</p>\n", "<p>trimmed</p>"),
        ("<b>unclosed", "<b>unclosed</b>"),
        ("<div>block</div><font>font</font>", "blockfont"),
    ],
)
def test_rich_text_keeps_common_formatting(html: str, expected: str) -> None:
    assert normalise("rich_text", html) == expected


XSS_VECTORS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<img src="https://ok.example/a.png" onerror="alert(1)">',
    "<body onload=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="java&#x09;script:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    "<svg onload=alert(1)><circle r=1 /></svg>",
    "<svg><script>alert(1)</script></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    '<iframe src="https://evil.example"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<object data="https://evil.example/x.swf"></object>',
    '<embed src="https://evil.example/x.swf">',
    '<form action="https://evil.example"><input name=a autofocus onfocus=alert(1)></form>',
    "<details open ontoggle=alert(1)>x</details>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<p style="background:url(javascript:alert(1))">x</p>',
    "<style>@import 'https://evil.example/x.css';</style>",
    '<a href="https://ok.example" onclick="alert(1)" target="_blank">x</a>',
    "<!--<img src=x onerror=alert(1)>-->",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
]


@pytest.mark.parametrize("html", XSS_VECTORS)
def test_rich_text_strips_script_vectors(html: str) -> None:
    cleaned = normalise("rich_text", html)

    assert_safe(cleaned)


def test_rich_text_removes_script_content_but_keeps_surrounding_text() -> None:
    assert normalise("rich_text", "<p>before<script>steal()</script>after</p>") == (
        "<p>beforeafter</p>"
    )


def test_rich_text_refuses_relative_links_and_data_images() -> None:
    html = '<a href="/records/5">r</a><img src="data:image/png;base64,iVBORw0KGgo=">'

    assert normalise("rich_text", html) == '<a rel="noopener noreferrer">r</a><img>'


def test_rich_text_drops_nul_characters() -> None:
    assert "\x00" not in normalise("rich_text", "<p>a\x00b</p>")


def test_rich_text_that_is_only_a_script_becomes_empty() -> None:
    stored = normalise("rich_text", "<script>alert(1)</script>")

    assert stored == ""
    assert field_types.get("rich_text").is_empty(stored)


def test_rich_text_max_length_applies_to_the_cleaned_html() -> None:
    # given: markup the sanitiser drops makes the input longer than max_length
    html = '<p class="' + "x" * 50 + '">' + "a" * 20 + "</p>"

    assert normalise("rich_text", html, {"max_length": 27}) == "<p>" + "a" * 20 + "</p>"
    error = refusal("rich_text", "<p>" + "a" * 30 + "</p>", {"max_length": 27})

    assert error.code == "too_long"
    assert error.en == "is 37 characters long after cleaning; at most 27 allowed"
    assert error.zh == "清理后长度为 37 个字符，最多允许 27 个"


def test_rich_text_refuses_huge_input_before_cleaning() -> None:
    error = refusal("rich_text", "a" * 41, {"max_length": 10})

    assert (error.code, error.en, error.zh) == (
        "too_long",
        "is 41 characters long; at most 10 allowed",
        "长度为 41 个字符，最多允许 10 个",
    )


def test_rich_text_refuses_non_text() -> None:
    error = refusal("rich_text", {"html": "<p>x</p>"})

    assert error.code == "type"
    assert error.en.startswith("expected HTML text, got {")
    assert error.zh.startswith("应为HTML 文本，实际为 {")


# -- duration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "seconds"),
    [
        (5400, 5400),
        (0, 0),
        (3600.0, 3600),
        ("5400", 5400),
        ("1h30m", 5400),
        ("90m", 5400),
        ("2d 3h", 183_600),
        ("01:30:00", 5400),
        ("1:30", 5400),
        ("100:00:05", 360_005),
        ("1天2小时30分", 95_400),
        ("1 小时 30 分钟", 5400),
        ("3个小时", 10_800),
        ("2周", 1_209_600),
        ("45秒", 45),
        ("1.5h", 5400),
        ("1h 30m 15s", 5415),
        ("2 hours 5 minutes", 7500),
        ("1W 2D", 777_600),
        ("PT1H30M", 5400),
        ("P2DT3H", 183_600),
        ("pt0.5m", 30),
        ("P1W", 604_800),
    ],
)
def test_duration_grammar(given: Any, seconds: int) -> None:
    assert normalise("duration", given) == seconds


def test_duration_is_returned_as_seconds() -> None:
    assert to_json("duration", normalise("duration", "1h")) == 3600


@pytest.mark.parametrize(
    ("given", "code", "en", "zh"),
    [
        (
            "abc",
            "invalid_duration",
            '\'abc\' is not a duration; use seconds or a form such as 5400, "1h30m", "90m", '
            '"2d 3h", "01:30:00", "1天2小时30分" or "PT1H30M"',
            "'abc' 不是有效的时长；请使用秒数或如下格式：5400、“1h30m”、“90m”、“2d 3h”、"
            "“01:30:00”、“1天2小时30分”或“PT1H30M”",
        ),
        (
            "30m1h",
            "invalid_duration",
            "'30m1h': give each unit once, largest first (e.g. 1h30m, not 30m1h)",
            "“30m1h”：每个单位只能出现一次，且从大到小排列（如 1h30m，而不是 30m1h）",
        ),
        (
            "1h1h",
            "invalid_duration",
            "'1h1h': give each unit once, largest first (e.g. 1h30m, not 30m1h)",
            "“1h1h”：每个单位只能出现一次，且从大到小排列（如 1h30m，而不是 30m1h）",
        ),
        (
            "3 fortnights",
            "invalid_duration",
            "'3 fortnights': unknown unit `fortnights`; "
            "use w, d, h, m, s (or 周, 天, 小时, 分钟, 秒)",
            "“3 fortnights”：未知的时间单位 `fortnights`；"
            "请使用 w、d、h、m、s（或 周、天、小时、分钟、秒）",
        ),
        ("0.5s", "too_precise", "'0.5s' is not a whole number of seconds", "'0.5s' 不是整数秒"),
        (1.5, "too_precise", "1.5 is not a whole number of seconds", "1.5 不是整数秒"),
        (-5, "negative", "a duration cannot be negative, got -5", "时长不能为负数，实际为 -5"),
        (
            "-1h",
            "negative",
            "a duration cannot be negative, got '-1h'",
            "时长不能为负数，实际为 '-1h'",
        ),
        (
            "P1Y",
            "invalid_duration",
            "'P1Y' is not an ISO 8601 duration such as PT1H30M or P2DT3H (years and months "
            "are not accepted: their length varies)",
            "“P1Y”不是 ISO 8601 时长（如 PT1H30M、P2DT3H；不支持年和月，因其长度不固定）",
        ),
        ("PT", "invalid_duration", None, None),
        ("1:60", "invalid_duration", None, None),
        ("1h30", "invalid_duration", None, None),
        ("h", "invalid_duration", None, None),
        (True, "invalid_duration", None, None),
        ([90], "invalid_duration", None, None),
        (2**63, "out_of_range", "the number is too large", "数值太大"),
    ],
)
def test_bad_durations_are_refused(given: Any, code: str, en: str | None, zh: str | None) -> None:
    error = refusal("duration", given)

    assert error.code == code
    if en is not None:
        assert (error.en, error.zh) == (en, zh)
    else:
        assert "is not" in error.en and "不是" in error.zh


def test_duration_min_and_max() -> None:
    options = {"min": 60, "max": 3600}

    short = refusal("duration", "30s", options)
    long = refusal("duration", "1d 2h 3m", options)

    assert normalise("duration", "1h", options) == 3600
    assert (short.code, short.en, short.zh) == (
        "too_small",
        "30s is shorter than the minimum 1m",
        "30s 短于最短时长 1m",
    )
    assert (long.code, long.en, long.zh) == (
        "too_large",
        "1d 2h 3m is longer than the maximum 1h",
        "1d 2h 3m 超过最长时长 1h",
    )


# -- tags --------------------------------------------------------------------------------------


def test_tags_are_trimmed_and_deduplicated_ignoring_case_keeping_the_first_spelling() -> None:
    given = [" VIP ", "vip", "Hot   lead", "", "  ", "华东", "Vip", "hot lead"]

    assert normalise("tags", given) == ["VIP", "Hot lead", "华东"]


def test_tags_may_be_empty() -> None:
    stored = normalise("tags", [])

    assert stored == []
    assert field_types.get("tags").is_empty(stored)


def test_tag_suggestions_are_offered_in_the_value_schema_but_not_enforced() -> None:
    options = {"suggestions": ["VIP", "华东"]}
    field_type = field_types.get("tags")

    schema = field_type.value_schema(field_type.parse_options(options))

    assert schema["items"]["examples"] == ["VIP", "华东"]
    assert normalise("tags", ["new tag"], options) == ["new tag"]


@pytest.mark.parametrize(
    ("given", "options", "code", "en", "zh"),
    [
        ("a,b", {}, "type", "expected a list of tags, got 'a,b'", "应为标签列表，实际为 'a,b'"),
        (["ok", 5], {}, "type", "tag 2 must be text, got 5", "第 2 个标签应为文本，实际为 5"),
        (
            ["abcdef"],
            {"max_length": 5},
            "too_long",
            "tag 1 ('abcdef') is 6 characters long; at most 5 allowed",
            "第 1 个标签（'abcdef'）长度为 6 个字符，最多允许 5 个",
        ),
        (
            ["a", "b", "c"],
            {"max_count": 2},
            "too_many",
            "3 different tags given; at most 2 allowed",
            "共有 3 个不同的标签，最多允许 2 个",
        ),
        (
            ["a\x00b"],
            {},
            "invalid_tag",
            "tag 1 ('a\\x00b') contains a control character",
            "第 1 个标签（'a\\x00b'）包含控制字符",
        ),
    ],
)
def test_bad_tags_are_refused(
    given: Any, options: dict[str, Any], code: str, en: str, zh: str
) -> None:
    error = refusal("tags", given, options)

    assert (error.code, error.en, error.zh) == (code, en, zh)


def test_duplicates_do_not_count_towards_max_count() -> None:
    assert normalise("tags", ["a", "A", "b"], {"max_count": 2}) == ["a", "b"]


# -- rating and progress -----------------------------------------------------------------------


@pytest.mark.parametrize(("given", "stars"), [(0, 0), (5, 5), ("3", 3), (4.0, 4)])
def test_ratings_from_zero_to_max(given: Any, stars: int) -> None:
    assert normalise("rating", given) == stars


def test_rating_max_option() -> None:
    assert normalise("rating", 10, {"max": 10}) == 10

    error = refusal("rating", 4, {"max": 3})

    assert (error.code, error.en, error.zh) == (
        "out_of_range",
        "a rating is a whole number from 0 to 3, got 4",
        "评分应为 0 到 3 之间的整数，实际为 4",
    )


@pytest.mark.parametrize(
    ("given", "code", "en", "zh"),
    [
        (
            6,
            "out_of_range",
            "a rating is a whole number from 0 to 5, got 6",
            "评分应为 0 到 5 之间的整数，实际为 6",
        ),
        (
            -1,
            "out_of_range",
            "a rating is a whole number from 0 to 5, got -1",
            "评分应为 0 到 5 之间的整数，实际为 -1",
        ),
        (2.5, "type", "expected a whole number, got 2.5", "应为整数，实际为 2.5"),
        (True, "type", "expected a whole number, got True", "应为整数，实际为 True"),
        ("★★★", "type", "expected a whole number, got '★★★'", "应为整数，实际为 '★★★'"),
    ],
)
def test_bad_ratings_are_refused(given: Any, code: str, en: str, zh: str) -> None:
    error = refusal("rating", given)

    assert (error.code, error.en, error.zh) == (code, en, zh)


@pytest.mark.parametrize(
    ("given", "percent"), [(0, 0), (100, 100), (45, 45), ("45", 45), ("45%", 45), (" 45 % ", 45)]
)
def test_progress_in_percent(given: Any, percent: int) -> None:
    assert normalise("progress", given) == percent


@pytest.mark.parametrize(
    ("given", "code", "en", "zh"),
    [
        (
            101,
            "out_of_range",
            "progress is a whole percentage from 0 to 100, got 101",
            "进度应为 0 到 100 之间的整数百分比，实际为 101",
        ),
        (
            "-1%",
            "out_of_range",
            "progress is a whole percentage from 0 to 100, got -1",
            "进度应为 0 到 100 之间的整数百分比，实际为 -1",
        ),
        (45.5, "type", "expected a whole number, got 45.5", "应为整数，实际为 45.5"),
        ("half", "type", "expected a whole number, got 'half'", "应为整数，实际为 'half'"),
    ],
)
def test_bad_progress_is_refused(given: Any, code: str, en: str, zh: str) -> None:
    error = refusal("progress", given)

    assert (error.code, error.en, error.zh) == (code, en, zh)


# -- json --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [{"a": [1, 2.5, None, True]}, [1, "two"], "text", 42, 3.14, False, {}]
)
def test_json_accepts_any_json_value(value: Any) -> None:
    assert normalise("json", value) == value


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {"a": {1, 2}}, b"bytes"])
def test_json_refuses_what_is_not_json(value: Any) -> None:
    error = refusal("json", value)

    assert error.code == "type"
    assert error.en.endswith("is not a JSON value (numbers must be finite)")
    assert error.zh.endswith("不是有效的 JSON 值（数字必须是有限值）")


def test_json_refuses_nul_characters_the_databases_cannot_store() -> None:
    error = refusal("json", {"note": "a\x00b"})

    assert (error.code, error.en, error.zh) == (
        "invalid_json",
        "the value contains a NUL character (\\u0000), which cannot be stored",
        "值中包含无法存储的 NUL 字符（\\u0000）",
    )
    assert normalise("json", {"note": "a\\u0000b"}) == {"note": "a\\u0000b"}


def test_json_max_bytes_counts_compact_utf8() -> None:
    value = {"名": "客户"}  # {"名":"客户"}: 7 ASCII bytes + 3 characters of 3 bytes
    assert normalise("json", value, {"max_bytes": 16}) == value

    error = refusal("json", {**value, "k": 1}, {"max_bytes": 16})

    assert (error.code, error.en, error.zh) == (
        "too_large",
        "the JSON value is 22 bytes; at most 16 allowed",
        "JSON 值为 22 字节，最多允许 16 字节",
    )


CUSTOMER_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "email": {"type": "string", "format": "email"},
        "level": {"$ref": "#/$defs/level"},
    },
    "required": ["id"],
    "additionalProperties": False,
    "$defs": {"level": {"enum": ["A", "B", "C"]}},
}


def test_json_schema_option_accepts_matching_values() -> None:
    value = {"id": 7, "email": "li@example.com", "level": "A"}

    assert normalise("json", value, {"schema": CUSTOMER_SCHEMA}) == value


def test_json_schema_option_reports_every_violation() -> None:
    value = {"id": 0, "email": "not-an-email", "level": "D", "extra": 1}

    error = refusal("json", value, {"schema": CUSTOMER_SCHEMA})

    assert error.code == "schema"
    assert error.en == (
        "does not match the field's schema: "
        "at /: Additional properties are not allowed ('extra' was unexpected); "
        "at /email: 'not-an-email' is not a 'email'; "
        "at /id: 0 is less than the minimum of 1; "
        "at /level: 'D' is not one of ['A', 'B', 'C']"
    )
    assert error.zh.startswith("不符合字段的 JSON Schema：位置 /：Additional properties")
    assert "；位置 /id：0 is less than the minimum of 1；" in error.zh


def test_json_schema_violations_beyond_ten_are_counted() -> None:
    schema = {"type": "array", "items": {"type": "integer"}}

    error = refusal("json", ["x"] * 12, {"schema": schema})

    assert error.en.count("is not of type 'integer'") == 10
    assert error.en.endswith(" (and 2 more)")
    assert error.zh.endswith("（另有 2 处）")


def test_json_schema_option_honours_an_older_draft() -> None:
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "string"}]}

    assert normalise("json", ["a", 1], {"schema": schema}) == ["a", 1]
    assert refusal("json", [1], {"schema": schema}).code == "schema"


def test_a_json_field_schema_with_references_works_inside_the_record_schema() -> None:
    document = entity_kind.validate(
        {
            "name": "hook",
            "label": LABEL,
            "fields": [_field("payload", "json", schema=CUSTOMER_SCHEMA)],
        }
    )
    schema = record_schema(compile_entity(document))
    validator = jsonschema.Draft202012Validator(schema)

    good = list(validator.iter_errors({"payload": {"id": 1, "level": "B"}}))
    bad = [e.message for e in validator.iter_errors({"payload": {"id": 1, "level": "Z"}})]

    assert good == []
    assert bad  # the $ref to #/$defs/level resolved inside the field's own schema


# -- region ------------------------------------------------------------------------------------

NANSHAN = {"province": "440000", "city": "440300", "district": "440305"}


def test_the_dataset_has_provinces_cities_and_districts() -> None:
    data = divisions()
    provinces = data.children(None)

    assert len(provinces) == 34
    assert {p.name for p in provinces} >= {"北京市", "广东省", "新疆维吾尔自治区", "香港特别行政区"}
    assert len(data) > 3000
    assert [d.name for d in data.path("440305")] == ["广东省", "深圳市", "南山区"]
    assert divisions() is data  # loaded once


def test_a_dataset_with_an_orphan_code_is_refused() -> None:
    with pytest.raises(ValueError, match="440305 \\(南山区\\) has no parent"):
        Divisions({"440000": "广东省", "440305": "南山区"})


@pytest.mark.parametrize(
    "given",
    [
        NANSHAN,
        {"province": 440000, "city": 440300, "district": 440305},
        {"province": "广东省", "city": "深圳市", "district": "南山区"},
        {"province": "广东", "city": "深圳", "district": "南山"},
        {"province": " 广东省 ", "city": "440300", "district": "南山区"},
        {"province_name": "广东省", "city_name": "深圳市", "district_name": "南山区"},
        "440305",
        440305,
    ],
)
def test_region_codes_and_names_normalise_to_codes(given: Any) -> None:
    assert normalise("region", given) == NANSHAN


def test_region_json_adds_names() -> None:
    assert to_json("region", NANSHAN) == {
        "province": "440000",
        "province_name": "广东省",
        "city": "440300",
        "city_name": "深圳市",
        "district": "440305",
        "district_name": "南山区",
    }


def test_a_code_the_dataset_no_longer_knows_keeps_its_code_with_a_null_name() -> None:
    assert describe_region({"province": "440000", "city": "449900"}) == {
        "province": "440000",
        "province_name": "广东省",
        "city": "449900",
        "city_name": None,
    }


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (
            {"province": "北京市", "city": "北京市", "district": "朝阳区"},
            {"province": "110000", "city": "110100", "district": "110105"},
        ),
        (
            {"province": "北京", "city": "北京", "district": "110105"},
            {"province": "110000", "city": "110100", "district": "110105"},
        ),
        (
            {"province": "重庆市", "city": "重庆市", "district": "城口县"},
            {"province": "500000", "city": "500200", "district": "500229"},
        ),
        (
            {"province": "湖北省", "city": "仙桃市"},
            {"province": "420000", "city": "429000", "district": "429004"},
        ),
        (
            {"province": "湖北省", "city": "仙桃市", "district": "仙桃市"},
            {"province": "420000", "city": "429000", "district": "429004"},
        ),
        ({"province": "广东省", "city": "东莞市"}, {"province": "440000", "city": "441900"}),
        ({"province": "香港"}, {"province": "810000"}),
        ("441900", {"province": "440000", "city": "441900"}),
    ],
)
def test_municipalities_counties_under_provinces_and_short_regions(
    given: Any, stored: dict[str, str]
) -> None:
    assert normalise("region", given) == stored


@pytest.mark.parametrize(
    ("levels", "given", "stored"),
    [
        ("province", {"province": "广东省"}, {"province": "440000"}),
        ("province", "440000", {"province": "440000"}),
        (
            "city",
            {"province": "广东省", "city": "深圳市"},
            {"province": "440000", "city": "440300"},
        ),
        ("city", {"province": "上海", "city": "上海"}, {"province": "310000", "city": "310100"}),
        (
            "city",
            {"province": "湖北省", "city": "仙桃市"},
            {"province": "420000", "city": "429000", "district": "429004"},
        ),
    ],
)
def test_region_levels_option(levels: str, given: Any, stored: dict[str, str]) -> None:
    assert normalise("region", given, {"levels": levels}) == stored


@pytest.mark.parametrize(
    ("given", "options", "code", "en", "zh"),
    [
        (
            {"province": "广东省", "city": "深训市", "district": "南山区"},
            {},
            "unknown_region",
            "there is no city named '深训市' in 广东省 (did you mean 深圳市?)",
            "广东省没有名为“深训市”的城市（您是否要找：深圳市？）",
        ),
        (
            {"province": "火星"},
            {},
            "unknown_region",
            "there is no province named '火星'",
            "没有名为“火星”的省份",
        ),
        (
            {"province": "110000", "city": "440300"},
            {},
            "wrong_parent",
            "city 440300 (深圳市) is not in province 110000 (北京市)",
            "城市 440300（深圳市）不属于省份 110000（北京市）",
        ),
        (
            {"province": "440000", "city": "440300", "district": "110105"},
            {},
            "wrong_parent",
            "district 110105 (朝阳区) is not in city 440300 (深圳市)",
            "区县 110105（朝阳区）不属于城市 440300（深圳市）",
        ),
        (
            {"province": "440000", "city": "440000"},
            {},
            "wrong_level",
            "`city` must be a city code; 440000 is the province 广东省",
            "`city` 应为城市代码；440000 是省份“广东省”",
        ),
        (
            {"province": "440305"},
            {},
            "wrong_level",
            "`province` must be a province code; 440305 is the district 南山区",
            "`province` 应为省份代码；440305 是区县“南山区”",
        ),
        (
            {"province": "440000", "city": "440300"},
            {},
            "incomplete",
            "`district` is missing: choose a district in 深圳市",
            "缺少 `district`：请选择深圳市下的区县",
        ),
        (
            {"province": "广东省"},
            {"levels": "city"},
            "incomplete",
            "`city` is missing: choose a city in 广东省",
            "缺少 `city`：请选择广东省下的城市",
        ),
        (
            {"province": "440000", "district": "440305"},
            {},
            "incomplete",
            "`district` is given but `city` is missing",
            "给出了 `district`，但缺少 `city`（城市）",
        ),
        ({}, {}, "incomplete", "`province` is missing", "缺少 `province`（省份）"),
        (
            {"province": "", "city": ""},
            {},
            "incomplete",
            "`province` is missing",
            "缺少 `province`（省份）",
        ),
        (
            NANSHAN,
            {"levels": "city"},
            "beyond_level",
            "this field records regions down to the city; remove `district` (南山区)",
            "该字段只记录到城市一级；请去掉 `district`（南山区）",
        ),
        (
            "999999",
            {},
            "unknown_region",
            "'999999' is not a Chinese administrative division code (6 digits, GB/T 2260)",
            "“999999”不是有效的行政区划代码（6 位数字，GB/T 2260）",
        ),
        (
            {"province": "440000", "city": "449900"},
            {},
            "unknown_region",
            "'449900' is not a Chinese administrative division code (6 digits, GB/T 2260)",
            "“449900”不是有效的行政区划代码（6 位数字，GB/T 2260）",
        ),
        (
            {"province": True},
            {},
            "type",
            "`province` must be a division code or name, got True",
            "`province` 应为行政区划代码或名称，实际为 True",
        ),
        (
            {"province": "广东省", "town": "粤海街道"},
            {},
            "unknown_key",
            "unexpected key `town`; the allowed keys are: province, city, district, "
            "province_name, city_name, district_name",
            "不支持的键 `town`；允许的键：province, city, district, province_name, city_name, "
            "district_name",
        ),
        (
            {"province": "湖北省", "city": "仙桃市", "district": "天门市"},
            {},
            "wrong_parent",
            "`district` '天门市' does not match 仙桃市 (429004) named as the city",
            "`district` '天门市' 与城市一栏的“仙桃市”（429004）不一致",
        ),
    ],
)
def test_bad_regions_are_refused(
    given: Any, options: dict[str, Any], code: str, en: str, zh: str
) -> None:
    error = refusal("region", given, options)

    assert (error.code, error.en, error.zh) == (code, en, zh)


def test_a_short_name_shared_by_two_divisions_asks_for_the_code() -> None:
    given = {"province": "新疆", "city": "和田地区", "district": "和田"}

    error = refusal("region", given)

    assert (error.code, error.en, error.zh) == (
        "ambiguous_region",
        "`district` '和田' matches several divisions: 和田市 (653201), 和田县 (653221); "
        "give the code",
        "`district` “和田”对应多个行政区划：和田市 (653201), 和田县 (653221)；请使用代码",
    )
    assert normalise("region", {**given, "district": "和田县"})["district"] == "653221"


def test_a_region_that_is_not_an_object_or_code_is_refused() -> None:
    error = refusal("region", ["440000"])

    assert error.code == "type"
    assert error.en.startswith('expected a region such as {"province": "440000"')
    assert error.zh.startswith('应为地区，例如 {"province": "440000"')


@pytest.mark.parametrize(
    ("code", "level"), [("440000", "province"), ("440300", "city"), ("440305", "district")]
)
def test_filters_address_the_level_a_code_names(code: str, level: str) -> None:
    assert level_of(code) == level


# -- address -----------------------------------------------------------------------------------


def test_a_chinese_address_is_normalised_and_returned_with_region_names() -> None:
    given = {
        "region": {"province": "广东", "city": "深圳", "district": "南山"},
        "street": "  科技园南区 1 号 ",
        "postcode": "518057",
    }

    stored = normalise("address", given)

    assert stored == {
        "country": "CN",
        "region": NANSHAN,
        "street": "科技园南区 1 号",
        "postcode": "518057",
    }
    assert to_json("address", stored)["region"]["district_name"] == "南山区"


@pytest.mark.parametrize(
    ("given", "options", "stored"),
    [
        ({"street": "1 Main St"}, {}, {"country": "CN", "street": "1 Main St"}),
        (
            {"street": "1 Main St", "country": "us", "postcode": "94105-1234"},
            {},
            {"country": "US", "street": "1 Main St", "postcode": "94105-1234"},
        ),
        (
            {"street": "10 Downing St", "country": "GB", "postcode": "sw1a 2aa"},
            {},
            {"country": "GB", "street": "10 Downing St", "postcode": "SW1A 2AA"},
        ),
        (
            {"street": "皇后大道中 1 号"},
            {"default_country": "HK"},
            {"country": "HK", "street": "皇后大道中 1 号"},
        ),
        (
            {"street": "x", "region": "440300"},
            {"region_levels": "city"},
            {"country": "CN", "street": "x", "region": {"province": "440000", "city": "440300"}},
        ),
        ({"street": "x", "region": None, "postcode": ""}, {}, {"country": "CN", "street": "x"}),
    ],
)
def test_addresses(given: Any, options: dict[str, Any], stored: dict[str, Any]) -> None:
    assert normalise("address", given, options) == stored


@pytest.mark.parametrize(
    ("given", "code", "en", "zh"),
    [
        (
            {"street": "1 Main St", "country": "US", "region": "440305"},
            "region_outside_cn",
            "`region` holds Chinese divisions, but the country is US; remove `region` or set "
            "the country to CN",
            "`region` 为中国行政区划，但国家为 US；请去掉 `region` 或将国家设为 CN",
        ),
        (
            {"street": "x", "postcode": "51805"},
            "invalid_postcode",
            "'51805' is not a Chinese postcode: use 6 digits, e.g. 518057",
            "“51805”不是有效的邮政编码：应为 6 位数字，例如 518057",
        ),
        (
            {"street": "x", "country": "FR", "postcode": "75 001 PARIS"},
            "invalid_postcode",
            "'75 001 PARIS' is not a postcode: use 2-10 letters, digits, spaces or hyphens",
            "“75 001 PARIS”不是有效的邮政编码：应为 2-10 位字母、数字、空格或连字符",
        ),
        (
            {"street": "x", "postcode": 518057},
            "type",
            "expected a postcode as text, got 518057",
            "应为文本形式的邮政编码，实际为 518057",
        ),
        (
            {"street": "x", "country": "XX"},
            "unknown_country",
            "`country` 'XX' is not an ISO 3166-1 alpha-2 code such as CN, HK or US",
            "`country` 'XX' 不是 ISO 3166-1 两位国家代码（如 CN、HK、US）",
        ),
        ({"region": "440305"}, "incomplete", "`street` is missing", "缺少 `street`"),
        ({"street": "   "}, "incomplete", "`street` is empty", "`street`（街道地址）为空"),
        (
            {"street": "x", "city": "深圳"},
            "unknown_key",
            "unexpected key `city`; the allowed keys are: country, region, street, postcode",
            "不支持的键 `city`；允许的键：country, region, street, postcode",
        ),
        (
            {"street": "x", "region": {"province": "广东省"}},
            "incomplete",
            "`city` is missing: choose a city in 广东省",
            "缺少 `city`：请选择广东省下的城市",
        ),
        (
            {"street": "x" * 201},
            "too_long",
            "is 201 characters long; at most 200 allowed",
            "长度为 201 个字符，最多允许 200 个",
        ),
    ],
)
def test_bad_addresses_are_refused(given: Any, code: str, en: str, zh: str) -> None:
    error = refusal("address", given)

    assert (error.code, error.en, error.zh) == (code, en, zh)


# -- geo ---------------------------------------------------------------------------------------


def test_a_location_is_stored_with_its_coordinate_system_and_rounded_to_a_centimetre() -> None:
    given = {"lat": 22.540123456789, "lng": 113.934, "accuracy_m": 15}

    assert normalise("geo", given) == {
        "lat": 22.5401235,
        "lng": 113.934,
        "coordinate_system": "gcj02",
        "accuracy_m": 15.0,
    }


def test_a_location_may_name_the_fields_coordinate_system() -> None:
    options = {"coordinate_system": "wgs84"}
    given = {"lat": -33.8688, "lng": 151.2093, "coordinate_system": "wgs84"}

    assert normalise("geo", given, options) == {
        "lat": -33.8688,
        "lng": 151.2093,
        "coordinate_system": "wgs84",
    }


@pytest.mark.parametrize(
    ("given", "code", "en", "zh"),
    [
        (
            {"lat": 22.5, "lng": 113.9, "coordinate_system": "bd09"},
            "coordinate_system",
            "the location is in 'bd09' but this field stores gcj02 coordinates; convert it first",
            "该位置使用 'bd09' 坐标系，但此字段使用 gcj02；请先转换",
        ),
        (
            {"lat": 90.5, "lng": 0},
            "out_of_range",
            "latitude 90.5 is outside -90..90",
            "纬度 90.5 超出 -90 到 90 的范围",
        ),
        (
            {"lat": 0, "lng": -181},
            "out_of_range",
            "longitude -181.0 is outside -180..180",
            "经度 -181.0 超出 -180 到 180 的范围",
        ),
        (
            {"lat": 0, "lng": 0, "accuracy_m": -1},
            "out_of_range",
            "accuracy_m -1.0 is negative",
            "accuracy_m（精度，米）-1.0 不能为负数",
        ),
        (
            {"lat": "22.5", "lng": 113.9},
            "type",
            "`lat` must be a number, got '22.5'",
            "`lat` 应为数字，实际为 '22.5'",
        ),
        (
            {"lat": True, "lng": 113.9},
            "type",
            "`lat` must be a number, got True",
            "`lat` 应为数字，实际为 True",
        ),
        (
            {"lat": float("nan"), "lng": 1},
            "type",
            "`lat` must be a number, got nan",
            "`lat` 应为数字，实际为 nan",
        ),
        ({"lat": 22.5}, "incomplete", "`lng` is missing", "缺少 `lng`"),
        (
            {"lat": 1, "lng": 2, "alt": 3},
            "unknown_key",
            "unexpected key `alt`; the allowed keys are: lat, lng, accuracy_m, coordinate_system",
            "不支持的键 `alt`；允许的键：lat, lng, accuracy_m, coordinate_system",
        ),
        (
            [22.5, 113.9],
            "type",
            'expected a location such as {"lat": 22.54, "lng": 113.93}, got [22.5, 113.9]',
            '应为位置，例如 {"lat": 22.54, "lng": 113.93}，实际为 [22.5, 113.9]',
        ),
    ],
)
def test_bad_locations_are_refused(given: Any, code: str, en: str, zh: str) -> None:
    error = refusal("geo", given)

    assert (error.code, error.en, error.zh) == (code, en, zh)


# -- signature ---------------------------------------------------------------------------------


def test_a_png_signature_is_stored_as_a_canonical_data_url() -> None:
    image = png()
    encoded = base64.b64encode(image).decode()
    wrapped = "\n".join(encoded[i : i + 20] for i in range(0, len(encoded), 20))

    stored = normalise("signature", f"  DATA:image/PNG;base64,{wrapped}  ")

    assert stored == data_url(image)
    assert to_json("signature", stored) == data_url(image)


@pytest.mark.parametrize(
    ("given", "code", "en", "zh"),
    [
        (
            data_url(
                b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
                "image/svg+xml",
            ),
            "unsupported_format",
            "signatures must be PNG images, got image/svg+xml; export the signature as PNG (SVG "
            "is refused: it can carry scripts)",
            "签名必须是 PNG 图片，实际为 image/svg+xml；"
            "请导出为 PNG（不接受 SVG：其中可能含有脚本）",
        ),
        (
            data_url(b"\xff\xd8\xff\xe0", "image/jpeg"),
            "unsupported_format",
            "signatures must be PNG images, got image/jpeg; export the signature as PNG (SVG is "
            "refused: it can carry scripts)",
            "签名必须是 PNG 图片，实际为 image/jpeg；请导出为 PNG（不接受 SVG：其中可能含有脚本）",
        ),
        (
            "https://example.com/sign.png",
            "invalid_signature",
            "expected a base64 PNG data URL such as data:image/png;base64,iVBORw0KGgo…",
            "应为 base64 编码的 PNG data URL，例如 data:image/png;base64,iVBORw0KGgo…",
        ),
        (
            "data:image/png,rawbytes",
            "invalid_signature",
            "expected a base64 PNG data URL such as data:image/png;base64,iVBORw0KGgo…",
            "应为 base64 编码的 PNG data URL，例如 data:image/png;base64,iVBORw0KGgo…",
        ),
        (
            "data:image/png;base64,iVBOR*w0K",
            "invalid_base64",
            "the signature's base64 data is damaged (invalid characters or padding)",
            "签名的 base64 数据已损坏（含有无效字符或填充错误）",
        ),
        (
            data_url(b"GIF89a" + b"\x00" * 20),
            "invalid_signature",
            "the data is not a PNG image (it does not start with the PNG signature)",
            "数据不是 PNG 图片（缺少 PNG 文件头）",
        ),
        (
            data_url(png()[:-12]),
            "invalid_signature",
            "the PNG image is damaged or cut short (no IHDR header or no IEND end marker)",
            "PNG 图片已损坏或不完整（缺少 IHDR 头或 IEND 结束标记）",
        ),
        (
            data_url(b"\x89PNG\r\n\x1a\n" + b"\x00" * 4),
            "invalid_signature",
            "the PNG image is damaged or cut short (no IHDR header or no IEND end marker)",
            "PNG 图片已损坏或不完整（缺少 IHDR 头或 IEND 结束标记）",
        ),
        (
            data_url(png(width=0)),
            "invalid_signature",
            "the PNG image is empty (0×1 pixels)",
            "PNG 图片为空（0×1 像素）",
        ),
        (
            12345,
            "type",
            "expected a PNG data URL, got 12345",
            "应为PNG 图片的 data URL，实际为 12345",
        ),
    ],
)
def test_bad_signatures_are_refused(given: Any, code: str, en: str, zh: str) -> None:
    error = refusal("signature", given)

    assert (error.code, error.en, error.zh) == (code, en, zh)


def test_signature_max_bytes_counts_the_decoded_png() -> None:
    image = png(extra=b"x" * 1500)
    assert normalise("signature", data_url(image), {"max_bytes": len(image)}) == data_url(image)

    error = refusal("signature", data_url(image), {"max_bytes": 1024})

    assert (error.code, error.en, error.zh) == (
        "too_large",
        f"the signature image is {len(image)} bytes; at most 1024 allowed",
        f"签名图片为 {len(image)} 字节，最多允许 1024 字节",
    )


def test_a_huge_signature_is_refused_before_decoding() -> None:
    error = refusal("signature", "data:image/png;base64," + "A" * 400_000)

    assert error.code == "too_large"
    assert error.en == "the signature image is 300000 bytes; at most 204800 allowed"


# -- user and team -----------------------------------------------------------------------------


@pytest.mark.parametrize("type_name", ["user", "team"])
@pytest.mark.parametrize(("given", "stored"), [(1, 1), (42, 42), ("42", 42), (7.0, 7)])
def test_user_and_team_ids(type_name: str, given: Any, stored: int) -> None:
    assert normalise(type_name, given) == stored


@pytest.mark.parametrize(
    ("type_name", "given", "code", "en", "zh"),
    [
        (
            "user",
            0,
            "invalid_id",
            "0 is not a user id: ids are whole numbers from 1",
            "0 不是有效的用户编号：编号是从 1 开始的整数",
        ),
        (
            "team",
            -3,
            "invalid_id",
            "-3 is not a team id: ids are whole numbers from 1",
            "-3 不是有效的团队编号：编号是从 1 开始的整数",
        ),
        (
            "user",
            "li.wei",
            "type",
            "expected a whole number, got 'li.wei'",
            "应为整数，实际为 'li.wei'",
        ),
        ("team", True, "type", "expected a whole number, got True", "应为整数，实际为 True"),
        ("user", 1.5, "type", "expected a whole number, got 1.5", "应为整数，实际为 1.5"),
    ],
)
def test_bad_user_and_team_ids_are_refused(
    type_name: str, given: Any, code: str, en: str, zh: str
) -> None:
    error = refusal(type_name, given)

    assert (error.code, error.en, error.zh) == (code, en, zh)


def test_user_value_schema_says_what_the_id_names() -> None:
    schema = field_types.get("team").value_schema(field_types.get("team").parse_options({}))

    assert schema == {"type": "integer", "minimum": 1, "description": "id of a platform team"}


# -- through a record payload ------------------------------------------------------------------


def test_a_payload_reports_every_bad_value_with_the_field_label_in_chinese() -> None:
    compiled = compile_entity(entity_kind.validate(every_type_entity()))
    payload = {
        "notes": 5,
        "length": "forever",
        "labels": "VIP",
        "stars": 11,
        "done": 120,
        "payload": [1],
        "area": {"province": "火星"},
        "office": {"street": "x", "country": "ZZ"},
        "spot": {"lat": 100, "lng": 0},
        "sign": "data:image/svg+xml;base64,PHN2Zz4=",
        "owner": 0,
        "squad": "x",
    }

    checked = check_payload(compiled, payload, partial=True, lang="zh")

    assert [(i.path, i.code) for i in checked.issues] == [
        ("/notes", "type"),
        ("/length", "invalid_duration"),
        ("/labels", "type"),
        ("/stars", "out_of_range"),
        ("/done", "out_of_range"),
        ("/payload", "schema"),
        ("/area", "unknown_region"),
        ("/office", "unknown_country"),
        ("/spot", "out_of_range"),
        ("/sign", "unsupported_format"),
        ("/owner", "invalid_id"),
        ("/squad", "type"),
    ]
    assert checked.issues[3].message.startswith("名称")
    assert checked.issues[3].message.endswith("评分应为 0 到 10 之间的整数，实际为 11")


def test_a_payload_with_good_values_of_every_new_type_is_stored() -> None:
    compiled = compile_entity(entity_kind.validate(every_type_entity()))
    payload = {
        "notes": "<p>拜访<b>顺利</b><script>x()</script></p>",
        "length": "1小时",
        "labels": ["VIP", "vip", "华东"],
        "stars": 9,
        "done": "80%",
        "payload": {"source": "webhook"},
        "area": {"province": "广东", "city": "深圳"},
        "office": {"region": "440305", "street": "科技园"},
        "spot": {"lat": 22.54, "lng": 113.93},
        "sign": data_url(png()),
        "owner": 3,
        "squad": 2,
    }

    checked = check_payload(compiled, payload, partial=False)

    assert checked.issues == []
    assert checked.values["notes"] == "<p>拜访<b>顺利</b></p>"
    assert checked.values["length"] == 3600
    assert checked.values["labels"] == ["VIP", "华东"]
    assert checked.values["area"] == {"province": "440000", "city": "440300"}
    assert checked.values["spot"]["coordinate_system"] == "wgs84"
