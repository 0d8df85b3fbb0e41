"""Flow validation benchmark: milliseconds to validate a generated 1,000-node approval flow.

``python -m bench.flow_validation [--nodes N] [--runs N]`` builds one flow of
about ``--nodes`` nodes on a contract entity, a realistic mix repeated from
start to end:

- approver steps (roles, managers, user fields; reminders, escalations, returns);
- condition nodes routing by amount and status to three approvers that meet again
  at a CC node, one branch sometimes ending the flow as rejected;
- parallel reviews (split → legal, finance and a handler → join), every third one
  with a nested split in its first branch;
- CC nodes and automatic actions (set fields, notify, webhook).

It then times the whole publish-time validation, as the metadata store runs it
(:meth:`DocumentKind.validate`: parse, graph and reference checks, conditions
against the entity), and the graph analysis alone (:func:`analyse`). It prints
the median, fastest and slowest of ``--runs`` runs in milliseconds. The issue's
target is "well under a second".
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from formloom.engine.flows import analyse, flow_kind
from formloom.engine.meta import CheckContext

LABEL = {"zh": "节点", "en": "Step"}
ROLES = ("sales_director", "ceo", "legal", "finance", "contract_admin", "vp_sales")
ENTITY = {
    "name": "contract",
    "label": {"zh": "合同", "en": "Contract"},
    "fields": [
        {"name": "title", "label": LABEL, "type": "text"},
        {"name": "amount", "label": LABEL, "type": "currency"},
        {"name": "discount", "label": LABEL, "type": "percent"},
        {"name": "account_manager", "label": LABEL, "type": "user"},
        {
            "name": "status",
            "label": LABEL,
            "type": "single_select",
            "options": {
                "choices": [
                    {"value": v, "label": {"en": v}} for v in ("draft", "approved", "rejected")
                ]
            },
        },
        {"name": "legal_notes", "label": LABEL, "type": "long_text"},
    ],
}


def context() -> CheckContext:
    """The environment of the generated flow: its entity, roles and 500 users."""
    roles = {name: {"name": name, "label": LABEL} for name in ROLES}
    return CheckContext(
        published={"entity": {"contract": ENTITY}, "role": roles},
        users=frozenset(range(1, 501)),
    )


class _FlowBuilder:
    """Appends segments to a chain of nodes; ``tail`` is the node whose `next` is open."""

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = [{"id": "start", "type": "start", "label": LABEL}]
        self.tail: dict[str, Any] = self.nodes[0]
        self.count = 0

    def new_id(self, kind: str) -> str:
        self.count += 1
        return f"{kind}_{self.count}"

    def link(self, node: dict[str, Any]) -> dict[str, Any]:
        self.tail["next"] = node["id"]
        self.nodes.append(node)
        self.tail = node
        return node

    def approver(self, source: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "id": self.new_id("approve"),
            "type": "approver",
            "label": LABEL,
            "assignees": [source],
            "mode": "or_sign",
            "timeouts": [
                {"after": "PT24H", "action": "remind", "repeat_every": "PT12H"},
                {"after": "P3D", "action": "escalate", "escalate_to": {"type": "manager"}},
            ],
            "returnable_to": ["start"],
            **extra,
        }

    def approver_step(self, i: int) -> None:
        sources: list[dict[str, Any]] = [
            {"type": "role", "role": ROLES[i % len(ROLES)]},
            {"type": "manager", "level": 1 + i % 3},
            {"type": "record_field", "field": "account_manager"},
            {"type": "manager_chain", "up_to_role": "vp_sales"},
        ]
        self.link(
            self.approver(
                sources[i % len(sources)],
                field_permissions={"legal_notes": "editable", "amount": "read_only"},
                comment_required_on_reject=True,
            )
        )

    def condition(self, i: int) -> None:
        merge = {
            "id": self.new_id("cc"),
            "type": "cc",
            "label": LABEL,
            "recipients": [{"type": "submitter"}],
        }
        branches_to = [self.approver({"type": "role", "role": r}) for r in ROLES[:3]]
        for step in branches_to:
            step["next"] = merge["id"]
        branches: list[dict[str, Any]] = [
            {
                "condition": {"field": "amount", "op": "lt", "value": 100000 * (1 + i % 5)},
                "to": branches_to[0]["id"],
            },
            {
                "condition": {
                    "and": [
                        {"field": "status", "op": "eq", "value": "draft"},
                        {"field": "discount", "op": "gt", "value": 20},
                    ]
                },
                "to": branches_to[1]["id"],
            },
            {"default": True, "to": branches_to[2]["id"]},
        ]
        extra: list[dict[str, Any]] = []
        if i % 4 == 0:
            rejected = {
                "id": self.new_id("end"),
                "type": "end",
                "label": LABEL,
                "outcome": "rejected",
            }
            branches.insert(
                0,
                {
                    "condition": {"field": "amount", "op": "gt", "value": 100_000_000},
                    "to": rejected["id"],
                },
            )
            extra.append(rejected)
        self.link(
            {"id": self.new_id("route"), "type": "condition", "label": LABEL, "branches": branches}
        )
        self.nodes.extend([*branches_to, *extra])
        self.nodes.append(merge)
        self.tail = merge

    def parallel(self, i: int, *, nested: bool) -> None:
        split: dict[str, Any] = {
            "id": self.new_id("split"),
            "type": "parallel_split",
            "label": LABEL,
        }
        join = {"id": self.new_id("join"), "type": "parallel_join", "label": LABEL}
        legal = self.approver({"type": "role", "role": "legal"}, next=join["id"])
        finance = self.approver(
            {"type": "role", "role": "finance"}, mode="countersign", percentage=60, next=join["id"]
        )
        handler = {
            "id": self.new_id("handle"),
            "type": "handler",
            "label": LABEL,
            "assignees": [{"type": "role", "role": "contract_admin"}],
            "next": join["id"],
        }
        split["branches"] = [legal["id"], finance["id"], handler["id"]]
        self.link(split)
        self.nodes.extend([legal, finance, handler])
        if nested:
            inner_split: dict[str, Any] = {
                "id": self.new_id("split"),
                "type": "parallel_split",
                "label": LABEL,
            }
            inner_join = {
                "id": self.new_id("join"),
                "type": "parallel_join",
                "label": LABEL,
                "next": join["id"],
            }
            first = self.approver({"type": "users", "users": [1 + i % 500]}, next=inner_join["id"])
            second = self.approver({"type": "team_head"}, next=inner_join["id"])
            inner_split["branches"] = [first["id"], second["id"]]
            legal["next"] = inner_split["id"]
            self.nodes.extend([inner_split, first, second, inner_join])
        self.nodes.append(join)
        self.tail = join

    def cc(self) -> None:
        self.link(
            {
                "id": self.new_id("cc"),
                "type": "cc",
                "label": LABEL,
                "recipients": [
                    {"type": "role", "role": "finance"},
                    {"type": "record_field", "field": "account_manager"},
                ],
            }
        )

    def action(self) -> None:
        self.link(
            {
                "id": self.new_id("act"),
                "type": "action",
                "label": LABEL,
                "actions": [
                    {"type": "set_fields", "values": {"status": "approved"}},
                    {
                        "type": "notify",
                        "to": [{"type": "submitter"}],
                        "message": {"zh": "合同已通过", "en": "Contract approved"},
                    },
                    {"type": "webhook", "url": "https://erp.example.com/hooks/contract"},
                ],
            }
        )


def generate_flow(nodes: int = 1000) -> dict[str, Any]:
    """A valid contract-approval flow of about ``nodes`` nodes (never fewer)."""
    builder = _FlowBuilder()
    i = 0
    while len(builder.nodes) < nodes - 1:
        segment = i % 5
        if segment == 0:
            builder.approver_step(i)
        elif segment == 1:
            builder.condition(i)
        elif segment == 2:
            builder.parallel(i, nested=i % 3 == 0)
        elif segment == 3:
            builder.cc()
        else:
            builder.action()
        i += 1
    builder.link({"id": "approved", "type": "end", "label": LABEL, "outcome": "approved"})
    return {
        "name": "generated_contract_approval",
        "label": {"zh": "合同审批", "en": "Contract approval"},
        "entity": "contract",
        "entry_condition": {"field": "amount", "op": "gt", "value": 0},
        "admin": 1,
        "nodes": builder.nodes,
    }


def time_runs(action: Callable[[], object], runs: int) -> list[float]:
    """Milliseconds of each of ``runs`` calls (after one warm-up call)."""
    action()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.flow_validation", description=__doc__)
    parser.add_argument("--nodes", type=int, default=1000, help="nodes in the generated flow")
    parser.add_argument("--runs", type=int, default=20, help="timed runs (the median is reported)")
    args = parser.parse_args(argv)
    raw = generate_flow(args.nodes)
    check_context = context()
    document = flow_kind.validate(raw, check_context)
    types: dict[str, int] = {}
    for node in raw["nodes"]:
        types[node["type"]] = types.get(node["type"], 0) + 1
    mix = ", ".join(f"{count} {kind}" for kind, count in sorted(types.items()))
    print(f"flow of {len(raw['nodes'])} nodes: {mix}")
    cases: dict[str, Callable[[], object]] = {
        "validate (publish-time checks)": lambda: flow_kind.validate(raw, check_context),
        "graph analysis alone": lambda: analyse(document.nodes),
    }
    for label, action in cases.items():
        timings = time_runs(action, args.runs)
        print(
            f"{label:<32} median {statistics.median(timings):8.1f} ms   "
            f"min {min(timings):8.1f} ms   max {max(timings):8.1f} ms   ({args.runs} runs)"
        )


if __name__ == "__main__":
    main()
