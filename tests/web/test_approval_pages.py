"""Approvals in the staff web app through HTTP (both databases): the record page's panel,
submit, the inbox and its count, the approval page and every action, errors and escaping.

The world of :mod:`tests.web.world` plus a ``manager`` (role ``sales_manager``: reads
every deal) and two flows on deals: ``deal_approval`` (amount under 100,000: the
manager approves, a reject needs a comment, returns go to the submitter) and
``big_deal`` (from 100,000: the submitter chooses the approver), and ``won_deal`` (won
deals: the manager, then whom the manager chooses).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from formloom.platform.app import build_app
from formloom.platform.database import Workspace
from formloom.platform.metastore import MetaStore, PublishOptions, SourceDocument
from formloom.platform.settings import Settings
from tests.identity import create_user
from tests.platform.crm_entities import label
from tests.web.world import ENV, csrf_of, post_form, publish_world, sign_in

DEALS = f"/app/{ENV}/deal"
INBOX = f"/app/{ENV}/-/inbox"
SALES_MANAGER = {
    "name": "sales_manager",
    "label": label("Sales manager", "销售经理"),
    "entities": {"deal": {"read": "all"}},
}


def deal_flows(manager_id: int) -> list[dict[str, Any]]:
    """The two flows on deals (see the module docstring)."""
    small = {
        "name": "deal_approval",
        "label": label("Deal approval", "商机审批"),
        "entity": "deal",
        "entry_condition": {"field": "amount", "op": "lt", "value": 100000},
        "nodes": [
            {"id": "start", "type": "start", "label": label("Submitter", "发起人"), "next": "mgr"},
            {
                "id": "mgr",
                "type": "approver",
                "label": label("Manager review", "经理审批"),
                "assignees": [{"type": "users", "users": [manager_id]}],
                "mode": "or_sign",
                "comment_required_on_reject": True,
                "returnable_to": ["start"],
                "field_permissions": {"notes": "hidden"},
                "next": "done",
            },
            {
                "id": "done",
                "type": "end",
                "label": label("Approved", "通过"),
                "outcome": "approved",
            },
        ],
    }
    big = {
        "name": "big_deal",
        "label": label("Big deal approval", "大额商机审批"),
        "entity": "deal",
        "entry_condition": {"field": "amount", "op": "gte", "value": 100000},
        "nodes": [
            {"id": "start", "type": "start", "label": label("Submitter", "发起人"), "next": "pick"},
            {
                "id": "pick",
                "type": "approver",
                "label": label("Chosen approver", "自选审批人"),
                "assignees": [{"type": "submitter_choice"}],
                "next": "done",
            },
            {
                "id": "done",
                "type": "end",
                "label": label("Approved", "通过"),
                "outcome": "approved",
            },
        ],
    }
    chained = {
        "name": "won_deal",
        "label": label("Won deal", "赢单审批"),
        "entity": "deal",
        "entry_condition": {"field": "stage", "op": "eq", "value": "won"},
        "nodes": [
            {
                "id": "start",
                "type": "start",
                "label": label("Submitter", "发起人"),
                "next": "first",
            },
            {
                "id": "first",
                "type": "approver",
                "label": label("First look", "初审"),
                "assignees": [{"type": "users", "users": [manager_id]}],
                "next": "second",
            },
            {
                "id": "second",
                "type": "approver",
                "label": label("Second look", "复审"),
                "assignees": [{"type": "previous_approver_choice"}],
                "next": "done",
            },
            {
                "id": "done",
                "type": "end",
                "label": label("Approved", "通过"),
                "outcome": "approved",
            },
        ],
    }
    return [small, big, chained]


def publish_approvals(workspace: Workspace) -> dict[str, int]:
    """The web world, the manager and the deal flows; user ids by login."""
    ids = publish_world(workspace)
    MetaStore(workspace).apply(
        ENV, [SourceDocument("role", SALES_MANAGER, "sales_manager")], PublishOptions()
    )
    ids["manager"] = create_user(
        workspace, "manager", roles={ENV: ["sales_manager"]}, display_name="Manager"
    )
    flows = [SourceDocument("flow", body, body["name"]) for body in deal_flows(ids["manager"])]
    MetaStore(workspace).apply(ENV, flows, PublishOptions())
    return ids


@dataclass
class Web:
    app: Any
    ids: dict[str, int]

    def client(self, login: str) -> tuple[TestClient, str]:
        """A browser signed in as ``login`` and its CSRF token."""
        client = TestClient(self.app)
        return client, sign_in(client, login)


@pytest.fixture
def web(settings: Settings) -> Iterator[Web]:
    app = build_app(settings, run_worker=False)
    ids = publish_approvals(app.state.workspace)
    with TestClient(app):
        yield Web(app, ids)


def create_deal(client: TestClient, csrf: str, **fields: str) -> int:
    answer = post_form(client, f"{DEALS}/new", {"csrf_token": csrf, **fields})
    assert answer.status_code == 303, answer.text
    return int(answer.headers["location"].rsplit("/", 1)[1])


def submitted_deal(web: Web, title: str = "Acme", amount: str = "500") -> tuple[int, int]:
    """A deal of the rep's, submitted from the record page; (deal id, instance id)."""
    rep, csrf = web.client("rep")
    deal_id = create_deal(rep, csrf, title=title, amount=amount)
    answer = post_form(
        rep,
        f"/app/{ENV}/-/submit/deal/{deal_id}",
        {"csrf_token": csrf, "flow": "deal_approval", "comment": "please"},
    )
    assert answer.status_code == 303, answer.text
    return deal_id, instance_of(rep.get(f"{DEALS}/{deal_id}").text)


