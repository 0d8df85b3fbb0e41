"""Uploaded files on both databases: upload, download, sniffing, limits, environments.

Record values are checked with :func:`check_file_values` directly; the save
pipeline's use of it is tested where it is wired in.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from formloom.designer_api import meta_routes
from formloom.engine.errors import Issue
from formloom.engine.fields.files import MAX_FILE_BYTES
from formloom.platform.app import build_app
from formloom.platform.database import Workspace
from formloom.platform.entity_runtime import load_entity
from formloom.platform.environments import create_environment, drop_environment
from formloom.platform.errors import Invalid, NotFound
from formloom.platform.files import (
    UploadTooLarge,
    file_info,
    files_folder,
    open_file,
    safe_file_name,
    sniff_content_type,
    store_upload,
)
from formloom.platform.record_files import check_file_values
from formloom.platform.settings import Settings
from tests.clients import admin_client
from tests.platform.crm_entities import ENV, field, label, publish

BASE = f"/api/envs/{ENV}"
SANDBOX = "sandbox"
ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x00\x00\x00"
    b"\x00:~\x9bU\x00\x00\x00\nIDATx\x9cc`\x00\x00\x00\x02\x00\x01H\xaf\xa4q\x00\x00\x00"
    b"\x00IEND\xaeB`\x82"
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00/\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88"
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
CSV = "名称,金额\n星辰科技,100\n".encode()
OOXML = "application/vnd.openxmlformats-officedocument."
DOCX = OOXML + "wordprocessingml.document"
XLSX = OOXML + "spreadsheetml.sheet"
PPTX = OOXML + "presentationml.presentation"

#: An entity with every kind of file field the checks distinguish.
DOSSIER = {
    "name": "dossier",
    "label": label("Dossier", "档案"),
    "fields": [
        field("title"),
        field("contract", "file", options={"accept": ["application/pdf", "text/*"]}),
        field("small", "file", options={"max_bytes": 64}),
        field("photo", "image"),
        field("photos", "image", options={"multiple": True, "max_files": 3}),
    ],
}


def office(part: str) -> bytes:
    """A ZIP archive holding ``part`` (what tells an Office document's kind)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(part, "<document/>")
    return buffer.getvalue()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = build_app(settings, routers=[meta_routes.router], run_worker=False)
    publish(app.state.workspace, DOSSIER)
    with admin_client(app) as test_client:
        yield test_client


@pytest.fixture
def workspace_of(client: TestClient) -> Workspace:
    workspace: Workspace = client.app.state.workspace  # type: ignore[attr-defined]
    return workspace


def upload(
    client: TestClient,
    name: str,
    data: bytes,
    content_type: str = "application/octet-stream",
    *,
    env: str = ENV,
    headers: dict[str, str] | None = None,
) -> Any:
    return client.post(
        f"/api/envs/{env}/files", files={"file": (name, data, content_type)}, headers=headers
    )


def uploaded(client: TestClient, name: str, data: bytes, content_type: str = "") -> dict[str, Any]:
    response = upload(client, name, data, content_type or "application/octet-stream")
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def check(
    workspace: Workspace,
    values: dict[str, Any],
    *,
    env: str = ENV,
    lang: str = "en",
    before: dict[str, Any] | None = None,
) -> list[Issue]:
    with workspace.begin(env, readonly=True) as conn:
        entity = load_entity(conn, namespace=workspace.cache_key, env=env, name="dossier")
        return check_file_values(conn, entity, values, before=before, at="/rows/0", lang=lang)


def codes(issues: list[Issue]) -> list[tuple[str, str]]:
    return [(i.path, i.code) for i in issues]


# -- upload and download ------------------------------------------------------------------------


def test_a_file_uploads_and_downloads_with_its_chinese_name(
    client: TestClient, settings: Settings
) -> None:
    # when
    response = upload(client, "合同 2026（终版）.pdf", PDF, "application/pdf")

    # then
    assert response.status_code == 201
    stored = response.json()
    assert {k: stored[k] for k in ("name", "size", "content_type", "sha256")} == {
        "name": "合同 2026（终版）.pdf",
        "size": len(PDF),
        "content_type": "application/pdf",
        "sha256": hashlib.sha256(PDF).hexdigest(),
    }
    assert stored["url"] == f"{BASE}/files/{stored['id']}"
    assert response.headers["location"] == stored["url"]
    on_disk = settings.data_dir / "files" / ENV / stored["id"][:2] / stored["id"]
    assert on_disk.read_bytes() == PDF

    download = client.get(stored["url"])
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"] == (
        "attachment; filename=\"__ 2026____.pdf\"; filename*=UTF-8''"
        + quote("合同 2026（终版）.pdf", safe="")
    )
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-security-policy"] == "sandbox"
    assert client.get(f"{stored['url']}/meta").json() == stored


