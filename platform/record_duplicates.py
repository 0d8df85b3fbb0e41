"""Duplicate rules: find live records whose values match a record being saved.

A rule names fields; a record is a duplicate when *every* one of them matches
(and has a value: a rule with an empty field in the new record checks nothing).
``exact`` compares stored values with SQL equality (phone numbers and email
domains are stored normalised already). ``normalised`` also ignores case and
extra whitespace in text: the database picks candidates with its own folding
(on SQLite a function that does exactly what Python does; on PostgreSQL
``lower()`` over whitespace-collapsed text, plus ß → ss and ς → σ), and Python
keeps the candidates whose folded values are equal
(:func:`formloom.engine.records.rules.fold`, ``str.casefold``). Nothing extra is
stored, and nothing is indexed: a normalised rule reads the table (fine for
CRM-sized tables; an exact rule on an indexed field uses the index). On
PostgreSQL, letters whose case folding ``lower()`` does not know (rare
ligatures) are not matched, and ``lower()`` follows the database's LC_CTYPE: in
a database with the plain ``C`` locale only ASCII letters are folded (Chinese
has no case, so Chinese names are unaffected).

On an update, a rule runs only when one of its fields changed, so editing
other fields of an old duplicate is not nagged about. Records in the recycle
bin are not duplicates.

``block`` rules add an issue to the save's 422; ``warn`` rules raise
:class:`DuplicateWarning` (409) unless the client confirmed that it wants the
duplicate (``X-Formloom-Confirm-Duplicates: true``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, literal, select

from formloom.engine.entities.model import DuplicateRule
from formloom.engine.errors import Issue, pointer
from formloom.engine.records.rules import duplicate_key, fold
from formloom.platform.access import Access
from formloom.platform.entity_runtime import RuntimeEntity
from formloom.platform.errors import Conflict
from formloom.platform.record_errors import say

#: Duplicates listed per rule.
MAX_LISTED = 10
#: Candidates a normalised rule reads before folding in Python.
MAX_CANDIDATES = 200
CONFIRM_HEADER = "X-Formloom-Confirm-Duplicates"


@dataclass(frozen=True)
class DuplicateMatch:
    """The live records that rule ``rule`` finds for a record, as (id, title)."""

    rule: DuplicateRule
    records: tuple[tuple[int, str | None], ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule.name,
            "action": self.rule.action,
            "fields": list(self.rule.fields),
            "records": [{"id": i, "title": t} for i, t in self.records],
        }


class DuplicateWarning(Conflict):
    """``warn`` duplicate rules found records; confirm to save anyway.

    ``details["duplicates"]`` lists each rule with the records it found.
    """

    code = "duplicate_warning"

    def __init__(self, message: str, *, issues: list[Issue], matches: list[DuplicateMatch]):
        super().__init__(message, issues=issues)
        self.details: dict[str, Any] = {"duplicates": [m.as_dict() for m in matches]}


def find_duplicates(
    conn: Connection,
    entity: RuntimeEntity,
    rules: tuple[DuplicateRule, ...],
    values: Mapping[str, Any],
    *,
    changed: set[str] | None,
    record_id: int | None,
    access: Access | None = None,
) -> list[DuplicateMatch]:
    """What each rule finds for a record with stored ``values``.

    ``changed`` (None on create) limits an update to the rules it touches;
    ``record_id`` is the record itself, never its own duplicate. With ``access``,
    the title of a duplicate the actor may not read is not shown (its id is: a
    rule exists to say that the record is already there).
    """
    matches = []
    for rule in rules:
        if changed is not None and not changed & set(rule.fields):
            continue
        normalised = rule.match == "normalised"
        keys = {
            name: duplicate_key(values.get(name), normalised=normalised) for name in rule.fields
        }
        if any(key is None for key in keys.values()):
            continue
        raw = {name: values[name] for name in rule.fields}
        found = _matching(
            conn, entity, keys, raw, normalised=normalised, record_id=record_id, access=access
        )
        if found:
            matches.append(DuplicateMatch(rule, tuple(found)))
    return matches


def _matching(
    conn: Connection,
    entity: RuntimeEntity,
    keys: dict[str, Any],
    raw: dict[str, Any],
    *,
    normalised: bool,
    record_id: int | None,
    access: Access | None = None,
) -> list[tuple[int, str | None]]:
    table = entity.table
    title = entity.document.title_field
    if access is not None and title in access.hidden(entity.name):
        title = None
    folded = [n for n, k in keys.items() if normalised and isinstance(k, str)]
    columns = [table.c.id, table.c.owner_id, *(table.c[n] for n in folded)]
    if title is not None and title not in folded:
        columns.append(table.c[title])
    query = select(*columns).where(table.c.deleted_at.is_(None))
    for name, key in keys.items():
        column = table.c[name]
        query = query.where(_folded(conn, column, raw[name]) if name in folded else column == key)
    if record_id is not None:
        query = query.where(table.c.id != record_id)
    limit = MAX_CANDIDATES if folded else MAX_LISTED
    rows = conn.execute(query.order_by(table.c.id).limit(limit)).all()
    found = []
    for row in rows:
        mapping = row._mapping
        if all(fold(str(mapping[n])) == keys[n] for n in folded):
            shown = mapping[title] if title is not None else None
            if access is not None and not access.allows_row(entity.name, "read", mapping):
                shown = None
            found.append((int(mapping["id"]), None if shown is None else str(shown)))
    return found[:MAX_LISTED]


def _folded(conn: Connection, column: ColumnElement[Any], value: str) -> ColumnElement[bool]:
    """A test that keeps every row whose folded value may equal ``value``'s."""
    if conn.dialect.name == "postgresql":
        return _pg_fold(column) == _pg_fold(literal(value))
    _register_fold(conn)
    return func.formloom_fold(column) == fold(value)


