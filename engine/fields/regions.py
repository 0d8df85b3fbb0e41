"""Chinese administrative divisions: province → city (prefecture level) → district (county level).

The dataset (``data/cn_divisions.json``, source and licence in ``data/README.md``)
maps 6-digit division codes (GB/T 2260 / the NBS statistical division codes) to
Chinese names. It is read once, on first use. The level and the parent of a
division follow from its code: ``440000`` is a province, ``440300`` a city in
it, ``440305`` a district of that city.

Some cities have no districts (东莞市, 中山市, 儋州市, 嘉峪关市) and Hong Kong, Macao
and Taiwan have no subdivisions in the dataset: a region ends where the dataset
ends. Municipalities (北京市, 天津市, 上海市, 重庆市) have the statistical
pseudo-cities ``市辖区`` (and ``县`` for 重庆市); counties directly under a
province sit under a ``省直辖县级行政区划`` pseudo-city. :func:`resolve_region`
accepts the names people actually type for those (``{"province": "北京市", "city":
"北京市"}``, ``{"province": "湖北省", "city": "仙桃市"}``).
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from formloom.engine.fields.base import FieldValueError
from formloom.engine.fields.objects import json_object, shown

Level = Literal["province", "city", "district"]
LEVELS: tuple[Level, ...] = ("province", "city", "district")
_LEVEL_ZH: dict[Level, str] = {"province": "省份", "city": "城市", "district": "区县"}
_CODE = re.compile(r"[1-9][0-9]{5}")
#: Endings people leave out when they type a division's name (longest first).
_SUFFIXES = (
    "特别行政区",
    "维吾尔自治区",
    "壮族自治区",
    "回族自治区",
    "自治区",
    "自治州",
    "地区",
    "省",
    "市",
    "区",
    "县",
    "盟",
    "旗",
)
_PSEUDO_CITY = "直辖县级"


@dataclass(frozen=True)
class Division:
    """One division of the dataset."""

    code: str
    name: str
    level: Level
    parent: str | None


def level_of(code: str) -> Level:
    """The level a 6-digit division code names: ``440000`` province, ``440300`` city, else district.

    Filters on region fields use it: a filter value is a division code, compared
    with the part of the stored region at that code's level.
    """
    if code.endswith("0000"):
        return "province"
    if code.endswith("00"):
        return "city"
    return "district"


def _parent_code(code: str) -> str | None:
    level = level_of(code)
    if level == "province":
        return None
    return code[:2] + "0000" if level == "city" else code[:4] + "00"


def short_name(name: str) -> str:
    """A division name without its administrative ending: 广东省 → 广东, 南山区 → 南山."""
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


class Divisions:
    """The divisions of the dataset, by code and by parent."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self._by_code: dict[str, Division] = {}
        self._children: dict[str | None, list[Division]] = {}
        for code in sorted(names):
            division = Division(code, names[code], level_of(code), _parent_code(code))
            if division.parent is not None and division.parent not in self._by_code:
                raise ValueError(f"division {code} ({names[code]}) has no parent in the dataset")
            self._by_code[code] = division
            self._children.setdefault(division.parent, []).append(division)

    def __len__(self) -> int:
        return len(self._by_code)

    def get(self, code: str) -> Division | None:
        return self._by_code.get(code)

    def children(self, code: str | None) -> list[Division]:
        """The divisions directly under ``code`` (the provinces for None)."""
        return self._children.get(code, [])

    def path(self, code: str) -> list[Division]:
        """The division ``code`` and its ancestors, province first (empty if unknown)."""
        found: list[Division] = []
        division = self.get(code)
        while division is not None:
            found.insert(0, division)
            division = self.get(division.parent) if division.parent else None
        return found

    def named(self, parent: str | None, name: str) -> list[Division]:
        """Children of ``parent`` called ``name``: exact names first, else without endings."""
        candidates = self.children(parent)
        exact = [d for d in candidates if d.name == name]
        if exact:
            return exact
        short = short_name(name)
        return [d for d in candidates if short_name(d.name) == short]


@functools.cache
def divisions() -> Divisions:
    """The shipped dataset, read on first use."""
    data = resources.files("formloom.engine.fields").joinpath("data/cn_divisions.json")
    document: dict[str, Any] = json.loads(data.read_text(encoding="utf-8"))
    return Divisions(document["divisions"])


