"""The permission matrix: every role × entity × action × scope, through every access path.

A seeded workspace (both databases): a sales team tree (``sales`` ⊃ ``east``),
four owners of records, and roles that cover the scopes none / own / team /
all, field modes hidden / read-only, and the export and import permissions.
For each user, an oracle computed from the role documents says which records
each action may touch and which fields they may see; every access path (read
by id, list, count, search, filter, export, update, bulk, delete, recycle bin,
restore, history, lookup titles, schema, import, transfer) must agree with it:
no leak, no false refusal.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from formloom.designer_api import meta_routes
from formloom.platform.app import build_app
from formloom.platform.database import Workspace
from formloom.platform.environments import create_environment
from formloom.platform.metastore import MetaStore, PublishOptions, SourceDocument
from formloom.platform.settings import Settings
from formloom.platform.worker import Worker
from tests.identity import bearer_headers, create_team, create_user
from tests.platform.crm_entities import field, label, lookup

ENV = "production"
BASE = f"/api/envs/{ENV}/records"

ACCOUNT = {
    "name": "account",
    "label": label("Account", "客户"),
    "title_field": "name",
    "fields": [field("name", required=True, searchable=True), field("industry")],
    "duplicate_rules": [{"name": "same_name", "fields": ["name"], "action": "warn"}],
}
DEAL = {
    "name": "deal",
    "label": label("Deal", "商机"),
    "title_field": "title",
    "fields": [
        field("title", required=True, searchable=True),
        field("amount", "integer"),
        field("margin", "integer"),
        field("stage"),
        lookup("account", "account"),
    ],
}


def role(name: str, entities: dict[str, Any], permissions: list[str] | None = None) -> Any:
    body = {"name": name, "label": label(name, name), "entities": entities}
    if permissions:
        body["permissions"] = permissions
    return body


ROLES = [
    role(
        "rep",
        {
            "deal": {
                "create": True,
                "read": "own",
                "update": "own",
                "delete": "own",
                "fields": {"margin": "hidden", "stage": "read_only"},
            },
            "account": {"create": True, "read": "own", "update": "own"},
        },
    ),
    role(
        "manager",
        {
            "deal": {
                "read": "team",
                "update": "team",
                "delete": "team",
                "export": True,
                "fields": {"margin": "read_only"},
            },
            "account": {"read": "all"},
        },
    ),
    role("auditor", {"*": {"read": "all", "export": True}}),
    role(
        "importer",
        {
            "deal": {
                "read": "team",
                "update": "team",
                "import": True,
                "fields": {"margin": "read_only"},
            }
        },
    ),
]

#: user → roles; teams: mgr leads `sales`, rep1 and rep2 are in its sub-team `east`.
USERS = {
    "mgr": ["rep", "manager", "importer"],
    "rep1": ["rep"],
    "rep2": ["rep"],
    "rep3": ["rep"],
    "auditor": ["auditor"],
    "outsider": [],
}
OWNERS = ("mgr", "rep1", "rep2", "rep3")
SCOPES = {
    # (user, entity) → action → scope, the union of the user's roles (the oracle's input)
    ("mgr", "deal"): {"read": "team", "update": "team", "delete": "team"},
    ("mgr", "account"): {"read": "all", "update": "own", "delete": "none"},
    ("auditor", "deal"): {"read": "all", "update": "none", "delete": "none"},
    ("auditor", "account"): {"read": "all", "update": "none", "delete": "none"},
    ("outsider", "deal"): {"read": "none", "update": "none", "delete": "none"},
    ("outsider", "account"): {"read": "none", "update": "none", "delete": "none"},
}
for rep in ("rep1", "rep2", "rep3"):
    SCOPES[(rep, "deal")] = {"read": "own", "update": "own", "delete": "own"}
    SCOPES[(rep, "account")] = {"read": "own", "update": "own", "delete": "none"}
HIDDEN = {("rep1", "deal"), ("rep2", "deal"), ("rep3", "deal")}  # margin hidden
READ_ONLY = {
    ("mgr", "deal"): {"margin"},
    **{(r, "deal"): {"stage"} for r in ("rep1", "rep2", "rep3")},
}
CAN_CREATE = {"mgr", "rep1", "rep2", "rep3"}
CAN_EXPORT = {"deal": {"mgr", "auditor"}, "account": {"auditor"}}


@dataclass
class World:
    client: TestClient
    ids: dict[str, int]  # user login → user id
    headers: dict[str, dict[str, str]]  # user login → bearer header
    deals: dict[int, str]  # deal id → owner login
    accounts: dict[int, str]  # account id → owner login
    workspace: Workspace

    def as_(self, login: str) -> dict[str, str]:
        return self.headers[login]

    def team(self, login: str) -> set[str]:
        """The owners in ``login``'s team scope (their teams and sub-teams, and themselves)."""
        if login == "mgr":
            return {"mgr", "rep1", "rep2"}
        if login in ("rep1", "rep2"):
            return {"rep1", "rep2"}
        return {login}

    def allowed(self, login: str, entity: str, action: str, owner: str) -> bool:
        scope = SCOPES[(login, entity)][action]
        return {
            "none": False,
            "own": owner == login,
            "team": owner in self.team(login),
            "all": True,
        }[scope]

    def visible(self, login: str, entity: str) -> set[int]:
        records = self.deals if entity == "deal" else self.accounts
        return {i for i, owner in records.items() if self.allowed(login, entity, "read", owner)}


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    app = build_app(settings, routers=[meta_routes.router], run_worker=False)
    workspace: Workspace = app.state.workspace
    store = MetaStore(workspace)
    documents = [SourceDocument("entity", body, body["name"]) for body in (ACCOUNT, DEAL)]
    documents += [SourceDocument("role", body, body["name"]) for body in ROLES]
    store.apply(ENV, documents, PublishOptions())
    sales = create_team(workspace, "sales")
    east = create_team(workspace, "east", parent_id=sales)
    create_team(workspace, "west")
    teams = {"mgr": [sales], "rep1": [east], "rep2": [east], "rep3": ["west"]}
    ids = {
        login: create_user(workspace, login, teams=teams.get(login, ()), roles={ENV: roles})
        for login, roles in USERS.items()
    }
    ids["admin"] = create_user(workspace, "boss", admin=True)
    headers = {login: bearer_headers(workspace, user_id) for login, user_id in ids.items()}
    with TestClient(app) as client:
        admin = headers["admin"]
        accounts: dict[int, str] = {}
        deals: dict[int, str] = {}
        for owner in OWNERS:
            made = client.post(
                f"{BASE}/account",
                json={"name": f"{owner} 科技有限公司", "owner_id": ids[owner]},
                headers=admin,
            )
            assert made.status_code == 201, made.text
            accounts[made.json()["id"]] = owner
        account_ids = list(accounts)
        for n, owner in enumerate(OWNERS * 2):
            body = {
                "title": f"{owner} deal {n} 科技",
                "amount": 100 + n,
                "margin": 10 + n,
                "stage": "open",
                "account": account_ids[n % len(account_ids)],
                "owner_id": ids[owner],
            }
            made = client.post(f"{BASE}/deal", json=body, headers=admin)
            assert made.status_code == 201, made.text
            deals[made.json()["id"]] = owner
        yield World(client, ids, headers, deals, accounts, workspace)


