"""Field types for places: a Chinese region, a postal address, a geographic location."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from formloom.engine.fields import values
from formloom.engine.fields.base import FieldType, FieldValueError, register
from formloom.engine.fields.objects import finite_number, json_object, required_key, shown
from formloom.engine.fields.regions import Level, describe_region, resolve_region
from formloom.engine.fields.storage import Storage

#: ISO 3166-1 alpha-2 country codes (officially assigned).
COUNTRIES = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
    """.split()
)
_CN_POSTCODE = re.compile(r"[0-9]{6}")
_POSTCODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 -]{0,8}[A-Za-z0-9]")
_REGION_EXAMPLE = '{"province": "440000", "city": "440300", "district": "440305"}'


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegionOptions(_Options):
    levels: Level = Field(
        default="district", description="The deepest level recorded: province, city or district"
    )


class AddressOptions(_Options):
    region_levels: Level = Field(
        default="district", description="How deep the region of a Chinese address goes"
    )
    default_country: str = Field(
        default="CN", pattern=r"^[A-Z]{2}$", description="ISO 3166-1 code used when none is given"
    )
    street_max_length: int = Field(default=200, ge=1, le=1000)

    @field_validator("default_country")
    @classmethod
    def _known_country(cls, code: str) -> str:
        if code not in COUNTRIES:
            raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
        return code


class GeoOptions(_Options):
    coordinate_system: Literal["wgs84", "gcj02", "bd09"] = Field(
        default="gcj02",
        description="wgs84 (GPS), gcj02 (AMap, Tencent and most Chinese maps) or bd09 (Baidu)",
    )


def _region_schema(levels: Level) -> dict[str, Any]:
    entry = {"type": ["string", "integer"], "description": "6-digit code or Chinese name"}
    names = {"type": ["string", "null"], "readOnly": True}
    return {
        "anyOf": [
            {
                "type": "object",
                "properties": {
                    "province": entry,
                    "province_name": names,
                    **({"city": entry, "city_name": names} if levels != "province" else {}),
                    **({"district": entry, "district_name": names} if levels == "district" else {}),
                },
                "additionalProperties": False,
            },
            {"type": "string", "pattern": r"^[1-9][0-9]{5}$", "description": "a division code"},
        ],
        "description": f"A Chinese region down to the {levels}, e.g. {_REGION_EXAMPLE}",
    }


@register
class RegionType(FieldType):
    """A Chinese region: province → city → district, stored as 6-digit division codes.

    Input: ``{"province": "440000", "city": "440300", "district": "440305"}``, names
    instead of codes (``{"province": "广东省", "city": "深圳市", "district": "南山区"}``,
    endings optional: ``"广东"``), or one code for its whole path (``"440305"``); see
    :func:`~formloom.engine.fields.regions.resolve_region`. Stored as codes down
    to the ``levels`` option; returned with names added (``"province_name": "广东省"``).

    Filters: ``eq``/``in`` take division codes of any level and compare the stored
    region at that code's level (:func:`~formloom.engine.fields.regions.level_of`):
    ``eq "440000"`` matches every region in 广东省, ``eq "440300"`` every region in
    深圳市, ``in ["110000", "440300"]`` either; ``is_empty`` matches no region.
    """

    name = "region"
    options_model = RegionOptions
    operators = ("eq", "in", "is_empty")
    cel_type = "map(string, string)"

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("json")

    def value_schema(self, options: RegionOptions) -> dict[str, Any]:
        return _region_schema(options.levels)

    def normalise(self, value: Any, options: RegionOptions) -> dict[str, str]:
        return resolve_region(value, levels=options.levels)

    def to_json(self, value: Any, options: Any) -> Any:
        return describe_region(value) if isinstance(value, dict) else value