def instance_of(html: str) -> int:
    found = re.search(rf"/app/{ENV}/-/approvals/(\d+)", html)
    assert found is not None, html
    return int(found.group(1))


def task_of(html: str) -> tuple[int, str]:
    """The first task form of a page: its task id and revision."""
    found = re.search(r'/tasks/(\d+)/approve"', html)
    rev = re.search(r'name="rev" value="(\d+)"', html)
    assert found is not None and rev is not None, html
    return int(found.group(1)), rev.group(1)


def act(client: TestClient, csrf: str, instance_id: int, path: str, **data: Any) -> Any:
    url = f"/app/{ENV}/-/approvals/{instance_id}/{path}"
    return post_form(client, url, {"csrf_token": csrf, **data})


def test_a_record_without_a_flow_has_no_panel(web: Web) -> None:
    boss, csrf = web.client("boss")
    answer = post_form(boss, f"/app/{ENV}/secret/new", {"csrf_token": csrf, "name": "S"})
    secret_id = answer.headers["location"].rsplit("/", 1)[1]

    page = boss.get(f"/app/{ENV}/secret/{secret_id}")

    assert page.status_code == 200 and 'id="approval"' not in page.text


def test_submit_from_the_record_page_and_approve_from_the_inbox(web: Web) -> None:
    # given: the rep's deal shows the submit form of the one flow that applies
    rep, csrf = web.client("rep")
    deal_id = create_deal(rep, csrf, title="Acme", amount="500")
    before = rep.get(f"{DEALS}/{deal_id}").text
    assert "Submit for approval" in before and 'value="deal_approval"' in before
    assert 'value="big_deal"' not in before
    # when: submitted
    answer = post_form(
        rep,
        f"/app/{ENV}/-/submit/deal/{deal_id}",
        {"csrf_token": csrf, "flow": "deal_approval", "comment": "please"},
    )
    # then: the record page says so and waits for the manager
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{DEALS}/{deal_id}?done=submit"
    shown = rep.get(answer.headers["location"]).text
    assert "Submitted for approval." in shown and 'data-status="running"' in shown
    assert "Manager review" in shown and "Manager" in shown
    assert "/approve" not in shown and "Withdraw" in shown and "Submit for approval" not in shown
    # the manager's inbox counts and lists it
    manager, m_csrf = web.client("manager")
    assert ">1</span>" in manager.get(f"{INBOX}/count").text
    inbox = manager.get(INBOX).text
    instance_id = instance_of(inbox)
    assert f'href="{DEALS}/{deal_id}"' in inbox and "Deal approval" in inbox
    page = manager.get(f"/app/{ENV}/-/approvals/{instance_id}")
    assert page.status_code == 200 and "Acme" in page.text
    assert "Notes" not in page.text  # hidden at the manager's step
    task_id, rev = task_of(page.text)
    approved = act(manager, m_csrf, instance_id, f"tasks/{task_id}/approve", rev=rev, comment="ok!")
    assert approved.status_code == 303
    record = manager.get(f"{DEALS}/{deal_id}").text
    assert 'data-status="approved"' in record and "ok!" in record and "please" in record
    assert ">0</span>" in manager.get(f"{INBOX}/count").text
    assert f'href="/app/{ENV}/-/approvals/{instance_id}"' in manager.get(f"{INBOX}?box=done").text
    assert f'href="/app/{ENV}/-/approvals/{instance_id}"' in rep.get(f"{INBOX}?box=submitted").text


