"""OpenAPI for the records API of every published entity, with its real fields.

The generic routes (`/api/envs/{env}/records/{entity}`) are described by FastAPI;
this module adds, per published entity of an environment, concrete paths and
component schemas built from the entity's JSON Schema. The result is cached by
the set of published versions, so a publish shows up on the next request.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from sqlalchemy import select

from formloom.engine.records.schema import record_schema
from formloom.platform.database import Workspace
from formloom.platform.entity_runtime import load_entity
from formloom.platform.tables import meta_document

_cache: dict[tuple[str, str, tuple[tuple[str, int], ...]], dict[str, Any]] = {}
_lock = threading.Lock()

_PROBLEM = {
    "description": "Problem (RFC 9457) listing every error as {path, code, message}",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}
PROBLEM_SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "JSON pointer"},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}


def published_versions(workspace: Workspace, env: str) -> tuple[tuple[str, int], ...]:
    with workspace.begin(env, readonly=True) as conn:
        rows = conn.execute(
            select(meta_document.c.name, meta_document.c.published_version)
            .where(meta_document.c.kind == "entity", meta_document.c.status == "published")
            .order_by(meta_document.c.name)
        ).all()
    return tuple((r.name, int(r.published_version)) for r in rows)


def with_entities(base: dict[str, Any], workspace: Workspace, env: str) -> dict[str, Any]:
    """``base`` (FastAPI's document) plus the entity paths and schemas of ``env``."""
    versions = published_versions(workspace, env)
    key = (workspace.cache_key, env, versions)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    document = copy.deepcopy(base)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    paths = document.setdefault("paths", {})
    with workspace.begin(env, readonly=True) as conn:
        for name, _version in versions:
            runtime = load_entity(conn, namespace=workspace.cache_key, env=env, name=name)
            schema = record_schema(runtime.compiled)
            schema.pop("$schema", None)
            component = f"{env}.{name}"
            schemas[component] = schema
            paths.update(_entity_paths(env, name, runtime.document.label.en, component))
    with _lock:
        _cache.clear()
        _cache[key] = document
    return document


def _entity_paths(env: str, name: str, label: str, component: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{component}"}
    record = {"description": label, "content": {"application/json": {"schema": ref}}}
    body = {"required": True, "content": {"application/json": {"schema": ref}}}
    page = {
        "description": f"A page of {label} records",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "items": {"type": "array", "items": ref},
                        "next": {"type": ["string", "null"]},
                        "total": {"type": "integer"},
                        "total_is_exact": {"type": "boolean"},
                    },
                }
            }
        },
    }
    record_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
    tag = [f"{env}: {label}"]
    base = f"/api/envs/{env}/records/{name}"
    errors = {"404": _PROBLEM, "409": _PROBLEM, "422": _PROBLEM}
    return {
        base: {
            "get": {
                "tags": tag,
                "summary": f"List {label}",
                "operationId": f"list_{env}_{name}",
                "parameters": [
                    {
                        "name": "where",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "Structured filter as JSON",
                    },
                    {"name": "sort", "in": "query", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                    {"name": "next", "in": "query", "schema": {"type": "string"}},
                    {"name": "q", "in": "query", "schema": {"type": "string"}},
                    {"name": "fields", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": page, "422": _PROBLEM},
            },
            "post": {
                "tags": tag,
                "summary": f"Create a {label}",
                "operationId": f"create_{env}_{name}",
                "requestBody": body,
                "responses": {"201": record, **errors},
            },
        },
        base + "/{id}": {
            "parameters": [record_id],
            "get": {
                "tags": tag,
                "summary": f"Read a {label}",
                "operationId": f"get_{env}_{name}",
                "responses": {"200": record, "404": _PROBLEM},
            },
            "patch": {
                "tags": tag,
                "summary": f"Change some fields of a {label} (send `version`)",
                "operationId": f"patch_{env}_{name}",
                "requestBody": body,
                "responses": {"200": record, **errors},
            },
            "put": {
                "tags": tag,
                "summary": f"Replace a {label} (send `version`)",
                "operationId": f"put_{env}_{name}",
                "requestBody": body,
                "responses": {"200": record, **errors},
            },
            "delete": {
                "tags": tag,
                "summary": f"Move a {label} to the recycle bin (`?purge=true` from the bin)",
                "operationId": f"delete_{env}_{name}",
                "responses": {"200": record, "204": {"description": "Purged"}, **errors},
            },
        },
    }