def resolve_region(value: Any, *, levels: Level) -> dict[str, str]:
    """Normalise a region value to codes, down to ``levels``; raise :class:`FieldValueError`.

    ``value`` is an object ``{"province": …, "city": …, "district": …}`` whose
    entries are codes (``"440305"`` or ``440305``) or names (``"广东省"``, ``"广东"``);
    ``province_name``-style keys (as returned by :func:`describe_region`) are used
    only where the code key is absent. A bare code (``"440305"``) stands for its
    whole path. Every level down to ``levels`` is required unless the dataset has
    nothing below (e.g. 东莞市 has no districts); each must lie in its parent.
    """
    if isinstance(value, str | int) and not isinstance(value, bool):
        given = _from_code(value)
    else:
        given = _from_object(value)
    return _complete(given, levels)


def describe_region(stored: Mapping[str, Any]) -> dict[str, Any]:
    """Stored codes with their names: ``{"province": "110000", "province_name": "北京市", …}``.

    A code the dataset no longer knows keeps its code and gets a null name.
    """
    described: dict[str, Any] = {}
    for level in LEVELS:
        code = stored.get(level)
        if code is None:
            continue
        division = divisions().get(str(code))
        described[level] = code
        described[f"{level}_name"] = division.name if division else None
    return described


_OBJECT_KEYS = (*LEVELS, *(f"{level}_name" for level in LEVELS))


def _from_code(value: str | int) -> list[Division]:
    code = str(value).strip()
    division = divisions().get(code) if _CODE.fullmatch(code) else None
    if division is None:
        raise _unknown_code(code)
    return divisions().path(code)


def _from_object(value: Any) -> list[Division]:
    obj = json_object(
        value,
        keys=_OBJECT_KEYS,
        what_en='a region such as {"province": "440000", "city": "440300", "district": "440305"}',
        what_zh='地区，例如 {"province": "440000", "city": "440300", "district": "440305"}',
    )
    raw = {level: _entry(obj, level) for level in LEVELS}
    resolved: list[Division] = []
    for index, level in enumerate(LEVELS):
        if raw[level] is None:
            later = [lower for lower in LEVELS[index + 1 :] if raw[lower] is not None]
            if later:
                raise FieldValueError(
                    "incomplete",
                    f"`{later[0]}` is given but `{level}` is missing",
                    f"给出了 `{later[0]}`，但缺少 `{level}`（{_LEVEL_ZH[level]}）",
                )
            break
        if len(resolved) > index:  # already filled in by a pseudo-city (仙桃市 → its district)
            _check_same(resolved[index], raw[level], level)
            continue
        parent = resolved[-1] if resolved else None
        if level == "city" and parent is not None and not _is_code(raw[level]):
            resolved += _city_by_name(parent, str(raw[level]), raw["district"])
        else:
            resolved.append(_one(level, raw[level], parent))
    return resolved


def _entry(obj: dict[str, Any], level: Level) -> Any:
    for key in (level, f"{level}_name"):
        entry = obj.get(key)
        if isinstance(entry, str):
            entry = entry.strip()
        if entry not in (None, ""):
            if isinstance(entry, bool) or not isinstance(entry, str | int):
                raise FieldValueError(
                    "type",
                    f"`{key}` must be a division code or name, got {shown(entry)}",
                    f"`{key}` 应为行政区划代码或名称，实际为 {shown(entry)}",
                )
            return entry
    return None


def _is_code(entry: Any) -> bool:
    return isinstance(entry, int) or bool(_CODE.fullmatch(str(entry)))


def _one(level: Level, entry: Any, parent: Division | None) -> Division:
    """The division ``entry`` (a code or a name) at ``level`` under ``parent``."""
    if _is_code(entry):
        code = str(entry)
        division = divisions().get(code)
        if division is None:
            raise _unknown_code(code)
        if division.level != level:
            raise FieldValueError(
                "wrong_level",
                f"`{level}` must be a {level} code; {code} is the {division.level} {division.name}",
                f"`{level}` 应为{_LEVEL_ZH[level]}代码；{code} 是{_LEVEL_ZH[division.level]}"
                f"“{division.name}”",
            )
        if parent is not None and division.parent != parent.code:
            raise _wrong_parent(division, parent)
        return division
    name = str(entry)
    found = divisions().named(parent.code if parent else None, name)
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        listed = ", ".join(f"{d.name} ({d.code})" for d in found)
        raise FieldValueError(
            "ambiguous_region",
            f"`{level}` {name!r} matches several divisions: {listed}; give the code",
            f"`{level}` “{name}”对应多个行政区划：{listed}；请使用代码",
        )
    raise _unknown_name(level, name, parent)


