"""Published entities as the records runtime uses them: compiled document + SQLAlchemy table.

Lookups read the entity's current published version from the environment (one
primary-key query) and reuse a compiled copy per (namespace, environment,
entity, version): the cache is only an optimisation, correct in any number of
processes because a new version has a new key.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, select

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


_cache: dict[tuple[str, str, str, int], RuntimeEntity] = {}
_lock = threading.Lock()


def load_entity(conn: Connection, *, namespace: str, env: str, name: str) -> RuntimeEntity:
    """The published entity ``name`` of ``env``; :class:`NotFound` if there is none."""
    row = conn.execute(
        select(meta_document.c.published_version, meta_document.c.status).where(
            meta_document.c.kind == "entity", meta_document.c.name == name
        )
    ).first()
    if row is None or row.status != "published" or row.published_version is None:
        raise NotFound(
            f"entity `{name}` is not published in environment `{env}`; "
            f"see GET /api/envs/{env}/meta/entity"
        )
    key = (namespace, env, name, int(row.published_version))
    cached = _cache.get(key)
    if cached is not None:
        return cached
    body: dict[str, Any] = conn.execute(
        select(meta_version.c.body).where(
            meta_version.c.kind == "entity",
            meta_version.c.name == name,
            meta_version.c.version == row.published_version,
        )
    ).scalar_one()
    document = EntityDoc.model_validate(body)
    runtime = RuntimeEntity(
        int(row.published_version), compile_entity(document), entity_table(document)
    )
    with _lock:
        if len(_cache) >= CACHE_LIMIT:
            _cache.clear()
        _cache[key] = runtime
    return runtime
