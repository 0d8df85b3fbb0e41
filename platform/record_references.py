"""Which entity columns look up an entity, and what deleting a looked-up record does to them.

The answer comes from the environment's entity documents: the published ones
(their lookup fields, with each field's ``on_delete``) and, because their
columns keep their foreign keys, retired lookup fields and removed entities
whose tables are kept. It is cached per set of published versions, so a
publish is seen at once by every process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    MetaData,
    Table,
    and_,
    or_,
    select,
)

from formloom.engine.entities import EntityDoc, FieldDef
from formloom.engine.fields import field_types
from formloom.platform.tables import ENV, BigId, UtcDateTime, meta_document, meta_version

OnDelete = Literal["restrict", "set_null", "cascade"]
CACHE_LIMIT = 256
#: Ids per ``IN (...)`` list (SQLite allows 32766 parameters; stay far below).
CHUNK = 500

T = TypeVar("T")


@dataclass(frozen=True)
class Reference:
    """Column ``field`` of entity ``entity`` looks up the target entity.

    ``live`` is False for a retired field or a removed entity: nobody sees those
    values, but their foreign keys still stop a purge, so a purge clears them.
    """

    entity: str
    field: str
    on_delete: OnDelete
    live: bool


_cache: dict[tuple[str, str, tuple[tuple[str, str, int], ...]], dict[str, list[Reference]]] = {}
_lock = threading.Lock()


def references_to(conn: Connection, *, cache_key: str, env: str, target: str) -> list[Reference]:
    """Every column that looks up ``target`` (``conn`` is in ``env``)."""
    published = tuple(
        (row.name, row.status, int(row.published_version))
        for row in conn.execute(
            select(meta_document.c.name, meta_document.c.status, meta_document.c.published_version)
            .where(meta_document.c.kind == "entity", meta_document.c.published_version.isnot(None))
            .order_by(meta_document.c.name)
        )
    )
    key = (cache_key, env, published)
    found = _cache.get(key)
    if found is None:
        found = _build(conn, published)
        with _lock:
            if len(_cache) >= CACHE_LIMIT:
                _cache.clear()
            _cache[key] = found
    return found.get(target, [])


def _build(
    conn: Connection, published: tuple[tuple[str, str, int], ...]
) -> dict[str, list[Reference]]:
    by_target: dict[str, list[Reference]] = {}
    if not published:
        return by_target
    wanted = or_(
        *(
            and_(meta_version.c.name == name, meta_version.c.version == v)
            for name, _, v in published
        )
    )
    bodies = conn.execute(
        select(meta_version.c.name, meta_version.c.body).where(
            meta_version.c.kind == "entity", wanted
        )
    )
    status = {name: s for name, s, _ in published}
    for name, body in bodies:
        document = EntityDoc.model_validate(body)
        live_entity = status[name] == "published"
        fields = [(f, live_entity) for f in document.fields]
        fields += [(r.field, False) for r in document.retired_fields]
        for field_def, live in fields:
            reference = _reference(name, field_def, live)
            if reference is not None:
                target, found = reference
                by_target.setdefault(target, []).append(found)
    return by_target


def _reference(entity: str, field_def: FieldDef, live: bool) -> tuple[str, Reference] | None:
    if field_def.type not in field_types:
        return None
    field_type = field_types.get(field_def.type)
    target = field_type.references(field_def.options)
    if target is None:
        return None
    options: Any = field_type.parse_options(field_def.options)
    on_delete: OnDelete = getattr(options, "on_delete", "restrict")
    return target, Reference(entity, field_def.name, on_delete, live)


def record_table(name: str, *columns: str) -> Table:
    """A minimal table of entity ``name``: ``id``, ``deleted_at``, ``version`` and ``columns``.

    Enough to check, null out or delete rows of an entity without loading its
    document (which may be removed, or a version the caller does not hold).
    """
    cols: list[Column[Any]] = [
        Column("id", BigId, primary_key=True),
        Column("deleted_at", UtcDateTime()),
        Column("version", Integer),
        Column("updated_at", UtcDateTime()),
        Column("updated_by", BigInteger),
    ]
    cols += [Column(c, BigInteger) for c in columns if c not in {"id", "version"}]
    return Table(name, MetaData(), *cols, schema=ENV)


def chunks(items: Sequence[T] | Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size`` (for ``IN (...)`` lists)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
