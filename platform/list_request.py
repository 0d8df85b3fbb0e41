"""List requests as clients send them: a query string or a JSON body.

Reading a request only checks its shape (a number where a number belongs);
``formloom.platform.record_query.plan_list`` checks it against the entity and
reports what was found here together with everything else, in the caller's
language (each problem is kept in English and Chinese until then).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from formloom.engine.errors import Issue, pointer
from formloom.engine.relative_dates import DEFAULT_TIMEZONE

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class RequestProblem:
    """A problem found while reading a request, with its message in English and Chinese."""

    path: str
    code: str
    en: str
    zh: str

    def issue(self, lang: str) -> Issue:
        """The problem as an :class:`Issue` in ``lang`` (``zh`` or English)."""
        return Issue(self.path, self.code, self.zh if lang == "zh" else self.en)


@dataclass
class ListRequest:
    """What a client asks for, before it is checked against the entity.

    ``where`` is a JSON condition (or an already parsed one); ``filters`` are
    query-parameter filters (``("amount__ge", "100000")``). ``at`` prefixes the
    path of every issue (``/query`` for a query string); ``problems`` holds what
    was wrong while reading the request itself, reported with the rest.
    """

    where: Any = None
    filters: list[tuple[str, str]] = field(default_factory=list)
    sort: list[str] = field(default_factory=list)
    after: str | None = None
    limit: int = DEFAULT_LIMIT
    fields: list[str] | None = None
    search: str | None = None
    include_deleted: bool = False
    with_total: bool = True
    expand_titles: bool = True
    timezone: str = DEFAULT_TIMEZONE
    at: str = ""
    problems: list[RequestProblem] = field(default_factory=list)


def request_from_query(items: Iterable[tuple[str, str]]) -> ListRequest:
    """A list request from query parameters (issues at ``/query/…``).

    ``where`` is JSON; ``sort`` and ``fields`` are comma-separated; ``limit`` a
    number; ``include_deleted``, ``with_total`` and ``expand_titles`` true/false;
    ``after`` the ``next`` cursor; ``q`` the search; any other parameter a filter
    (``stage=won``, ``amount__ge=100000``; see ``condition_from_params``).
    """
    request = ListRequest(at="/query")
    for name, value in items:
        path = "/query" + pointer(name)
        if name == "where":
            request.where = _json_parameter(value, path, request.problems) if value else None
        elif name in ("sort", "fields"):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            if name == "sort":
                request.sort += parts
            else:
                request.fields = (request.fields or []) + parts
        elif name == "after":
            request.after = value or None
        elif name == "limit":
            try:
                request.limit = int(value)
            except ValueError:
                request.problems.append(
                    RequestProblem(
                        path,
                        "type",
                        f"limit must be a whole number, got {value!r}",
                        f"limit 应为整数，收到 {value!r}",
                    )
                )
        elif name == "q":
            request.search = value
        elif name == "timezone":
            request.timezone = value
        elif name in ("include_deleted", "with_total", "expand_titles"):
            flag = _flag(value)
            if flag is None:
                request.problems.append(
                    RequestProblem(
                        path,
                        "type",
                        f"`{name}` takes true or false, got {value!r}",
                        f"`{name}` 的值应为 true 或 false，收到 {value!r}",
                    )
                )
            else:
                setattr(request, name, flag)
        else:
            request.filters.append((name, value))
    return request


def request_from_body(body: Any) -> ListRequest:
    """A list request from a JSON body such as ``{"where": {...}, "sort": ["-amount"]}``.

    Keys: ``where``, ``sort`` (list), ``after``, ``limit``, ``fields`` (list),
    ``q``, ``include_deleted``, ``with_total``, ``expand_titles``, ``timezone``.
    """
    request = ListRequest()
    if body is None:
        return request
    if not isinstance(body, dict):
        request.problems.append(
            RequestProblem("", "type", "the query must be a JSON object", "查询应为 JSON 对象")
        )
        return request
    problems = request.problems
    readers: dict[str, Callable[[Any, str], Any]] = {
        "where": lambda v, p: v,
        "sort": lambda v, p: _strings(v, p, problems),
        "fields": lambda v, p: _strings(v, p, problems),
        "after": lambda v, p: _typed(v, p, str, _CURSOR, problems),
        "q": lambda v, p: _typed(v, p, str, _TEXT, problems),
        "limit": lambda v, p: _typed(v, p, int, _WHOLE, problems),
        "include_deleted": lambda v, p: _typed(v, p, bool, _FLAG, problems),
        "with_total": lambda v, p: _typed(v, p, bool, _FLAG, problems),
        "expand_titles": lambda v, p: _typed(v, p, bool, _FLAG, problems),
        "timezone": lambda v, p: _typed(v, p, str, _TIMEZONE, problems),
    }
    attribute = {"q": "search"}
    for key, value in body.items():
        path = pointer(key)
        reader = readers.get(key)
        if reader is None:
            request.problems.append(
                RequestProblem(
                    path,
                    "unexpected_key",
                    f"unexpected key `{key}`; a list query takes: {', '.join(readers)}",
                    f"不认识的键 `{key}`；列表查询可用：{', '.join(readers)}",
                )
            )
            continue
        if value is None:
            continue  # null asks for the default
        parsed = reader(value, path)
        if parsed is not _BAD:
            setattr(request, attribute.get(key) or key, parsed)
    return request


_BAD: Any = object()
#: What a body key takes, in English and Chinese.
_CURSOR = ("a cursor string", "游标字符串")
_TEXT = ("text", "文字")
_WHOLE = ("a whole number", "整数")
_FLAG = ("true or false", "true 或 false")
_TIMEZONE = ("a timezone name", "时区名称")


def _typed(
    value: Any, path: str, expected: type, what: tuple[str, str], problems: list[RequestProblem]
) -> Any:
    if isinstance(value, expected) and (expected is bool or not isinstance(value, bool)):
        return value
    got = json.dumps(value)[:60]
    problems.append(
        RequestProblem(path, "type", f"expected {what[0]}, got {got}", f"应为{what[1]}，收到 {got}")
    )
    return _BAD


def _strings(value: Any, path: str, problems: list[RequestProblem]) -> Any:
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    problems.append(
        RequestProblem(path, "type", "expected a list of field names", "应为字段名列表")
    )
    return _BAD


def _json_parameter(value: str, path: str, problems: list[RequestProblem]) -> Any:
    try:
        return json.loads(value)
    except ValueError as exc:
        problems.append(
            RequestProblem(
                path,
                "invalid_json",
                f"`where` is not valid JSON ({exc}); send a condition such as "
                '{"field": "stage", "op": "eq", "value": "won"}',
                f"`where` 不是有效的 JSON（{exc}）；请发送条件，例如 "
                '{"field": "stage", "op": "eq", "value": "won"}',
            )
        )
        return None


def _flag(text: str) -> bool | None:
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    return None