def _city_by_name(province: Division, name: str, district: Any) -> list[Division]:
    """A city by name, also as people name municipalities and counties under a province.

    Returns the city, or the pseudo-city and its district when ``name`` is a county
    directly under the province (湖北省 仙桃市).
    """
    data = divisions()
    found = data.named(province.code, name)
    if found:
        return [_one("city", name, province)]
    cities = data.children(province.code)
    if short_name(name) == short_name(province.name) and cities:
        # A municipality named as its own city: 北京市 / 北京市 / 朝阳区.
        if district is not None:
            for city in cities:
                if _is_code(district) and data.get(str(district)) in data.children(city.code):
                    return [city]
                if not _is_code(district) and data.named(city.code, str(district)):
                    return [city]
        return [cities[0]]
    for city in cities:
        if _PSEUDO_CITY in city.name:
            counties = data.named(city.code, name)
            if len(counties) == 1:
                return [city, counties[0]]
    raise _unknown_name("city", name, province)


def _check_same(division: Division, entry: Any, level: Level) -> None:
    if _is_code(entry) and str(entry) == division.code:
        return
    if not _is_code(entry) and short_name(str(entry)) == short_name(division.name):
        return
    raise FieldValueError(
        "wrong_parent",
        f"`{level}` {shown(entry)} does not match {division.name} ({division.code}) "
        "named as the city",
        f"`{level}` {shown(entry)} 与城市一栏的“{division.name}”（{division.code}）不一致",
    )


def _complete(given: list[Division], levels: Level) -> dict[str, str]:
    """Check that ``given`` reaches ``levels`` (or the end of the dataset) and no further.

    A county under a ``省直辖县级行政区划`` pseudo-city is kept even when the field
    stops at the city: the pseudo-city alone names no place.
    """
    depth = LEVELS.index(levels) + 1
    if len(given) == 3 and depth == 2 and _PSEUDO_CITY in given[1].name:
        depth = 3  # 仙桃市 under 湖北省's pseudo-city: the pseudo-city alone names no place
    if len(given) > depth:
        extra = given[depth]
        raise FieldValueError(
            "beyond_level",
            f"this field records regions down to the {levels}; remove `{extra.level}` "
            f"({extra.name})",
            f"该字段只记录到{_LEVEL_ZH[levels]}一级；请去掉 `{extra.level}`（{extra.name}）",
        )
    if not given:
        raise FieldValueError("incomplete", "`province` is missing", "缺少 `province`（省份）")
    if len(given) < depth and divisions().children(given[-1].code):
        missing = LEVELS[len(given)]
        last = given[-1]
        raise FieldValueError(
            "incomplete",
            f"`{missing}` is missing: choose a {missing} in {last.name}",
            f"缺少 `{missing}`：请选择{last.name}下的{_LEVEL_ZH[missing]}",
        )
    return {division.level: division.code for division in given}


def _unknown_code(code: str) -> FieldValueError:
    return FieldValueError(
        "unknown_region",
        f"{code!r} is not a Chinese administrative division code (6 digits, GB/T 2260)",
        f"“{code}”不是有效的行政区划代码（6 位数字，GB/T 2260）",
    )


def _unknown_name(level: Level, name: str, parent: Division | None) -> FieldValueError:
    options = [d.name for d in divisions().children(parent.code if parent else None)]
    close = difflib.get_close_matches(name, options, n=3, cutoff=0.4)
    where_en = f" in {parent.name}" if parent else ""
    where_zh = parent.name if parent else ""
    hint_en = f" (did you mean {', '.join(close)}?)" if close else ""
    hint_zh = f"（您是否要找：{'、'.join(close)}？）" if close else ""
    return FieldValueError(
        "unknown_region",
        f"there is no {level} named {name!r}{where_en}{hint_en}",
        f"{where_zh}没有名为“{name}”的{_LEVEL_ZH[level]}{hint_zh}",
    )


def _wrong_parent(division: Division, parent: Division) -> FieldValueError:
    return FieldValueError(
        "wrong_parent",
        f"{division.level} {division.code} ({division.name}) is not in {parent.level} "
        f"{parent.code} ({parent.name})",
        f"{_LEVEL_ZH[division.level]} {division.code}（{division.name}）不属于"
        f"{_LEVEL_ZH[parent.level]} {parent.code}（{parent.name}）",
    )