def test_an_upload_is_typed_by_its_bytes_not_by_its_name_or_declared_type(
    client: TestClient,
) -> None:
    # when: a PDF named and declared as a PNG
    stored = uploaded(client, "photo.png", PDF, "image/png")

    # then
    assert stored["content_type"] == "application/pdf"
    download = client.get(stored["url"], params={"disposition": "inline"})
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"].startswith("attachment;")


def test_raster_images_may_be_shown_inline(client: TestClient) -> None:
    stored = uploaded(client, "logo.png", PNG, "image/png")

    shown = client.get(stored["url"], params={"disposition": "inline"})

    assert shown.headers["content-type"] == "image/png"
    assert shown.headers["content-disposition"] == (
        "inline; filename=\"logo.png\"; filename*=UTF-8''logo.png"
    )
    assert client.get(stored["url"]).headers["content-disposition"].startswith("attachment;")


def test_an_svg_is_never_shown_inline(client: TestClient) -> None:
    stored = uploaded(client, "logo.svg", SVG, "image/svg+xml")

    download = client.get(stored["url"], params={"disposition": "inline"})

    assert stored["content_type"] == "image/svg+xml"
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["x-content-type-options"] == "nosniff"


def test_a_path_in_the_file_name_is_dropped(
    client: TestClient, workspace_of: Workspace, settings: Settings
) -> None:
    # when
    stored = uploaded(client, "../../etc/passwd", b"root:x:0:0\n")

    # then
    assert stored["name"] == "passwd"
    assert stored["content_type"] == "text/plain"
    files = [p for p in settings.data_dir.rglob("*") if p.is_file() and p.name == stored["id"]]
    assert files == [files_folder(workspace_of, ENV) / stored["id"][:2] / stored["id"]]
    assert not (settings.data_dir.parent / "etc").exists()
    assert not any(p.name == "passwd" for p in settings.data_dir.rglob("*"))


def test_bad_uploads_are_refused_and_leave_nothing_behind(
    client: TestClient, settings: Settings
) -> None:
    empty = upload(client, "empty.txt", b"")
    missing = client.post(f"{BASE}/files", data={"other": "x"})
    unknown_env = upload(client, "a.pdf", PDF, env="nowhere")
    declared_too_large = upload(
        client, "big.bin", b"x", headers={"Content-Length": str(MAX_FILE_BYTES + 10**6)}
    )

    assert (empty.status_code, empty.json()["errors"][0]["code"]) == (422, "empty_file")
    assert (missing.status_code, missing.json()["errors"][0]["code"]) == (422, "missing_file")
    assert unknown_env.status_code == 404
    assert declared_too_large.status_code == 413
    assert declared_too_large.json()["code"] == "file_too_large"
    assert [p for p in (settings.data_dir / "files").rglob("*") if p.is_file()] == []