def test_a_reject_without_the_required_comment_shows_the_reason_by_the_comment(web: Web) -> None:
    deal_id, instance_id = submitted_deal(web)
    manager, csrf = web.client("manager")
    task_id, rev = task_of(manager.get(f"/app/{ENV}/-/approvals/{instance_id}").text)

    refused = act(manager, csrf, instance_id, f"tasks/{task_id}/reject", rev=rev, comment=" ")
    rejected = act(manager, csrf, instance_id, f"tasks/{task_id}/reject", rev=rev, comment="no")

    assert refused.status_code == 422
    assert f'id="task-{task_id}-decide-error"' in refused.text
    assert "a comment is required" in refused.text and 'aria-invalid="true"' in refused.text
    assert rejected.status_code == 303
    assert 'data-status="rejected"' in manager.get(f"{DEALS}/{deal_id}").text


def test_a_second_decision_is_a_clear_conflict_not_an_error(web: Web) -> None:
    _, instance_id = submitted_deal(web)
    manager, csrf = web.client("manager")
    task_id, rev = task_of(manager.get(f"/app/{ENV}/-/approvals/{instance_id}").text)
    first = act(manager, csrf, instance_id, f"tasks/{task_id}/approve", rev=rev)

    second = act(manager, csrf, instance_id, f"tasks/{task_id}/approve", rev=rev)

    assert first.status_code == 303
    assert second.status_code == 409
    assert "someone else acted first" in second.text and 'role="alert"' in second.text


def test_forged_posts_get_the_services_refusal_and_no_forms_are_offered(web: Web) -> None:
    _, instance_id = submitted_deal(web)
    manager, _ = web.client("manager")
    task_id, rev = task_of(manager.get(f"/app/{ENV}/-/approvals/{instance_id}").text)
    rep, csrf = web.client("rep")
    outsider, o_csrf = web.client("outsider")

    forged = act(rep, csrf, instance_id, f"tasks/{task_id}/approve", rev=rev)
    no_csrf = act(rep, "wrong", instance_id, "withdraw")
    not_theirs = outsider.get(f"/app/{ENV}/-/approvals/{instance_id}")
    outsider_comment = act(outsider, o_csrf, instance_id, "comment", comment="hi")

    assert forged.status_code == 403 and "only its assignee may act on it" in forged.text
    assert no_csrf.status_code == 403
    assert not_theirs.status_code == 403 and "is not yours to see" in not_theirs.text
    assert outsider_comment.status_code == 403
    rep_page = rep.get(f"/app/{ENV}/-/approvals/{instance_id}").text
    assert f"/tasks/{task_id}/" not in rep_page and "/withdraw" in rep_page


