"""Published flow versions as the runtime uses them: documents and compiled flows.

An instance is pinned to one published version (a row of ``fl_meta_version``),
so documents are cached per (workspace, environment, flow, version): a version
never changes, so the cache is correct in any number of processes. A compiled
flow also depends on the entity's version (conditions are parsed against its
fields), which is part of that cache's key.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from formloom.engine.flows import CompiledFlow, FlowDoc, compile_flow
from formloom.platform.entity_runtime import RuntimeEntity
from formloom.platform.tables import meta_document, meta_version

CACHE_LIMIT = 1024

_documents: dict[tuple[str, str, str, int], FlowDoc] = {}
_compiled: dict[tuple[str, str, str, int, int], CompiledFlow] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class PinnedFlow:
    """One published version of a flow, compiled against its entity."""

    version: int
    compiled: CompiledFlow

    @property
    def name(self) -> str:
        return self.compiled.name

    @property
    def document(self) -> FlowDoc:
        return self.compiled.document


def flow_document(
    conn: Connection, *, cache_key: str, env: str, name: str, version: int
) -> FlowDoc:
    """Version ``version`` of flow ``name`` (KeyError if it was never published)."""
    key = (cache_key, env, name, version)
    found = _documents.get(key)
    if found is not None:
        return found
    body: dict[str, Any] | None = conn.execute(
        select(meta_version.c.body).where(
            meta_version.c.kind == "flow",
            meta_version.c.name == name,
            meta_version.c.version == version,
        )
    ).scalar()
    if body is None:
        raise KeyError(f"flow `{name}` has no version {version} in environment `{env}`")
    document = FlowDoc.model_validate(body)
    _remember(_documents, key, document)
    return document


def pinned_flow(
    conn: Connection, *, cache_key: str, env: str, name: str, version: int, entity: RuntimeEntity
) -> PinnedFlow:
    """Version ``version`` of flow ``name``, compiled against the published ``entity``."""
    key = (cache_key, env, name, version, entity.version)
    compiled = _compiled.get(key)
    if compiled is None:
        document = flow_document(conn, cache_key=cache_key, env=env, name=name, version=version)
        compiled = compile_flow(document, entity.compiled)
        _remember(_compiled, key, compiled)
    return PinnedFlow(version, compiled)


def published_flows(
    conn: Connection, *, cache_key: str, env: str, entity: RuntimeEntity
) -> list[PinnedFlow]:
    """The flows currently published for ``entity``, by name."""
    rows = conn.execute(
        select(meta_document.c.name, meta_document.c.published_version)
        .where(
            meta_document.c.kind == "flow",
            meta_document.c.status == "published",
            meta_document.c.published_version.is_not(None),
        )
        .order_by(meta_document.c.name)
    ).all()
    found = []
    for row in rows:
        version = int(row.published_version)
        document = flow_document(conn, cache_key=cache_key, env=env, name=row.name, version=version)
        if document.entity == entity.name:
            found.append(
                pinned_flow(
                    conn,
                    cache_key=cache_key,
                    env=env,
                    name=row.name,
                    version=version,
                    entity=entity,
                )
            )
    return found


def published_version(conn: Connection, name: str) -> int | None:
    """The version of flow ``name`` published now (None if it is not published)."""
    row = conn.execute(
        select(meta_document.c.published_version, meta_document.c.status).where(
            meta_document.c.kind == "flow", meta_document.c.name == name
        )
    ).first()
    if row is None or row.status != "published" or row.published_version is None:
        return None
    return int(row.published_version)


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    with _lock:
        if len(cache) >= CACHE_LIMIT:
            cache.clear()
        cache[key] = value