def test_a_body_without_a_length_is_cut_off_beyond_the_limit(
    client: TestClient, settings: Settings
) -> None:
    # given: a chunked request (no Content-Length) that goes on past 100 MB
    def body() -> Iterator[bytes]:
        yield (
            b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n"
        )
        chunk = b"\x00" * 1024 * 1024
        for _ in range(MAX_FILE_BYTES // len(chunk) + 2):
            yield chunk
        yield b"\r\n--B--\r\n"

    # when
    response = client.post(
        f"{BASE}/files",
        content=body(),
        headers={"Content-Type": "multipart/form-data; boundary=B"},
    )

    # then
    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"
    assert not (settings.data_dir / "files").exists()


def test_unknown_and_malformed_ids_are_404(client: TestClient) -> None:
    unknown = client.get(f"{BASE}/files/8c0d5c4e-1b1a-4b1b-9a4e-0f6a8d5e1c2b")
    malformed = client.get(f"{BASE}/files/..%2F..%2Fformloom.db")
    meta = client.get(f"{BASE}/files/not-an-id/meta", headers=ZH)

    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert malformed.status_code == 404
    assert meta.status_code == 404
    assert "环境 `production` 中不存在文件" in meta.json()["detail"]


def test_files_are_readable_only_from_their_own_environment(
    client: TestClient, workspace_of: Workspace
) -> None:
    # given
    create_environment(workspace_of, SANDBOX)
    publish(workspace_of, DOSSIER, env=SANDBOX)
    stored = uploaded(client, "a.pdf", PDF)

    # when
    other = client.get(f"/api/envs/{SANDBOX}/files/{stored['id']}")
    other_meta = client.get(f"/api/envs/{SANDBOX}/files/{stored['id']}/meta")
    issues = check(workspace_of, {"contract": {"id": stored["id"]}}, env=SANDBOX)

    # then
    assert (other.status_code, other_meta.status_code) == (404, 404)
    assert codes(issues) == [("/rows/0/contract", "unknown_file")]
    assert client.get(stored["url"]).status_code == 200


def test_a_record_takes_a_file_reference_through_the_records_api(client: TestClient) -> None:
    stored = uploaded(client, "a.pdf", PDF)

    created = client.post(
        f"{BASE}/records/dossier", json={"title": "T", "contract": {"id": stored["id"]}}
    )

    assert created.status_code == 201, created.text
    assert created.json()["contract"]["id"] == stored["id"]
    assert created.json()["contract"]["url"] == f"files/{stored['id']}"


# -- the upload service --------------------------------------------------------------------------


class _Endless(io.RawIOBase):
    """A stream of zeros that never ends (the upload must stop reading it)."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        view[:] = b"\x00" * len(view)
        return len(view)


def test_an_upload_is_cut_off_beyond_the_limit_while_it_streams(
    workspace: Workspace, settings: Settings
) -> None:
    with pytest.raises(UploadTooLarge) as exc:
        store_upload(
            workspace,
            ENV,
            filename="huge.bin",
            content_type=None,
            stream=io.BufferedReader(_Endless(), buffer_size=1024 * 1024),
        )

    assert exc.value.status == 413
    assert exc.value.message == (
        "the file is larger than 100 MB, the most a file may be; compress or split it"
    )
    assert [p for p in (settings.data_dir / "files").rglob("*") if p.is_file()] == []


def test_the_service_reads_back_what_it_stored(workspace: Workspace) -> None:
    stored = store_upload(
        workspace,
        ENV,
        filename="报价单.csv",
        content_type="text/csv",
        stream=io.BytesIO(CSV),
        actor_id=7,
    )

    info, opened = open_file(workspace, ENV, stored["id"].upper())
    with opened:
        assert opened.read() == CSV
    assert (info.name, info.content_type, info.created_by) == ("报价单.csv", "text/csv", 7)
    with workspace.begin(ENV, readonly=True) as conn:
        assert file_info(conn, stored["id"]) == info
        assert file_info(conn, "nonsense") is None
    with pytest.raises(NotFound):
        open_file(workspace, "nowhere", stored["id"])
    with pytest.raises(Invalid):
        store_upload(workspace, ENV, filename="x", content_type=None, stream=io.BytesIO())


# -- sniffing and names (no database) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "declared", "expected"),
    [
        ("a.bin", PNG, None, "image/png"),
        ("a.bin", JPEG, None, "image/jpeg"),
        ("a.bin", GIF, None, "image/gif"),
        ("a.bin", WEBP, None, "image/webp"),
        ("a.png", PDF, "image/png", "application/pdf"),
        ("x.zip", office("word/document.xml"), None, DOCX),
        ("x", office("xl/workbook.xml"), None, XLSX),
        ("x", office("ppt/presentation.xml"), None, PPTX),
        ("x.docx", office("readme.txt"), DOCX, "application/zip"),
        ("old.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, None, "application/msword"),
        ("data.csv", CSV, None, "text/csv"),
        ("data", CSV, "text/csv; charset=utf-8", "text/csv"),
        ("notes.txt", "备注\r\n第二行\n".encode(), "application/pdf", "text/plain"),
        ("page.html", b"<!doctype html><p>hi</p>", "text/html", "text/plain"),
        ("logo.png", SVG, "image/png", "image/svg+xml"),
        ("logo", b"\xef\xbb\xbf  <svg><script/></svg>", None, "image/svg+xml"),
        ("a.exe", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00", "image/png", "application/octet-stream"),
    ],
)
def test_the_content_type_is_sniffed_from_the_bytes(
    tmp_path: Path, name: str, data: bytes, declared: str | None, expected: str
) -> None:
    path = tmp_path / "upload"
    path.write_bytes(data)

    assert sniff_content_type(path, data, name=name, declared=declared) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\张三\\报价单.xlsx", "报价单.xlsx"),
        ("evil\u202egpj.exe", "evilgpj.exe"),
        ("a\x00b\nc.txt", "abc.txt"),
        ("  ..  ", "file"),
        ("dir/", "file"),
        (None, "file"),
        ("e\u0301.txt", "é.txt"),
    ],
)
def test_file_names_are_made_safe(raw: str | None, expected: str) -> None:
    assert safe_file_name(raw) == expected


def test_long_file_names_keep_their_extension() -> None:
    name = safe_file_name("长" * 300 + ".pdf")

    assert len(name) == 255
    assert name.endswith("长.pdf")


# -- record values -----------------------------------------------------------------------------


def test_file_values_are_completed_from_the_upload(
    client: TestClient, workspace_of: Workspace
) -> None:
    # given
    pdf = uploaded(client, "合同.pdf", PDF)
    png, gif = uploaded(client, "a.png", PNG), uploaded(client, "b.gif", GIF)
    values: dict[str, Any] = {
        "title": "T",
        "contract": {"id": pdf["id"]},
        "photos": [{"id": png["id"]}, {"id": gif["id"]}],
        "photo": None,
    }

    # when
    issues = check(workspace_of, values)

    # then
    assert issues == []
    assert values["contract"] == {
        "id": pdf["id"],
        "name": "合同.pdf",
        "size": len(PDF),
        "content_type": "application/pdf",
    }
    assert [p["name"] for p in values["photos"]] == ["a.png", "b.gif"]
    assert values["title"] == "T"
    assert values["photo"] is None


def test_every_file_that_does_not_fit_is_reported(
    client: TestClient, workspace_of: Workspace
) -> None:
    # given
    pdf_as_png = uploaded(client, "photo.png", PDF, "image/png")
    svg = uploaded(client, "logo.svg", SVG, "image/svg+xml")
    png = uploaded(client, "a.png", PNG)
    csv = uploaded(client, "a.csv", CSV)
    missing = "8c0d5c4e-1b1a-4b1b-9a4e-0f6a8d5e1c2b"
    values = {
        "contract": {"id": png["id"]},
        "small": {"id": png["id"]},
        "photo": {"id": pdf_as_png["id"]},
        "photos": [{"id": png["id"]}, {"id": svg["id"]}, {"id": missing}],
    }

    # when
    issues = check(workspace_of, values)

    # then
    assert codes(issues) == [
        ("/rows/0/contract", "file_type_not_accepted"),
        ("/rows/0/small", "file_too_large"),
        ("/rows/0/photo", "not_an_image"),
        ("/rows/0/photos/1", "not_an_image"),
        ("/rows/0/photos/2", "unknown_file"),
    ]
    assert issues[0].message == (
        "Contract: `a.png` is image/png; this field takes application/pdf, text/*"
    )
    assert "SVG is refused" in issues[3].message
    assert check(workspace_of, {"contract": {"id": csv["id"]}}) == []  # text/* takes CSV


def test_files_a_record_already_holds_are_not_held_to_the_limits_again(
    client: TestClient, workspace_of: Workspace
) -> None:
    # given: a file larger than `small` takes, attached before the limit (say)
    pdf, png = uploaded(client, "a.pdf", PDF), uploaded(client, "a.png", PNG)
    before = {"small": {"id": pdf["id"]}, "photos": [{"id": png["id"]}]}
    values: dict[str, Any] = {
        "small": {"id": pdf["id"]},
        "photos": [{"id": png["id"]}, {"id": pdf["id"]}],
    }

    # when
    issues = check(workspace_of, values, before=before)

    # then: the kept file passes; the same file newly added elsewhere does not
    assert codes(issues) == [("/rows/0/photos/1", "not_an_image")]
    assert values["small"]["size"] == len(PDF)


def test_file_issues_speak_chinese(client: TestClient, workspace_of: Workspace) -> None:
    pdf = uploaded(client, "合同.pdf", PDF)

    issues = check(
        workspace_of,
        {"photo": {"id": pdf["id"]}, "contract": {"id": "8c0d5c4e-1b1a-4b1b-9a4e-0f6a8d5e1c2b"}},
        lang="zh",
    )

    assert [i.message.split("：", 1)[0] for i in issues] == ["contract", "photo"]
    assert "本环境中不存在文件" in issues[0].message
    assert "不是 PNG、JPEG、GIF 或 WebP 图片" in issues[1].message


def test_dropping_an_environment_removes_its_files(workspace: Workspace) -> None:
    create_environment(workspace, "sandbox")
    stored = store_upload(
        workspace,
        "sandbox",
        filename="报价单.pdf",
        content_type="application/pdf",
        stream=io.BytesIO(b"%PDF-1.4\n%%EOF\n"),
        actor_id=None,
    )
    folder = workspace.env_files_dir("sandbox")
    assert any(folder.rglob(stored["id"]))
    drop_environment(workspace, "sandbox")
    assert not folder.exists()


def test_records_reference_uploaded_files_through_the_records_api(client: TestClient) -> None:
    # given: an uploaded contract and photo
    contract = client.post(
        f"{BASE}/files", files={"file": ("合同.pdf", PDF, "application/pdf")}
    ).json()
    photo = client.post(f"{BASE}/files", files={"file": ("p.png", PNG, "image/png")}).json()

    # when: a record refers to them by id
    created = client.post(
        f"{BASE}/records/dossier",
        json={"title": "A", "contract": {"id": contract["id"]}, "photo": {"id": photo["id"]}},
    )

    # then: the stored values carry the files' names, sizes and types
    assert created.status_code == 201, created.text
    record = created.json()
    assert record["contract"]["name"] == "合同.pdf"
    assert record["photo"]["content_type"] == "image/png"

    # and a PDF in an image field or an unknown id is refused, both at once
    refused = client.post(
        f"{BASE}/records/dossier",
        json={
            "title": "B",
            "photo": {"id": contract["id"]},
            "contract": {"id": "00000000-0000-4000-8000-000000000000"},
        },
    )
    assert refused.status_code == 422
    assert {e["path"] for e in refused.json()["errors"]} == {"/photo", "/contract"}