def test_return_resubmit_transfer_and_add_approver(web: Web) -> None:
    deal_id, instance_id = submitted_deal(web)
    manager, m_csrf = web.client("manager")
    rep, csrf = web.client("rep")
    page = manager.get(f"/app/{ENV}/-/approvals/{instance_id}").text
    task_id, rev = task_of(page)
    assert '<option value="start">Submitter</option>' in page
    # return to the submitter, who resubmits from the record page
    returned = act(manager, m_csrf, instance_id, f"tasks/{task_id}/return", rev=rev, to="start")
    assert returned.status_code == 303
    record = rep.get(f"{DEALS}/{deal_id}").text
    resubmit = re.search(r"/tasks/(\d+)/resubmit", record)
    assert resubmit is not None and "Returned to" in record
    again = act(
        rep, csrf, instance_id, f"tasks/{resubmit.group(1)}/resubmit", next=f"{DEALS}/{deal_id}"
    )
    assert again.status_code == 303 and again.headers["location"].startswith(f"{DEALS}/{deal_id}")
    # transfer to the boss, who adds the manager after himself
    task_id, rev = task_of(manager.get(f"/app/{ENV}/-/approvals/{instance_id}").text)
    boss_id = str(web.ids["boss"])
    moved = act(manager, m_csrf, instance_id, f"tasks/{task_id}/transfer", rev=rev, user=boss_id)
    assert moved.status_code == 303
    boss, b_csrf = web.client("boss")
    task_id, rev = task_of(boss.get(f"/app/{ENV}/-/approvals/{instance_id}").text)
    added = act(
        boss,
        b_csrf,
        instance_id,
        f"tasks/{task_id}/add_approver",
        rev=rev,
        users=[str(web.ids["manager"])],
        position="after",
    )
    assert added.status_code == 303
    history = boss.get(f"/app/{ENV}/-/approvals/{instance_id}").text
    assert "Transferred to" in history and "Added approvers" in history


def test_a_bad_transfer_shows_the_services_message_next_to_its_form(web: Web) -> None:
    _, instance_id = submitted_deal(web)
    manager, csrf = web.client("manager")
    task_id, rev = task_of(manager.get(f"/app/{ENV}/-/approvals/{instance_id}").text)

    same = act(
        manager, csrf, instance_id, f"tasks/{task_id}/transfer", rev=rev, user=web.ids["manager"]
    )
    garbage = act(manager, csrf, instance_id, f"tasks/{task_id}/transfer", rev=rev, user="x")

    assert same.status_code == 422 and f'id="task-{task_id}-transfer-error"' in same.text
    assert "already holds this task" in same.text and '<details class="ap-more" open>' in same.text
    assert garbage.status_code == 422 and "not filled in correctly" in garbage.text


def test_withdraw_remind_and_comment_by_the_submitter(web: Web) -> None:
    deal_id, instance_id = submitted_deal(web)
    rep, csrf = web.client("rep")

    reminded = act(rep, csrf, instance_id, "remind")
    commented = act(rep, csrf, instance_id, "comment", comment="<b>soon</b>")
    empty = act(rep, csrf, instance_id, "comment", comment="")
    withdrawn = act(rep, csrf, instance_id, "withdraw", next=f"{DEALS}/{deal_id}")

    assert reminded.status_code == 303 and commented.status_code == 303
    assert empty.status_code == 422 and 'id="instance-comment-error"' in empty.text
    assert withdrawn.status_code == 303
    record = rep.get(withdrawn.headers["location"]).text
    assert "Withdrawn." in record and 'data-status="withdrawn"' in record
    assert "&lt;b&gt;soon&lt;/b&gt;" in record and "<b>soon</b>" not in record
    assert "Submit for approval" in record  # it may be submitted again


