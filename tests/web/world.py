"""A small CRM for the staff web app's tests: entities, a layout with a rule, roles, users.

- ``deal``: a required title, an amount, a discount whose ``discount_reason``
  appears and becomes required above 20 (layout rule), a stage, a ``margin``
  hidden from sales reps, and a ``notes`` field whose label holds a script tag.
- ``secret``: an entity sales reps may not read.
- users: ``boss`` (administrator), ``rep`` (role ``sales_rep``), ``outsider`` (no roles).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from formloom.platform.database import Workspace
from formloom.platform.metastore import MetaStore, PublishOptions, SourceDocument
from tests.identity import PASSWORD, create_user
from tests.platform.crm_entities import choices, field, label

ENV = "production"
SCRIPT_LABEL = "Notes <script>window.pwned = true</script>"
DEAL = {
    "name": "deal",
    "label": label("Deal", "商机"),
    "title_field": "title",
    "fields": [
        field("title", required=True, searchable=True, label=label("Title", "标题")),
        field("amount", "integer", label=label("Amount", "金额")),
        field("discount", "integer", label=label("Discount", "折扣")),
        field("discount_reason", label=label("Discount reason", "折扣原因")),
        field("stage", "single_select", options=choices("new", "won", "lost")),
        field("margin", "integer", label=label("Margin", "毛利")),
        field("notes", label=label(SCRIPT_LABEL, "备注 <script>window.pwned = true</script>")),
    ],
}
SECRET = {
    "name": "secret",
    "label": label("Secret", "机密"),
    "title_field": "name",
    "fields": [field("name", required=True)],
}
LAYOUT = {
    "name": "deal_edit",
    "label": label("Deal", "商机"),
    "entity": "deal",
    "purpose": "edit",
    "tabs": [
        {
            "name": "main",
            "label": label("Main", "基本信息"),
            "sections": [
                {
                    "name": "basics",
                    "columns": 2,
                    "fields": [
                        {"field": "title"},
                        {"field": "amount"},
                        {"field": "stage"},
                        {"field": "discount"},
                        {"field": "discount_reason"},
                        {"field": "margin"},
                        {"field": "notes"},
                    ],
                }
            ],
        }
    ],
    "rules": [
        {
            "fields": ["discount_reason"],
            "visible_when": {"field": "discount", "op": "gt", "value": 20},
            "required_when": {"field": "discount", "op": "gt", "value": 20},
        }
    ],
}
SALES_REP = {
    "name": "sales_rep",
    "label": label("Sales rep", "销售代表"),
    "entities": {
        "deal": {
            "create": True,
            "read": "own",
            "update": "own",
            "fields": {"margin": "hidden"},
        }
    },
}


def publish_world(workspace: Workspace) -> dict[str, int]:
    """Publish the documents and create the users; user ids by login."""
    documents = [
        SourceDocument("entity", DEAL, "deal"),
        SourceDocument("entity", SECRET, "secret"),
        SourceDocument("layout", LAYOUT, "deal_edit"),
        SourceDocument("role", SALES_REP, "sales_rep"),
    ]
    MetaStore(workspace).apply(ENV, documents, PublishOptions())
    return {
        "boss": create_user(workspace, "boss", admin=True),
        "rep": create_user(workspace, "rep", roles={ENV: ["sales_rep"]}, display_name="Rep"),
        "outsider": create_user(workspace, "outsider"),
    }


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The first CSRF token in a page's forms."""
    found = _CSRF.search(html)
    assert found is not None, html
    return found.group(1)


def sign_in(client: TestClient, login: str, password: str = PASSWORD) -> str:
    """Sign in through the web form; the session's CSRF token (from the next page)."""
    page = client.get("/app/login")
    answer = client.post(
        "/app/login",
        data={"login": login, "password": password, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get(f"/app/{ENV}").text)


def post_form(client: TestClient, url: str, data: dict[str, Any]) -> Any:
    return client.post(url, data=data, follow_redirects=False)