USERS_UNDER_TEST = [*USERS]


@pytest.mark.parametrize("entity", ["deal", "account"])
def test_reads_by_id_lists_counts_and_search_show_exactly_the_read_scope(
    world: World, entity: str
) -> None:
    client = world.client
    records = world.deals if entity == "deal" else world.accounts
    for login in USERS_UNDER_TEST:
        headers = world.as_(login)
        expected = world.visible(login, entity)
        listed = client.get(f"{BASE}/{entity}", params={"limit": 100}, headers=headers)
        if SCOPES[(login, entity)]["read"] == "none":
            assert listed.status_code == 403, (login, listed.text)
            assert listed.json()["code"] == "permission_denied"
        else:
            assert listed.status_code == 200, (login, listed.text)
            page = listed.json()
            assert {r["id"] for r in page["items"]} == expected, login
            assert page["total"] == len(expected), login
            searched = client.get(f"{BASE}/{entity}", params={"q": "科技"}, headers=headers).json()
            assert {r["id"] for r in searched["items"]} == expected, login
            small = client.get(f"{BASE}/{entity}", params={"limit": 1}, headers=headers).json()
            assert small["total"] == len(expected), login  # a count query, scoped too
        for record_id in records:
            got = client.get(f"{BASE}/{entity}/{record_id}", headers=headers)
            if record_id in expected:
                assert got.status_code == 200, (login, record_id)
            elif SCOPES[(login, entity)]["read"] == "none":
                assert got.status_code == 403, (login, record_id)
            else:
                assert got.status_code == 404, (login, record_id)  # existence is not leaked