def test_a_flow_choosing_its_approver_asks_the_submitter(web: Web) -> None:
    rep, csrf = web.client("rep")
    deal_id = create_deal(rep, csrf, title="Huge", amount="200000")
    page = rep.get(f"{DEALS}/{deal_id}").text
    assert 'name="approvers:pick"' in page and 'value="big_deal"' in page
    url = f"/app/{ENV}/-/submit/deal/{deal_id}"

    missing = post_form(rep, url, {"csrf_token": csrf, "flow": "big_deal", "comment": "kept"})
    chosen = post_form(
        rep,
        url,
        {"csrf_token": csrf, "flow": "big_deal", "approvers:pick": str(web.ids["manager"])},
    )

    assert missing.status_code == 422
    assert "is assigned by the submitter" in missing.text and ">kept</textarea>" in missing.text
    assert chosen.status_code == 303
    manager, _ = web.client("manager")
    assert "Huge" in manager.get(INBOX).text or f"{DEALS}/{deal_id}" in manager.get(INBOX).text


def test_the_pages_in_chinese(web: Web) -> None:
    deal_id, instance_id = submitted_deal(web)
    manager, _ = web.client("manager")
    manager.cookies.set("formloom_lang", "zh")

    inbox = manager.get(INBOX).text
    page = manager.get(f"/app/{ENV}/-/approvals/{instance_id}").text

    assert "待我处理" in inbox and "商机审批" in inbox and "审批中" in inbox
    assert "同意" in page and "拒绝" in page and "审批意见（拒绝时必填）" in page
    assert csrf_of(page)
    assert f"{DEALS}/{deal_id}" in page


def test_the_menu_links_the_inbox_and_signed_out_counts_are_empty(web: Web) -> None:
    rep, _ = web.client("rep")

    home = rep.get(f"/app/{ENV}").text
    anonymous = TestClient(web.app).get(f"{INBOX}/count")

    assert f'href="{INBOX}"' in home and f'hx-get="{INBOX}/count"' in home
    assert anonymous.status_code == 200 and anonymous.text == ""


def test_several_flows_apply_and_an_approver_chooses_the_next_approver(web: Web) -> None:
    rep, csrf = web.client("rep")
    deal_id = create_deal(rep, csrf, title="Won", amount="800", stage="won")
    page = rep.get(f"{DEALS}/{deal_id}").text
    assert "Submit for approval: Won deal" in page and "Submit for approval: Deal approval" in page
    submitted = post_form(
        rep, f"/app/{ENV}/-/submit/deal/{deal_id}", {"csrf_token": csrf, "flow": "won_deal"}
    )
    assert submitted.status_code == 303
    instance_id = instance_of(rep.get(f"{DEALS}/{deal_id}").text)
    manager, m_csrf = web.client("manager")
    page = manager.get(f"/app/{ENV}/-/approvals/{instance_id}").text
    task_id, rev = task_of(page)
    assert 'name="next:second"' in page

    unchosen = act(manager, m_csrf, instance_id, f"tasks/{task_id}/approve", rev=rev)
    chosen = act(
        manager,
        m_csrf,
        instance_id,
        f"tasks/{task_id}/approve",
        rev=rev,
        **{"next:second": str(web.ids["boss"])},
    )

    assert unchosen.status_code == 422 and f'id="task-{task_id}-decide-error"' in unchosen.text
    assert chosen.status_code == 303
    boss, _ = web.client("boss")
    assert f"/app/{ENV}/-/approvals/{instance_id}" in boss.get(INBOX).text


def test_a_record_in_approval_is_edited_only_where_the_viewers_step_allows(web: Web) -> None:
    # given: the rep's deal in approval (the rep holds no task: nothing is editable for them)
    deal_id, _ = submitted_deal(web, title="Locked deal")
    rep, csrf = web.client("rep")

    # when
    form = rep.get(f"{DEALS}/{deal_id}/edit")
    posted = post_form(
        rep, f"{DEALS}/{deal_id}/edit", {"csrf_token": csrf, "title": "Changed", "version": "1"}
    )

    # then: the form shows the fields as text, and a forged post changes nothing
    assert form.status_code == 200
    assert 'name="title"' not in form.text and "Locked deal" in form.text
    assert posted.status_code == 303  # read-only values posted are ignored (docs/forms.md)
    assert "Changed" not in rep.get(f"{DEALS}/{deal_id}").text
