"""Import (CSV, XLSX) and export of records on both databases: service, job, HTTP and CLI."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from formloom.platform import (
    import_files,
    record_export,
    record_import,
    records,
)
from formloom.platform.app import build_app
from formloom.platform.cli import main
from formloom.platform.database import Workspace
from formloom.platform.environments import create_environment
from formloom.platform.errors import Invalid
from formloom.platform.import_batch import ImportBatch
from formloom.platform.import_files import FileTooLarge, UnsupportedFile
from formloom.platform.list_request import ListRequest
from formloom.platform.record_query import list_in_environment
from formloom.platform.settings import Settings
from formloom.platform.worker import Worker
from tests.clients import admin_client
from tests.platform.crm_entities import ALL, DEAL, ENV, FULL_DEAL, publish
from tests.principals import SYSTEM

ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}


@pytest.fixture
def crm(workspace: Workspace) -> Workspace:
    publish(workspace, *ALL)
    return workspace


def csv_bytes(*rows: list[Any], encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode(encoding)


def xlsx_bytes(*rows: list[Any]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def submit(
    ws: Workspace,
    entity: str,
    content: bytes,
    *,
    name: str = "data.csv",
    lang: str = "en",
    env: str = ENV,
    **options: Any,
) -> dict[str, Any]:
    return record_import.submit_import(
        ws,
        env=env,
        entity=entity,
        upload=io.BytesIO(content),
        file_name=name,
        options=options,
        lang=lang,
        principal=SYSTEM,
    )


def run_jobs(ws: Workspace) -> None:
    while Worker(ws, poll_interval=0).run_once():
        pass


def import_now(ws: Workspace, entity: str, content: bytes, **kwargs: Any) -> dict[str, Any]:
    """Submit an import, run its job, return the finished import."""
    started = submit(ws, entity, content, **kwargs)
    run_jobs(ws)
    return record_import.get_import(
        ws, env=kwargs.get("env", ENV), import_id=started["id"], principal=SYSTEM
    )


def listed(ws: Workspace, entity: str, env: str = ENV) -> list[dict[str, Any]]:
    page = list_in_environment(
        ws, env, entity, ListRequest(sort=["id"], limit=200), principal=SYSTEM
    )
    return page.items


def errors(found: dict[str, Any]) -> list[tuple[int | None, str | None, str]]:
    return [(e["row"], e["column"], e["code"]) for e in found["summary"]["errors"]]


def counts(found: dict[str, Any]) -> dict[str, int]:
    summary = found["summary"]
    return {k: summary[k] for k in ("rows", "created", "updated", "unchanged", "skipped")}


# -- round trips ----------------------------------------------------------------------------


def _fill(ws: Workspace) -> None:
    acme = records.create_record(
        ws,
        env=ENV,
        entity="account",
        payload={"name": "北京星辰科技", "level": "a"},
        principal=SYSTEM,
    )
    records.create_record(
        ws,
        env=ENV,
        entity="account",
        payload={"name": "Acme", "phone": "010-12345678"},
        principal=SYSTEM,
    )
    records.create_record(
        ws, env=ENV, entity="deal", payload={**FULL_DEAL, "account": acme["id"]}, principal=SYSTEM
    )
    records.create_record(
        ws,
        env=ENV,
        entity="deal",
        payload={"title": '小单, "quoted"', "stage": "lost", "won": True, "tags": ["cold"]},
        principal=SYSTEM,
    )


def _user_fields(items: list[dict[str, Any]], titles: bool = True) -> list[dict[str, Any]]:
    system = {"id", "version", "created_at", "updated_at", "created_by", "updated_by", "owner_id"}
    out = []
    for item in items:
        kept = {k: v for k, v in item.items() if k not in system and k != "_titles"}
        if titles and "account" in kept:
            kept["account"] = (item.get("_titles") or {}).get("account")
        out.append(kept)
    return out


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_export_then_import_into_an_empty_environment_gives_equal_records(
    crm: Workspace, file_format: str
) -> None:
    # given records in production and an empty sandbox with the same entities
    _fill(crm)
    create_environment(crm, "sandbox")
    publish(crm, *ALL, env="sandbox")

    # when both entities are exported (Chinese headers) and imported into the sandbox
    for entity in ("account", "deal"):
        exported = record_export.export_records(
            crm,
            env=ENV,
            entity=entity,
            request=ListRequest(),
            file_format=file_format,  # type: ignore[arg-type]
            lang="zh",
            principal=SYSTEM,
        )
        content = b"".join(exported.chunks)
        found = import_now(crm, entity, content, name=f"{entity}.{file_format}", env="sandbox")
        assert found["summary"]["error_count"] == 0, found["summary"]["errors"]

    # then the records are equal, field by field
    for entity in ("account", "deal"):
        assert _user_fields(listed(crm, entity, "sandbox")) == _user_fields(listed(crm, entity))


def test_csv_export_is_utf8_with_bom_and_excel_friendly(crm: Workspace) -> None:
    _fill(crm)

    exported = record_export.export_records(
        crm, env=ENV, entity="deal", request=ListRequest(), lang="zh", principal=SYSTEM
    )
    content = b"".join(exported.chunks)

    assert content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows[0][:5] == ["编号", "标题", "notes", "quantity", "金额"]
    big = dict(zip(rows[0], rows[1], strict=True))
    assert big["阶段"] == "won" and big["won"] == "否" and big["客户"] == "北京星辰科技"
    assert big["closed_at"] == "2026-03-31 09:30:00"  # local time, Asia/Shanghai
    assert big["tags"] == "hot; vip"
    assert rows[2][1] == '小单, "quoted"'


# -- mapping -------------------------------------------------------------------------------


def test_columns_match_api_names_and_labels_in_both_languages_with_suggestions(
    crm: Workspace,
) -> None:
    records.create_record(
        crm, env=ENV, entity="account", payload={"name": "Acme"}, principal=SYSTEM
    )
    content = csv_bytes(
        ["  TITLE ", "金额", "Close   Date", "Stage*", "Customer", "Amout", "ID"],
        ["Deal", "12.5", "2026-01-02", "won", "Acme", "x", "99"],
    )

    found = import_now(crm, "deal", content, mapping={"Customer": "account"}, dry_run=True)

    by_column = {c["column"]: c for c in found["columns"]}
    assert [(c["field"], c["matched_by"]) for c in found["columns"]] == [
        ("title", "name"),
        ("amount", "label_zh"),
        ("close_date", "name"),
        ("stage", "name"),
        ("account", "mapping"),
        (None, ""),
        (None, "system"),
    ]
    assert by_column["Amout"]["suggestions"][0] == "amount"
    assert found["summary"]["error_count"] == 0 and found["summary"]["created"] == 1
    assert listed(crm, "deal") == []  # a dry run writes nothing


def test_mapping_problems_are_reported_together_before_anything_runs(crm: Workspace) -> None:
    content = csv_bytes(["notes", "Amount", "amount"], ["x", "1", "2"])

    with pytest.raises(Invalid) as caught:
        submit(crm, "deal", content, mapping={"Nope": "title", "notes": "titel"}, upsert_on="stage")

    found = {(i.path, i.code) for i in caught.value.issues}
    assert found == {
        ("/options/mapping/Nope", "unknown_column"),
        ("/options/mapping/notes", "unknown_field"),
        ("/options/mapping/amount", "duplicate_column"),
        ("/options/upsert_on", "not_unique"),
        ("/options/upsert_on", "no_column"),
    }
    assert "did you mean `title`?" in str([i.message for i in caught.value.issues])
    assert not list((crm.settings.data_dir / "imports").rglob("upload"))


def test_a_required_field_without_a_column_stops_the_import(crm: Workspace) -> None:
    with pytest.raises(Invalid) as caught:
        submit(crm, "deal", csv_bytes(["amount"], ["1"]), lang="zh")

    assert [(i.path, i.code) for i in caught.value.issues] == [
        ("/options/mapping", "required_column")
    ]
    assert "`title`（标题）" in caught.value.issues[0].message


# -- bad cells -----------------------------------------------------------------------------

BAD_DEALS = csv_bytes(
    ["标题", "金额", "电话", "阶段", "客户", "won"],
    ["Good", "1,200.50", "13800138000", "WON", "Acme", "是"],
    ["Bad number", "abc", "", "open", "", ""],
    ["Bad phone", "", "12345", "open", "", ""],
    ["", "", "", "", "", ""],
    ["Unknown choice", "", "", "pending", "", ""],
    ["Unknown account", "", "", "", "Nobody", ""],
    ["", "5", "", "", "", "maybe"],
    ["Good too", "", "", "", "", "否"],
)
BAD_DEAL_ERRORS = [
    (3, "金额", "type"),
    (4, "电话", "invalid_phone"),
    (6, "阶段", "unknown_choice"),
    (7, "客户", "unknown_record"),
    (8, "标题", "required"),
    (8, "won", "type"),
]


@pytest.fixture
def acme(crm: Workspace) -> dict[str, Any]:
    return records.create_record(
        crm, env=ENV, entity="account", payload={"name": "Acme"}, principal=SYSTEM
    )


def test_dry_run_reports_every_bad_cell_with_row_and_column(
    crm: Workspace, acme: dict[str, Any]
) -> None:
    found = import_now(crm, "deal", BAD_DEALS, dry_run=True)

    assert found["status"] == "done"
    assert errors(found) == BAD_DEAL_ERRORS
    assert counts(found) == {"rows": 7, "created": 2, "updated": 0, "unchanged": 0, "skipped": 5}
    assert found["summary"]["written"] is False and listed(crm, "deal") == []
    messages = {e["column"]: e["message"] for e in found["summary"]["errors"]}
    assert messages["金额"] == "Amount: expected a number, got 'abc'"
    assert "no `account` has Company “Nobody”" in messages["客户"]


def test_all_or_nothing_writes_nothing_when_a_cell_is_bad(
    crm: Workspace, acme: dict[str, Any]
) -> None:
    found = import_now(crm, "deal", BAD_DEALS, mode="all_or_nothing", lang="zh")

    assert errors(found) == BAD_DEAL_ERRORS
    assert found["summary"]["written"] is False
    assert counts(found)["skipped"] == 7 and counts(found)["created"] == 0
    assert listed(crm, "deal") == []
    assert any("金额：应为数字" in e["message"] for e in found["summary"]["errors"])


def test_skip_bad_rows_writes_the_good_rows(crm: Workspace, acme: dict[str, Any]) -> None:
    found = import_now(crm, "deal", BAD_DEALS, mode="skip_bad_rows")

    assert errors(found) == BAD_DEAL_ERRORS
    assert counts(found) == {"rows": 7, "created": 2, "updated": 0, "unchanged": 0, "skipped": 5}
    deals = listed(crm, "deal")
    assert [
        (d["title"], d["amount"], d["phone"], d["stage"], d["account"], d["won"]) for d in deals
    ] == [
        ("Good", 1200.5, "+8613800138000", "won", acme["id"], True),
        ("Good too", None, None, "open", None, False),
    ]
    history = records.record_history(
        crm, env=ENV, entity="deal", record_id=deals[0]["id"], principal=SYSTEM
    )
    assert [e["action"] for e in history["items"]] == ["create"]


def test_unique_values_repeated_in_the_file_or_the_database(crm: Workspace) -> None:
    records.create_record(
        crm, env=ENV, entity="account", payload={"name": "Acme"}, principal=SYSTEM
    )
    content = csv_bytes(
        ["公司名称", "code", "region"],
        ["Acme", "", ""],
        ["NewCo", "c1", "east"],
        ["NewCo", "c2", "east"],
        ["Other", "c1", "east"],
    )

    found = import_now(crm, "account", content, mode="skip_bad_rows")

    assert errors(found) == [
        (2, "公司名称", "duplicate"),
        (4, "公司名称", "duplicate_in_file"),
        (5, "code", "duplicate_in_file"),
    ]
    assert [a["name"] for a in listed(crm, "account")] == ["Acme", "NewCo"]


# -- upsert and lookups ----------------------------------------------------------------------


def test_upsert_updates_matching_records_and_creates_the_rest(crm: Workspace) -> None:
    acme = records.create_record(
        crm, env=ENV, entity="account", payload={"name": "Acme", "level": "a"}, principal=SYSTEM
    )
    same = records.create_record(
        crm, env=ENV, entity="account", payload={"name": "Same", "level": "b"}, principal=SYSTEM
    )
    content = csv_bytes(
        ["Company", "level", "phone"],
        ["Acme", "b", "13800138000"],
        ["Same", "b", ""],
        ["NewCo", "", ""],
        ["Acme", "c", ""],
    )

    found = import_now(crm, "account", content, upsert_on="name", mode="skip_bad_rows")

    assert counts(found) == {"rows": 4, "created": 1, "updated": 1, "unchanged": 1, "skipped": 1}
    assert errors(found) == [(5, "Company", "duplicate_in_file")]
    after = {a["name"]: a for a in listed(crm, "account")}
    assert (after["Acme"]["level"], after["Acme"]["phone"], after["Acme"]["version"]) == (
        "b",
        "+8613800138000",
        2,
    )
    assert after["Same"]["version"] == same["version"]
    assert after["NewCo"]["level"] == "c"  # the default, the cell being empty
    history = records.record_history(
        crm, env=ENV, entity="account", record_id=acme["id"], principal=SYSTEM
    )
    assert history["items"][0]["changes"] == {
        "level": ["a", "b"],
        "phone": [None, "+8613800138000"],
    }


def test_upsert_by_id_round_trips_an_edited_export(crm: Workspace) -> None:
    deal = records.create_record(
        crm, env=ENV, entity="deal", payload={"title": "Old", "quantity": 1}, principal=SYSTEM
    )
    content = csv_bytes(["ID", "标题", "quantity"], [str(deal["id"]), "New", "2"], ["999", "X", ""])

    found = import_now(crm, "deal", content, upsert_on="id", mode="skip_bad_rows")

    assert errors(found) == [(3, "ID", "unknown_record")]
    assert [(d["title"], d["quantity"]) for d in listed(crm, "deal")] == [("New", 2)]


def test_lookups_resolve_by_title_or_a_chosen_unique_field(crm: Workspace) -> None:
    for name, code in (("Acme", "A1"), ("Twin", "T1")):
        records.create_record(
            crm, env=ENV, entity="account", payload={"name": name, "code": code}, principal=SYSTEM
        )
    gone = records.create_record(
        crm, env=ENV, entity="account", payload={"name": "Gone"}, principal=SYSTEM
    )
    records.delete_record(crm, env=ENV, entity="account", record_id=gone["id"], principal=SYSTEM)
    by_title = csv_bytes(["title", "account"], ["a", "Acme"], ["b", "Gone"], ["c", "acme"])

    found = import_now(crm, "deal", by_title, dry_run=True)

    assert errors(found) == [(3, "account", "deleted_record"), (4, "account", "unknown_record")]
    with pytest.raises(Invalid) as caught:
        submit(crm, "deal", by_title, lookup_by={"account": "code"})
    assert caught.value.issues[0].code == "not_unique"


def test_ambiguous_lookup_titles_are_cell_errors(crm: Workspace) -> None:
    for name in ("Zhang San", "Zhang San", "Li Si"):
        records.create_record(
            crm, env=ENV, entity="deal", payload={"title": name}, principal=SYSTEM
        )
    content = csv_bytes(["subject", "deal"], ["call", "Zhang San"], ["visit", "Li Si"])

    found = import_now(crm, "task", content, lookup_by={"deal": "id"}, dry_run=True)
    assert errors(found) == [(2, "deal", "invalid_id"), (3, "deal", "invalid_id")]

    publish(crm, {**DEAL, "title_field": "title"})
    found = import_now(crm, "task", content, mode="skip_bad_rows")
    assert errors(found) == [(2, "deal", "ambiguous_record")]
    assert "2 `deal` records" in found["summary"]["errors"][0]["message"]


CONTRACT = {
    "name": "contract",
    "label": {"en": "Contract", "zh": "合同"},
    "title_field": "customer",
    "fields": [
        {
            "name": "number",
            "label": {"en": "Number", "zh": "合同编号"},
            "type": "auto_number",
            "unique": True,
            "options": {"pattern": "HT-{0000}"},
        },
        {"name": "customer", "label": {"en": "Customer", "zh": "客户名称"}, "type": "text"},
        {"name": "amount", "label": {"en": "Amount", "zh": "金额"}, "type": "decimal"},
        {"name": "discount", "label": {"en": "Discount", "zh": "折扣"}, "type": "decimal"},
        {
            "name": "net",
            "label": {"en": "Net", "zh": "净额"},
            "type": "formula",
            "options": {"expression": "amount - discount", "result": "decimal"},
        },
    ],
    "validation_rules": [
        {
            "name": "discount_below_amount",
            "when": "discount > amount",
            "field": "discount",
            "message": {"en": "The discount exceeds the amount", "zh": "折扣超过金额"},
        },
    ],
    "duplicate_rules": [
        {"name": "same_customer", "fields": ["customer"], "match": "normalised", "action": "warn"},
    ],
}


def test_imported_rows_go_through_the_save_pipeline(crm: Workspace) -> None:
    publish(crm, CONTRACT)
    records.create_record(
        crm, env=ENV, entity="contract", payload={"customer": "Old Co"}, principal=SYSTEM
    )
    content = csv_bytes(
        ["合同编号", "客户名称", "金额", "折扣", "净额"],
        ["HT-9999", "Acme", "100", "10", "1"],
        ["", "Beta", "100", "200", ""],
        ["", "  old co ", "5", "", ""],
        ["", "ACME", "7", "", ""],
    )

    found = import_now(crm, "contract", content, mode="skip_bad_rows")

    assert [(c["column"], c["matched_by"], c["names"]) for c in found["columns"][::4]] == [
        ("合同编号", "computed", "number"),
        ("净额", "computed", "net"),
    ]
    assert errors(found) == [
        (3, "折扣", "validation_rule"),
        (4, "客户名称", "duplicate_warning"),
        (5, "客户名称", "duplicate_warning"),
    ]
    created = [(c["number"], c["customer"], c["net"]) for c in listed(crm, "contract")]
    assert created == [("HT-0001", "Old Co", None), ("HT-0002", "Acme", 90)]
    confirmed = import_now(
        crm, "contract", csv_bytes(["客户名称"], ["old co"]), confirm_duplicates=True
    )
    assert confirmed["summary"]["created"] == 1


QUOTE_WITH_LINES = {
    "name": "quote",
    "label": {"en": "Quote", "zh": "报价"},
    "title_field": "number",
    "fields": [
        {"name": "number", "label": {"en": "Number", "zh": "报价单号"}, "type": "text"},
        {
            "name": "lines",
            "label": {"en": "Lines", "zh": "明细"},
            "type": "child_table",
            "options": {"entity": "quote_line", "field": "quote"},
        },
    ],
}
QUOTE_LINE = {
    "name": "quote_line",
    "label": {"en": "Quote line", "zh": "报价明细"},
    "fields": [
        {"name": "product", "label": {"en": "Product", "zh": "产品"}, "type": "text"},
        {
            "name": "quote",
            "label": {"en": "Quote", "zh": "报价"},
            "type": "lookup",
            "options": {"entity": "quote", "on_delete": "cascade"},
        },
    ],
}


def test_child_tables_are_imported_as_their_own_records(crm: Workspace) -> None:
    publish(crm, QUOTE_WITH_LINES, QUOTE_LINE)
    quotes = import_now(crm, "quote", csv_bytes(["报价单号", "明细"], ["Q-1", "[]"]))
    assert quotes["columns"][1]["matched_by"] == "child_table"
    assert quotes["summary"]["created"] == 1

    lines = import_now(
        crm, "quote_line", csv_bytes(["产品", "报价"], ["Pen", "Q-1"], ["Ink", "Q-1"])
    )

    assert lines["summary"]["created"] == 2
    exported = record_export.export_records(
        crm, env=ENV, entity="quote", request=ListRequest(), principal=SYSTEM
    )
    assert b"".join(exported.chunks).decode("utf-8-sig").splitlines() == ["ID,Number", "1,Q-1"]
    with pytest.raises(Invalid) as caught:
        submit(crm, "quote", csv_bytes(["number", "x"], ["Q-2", "[]"]), mapping={"x": "lines"})
    assert caught.value.issues[0].code == "child_table"


# -- files -----------------------------------------------------------------------------------


def test_gbk_csv_as_chinese_excel_saves_it(crm: Workspace) -> None:
    content = csv_bytes(
        ["公司名称", "level", "phone"],
        ["北京星辰科技有限公司", "a", "010-12345678"],
        encoding="gbk",
    )

    found = import_now(crm, "account", content)

    assert found["summary"]["created"] == 1
    account = listed(crm, "account")[0]
    assert (account["name"], account["phone"]) == ("北京星辰科技有限公司", "+861012345678")


def test_xlsx_cells_keep_their_excel_types(crm: Workspace) -> None:
    content = xlsx_bytes(
        ["title", "quantity", "amount", "close_date", "closed_at", "won", "phone", "tags", None],
        [
            "X",
            3.0,
            1234.5,
            datetime(2026, 3, 31),
            datetime(2026, 3, 31, 9, 30),
            True,
            13800138000,
            "hot,vip",
            None,
        ],
        [None] * 9,
        [
            "Y",
            "4",
            "¥1,000",
            date(2026, 1, 2),
            "2026/1/2 8:00",
            "n",
            "+86 138 0013 8001",
            "cold",
            None,
        ],
    )

    found = import_now(crm, "deal", content, name="deals.xlsx")

    assert found["file_format"] == "xlsx" and found["summary"]["error_count"] == 0, found
    got = [
        (
            d["quantity"],
            d["amount"],
            d["close_date"],
            d["closed_at"],
            d["won"],
            d["phone"],
            d["tags"],
        )
        for d in listed(crm, "deal")
    ]
    assert got == [
        (
            3,
            1234.5,
            "2026-03-31",
            "2026-03-31T01:30:00+00:00",
            True,
            "+8613800138000",
            ["hot", "vip"],
        ),
        (4, 1000, "2026-01-02", "2026-01-02T00:00:00+00:00", False, "+8613800138001", ["cold"]),
    ]


def test_too_large_files_and_wrong_types_are_refused(
    crm: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_files, "MAX_FILE_BYTES", 100)
    with pytest.raises(FileTooLarge) as large:
        record_import.submit_import(
            crm,
            env=ENV,
            entity="deal",
            upload=io.BytesIO(b"title\n" + b"x\n" * 100),
            file_name="a.csv",
            principal=SYSTEM,
        )
    assert large.value.status == 413 and "at most 0.0 MB" in large.value.message
    monkeypatch.undo()
    for content, name, what in (
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "deals.csv", "a PNG image"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 20, "deals.xls", "Excel 97-2003"),
        (b"PK\x03\x04" + b"\0" * 20, "deals.xlsx", "not an Excel workbook"),
    ):
        with pytest.raises(UnsupportedFile) as caught:
            submit(crm, "deal", content, name=name)
        assert what in caught.value.message and ".xlsx" in caught.value.message
    assert not list((crm.settings.data_dir / "imports").rglob("upload"))


def test_row_limit(crm: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(import_files, "MAX_ROWS", 3)
    with pytest.raises(Invalid) as caught:
        submit(crm, "deal", csv_bytes(["title"], *[[f"d{i}"] for i in range(4)]))
    assert caught.value.issues[0].code == "too_many_rows"


# -- the job -----------------------------------------------------------------------------------


def test_progress_is_reported_and_rerunning_a_finished_import_adds_nothing(
    crm: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(record_import, "BATCH_ROWS", 2)
    content = csv_bytes(["title"], *[[f"Deal {i}"] for i in range(5)])
    started = submit(crm, "deal", content, mode="skip_bad_rows")
    reports: list[tuple[int, int, str]] = []

    record_import.run_import(
        crm, env=ENV, import_id=started["id"], report=lambda *r: reports.append(r)
    )
    record_import.run_import(crm, env=ENV, import_id=started["id"])
    run_jobs(crm)  # the queued job finds the import finished

    assert [r[:2] for r in reports] == [(2, 5), (4, 5), (5, 5), (5, 5)]
    assert len(listed(crm, "deal")) == 5
    found = record_import.get_import(crm, env=ENV, import_id=started["id"], principal=SYSTEM)
    assert found["status"] == "done" and found["job"]["status"] == "done"


def test_a_run_that_dies_mid_import_goes_on_where_it_stopped(
    crm: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(record_import, "BATCH_ROWS", 2)
    content = csv_bytes(["title"], *[[f"Deal {i}"] for i in range(5)], ["x" * 300])
    started = submit(crm, "deal", content, mode="skip_bad_rows")

    def die_after_first_batch(done: int, total: int, message: str) -> None:
        raise RuntimeError("the worker died")

    with pytest.raises(RuntimeError):
        record_import.run_import(
            crm, env=ENV, import_id=started["id"], report=die_after_first_batch
        )
    assert len(listed(crm, "deal")) == 2
    run_jobs(crm)

    found = record_import.get_import(crm, env=ENV, import_id=started["id"], principal=SYSTEM)
    assert [d["title"] for d in listed(crm, "deal")] == [f"Deal {i}" for i in range(5)]
    assert counts(found) == {"rows": 6, "created": 5, "updated": 0, "unchanged": 0, "skipped": 1}
    assert errors(found) == [(7, "title", "too_long")]


def test_all_or_nothing_that_dies_while_writing_starts_over(
    crm: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(record_import, "BATCH_ROWS", 2)
    started = submit(crm, "deal", csv_bytes(["title"], *[[f"Deal {i}"] for i in range(5)]))
    insert = ImportBatch._insert
    calls: list[int] = []

    def dies_on_the_second_batch(self: ImportBatch, rows: Any) -> None:
        calls.append(len(rows))
        if len(calls) == 2:
            raise RuntimeError("the worker died")
        insert(self, rows)

    monkeypatch.setattr(ImportBatch, "_insert", dies_on_the_second_batch)
    with pytest.raises(RuntimeError):
        record_import.run_import(crm, env=ENV, import_id=started["id"])
    assert listed(crm, "deal") == []  # the first batch rolled back with the rest
    monkeypatch.setattr(ImportBatch, "_insert", insert)
    run_jobs(crm)

    assert [d["title"] for d in listed(crm, "deal")] == [f"Deal {i}" for i in range(5)]


# -- HTTP ------------------------------------------------------------------------------------


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = build_app(settings, run_worker=False)
    publish(app.state.workspace, *ALL)
    with admin_client(app) as test_client:
        yield test_client


def test_import_over_http_with_progress_through_the_jobs_api(client: TestClient) -> None:
    workspace = client.app.state.workspace  # type: ignore[attr-defined]
    content = csv_bytes(["公司名称", "level"], ["Acme", "a"], ["Beta", "b"])

    response = client.post(
        f"/api/envs/{ENV}/records/account/imports",
        files={"file": ("accounts.csv", content, "text/csv")},
        data={"options": json.dumps({"mode": "skip_bad_rows"})},
        headers=ZH,
    )

    assert response.status_code == 202, response.text
    started = response.json()
    assert response.headers["location"] == f"/api/envs/{ENV}/imports/{started['id']}"
    assert started["status"] == "queued"
    run_jobs(workspace)
    job = client.get(f"/api/jobs/{started['job']['id']}", params={"env": ENV}).json()
    assert job["status"] == "done"
    assert (job["progress"]["done"], job["progress"]["total"]) == (2, 2)
    found = client.get(f"/api/envs/{ENV}/imports/{started['id']}").json()
    assert found["status"] == "done" and found["summary"]["created"] == 2
    assert [i["id"] for i in client.get(f"/api/envs/{ENV}/imports").json()] == [started["id"]]


def test_small_dry_runs_answer_at_once_and_bad_uploads_are_problems(client: TestClient) -> None:
    base = f"/api/envs/{ENV}/records/deal/imports"
    dry = client.post(
        base,
        files={"file": ("d.csv", csv_bytes(["title", "amount"], ["x", "abc"]))},
        data={"options": '{"dry_run": true}'},
    )
    assert dry.status_code == 200
    assert [(e["row"], e["column"]) for e in dry.json()["summary"]["errors"]] == [(2, "amount")]

    image = client.post(base, files={"file": ("d.csv", b"\x89PNG\r\n\x1a\n\0\0\0")})
    assert image.status_code == 415
    assert image.headers["content-type"].startswith("application/problem+json")
    bad_options = client.post(base, files={"file": ("d.csv", b"title\nx\n")}, data={"options": "{"})
    assert bad_options.status_code == 422 and bad_options.json()["errors"][0]["path"] == "/options"
    unknown = client.post(
        base, files={"file": ("d.csv", b"title\nx\n")}, data={"options": '{"mode": "some"}'}
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["path"] == "/options/mode"
    assert client.post(base, data={"options": "{}"}).status_code == 422
    assert client.get(f"/api/envs/{ENV}/imports/999").status_code == 404


def _deals(client: TestClient) -> None:
    for title, stage, amount in (("A", "won", 10), ("B", "lost", 20), ("C", "won", 30)):
        response = client.post(
            f"/api/envs/{ENV}/records/deal", json={"title": title, "stage": stage, "amount": amount}
        )
        assert response.status_code == 201


def test_export_with_filters_and_chinese_headers(client: TestClient) -> None:
    _deals(client)

    response = client.get(
        f"/api/envs/{ENV}/records/deal/export",
        params={"stage": "won", "fields": "title,amount,stage", "sort": "-amount"},
        headers=ZH,
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith("attachment; filename*=UTF-8''deal-")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [r[1:] for r in rows] == [
        ["标题", "金额", "阶段"],
        ["C", "30", "won"],
        ["A", "10", "won"],
    ]


def test_export_xlsx_with_api_names_and_a_where_condition(client: TestClient) -> None:
    _deals(client)
    where = json.dumps({"field": "amount", "op": "ge", "value": 20})

    response = client.get(
        f"/api/envs/{ENV}/records/deal/export",
        params={"format": "xlsx", "headers": "names", "where": where, "fields": "title,amount"},
    )

    assert response.status_code == 200
    workbook = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True)
    sheet = workbook.worksheets[0]
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert [v[1:] for v in values] == [["title", "amount"], ["B", 20], ["C", 30]]
    workbook.close()


def test_export_problems_come_back_before_the_file(client: TestClient) -> None:
    base = f"/api/envs/{ENV}/records/deal/export"
    assert client.get(base, params={"format": "pdf"}).status_code == 422
    bad = client.get(base, params={"amount__ge": "lots", "fields": "nope"})
    assert bad.status_code == 422
    assert {e["path"] for e in bad.json()["errors"]} >= {"/query/amount__ge", "/query/fields/0"}


# -- CLI -------------------------------------------------------------------------------------


@pytest.fixture
def cli(settings: Settings, crm: Workspace, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FORMLOOM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("FORMLOOM_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("FORMLOOM_NAMESPACE", settings.namespace)
    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args), catch_exceptions=False)


def test_cli_import_shows_progress_and_exits_1_when_all_or_nothing_fails(
    cli, tmp_path: Path, crm: Workspace
) -> None:
    good = tmp_path / "good.csv"
    good.write_bytes(csv_bytes(["标题", "Amout"], ["A", "1"], ["B", "2"]))
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes(["标题", "金额"], ["A", "1"], ["B", "abc"]))

    imported = cli("records", "import", str(good), "--entity", "deal", "--wait-for-worker", "0")
    assert imported.exit_code == 0, imported.output
    assert "importing" in imported.output
    assert "column 'Amout' is not imported (did you mean amount" in imported.output
    assert "2 row(s): 2 created, 0 updated, 0 unchanged, 0 skipped, 0 problem(s)" in imported.output

    refused = cli("records", "import", str(bad), "--entity", "deal", "--wait-for-worker", "0")
    assert refused.exit_code == 1
    assert "row 3, column 金额: Amount: expected a number, got 'abc'" in refused.output
    assert "nothing was written" in refused.output

    skipped = cli(
        "records",
        "import",
        str(bad),
        "--entity",
        "deal",
        "--mode",
        "skip_bad_rows",
        "--map",
        "金额=quantity",
        "--lang",
        "zh",
        "--wait-for-worker",
        "0",
    )
    assert skipped.exit_code == 0
    assert "row 3, column 金额: quantity：应为整数" in skipped.output
    assert [d["title"] for d in listed(crm, "deal")] == ["A", "B", "A"]

    dry = cli(
        "records", "import", str(bad), "--entity", "deal", "--dry-run", "--wait-for-worker", "0"
    )
    assert dry.exit_code == 1 and "would be created" in dry.output


def test_cli_export(cli, tmp_path: Path, crm: Workspace) -> None:
    records.create_record(
        crm, env=ENV, entity="deal", payload={"title": "A", "stage": "won"}, principal=SYSTEM
    )
    records.create_record(
        crm, env=ENV, entity="deal", payload={"title": "B", "stage": "lost"}, principal=SYSTEM
    )
    out = tmp_path / "won.xlsx"

    result = cli(
        "records",
        "export",
        str(out),
        "--entity",
        "deal",
        "--where",
        '{"field": "stage", "op": "eq", "value": "won"}',
        "--fields",
        "title,stage",
        "--lang",
        "zh",
    )

    assert result.exit_code == 0, result.output
    workbook = openpyxl.load_workbook(out, read_only=True)
    values = [list(r) for r in workbook.worksheets[0].iter_rows(values_only=True)]
    workbook.close()
    assert [v[1:] for v in values] == [["标题", "阶段"], ["A", "won"]]
    assert cli("records", "export", str(out), "--entity", "nope").exit_code == 2