@register
class AddressType(FieldType):
    """A postal address: ``{"country": "CN", "region": {…}, "street": "…", "postcode": "518057"}``.

    ``street`` is required; ``country`` is an ISO 3166-1 alpha-2 code (the
    ``default_country`` option when absent); ``region`` (a value as for the region
    type, down to ``region_levels``) applies to Chinese addresses only;
    ``postcode`` is 6 digits in China and 2-10 letters, digits, spaces or hyphens
    elsewhere. Returned with the region's names added.

    Filters: ``eq``/``in`` compare the region part like a region field,
    ``contains`` searches the street, ``is_empty`` matches no address.
    """

    name = "address"
    options_model = AddressOptions
    operators = ("eq", "in", "contains", "is_empty")
    cel_type = "map(string, dyn)"
    _KEYS = ("country", "region", "street", "postcode")

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("json")

    def value_schema(self, options: AddressOptions) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "country": {"type": "string", "pattern": "^[A-Za-z]{2}$"},
                "region": _region_schema(options.region_levels),
                "street": {"type": "string", "maxLength": options.street_max_length},
                "postcode": {"type": "string", "maxLength": 10},
            },
            "required": ["street"],
            "additionalProperties": False,
        }

    def normalise(self, value: Any, options: AddressOptions) -> dict[str, Any]:
        address = json_object(
            value,
            keys=self._KEYS,
            what_en='an address such as {"region": {…}, "street": "科技园南区 1 号"}',
            what_zh='地址，例如 {"region": {…}, "street": "科技园南区 1 号"}',
        )
        country = self._country(address.get("country"), options)
        stored: dict[str, Any] = {"country": country}
        region = address.get("region")
        if region not in (None, "", {}):
            if country != "CN":
                raise FieldValueError(
                    "region_outside_cn",
                    f"`region` holds Chinese divisions, but the country is {country}; "
                    "remove `region` or set the country to CN",
                    f"`region` 为中国行政区划，但国家为 {country}；请去掉 `region` 或将国家设为 CN",
                )
            stored["region"] = resolve_region(region, levels=options.region_levels)
        street = values.text(required_key(address, "street"), max_length=options.street_max_length)
        if not street:
            raise FieldValueError("incomplete", "`street` is empty", "`street`（街道地址）为空")
        stored["street"] = street
        postcode = address.get("postcode")
        if postcode not in (None, ""):
            stored["postcode"] = self._postcode(postcode, country)
        return stored

    def _country(self, raw: Any, options: AddressOptions) -> str:
        if raw in (None, ""):
            return options.default_country
        code = raw.strip().upper() if isinstance(raw, str) else raw
        if code not in COUNTRIES:
            raise FieldValueError(
                "unknown_country",
                f"`country` {shown(raw)} is not an ISO 3166-1 alpha-2 code such as CN, HK or US",
                f"`country` {shown(raw)} 不是 ISO 3166-1 两位国家代码（如 CN、HK、US）",
            )
        return str(code)

    def _postcode(self, raw: Any, country: str) -> str:
        if not isinstance(raw, str):
            raise values.wrong_type(raw, "a postcode as text", "文本形式的邮政编码")
        postcode = raw.strip()
        if country == "CN" and not _CN_POSTCODE.fullmatch(postcode):
            raise FieldValueError(
                "invalid_postcode",
                f"{postcode!r} is not a Chinese postcode: use 6 digits, e.g. 518057",
                f"“{postcode}”不是有效的邮政编码：应为 6 位数字，例如 518057",
            )
        if country != "CN" and not _POSTCODE.fullmatch(postcode):
            raise FieldValueError(
                "invalid_postcode",
                f"{postcode!r} is not a postcode: use 2-10 letters, digits, spaces or hyphens",
                f"“{postcode}”不是有效的邮政编码：应为 2-10 位字母、数字、空格或连字符",
            )
        return postcode.upper()

    def to_json(self, value: Any, options: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("region"), dict):
            return {**value, "region": describe_region(value["region"])}
        return value


@register
class GeoType(FieldType):
    """A point on the earth: ``{"lat": 22.54, "lng": 113.93, "accuracy_m": 15}``.

    Coordinates are kept in the coordinate system of the ``coordinate_system``
    option (default ``gcj02``, what AMap and Tencent maps give; ``wgs84`` is GPS,
    ``bd09`` Baidu) and never converted: the stored value records the system. An
    input may name its system (``"coordinate_system": "gcj02"``); a different one
    is refused rather than silently mixed. Degrees are rounded to 7 decimal
    places (about 1 cm). Filters: ``is_empty`` (distance filters come later).
    """

    name = "geo"
    options_model = GeoOptions
    operators = ("is_empty",)
    cel_type = "map(string, dyn)"
    _KEYS = ("lat", "lng", "accuracy_m", "coordinate_system")

    def storage(self, options: dict[str, Any]) -> Storage:
        return Storage("json")

    def value_schema(self, options: GeoOptions) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "lat": {"type": "number", "minimum": -90, "maximum": 90},
                "lng": {"type": "number", "minimum": -180, "maximum": 180},
                "accuracy_m": {"type": "number", "minimum": 0},
                "coordinate_system": {"const": options.coordinate_system},
            },
            "required": ["lat", "lng"],
            "additionalProperties": False,
        }

    def normalise(self, value: Any, options: GeoOptions) -> dict[str, Any]:
        point = json_object(
            value,
            keys=self._KEYS,
            what_en='a location such as {"lat": 22.54, "lng": 113.93}',
            what_zh='位置，例如 {"lat": 22.54, "lng": 113.93}',
        )
        lat = finite_number(required_key(point, "lat"), key="lat")
        lng = finite_number(required_key(point, "lng"), key="lng")
        if not -90 <= lat <= 90:
            raise FieldValueError(
                "out_of_range",
                f"latitude {lat} is outside -90..90",
                f"纬度 {lat} 超出 -90 到 90 的范围",
            )
        if not -180 <= lng <= 180:
            raise FieldValueError(
                "out_of_range",
                f"longitude {lng} is outside -180..180",
                f"经度 {lng} 超出 -180 到 180 的范围",
            )
        system = point.get("coordinate_system")
        if system is not None and system != options.coordinate_system:
            raise FieldValueError(
                "coordinate_system",
                f"the location is in {shown(system)} but this field stores "
                f"{options.coordinate_system} coordinates; convert it first",
                f"该位置使用 {shown(system)} 坐标系，但此字段使用 {options.coordinate_system}；"
                "请先转换",
            )
        stored: dict[str, Any] = {
            "lat": round(lat, 7),
            "lng": round(lng, 7),
            "coordinate_system": options.coordinate_system,
        }
        accuracy = point.get("accuracy_m")
        if accuracy is not None:
            metres = finite_number(accuracy, key="accuracy_m")
            if metres < 0:
                raise FieldValueError(
                    "out_of_range",
                    f"accuracy_m {metres} is negative",
                    f"accuracy_m（精度，米）{metres} 不能为负数",
                )
            stored["accuracy_m"] = metres
        return stored