def test_hidden_fields_never_leave_the_server(world: World) -> None:
    client = world.client
    for login in USERS_UNDER_TEST:
        if SCOPES[(login, "deal")]["read"] == "none":
            continue
        headers = world.as_(login)
        hidden = (login, "deal") in HIDDEN
        items = client.get(f"{BASE}/deal", headers=headers).json()["items"]
        one = client.get(f"{BASE}/deal/{items[0]['id']}", headers=headers).json()
        schema = client.get(f"/api/envs/{ENV}/entities/deal/schema", headers=headers).json()
        history = client.get(f"{BASE}/deal/{items[0]['id']}/history", headers=headers).json()
        for shown in (*items, one, schema["properties"], history["items"][0]["changes"]):
            assert ("margin" in shown) is not hidden, (login, shown)
        filtered = client.get(f"{BASE}/deal", params={"margin__ge": 0}, headers=headers)
        sorted_ = client.get(f"{BASE}/deal", params={"sort": "margin"}, headers=headers)
        selected = client.get(f"{BASE}/deal", params={"fields": "title,margin"}, headers=headers)
        for response in (filtered, sorted_, selected):
            assert response.status_code == (422 if hidden else 200), (login, response.text)
        if hidden:
            assert "margin" not in filtered.text.split("cannot")[0]
        assert schema["properties"]["stage"].get("readOnly", False) is (
            "stage" in READ_ONLY.get((login, "deal"), set())
        )


def test_writes_follow_the_update_and_delete_scopes(world: World) -> None:
    client = world.client
    for login in USERS_UNDER_TEST:
        headers = world.as_(login)
        for deal_id, owner in world.deals.items():
            current = client.get(f"{BASE}/deal/{deal_id}", headers=world.as_("admin")).json()
            changed = client.patch(
                f"{BASE}/deal/{deal_id}",
                json={"amount": current["amount"] + 1, "version": current["version"]},
                headers=headers,
            )
            if world.allowed(login, "deal", "update", owner):
                assert changed.status_code == 200, (login, deal_id, changed.text)
            elif SCOPES[(login, "deal")]["update"] == "none" or world.allowed(
                login, "deal", "read", owner
            ):
                assert changed.status_code == 403, (login, deal_id)
            else:
                assert changed.status_code == 404, (login, deal_id)
    # delete and restore: rep2 may delete its own deal, not rep1's; mgr may delete rep1's
    rep1_deal = next(i for i, o in world.deals.items() if o == "rep1")
    rep2_deal = next(i for i, o in world.deals.items() if o == "rep2")
    assert client.delete(f"{BASE}/deal/{rep1_deal}", headers=world.as_("rep2")).status_code == 404
    assert client.delete(f"{BASE}/deal/{rep2_deal}", headers=world.as_("rep2")).status_code == 200
    assert client.delete(f"{BASE}/deal/{rep1_deal}", headers=world.as_("mgr")).status_code == 200
    assert (
        client.delete(f"{BASE}/deal/{rep1_deal}", headers=world.as_("auditor")).status_code == 403
    )
    bin_rep2 = client.get(f"{BASE}/deal/recycle-bin", headers=world.as_("rep2")).json()
    assert [r["id"] for r in bin_rep2["items"]] == [rep2_deal]
    bin_mgr = client.get(f"{BASE}/deal/recycle-bin", headers=world.as_("mgr")).json()
    assert {r["id"] for r in bin_mgr["items"]} == {rep1_deal, rep2_deal}
    restore = f"{BASE}/deal/{rep1_deal}/restore"
    assert client.post(restore, headers=world.as_("rep2")).status_code == 404
    assert client.post(restore, headers=world.as_("rep1")).status_code == 200
    # the auditor reads history of every record; an outsider of none
    assert (
        client.get(f"{BASE}/deal/{rep1_deal}/history", headers=world.as_("auditor")).status_code
        == 200
    )
    assert (
        client.get(f"{BASE}/deal/{rep1_deal}/history", headers=world.as_("rep3")).status_code == 404
    )


