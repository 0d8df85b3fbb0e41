"""Related lists, attachments, lookup titles, prefilled new forms and child rows (both databases).

The world: ``account`` (with a logo image and contract files) looked up by
``contact`` and by ``ledger`` (which sales reps may not read); ``quote`` with a
child table ``lines`` of ``quote_line``; the sales rep reads contacts they own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from formloom.platform.app import build_app
from formloom.platform.database import Workspace
from formloom.platform.metastore import MetaStore, PublishOptions, SourceDocument
from formloom.platform.settings import Settings
from formloom.platform.web.related import human_size
from tests.identity import create_user
from tests.platform.crm_entities import field, label, lookup
from tests.web.world import ENV, csrf_of, post_form, sign_in

ACCOUNT = {
    "name": "account",
    "label": label("Account", "客户"),
    "title_field": "name",
    "fields": [
        field("name", required=True, searchable=True, label=label("Name", "名称")),
        field("city", label=label("City", "城市")),
        field("logo", "image", label=label("Logo", "标志")),
        field("contract", "file", options={"multiple": True}, label=label("Contract", "合同")),
        field("area", "region", label=label("Area", "地区")),
    ],
}
CONTACT = {
    "name": "contact",
    "label": label("Contact", "联系人"),
    "title_field": "name",
    "fields": [
        field("name", required=True, searchable=True, label=label("Name", "姓名")),
        field("email", "email", label=label("Email", "邮箱")),
        lookup("account", "account", "set_null", label=label("Account", "客户")),
    ],
}
LEDGER = {
    "name": "ledger",
    "label": label("Ledger", "账簿"),
    "title_field": "entry",
    "fields": [field("entry", required=True), lookup("account", "account", "set_null")],
}
QUOTE = {
    "name": "quote",
    "label": label("Quote", "报价单"),
    "title_field": "title",
    "fields": [
        field("title", required=True, label=label("Title", "标题")),
        field(
            "lines",
            "child_table",
            options={"entity": "quote_line", "field": "quote"},
            label=label("Lines", "明细"),
        ),
    ],
}
QUOTE_LINE = {
    "name": "quote_line",
    "label": label("Quote line", "报价明细"),
    "title_field": "product",
    "fields": [
        lookup("quote", "quote", "cascade"),
        field("product", required=True, label=label("Product", "产品")),
        field("qty", "integer", options={"min": 1}, label=label("Qty", "数量")),
    ],
}
CRM_REP = {
    "name": "crm_rep",
    "label": label("CRM rep", "客户代表"),
    "entities": {
        "account": {"create": True, "read": "all", "update": "all"},
        "contact": {"create": True, "read": "own", "update": "own"},
        "quote": {"create": True, "read": "own", "update": "own", "delete": "own"},
        "quote_line": {"create": True, "read": "all", "update": "all", "delete": "all"},
    },
}
AUDITOR = {
    "name": "auditor",
    "label": label("Auditor", "审计"),
    "entities": {
        "account": {"read": "all"},
        "contact": {"read": "all"},
        "quote": {"read": "all"},
        "quote_line": {"read": "all", "fields": {"quote": "hidden"}},
    },
}
ACCOUNT_VIEW = {
    "name": "account_view",
    "label": label("Account", "客户"),
    "entity": "account",
    "purpose": "view",
    "roles": ["crm_rep"],
    "tabs": [
        {
            "name": "main",
            "label": label("Main", "基本信息"),
            "sections": [
                {
                    "name": "basics",
                    "fields": [
                        {"field": "name"},
                        {"field": "city"},
                        {"field": "logo"},
                        {"field": "contract"},
                    ],
                }
            ],
        }
    ],
    "related_lists": [
        {
            "entity": "contact",
            "label": label("People", "人员"),
            "columns": ["name"],
            "sort": [{"field": "name", "direction": "asc"}],
            "limit": 2,
        }
    ],
}


def publish_crm(workspace: Workspace, *, with_layout: bool = False) -> dict[str, int]:
    """Publish the related-lists world; user ids by login (``boss``, ``rep``, ``other``,
    ``auditor``: reads everything, creates nothing, and does not see a line's quote)."""
    documents = [
        SourceDocument("entity", QUOTE_LINE, "quote_line"),
        SourceDocument("entity", ACCOUNT, "account"),
        SourceDocument("entity", CONTACT, "contact"),
        SourceDocument("entity", LEDGER, "ledger"),
        SourceDocument("entity", QUOTE, "quote"),
        SourceDocument("role", CRM_REP, "crm_rep"),
        SourceDocument("role", AUDITOR, "auditor"),
    ]
    if with_layout:
        documents.append(SourceDocument("layout", ACCOUNT_VIEW, "account_view"))
    MetaStore(workspace).apply(ENV, documents, PublishOptions())
    return {
        "boss": create_user(workspace, "boss", admin=True),
        "rep": create_user(workspace, "rep", roles={ENV: ["crm_rep"]}, display_name="Rep"),
        "other": create_user(workspace, "other", roles={ENV: ["crm_rep"]}),
        "auditor": create_user(workspace, "auditor", roles={ENV: ["auditor"]}),
    }


@dataclass
class Crm:
    client: TestClient
    ids: dict[str, int]

    def create(self, csrf: str, entity: str, **fields: Any) -> int:
        answer = post_form(self.client, f"/app/{ENV}/{entity}/new", {"csrf_token": csrf, **fields})
        assert answer.status_code == 303, answer.text
        return int(answer.headers["location"].rsplit("/", 1)[1])

    def page(self, path: str) -> str:
        answer = self.client.get(f"/app/{ENV}/{path}")
        assert answer.status_code == 200, answer.text
        return answer.text


def _crm(settings: Settings, *, with_layout: bool) -> Iterator[Crm]:
    app = build_app(settings, run_worker=False)
    ids = publish_crm(app.state.workspace, with_layout=with_layout)
    with TestClient(app) as client:
        yield Crm(client, ids)


@pytest.fixture
def crm(settings: Settings) -> Iterator[Crm]:
    yield from _crm(settings, with_layout=False)


@pytest.fixture
def crm_with_layout(settings: Settings) -> Iterator[Crm]:
    yield from _crm(settings, with_layout=True)


def section(html: str, key: str) -> str:
    """The related list ``key`` (``contact.account``) of a record page, or ''."""
    found = re.search(rf'<section[^>]*data-related="{re.escape(key)}".*?</section>', html, re.S)
    return found.group(0) if found else ""


# -- related lists -------------------------------------------------------------------------------


def test_a_record_page_lists_the_records_that_look_it_up(crm: Crm) -> None:
    # given
    csrf = sign_in(crm.client, "rep")
    acme = crm.create(csrf, "account", name="Acme")
    other = crm.create(csrf, "account", name="Globex")
    crm.create(csrf, "contact", name="Ann", account=str(acme))
    crm.create(csrf, "contact", name="Bob", account=str(acme))
    crm.create(csrf, "contact", name="Cid", account=str(other))

    # when
    html = crm.page(f"account/{acme}")

    # then
    contacts = section(html, "contact.account")
    assert "Ann" in contacts and "Bob" in contacts and "Cid" not in contacts
    assert "(2)" in contacts
    assert f'href="/app/{ENV}/contact/new?account={acme}"' in contacts
    condition = quote(f'{{"field":"account","op":"eq","value":{acme}}}', safe="")
    assert f'href="/app/{ENV}/contact?filter={condition}"' in contacts


def test_a_related_list_the_viewer_may_not_read_is_not_shown(crm: Crm) -> None:
    boss_csrf = sign_in(crm.client, "boss")
    acme = crm.create(boss_csrf, "account", name="Acme")
    crm.create(boss_csrf, "ledger", entry="Secret entry", account=str(acme))
    assert "Secret entry" in section(crm.page(f"account/{acme}"), "ledger.account")
    rep = TestClient(crm.client.app)
    sign_in(rep, "rep")

    html = rep.get(f"/app/{ENV}/account/{acme}").text

    assert 'data-related="ledger.account"' not in html
    assert "Secret entry" not in html
    assert 'data-related="contact.account"' in html


def test_related_rows_follow_the_viewers_read_scope(crm: Crm) -> None:
    csrf = sign_in(crm.client, "rep")
    acme = crm.create(csrf, "account", name="Acme")
    crm.create(csrf, "contact", name="Mine", account=str(acme))
    other = TestClient(crm.client.app)
    other_csrf = sign_in(other, "other")
    post_form(
        other,
        f"/app/{ENV}/contact/new",
        {"csrf_token": other_csrf, "name": "Theirs", "account": str(acme)},
    )

    contacts = section(crm.page(f"account/{acme}"), "contact.account")

    assert "Mine" in contacts and "Theirs" not in contacts
    assert "(1)" in contacts


def test_a_reader_gets_no_new_link_and_no_list_through_a_lookup_hidden_from_them(
    crm: Crm,
) -> None:
    csrf = sign_in(crm.client, "rep")
    acme = crm.create(csrf, "account", name="Acme")
    crm.create(csrf, "contact", name="Ann", account=str(acme))
    quote = crm.create(csrf, "quote", title="Q", **{"lines.rows": "0", "lines.0.product": "Pen"})
    auditor = TestClient(crm.client.app)
    sign_in(auditor, "auditor")

    account_page = auditor.get(f"/app/{ENV}/account/{acme}").text
    quote_page = auditor.get(f"/app/{ENV}/quote/{quote}").text

    contacts = section(account_page, "contact.account")
    assert "Ann" in contacts and "/contact/new" not in contacts
    assert 'data-related="quote_line.quote"' not in quote_page
    assert "Pen" in section(crm.page(f"quote/{quote}"), "quote_line.quote")


def test_a_layout_chooses_the_related_lists_their_columns_and_size(crm_with_layout: Crm) -> None:
    crm = crm_with_layout
    csrf = sign_in(crm.client, "rep")
    acme = crm.create(csrf, "account", name="Acme")
    for name in ("Cleo", "Abe", "Bea"):
        crm.create(csrf, "contact", name=name, email=f"{name}@x.cn", account=str(acme))

    html = crm.page(f"account/{acme}")

    people = section(html, "contact.account")
    assert "People" in people and "(3)" in people
    assert people.index("Abe") < people.index("Bea") and "Cleo" not in people
    assert "@x.cn" not in people
    assert 'data-related="ledger.account"' not in html
    everything = section(crm.page(f"account/{acme}?related=contact.account"), "contact.account")
    assert "Cleo" in everything and "Show fewer" in everything


def test_related_rows_and_labels_are_escaped(crm: Crm) -> None:
    csrf = sign_in(crm.client, "rep")
    acme = crm.create(csrf, "account", name="Acme")
    crm.create(csrf, "contact", name="<script>alert(1)</script>", account=str(acme))

    html = crm.page(f"account/{acme}")

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section(html, "contact.account")


def test_the_related_panel_speaks_chinese(crm: Crm) -> None:
    csrf = sign_in(crm.client, "rep")
    acme = crm.create(csrf, "account", name="Acme")
    crm.client.get("/app/lang/zh", params={"next": "/app"})

    html = crm.page(f"account/{acme}")

    assert "联系人" in section(html, "contact.account")
    assert "暂无。" in html and ">新建<" in html


# -- lookups: titles and prefill -----------------------------------------------------------------


def test_the_new_form_takes_a_prefilled_lookup_and_shows_its_title(crm: Crm) -> None:
    csrf = sign_in(crm.client, "rep")
    acme = crm.create(csrf, "account", name="Acme")

    html = crm.page(f"contact/new?account={acme}&name=Zed&owner_id=1&created_at=x")

    assert f'name="account" value="{acme}"' in html
    assert 'value="Acme"' in html
    assert 'value="Zed"' in html
    answer = post_form(
        crm.client,
        f"/app/{ENV}/contact/new",
        {"csrf_token": csrf, "name": "Zed", "account": str(acme)},
    )
    contact = int(answer.headers["location"].rsplit("/", 1)[1])
    record = crm.page(f"contact/{contact}")
    assert "<dd>Acme</dd>" in record
    assert 'value="Acme"' in crm.page(f"contact/{contact}/edit")


def test_a_prefilled_lookup_to_a_record_the_viewer_cannot_read_is_dropped(crm: Crm) -> None:
    other = TestClient(crm.client.app)
    other_csrf = sign_in(other, "other")
    answer = post_form(
        other, f"/app/{ENV}/contact/new", {"csrf_token": other_csrf, "name": "Hidden person"}
    )
    hidden = int(answer.headers["location"].rsplit("/", 1)[1])
    sign_in(crm.client, "boss")
    boss_csrf = csrf_of(crm.page("quote/new"))
    quote = crm.create(boss_csrf, "quote", title="Q")
    sign_in(crm.client, "rep")

    html = crm.page(f"quote_line/new?quote={quote}&product=Pen")
    contact_form = crm.page(f"contact/new?account=999&name={hidden}")

    assert f'name="quote" value="{quote}"' not in html
    assert 'value="Pen"' in html
    assert 'name="account" value=""' in contact_form


def test_the_record_search_api_answers_a_session_and_keeps_the_read_scope(crm: Crm) -> None:
    csrf = sign_in(crm.client, "rep")
    crm.create(csrf, "contact", name="Ann Mine")
    other = TestClient(crm.client.app)
    post_form(
        other,
        f"/app/{ENV}/contact/new",
        {"csrf_token": sign_in(other, "other"), "name": "Ann Theirs"},
    )

    found = crm.client.get(f"/api/envs/{ENV}/records/contact", params={"q": "Ann", "limit": 10})

    assert found.status_code == 200, found.text
    assert [item["name"] for item in found.json()["items"]] == ["Ann Mine"]


def test_the_lookup_widget_names_its_search_and_title_field(crm: Crm) -> None:
    sign_in(crm.client, "rep")

    html = crm.page("contact/new")

    assert f'data-fl-search="/api/envs/{ENV}/records/account?q="' in html
    assert 'data-fl-title="name"' in html


# -- child rows ----------------------------------------------------------------------------------


def test_child_rows_are_saved_with_the_parent_and_removed_rows_deleted(crm: Crm) -> None:
    csrf = sign_in(crm.client, "rep")
    answer = post_form(
        crm.client,
        f"/app/{ENV}/quote/new",
        {
            "csrf_token": csrf,
            "title": "Q-1",
            "lines.rows": "0",
            "lines.0.product": "Pen",
            "lines.0.qty": "2",
            "lines.2.product": "Ink",
            "lines.2.qty": "5",
        },
    )
    assert answer.status_code == 303, answer.text
    quote = int(answer.headers["location"].rsplit("/", 1)[1])
    edit = crm.page(f"quote/{quote}/edit")
    assert 'name="lines.0.id"' in edit and 'value="Ink"' in edit
    first = re.search(r'name="lines\.0\.id" value="(\d+)"', edit)
    version = re.search(r'name="lines\.0\.version" value="(\d+)"', edit)
    assert first and version

    answer = post_form(
        crm.client,
        f"/app/{ENV}/quote/{quote}/edit",
        {
            "csrf_token": csrf,
            "version": "1",
            "title": "Q-1",
            "lines.rows": "2",
            "lines.0.id": first.group(1),
            "lines.0.version": version.group(1),
            "lines.0.product": "Pen",
            "lines.0.qty": "3",
        },
    )

    assert answer.status_code == 303, answer.text
    rows = crm.client.get(f"/api/envs/{ENV}/records/quote/{quote}").json()["lines"]
    assert [(row["product"], row["qty"]) for row in rows] == [("Pen", 3)]
    assert "(1)" in section(crm.page(f"quote/{quote}"), "quote_line.quote")


def test_a_bad_cell_is_explained_next_to_the_cell_and_nothing_is_saved(crm: Crm) -> None:
    csrf = sign_in(crm.client, "rep")

    answer = post_form(
        crm.client,
        f"/app/{ENV}/quote/new",
        {
            "csrf_token": csrf,
            "title": "Q-2",
            "lines.rows": "0",
            "lines.0.product": "Pen",
            "lines.0.qty": "2",
            "lines.1.product": "Ink",
            "lines.1.qty": "0",
        },
    )

    assert answer.status_code == 422
    html = answer.text
    cell = re.search(r'<input[^>]*id="fl-lines-1-qty"[^>]*>', html)
    assert cell and 'aria-invalid="true"' in cell.group(0)
    assert 'id="fl-lines-1-qty-error"' in html
    assert 'id="fl-lines-0-qty-error"' not in html
    assert 'value="Ink"' in html
    listed = crm.client.get(f"/api/envs/{ENV}/records/quote").json()
    assert listed["items"] == []


# -- attachments ---------------------------------------------------------------------------------

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


def test_files_and_images_are_listed_with_links_sizes_and_thumbnails(crm: Crm) -> None:
    csrf = sign_in(crm.client, "rep")
    headers = {"X-CSRF-Token": csrf}
    upload = f"/api/envs/{ENV}/files"
    logo = crm.client.post(
        upload, files={"file": ("logo.png", PNG, "image/png")}, headers=headers
    ).json()
    deal = crm.client.post(
        upload, files={"file": ("合同 <1>.pdf", b"%PDF-1.4 x", "application/pdf")}, headers=headers
    ).json()
    acme = crm.create(csrf, "account", name="Acme", logo=logo["id"], contract=deal["id"])

    html = crm.page(f"account/{acme}")

    files = f"/api/envs/{ENV}/files"
    assert f'<img src="{files}/{logo["id"]}?disposition=inline"' in html
    assert f'href="{files}/{deal["id"]}" download>合同 &lt;1&gt;.pdf</a>' in html
    assert "10 B" in html
    assert crm.client.get(f"{files}/{deal['id']}").content == b"%PDF-1.4 x"


def test_sizes_read_like_people_write_them() -> None:
    assert human_size(512) == "512 B"
    assert human_size(1536) == "1.5 KB"
    assert human_size(5 * 1024 * 1024) == "5.0 MB"
    assert human_size(None) == ""


def test_the_widget_script_and_styles_are_served(crm: Crm) -> None:
    assert crm.client.get("/app/static/form_widgets.js").status_code == 200
    assert crm.client.get("/app/static/form_widgets.css").status_code == 200
