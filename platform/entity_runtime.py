"""Published entities as the records runtime uses them: compiled document + SQLAlchemy table.

Lookups read the entity's current published version from the environment (one
primary-key query) and reuse a compiled copy per (namespace, environment,
entity, version): the cache is only an optimisation, correct in any number of
processes because a new version has a new key.

A caller that read the version already in the same transaction, with other things
in one statement (:func:`published_version_column`), says so with
:func:`note_published`, and the lookup of that entity in that transaction needs no
query of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, bindparam, select

from formloom.engine.entities import EntityDoc
from formloom.engine.records.compiled import CompiledEntity, compile_entity
from formloom.platform.entity_tables import entity_table
from formloom.platform.errors import NotFound
from formloom.platform.tables import meta_document, meta_version

CACHE_LIMIT = 2048


@dataclass(frozen=True)
class RuntimeEntity:
    """One published version of an entity, ready for reads and writes."""

    version: int
    compiled: CompiledEntity
    table: Table

    @property
    def name(self) -> str:
        return self.compiled.name

    @property
    def document(self) -> EntityDoc:
        return self.compiled.document

    @cached_property
    def serialisers(self) -> dict[str, tuple[Callable[[Any, Any], Any], Any]]:
        """The ``to_json`` of every field stored in a column, with its options, by name in
        document order (turning rows into JSON reads this once per version, not per value)."""
        return {
            name: (compiled.field_type.to_json, compiled.options)
            for name, compiled in self.compiled.fields.items()
            if not compiled.field_type.virtual
        }


_cache: dict[tuple[str, str, str, int], RuntimeEntity] = {}
_lock = threading.Lock()
#: The entity's document row; built once (every request runs it), bound to ``name``.
_PUBLISHED = select(meta_document.c.published_version, meta_document.c.status).where(
    meta_document.c.kind == "entity", meta_document.c.name == bindparam("name")
)


#: Where :func:`note_published` keeps versions, in ``Connection.info``.
_NOTED = "formloom_published_entities"


def published_version_column() -> ColumnElement[int | None]:
    """The published version of the entity named by the bound parameter ``entity`` (NULL when
    it is not published), as a column to select with other things."""
    return (
        select(meta_document.c.published_version)
        .where(
            meta_document.c.kind == "entity",
            meta_document.c.name == bindparam("entity", type_=meta_document.c.name.type),
            meta_document.c.status == "published",
        )
        .scalar_subquery()
        .label("entity_version")
    )


def note_published(conn: Connection, name: str, version: int | None) -> None:
    """Remember for the rest of ``conn``'s transaction that entity ``name`` is published at
    ``version`` (None: not published), as read in that transaction."""
    transaction = conn.get_transaction()
    noted: tuple[object, dict[str, int | None]] | None = conn.info.get(_NOTED)
    if noted is None or noted[0] is not transaction:
        noted = conn.info[_NOTED] = (transaction, {})
    noted[1][name] = version


def _published_version(conn: Connection, name: str) -> int | None:
    noted = conn.info.get(_NOTED)
    if noted is not None and noted[0] is conn.get_transaction() and name in noted[1]:
        version: int | None = noted[1][name]
        return version
    row = conn.execute(_PUBLISHED, {"name": name}).first()
    if row is None or row.status != "published" or row.published_version is None:
        return None
    return int(row.published_version)


def load_entity(conn: Connection, *, namespace: str, env: str, name: str) -> RuntimeEntity:
    """The published entity ``name`` of ``env``; :class:`NotFound` if there is none."""
    version = _published_version(conn, name)
    if version is None:
        raise NotFound(
            f"entity `{name}` is not published in environment `{env}`; "
            f"see GET /api/envs/{env}/meta/entity"
        )
    key = (namespace, env, name, version)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    body: dict[str, Any] = conn.execute(
        select(meta_version.c.body).where(
            meta_version.c.kind == "entity",
            meta_version.c.name == name,
            meta_version.c.version == version,
        )
    ).scalar_one()
    document = EntityDoc.model_validate(body)
    runtime = RuntimeEntity(version, compile_entity(document), entity_table(document))
    with _lock:
        if len(_cache) >= CACHE_LIMIT:
            _cache.clear()
        _cache[key] = runtime
    return runtime