def test_read_only_and_hidden_fields_in_a_payload_are_refused_with_a_reason(world: World) -> None:
    client = world.client
    rep1 = world.as_("rep1")
    mine = next(i for i, o in world.deals.items() if o == "rep1")
    version = client.get(f"{BASE}/deal/{mine}", headers=rep1).json()["version"]
    refused = client.patch(
        f"{BASE}/deal/{mine}",
        json={"stage": "won", "margin": 1, "amount": 5, "version": version},
        headers=rep1,
    )
    assert refused.status_code == 422
    problems = {(e["path"], e["code"]) for e in refused.json()["errors"]}
    assert problems == {("/stage", "field_not_writable"), ("/margin", "field_not_writable")}
    assert "read-only" in refused.text and "hidden" in refused.text
    assert client.get(f"{BASE}/deal/{mine}", headers=rep1).json()["amount"] != 5  # nothing written
    created = client.post(f"{BASE}/deal", json={"title": "t", "stage": "won"}, headers=rep1)
    assert created.status_code == 422
    assert created.json()["errors"][0]["code"] == "field_not_writable"
    mgr = world.as_("mgr")
    version = client.get(f"{BASE}/deal/{mine}", headers=mgr).json()["version"]
    mgr_margin = client.patch(
        f"{BASE}/deal/{mine}", json={"margin": 3, "version": version}, headers=mgr
    )
    assert mgr_margin.status_code == 422  # read-only for the manager (rep's hidden is wider)


