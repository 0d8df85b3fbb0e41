"""Values of the extra field types survive their columns, on SQLite and on PostgreSQL.

An entity with one field of each type is published through the metadata store;
a normalised value of each type is written with an INSERT and read back with a
SELECT, and its JSON form must be what it was before storing.
"""

from __future__ import annotations

import base64
import struct
import zlib
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from formloom.platform.database import Workspace
from formloom.platform.entity_runtime import RuntimeEntity, load_entity
from formloom.platform.metastore import MetaStore, PublishOptions, SourceDocument

ENV = "production"
LABEL = {"zh": "拜访", "en": "Visit"}


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


SIGNATURE = "data:image/png;base64," + base64.b64encode(_png()).decode()

#: field name → (type, options, input value, JSON form after storing)
FIELDS: dict[str, tuple[str, dict[str, Any], Any, Any]] = {
    "notes": (
        "rich_text",
        {},
        '<p>签约<b>顺利</b><img src=x onerror="alert(1)"></p>',
        "<p>签约<b>顺利</b><img></p>",
    ),
    "length": ("duration", {}, "1天2小时30分", 95_400),
    "labels": ("tags", {}, [" VIP ", "vip", "华东"], ["VIP", "华东"]),
    "stars": ("rating", {"max": 10}, 9, 9),
    "done": ("progress", {}, "80%", 80),
    "payload": (
        "json",
        {"schema": {"type": "object"}},
        {"source": "webhook", "items": [1, 2.5, None, True], "名": {"嵌套": "值"}},
        {"source": "webhook", "items": [1, 2.5, None, True], "名": {"嵌套": "值"}},
    ),
    "area": (
        "region",
        {},
        {"province": "广东省", "city": "深圳市", "district": "南山区"},
        {
            "province": "440000",
            "province_name": "广东省",
            "city": "440300",
            "city_name": "深圳市",
            "district": "440305",
            "district_name": "南山区",
        },
    ),
    "office": (
        "address",
        {"region_levels": "city"},
        {"region": "110100", "street": "建国路 88 号", "postcode": "100022"},
        {
            "country": "CN",
            "region": {
                "province": "110000",
                "province_name": "北京市",
                "city": "110100",
                "city_name": "市辖区",
            },
            "street": "建国路 88 号",
            "postcode": "100022",
        },
    ),
    "spot": (
        "geo",
        {},
        {"lat": 22.540123456789, "lng": 113.934, "accuracy_m": 12.5},
        {"lat": 22.5401235, "lng": 113.934, "coordinate_system": "gcj02", "accuracy_m": 12.5},
    ),
    "sign": ("signature", {}, SIGNATURE, SIGNATURE),
    "owner": ("user", {}, "42", 42),
    "squad": ("team", {}, 7, 7),
}


@pytest.fixture
def visit(workspace: Workspace) -> RuntimeEntity:
    body = {
        "name": "visit",
        "label": LABEL,
        "fields": [
            {"name": name, "label": LABEL, "type": type_name, "options": options}
            for name, (type_name, options, _, _) in FIELDS.items()
        ],
    }
    MetaStore(workspace).apply(
        ENV, [SourceDocument("entity", body, "visit.json")], PublishOptions()
    )
    with workspace.begin(ENV, readonly=True) as conn:
        return load_entity(conn, namespace=workspace.settings.namespace, env=ENV, name="visit")


def _insert(workspace: Workspace, visit: RuntimeEntity, values: dict[str, Any]) -> int:
    now = datetime.now(UTC)
    statement = (
        visit.table.insert()
        .values(created_at=now, updated_at=now, **values)
        .returning(visit.table.c.id)
    )
    with workspace.begin(ENV) as conn:
        return int(conn.execute(statement).scalar_one())


def _select(workspace: Workspace, visit: RuntimeEntity, record_id: int) -> sa.RowMapping:
    with workspace.begin(ENV, readonly=True) as conn:
        query = sa.select(visit.table).where(visit.table.c.id == record_id)
        return conn.execute(query).mappings().one()


def test_each_type_gets_the_column_its_storage_names(
    workspace: Workspace, visit: RuntimeEntity
) -> None:
    with workspace.begin(ENV, readonly=True) as conn:
        columns = sa.inspect(conn).get_columns("visit", schema=workspace.env_schema(ENV))
    found = {c["name"]: c["type"] for c in columns}

    for name in ("notes", "sign"):
        assert isinstance(found[name], sa.Text), name
    for name in ("length", "stars", "done", "owner", "squad"):
        assert isinstance(found[name], sa.Integer), name
    for name in ("labels", "payload", "area", "office", "spot"):
        assert isinstance(found[name], sa.JSON), name


def test_normalised_values_of_every_type_round_trip_through_insert_and_select(
    workspace: Workspace, visit: RuntimeEntity
) -> None:
    # given
    fields = visit.compiled.fields
    stored = {
        name: fields[name].field_type.normalise(value, fields[name].options)
        for name, (_, _, value, _) in FIELDS.items()
    }

    # when
    row = _select(workspace, visit, _insert(workspace, visit, stored))

    # then
    for name, (_, _, _, expected) in FIELDS.items():
        assert fields[name].to_json(row[name]) == fields[name].to_json(stored[name]), name
        assert fields[name].to_json(row[name]) == expected, name


def test_empty_values_of_every_type_are_stored_as_null(
    workspace: Workspace, visit: RuntimeEntity
) -> None:
    row = _select(workspace, visit, _insert(workspace, visit, dict.fromkeys(FIELDS)))

    assert {
        name: visit.compiled.fields[name].to_json(row[name]) for name in FIELDS
    } == dict.fromkeys(FIELDS)
