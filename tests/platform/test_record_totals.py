"""Grouped counts and sums (the board's column figures) on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest

from formloom.platform import records
from formloom.platform.database import Workspace
from formloom.platform.errors import Invalid
from formloom.platform.metastore import MetaStore, PublishOptions, SourceDocument
from formloom.platform.record_totals import GroupTotals, totals_by_group
from tests.identity import create_user, principal_of
from tests.platform.crm_entities import ACCOUNT, DEAL, ENV, label, publish
from tests.principals import SYSTEM, acting_as

REP = {
    "name": "rep",
    "label": label("Rep", "销售"),
    "entities": {"deal": {"read": "own", "fields": {"price": "hidden"}}},
}


@pytest.fixture
def crm(workspace: Workspace) -> Workspace:
    publish(workspace, ACCOUNT, DEAL)
    MetaStore(workspace).apply(ENV, [SourceDocument("role", REP, "rep")], PublishOptions())
    return workspace


def deal(workspace: Workspace, owner: int, **values: object) -> int:
    saved = records.create_record(
        workspace,
        env=ENV,
        entity="deal",
        payload={"title": "T", **values},
        principal=acting_as(owner),
    )
    return int(saved["id"])


def test_counts_and_exact_sums_per_value(crm: Workspace) -> None:
    deal(crm, 1, stage="open", amount="0.10", quantity=2)
    deal(crm, 1, stage="open", amount="0.20", quantity=3)
    deal(crm, 1, stage="won", amount="1234567.89")
    gone = deal(crm, 1, stage="won", amount="5")
    records.delete_record(crm, env=ENV, entity="deal", record_id=gone, version=1, principal=SYSTEM)
    deal(crm, 1, stage=None)

    totals = totals_by_group(
        crm, ENV, "deal", group_by="stage", sum_fields=["amount", "quantity"], principal=SYSTEM
    )

    assert totals == {
        "open": GroupTotals(2, {"amount": Decimal("0.30"), "quantity": 5}),
        "won": GroupTotals(1, {"amount": Decimal("1234567.89"), "quantity": 0}),
        None: GroupTotals(1, {"amount": Decimal("0.00"), "quantity": 0}),
    }


def test_a_condition_narrows_the_records_counted(crm: Workspace) -> None:
    deal(crm, 1, stage="open", quantity=1)
    deal(crm, 1, stage="open", quantity=10)

    totals = totals_by_group(
        crm,
        ENV,
        "deal",
        group_by="stage",
        sum_fields=["quantity"],
        where={"field": "quantity", "op": "ge", "value": 5},
        principal=SYSTEM,
    )

    assert totals == {"open": GroupTotals(1, {"quantity": 10})}


def test_only_records_in_the_read_scope_count(crm: Workspace) -> None:
    rep = create_user(crm, "rep", roles={ENV: ["rep"]})
    deal(crm, rep, stage="open", quantity=1)
    deal(crm, rep + 100, stage="open", quantity=50)

    totals = totals_by_group(
        crm,
        ENV,
        "deal",
        group_by="stage",
        sum_fields=["quantity"],
        principal=principal_of(crm, rep),
    )

    assert totals == {"open": GroupTotals(1, {"quantity": 1})}


def test_hidden_structured_and_non_number_fields_are_refused(crm: Workspace) -> None:
    rep = principal_of(crm, create_user(crm, "rep", roles={ENV: ["rep"]}))

    with pytest.raises(Invalid) as hidden:
        totals_by_group(crm, ENV, "deal", group_by="stage", sum_fields=["price"], principal=rep)
    with pytest.raises(Invalid) as shapes:
        totals_by_group(crm, ENV, "deal", group_by="tags", sum_fields=["title"], principal=SYSTEM)

    assert [issue.code for issue in hidden.value.issues] == ["unknown_field"]
    assert [issue.code for issue in shapes.value.issues] == ["not_groupable", "not_summable"]