def test_create_bulk_and_owner_transfer(world: World) -> None:
    client = world.client
    for login in USERS_UNDER_TEST:
        made = client.post(f"{BASE}/deal", json={"title": f"new {login}"}, headers=world.as_(login))
        assert made.status_code == (201 if login in CAN_CREATE else 403), (login, made.text)
        if made.status_code == 201:
            assert made.json()["owner_id"] == world.ids[login]
    # giving a new record to someone else needs them in your update scope
    rep1, mgr = world.as_("rep1"), world.as_("mgr")
    given = client.post(
        f"{BASE}/deal", json={"title": "x", "owner_id": world.ids["rep2"]}, headers=rep1
    )
    assert given.status_code == 422 and given.json()["errors"][0]["code"] == "owner_not_allowed"
    to_team = client.post(
        f"{BASE}/deal", json={"title": "x", "owner_id": world.ids["rep2"]}, headers=mgr
    )
    assert to_team.status_code == 201
    # a lookup may only point at records the writer may read (else: "does not exist")
    theirs = next(i for i, o in world.accounts.items() if o == "rep2")
    mine = next(i for i, o in world.accounts.items() if o == "rep1")
    hidden_account = client.post(
        f"{BASE}/deal", json={"title": "x", "account": theirs}, headers=rep1
    )
    assert hidden_account.status_code == 422
    assert hidden_account.json()["errors"][0]["code"] == "unknown_record"
    own_account = client.post(f"{BASE}/deal", json={"title": "x", "account": mine}, headers=rep1)
    assert own_account.status_code == 201
    # bulk: all rows must be allowed; one row outside the scope rejects the batch
    own = [i for i, o in world.deals.items() if o == "rep1"]
    other = next(i for i, o in world.deals.items() if o == "rep2")
    versions = {i: client.get(f"{BASE}/deal/{i}", headers=rep1).json()["version"] for i in own}
    rows = [{"id": i, "amount": 1, "version": versions[i]} for i in own]
    assert client.post(f"{BASE}/deal/bulk", json={"update": rows}, headers=rep1).status_code == 200
    mixed = client.post(
        f"{BASE}/deal/bulk",
        json={"update": [*rows, {"id": other, "amount": 2, "version": 1}]},
        headers=rep1,
    )
    assert mixed.status_code in (404, 422), mixed.text
    rows = [{**row, "version": row["version"] + 1} for row in rows]
    auditor = client.post(f"{BASE}/deal/bulk", json={"update": rows}, headers=world.as_("auditor"))
    assert auditor.status_code == 403
    # transfer: the manager moves rep1's deals to rep2 (same team); rep1 may not give to rep3
    moved = client.post(
        f"{BASE}/deal/transfer", json={"ids": own, "owner_id": world.ids["rep2"]}, headers=mgr
    )
    assert moved.status_code == 200, moved.text
    assert {r["owner_id"] for r in moved.json()["items"]} == {world.ids["rep2"]}
    history = client.get(f"{BASE}/deal/{own[0]}/history", headers=mgr).json()["items"]
    assert history[0]["action"] == "transfer"
    assert history[0]["changes"] == {"owner_id": [world.ids["rep1"], world.ids["rep2"]]}
    assert history[0]["actor"] == world.ids["mgr"]
    rep2 = world.as_("rep2")
    refused = client.post(
        f"{BASE}/deal/{own[0]}/transfer", json={"owner_id": world.ids["rep3"]}, headers=rep2
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["code"] == "owner_not_allowed"
    outside = client.post(
        f"{BASE}/deal/transfer", json={"ids": own, "owner_id": world.ids["rep3"]}, headers=mgr
    )
    assert outside.status_code == 422  # rep3 is not in the manager's team


def test_export_import_and_lookup_titles_follow_the_roles(world: World) -> None:
    client = world.client
    for login in USERS_UNDER_TEST:
        headers = world.as_(login)
        for entity in ("deal", "account"):
            exported = client.get(
                f"{BASE}/{entity}/export", params={"headers": "names"}, headers=headers
            )
            if login not in CAN_EXPORT[entity]:
                assert exported.status_code == 403, (login, entity)
                continue
            assert exported.status_code == 200, (login, entity, exported.text)
            rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
            assert {int(r[0]) for r in rows[1:]} == world.visible(login, entity)
            if entity == "deal":
                assert ("margin" in rows[0]) is ((login, entity) not in HIDDEN)
    # lookup titles: rep1 reads its own deals but only its own account's title
    rep1 = world.as_("rep1")
    items = client.get(f"{BASE}/deal", headers=rep1).json()["items"]
    for item in items:
        owner = world.accounts[item["account"]]
        title = item["_titles"]["account"]
        assert (title is not None) is (owner == "rep1"), item
    mgr_items = client.get(f"{BASE}/deal", headers=world.as_("mgr")).json()["items"]
    assert all(i["_titles"]["account"] is not None for i in mgr_items)  # accounts: read all
    # import needs the import permission
    files = {"file": ("deals.csv", b"title\nx\n", "text/csv")}
    refused = client.post(f"{BASE}/deal/imports", files=files, headers=rep1)
    assert refused.status_code == 403


def test_imports_run_with_the_importers_permissions(world: World) -> None:
    client, mgr = world.client, world.as_("mgr")
    protected = {"file": ("deals.csv", b"title,margin\nx,1\n", "text/csv")}
    refused = client.post(f"{BASE}/deal/imports", files=protected, headers=mgr)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["code"] == "field_not_writable"
    team_deal = next(i for i, o in world.deals.items() if o == "rep1")
    other_deal = next(i for i, o in world.deals.items() if o == "rep3")
    content = f"id,title,amount\n{team_deal},renamed,7\n{other_deal},stolen,8\n,fresh,9\n"
    files = {"file": ("deals.csv", content.encode(), "text/csv")}
    options = '{"upsert_on": "id", "mode": "skip_bad_rows"}'
    started = client.post(
        f"{BASE}/deal/imports", files=files, data={"options": options}, headers=mgr
    )
    assert started.status_code == 202, started.text
    Worker(world.workspace).run_once()
    done = client.get(f"/api/envs/{ENV}/imports/{started.json()['id']}", headers=mgr).json()
    summary = done["summary"]
    assert (summary["created"], summary["updated"]) == (1, 1), summary
    assert [e["code"] for e in summary["errors"]] == ["permission_denied"]
    admin = world.as_("admin")
    assert client.get(f"{BASE}/deal/{team_deal}", headers=admin).json()["title"] == "renamed"
    assert client.get(f"{BASE}/deal/{other_deal}", headers=admin).json()["title"] != "stolen"
    # another user does not even see the import
    seen = client.get(f"/api/envs/{ENV}/imports/{started.json()['id']}", headers=world.as_("rep1"))
    assert seen.status_code == 404


def test_credentials_are_bound_to_their_environment(world: World) -> None:
    client, workspace = world.client, world.workspace
    create_environment(workspace, "sandbox")
    admin_id = world.ids["admin"]
    bound = bearer_headers(workspace, admin_id, env=ENV)
    assert client.get(f"{BASE}/deal", headers=bound).status_code == 200
    other = client.get("/api/envs/sandbox/records/deal", headers=bound)
    assert other.status_code == 403 and other.json()["errors"][0]["code"] == "wrong_environment"
    # a user with roles in production only can read nothing in the sandbox
    MetaStore(workspace).apply(
        "sandbox",
        [SourceDocument("entity", body, body["name"]) for body in (ACCOUNT, DEAL)],
        PublishOptions(),
    )
    rep = client.get("/api/envs/sandbox/records/deal", headers=world.as_("auditor"))
    assert rep.status_code == 403


def test_no_credential_no_data(world: World) -> None:
    client = world.client
    for url in (f"{BASE}/deal", f"{BASE}/deal/1", f"/api/envs/{ENV}/entities/deal/schema"):
        response = client.get(url, headers={"Authorization": "Bearer flt_nope_nope"})
        assert response.status_code == 401, url
        assert client.get(url).status_code == 401
    assert client.get("/api/health").status_code == 200


def test_manage_users_and_manage_metadata_come_from_production_roles(world: World) -> None:
    client, workspace = world.client, world.workspace
    roles = [
        role("hr", {}, ["manage_users"]),
        role("designer", {}, ["manage_metadata"]),
        role("releaser", {}, ["manage_metadata", "publish_production"]),
    ]
    MetaStore(workspace).apply(
        ENV, [SourceDocument("role", body, body["name"]) for body in roles], PublishOptions()
    )
    people = {
        name: bearer_headers(workspace, create_user(workspace, name, roles={ENV: [name]}))
        for name in ("hr", "designer", "releaser")
    }
    assert client.get("/api/admin/users", headers=people["hr"]).status_code == 200
    assert client.get("/api/admin/users", headers=people["designer"]).status_code == 403
    assert client.get("/api/admin/users", headers=world.as_("rep1")).status_code == 403
    meta = f"/api/envs/{ENV}/meta/entity/account"
    assert client.get(meta, headers=people["hr"]).status_code == 403
    assert client.get(meta, headers=people["designer"]).status_code == 200
    changed = {**ACCOUNT, "fields": [*ACCOUNT["fields"], field("website")]}
    assert client.put(meta, json=changed, headers=people["designer"]).status_code == 200
    refused = client.post(f"{meta}/publish", headers=people["designer"])
    assert refused.status_code == 403 and "publish_production" in refused.text
    published = client.post(f"{meta}/publish", headers=people["releaser"])
    assert published.status_code == 200, published.text
    versions = client.get(f"{meta}/versions", headers=people["releaser"]).json()
    assert versions[-1]["published_by"] == "releaser"


def test_duplicate_warnings_do_not_show_titles_the_writer_may_not_read(world: World) -> None:
    client = world.client
    theirs = next(i for i, o in world.accounts.items() if o == "rep2")
    mine = next(i for i, o in world.accounts.items() if o == "rep1")
    for target, shown in ((theirs, False), (mine, True)):
        name = client.get(f"{BASE}/account/{target}", headers=world.as_("admin")).json()["name"]
        warned = client.post(f"{BASE}/account", json={"name": name}, headers=world.as_("rep1"))
        assert warned.status_code == 409, warned.text
        (rule,) = warned.json()["duplicates"]
        assert [r["id"] for r in rule["records"]] == [target]
        assert (rule["records"][0]["title"] == name) is shown
        assert (name in warned.text) is shown