def _pg_fold(text: ColumnElement[Any]) -> ColumnElement[Any]:
    """Close to :func:`fold` in PostgreSQL: spaces collapsed, ``lower()``, and the two
    common foldings that ``lower()`` lacks (ß → ss, final ς → σ)."""
    collapsed = func.btrim(func.regexp_replace(text, r"\s+", " ", "g"))
    return func.replace(func.replace(func.lower(collapsed), "ß", "ss"), "ς", "σ")


def _register_fold(conn: Connection) -> None:
    """Give this SQLite connection ``formloom_fold(text)`` (once per database connection)."""
    pooled = conn.connection
    if pooled.info.get("formloom_fold"):
        return
    raw: Any = pooled.dbapi_connection
    raw.create_function("formloom_fold", 1, _fold_or_none, deterministic=True)
    pooled.info["formloom_fold"] = True


def _fold_or_none(value: Any) -> str | None:
    return fold(value) if isinstance(value, str) else None


def duplicate_issues(
    entity: RuntimeEntity, matches: list[DuplicateMatch], *, at: str, lang: str
) -> list[Issue]:
    """One issue per rule that found records, at the rule's first field."""
    return [
        Issue(
            at + pointer(m.rule.fields[0]),
            "duplicate_record" if m.rule.action == "block" else "duplicate_warning",
            _message(entity, m, lang),
        )
        for m in matches
    ]


def warning(
    entity: RuntimeEntity, matches: list[DuplicateMatch], *, at: str, lang: str
) -> DuplicateWarning:
    """The 409 for ``warn`` rules, naming how to save anyway."""
    issues = duplicate_issues(entity, matches, at=at, lang=lang)
    message = say(
        lang,
        f"possible duplicate: {issues[0].message}; to save it anyway, send the request again "
        f"with the header `{CONFIRM_HEADER}: true` (or `?confirm_duplicates=true`)",
        f"可能重复：{issues[0].message}；如仍要保存，请带上请求头 `{CONFIRM_HEADER}: true`"
        "（或 `?confirm_duplicates=true`）重新提交",
    )
    return DuplicateWarning(message, issues=issues, matches=matches)


def _message(entity: RuntimeEntity, match: DuplicateMatch, lang: str) -> str:
    listed = ", ".join(f"{i} ({t})" if t else str(i) for i, t in match.records)
    if match.rule.message is not None:
        text = match.rule.message.zh if lang == "zh" else match.rule.message.en
        return say(
            lang, f"{text} (`{entity.name}` {listed})", f"{text}（`{entity.name}` {listed}）"
        )
    labels = [entity.compiled.fields[n].label(lang) for n in match.rule.fields]
    return say(
        lang,
        f"{' + '.join(labels)} match existing `{entity.name}` record(s) {listed} "
        f"(duplicate rule `{match.rule.name}`)",
        f"{'、'.join(labels)}与已有的 `{entity.name}` 记录 {listed} 重复（查重规则 "
        f"`{match.rule.name}`）",
    )
