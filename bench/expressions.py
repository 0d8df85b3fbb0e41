"""Expression micro-benchmark: microseconds per evaluation of a compiled CEL expression.

``python -m bench.expressions`` prints, for a typical formula and a typical
validation rule, the time of one :meth:`CompiledExpression.evaluate` (value
conversion, the CEL runtime, the result) next to the bare runtime
(``cel.Program.execute`` on values already converted), and the time to compile.
Each figure is the best of ``--repeat`` rounds of ``--number`` calls, which is
the usual way to read a micro-benchmark (the least disturbed round).
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import cel

from formloom.engine.expressions import compile_expression
from formloom.engine.expressions.checker import alias

NOW = datetime(2024, 6, 15, 10, 30, tzinfo=UTC)
FIELDS = {
    "amount": "double",
    "discount": "double",
    "close_date": "timestamp",
    "created_at": "timestamp",
}
RECORD: dict[str, Any] = {
    "amount": Decimal("125000.00"),
    "discount": Decimal("12.5"),
    "close_date": date(2024, 7, 31),
    "created_at": datetime(2024, 6, 1, 9, 15, tzinfo=UTC),
}
CASES = {
    "formula": ("amount * (1 - discount / 100.0)", "double"),
    "validation rule": ("close_date < created_at", "bool"),
}


def best_microseconds(action: Callable[[], object], *, number: int, repeat: int) -> float:
    """The fastest of ``repeat`` rounds, per call, in microseconds."""
    rounds = timeit.repeat(action, number=number, repeat=repeat)
    return min(rounds) / number * 1_000_000


def measure(source: str, result: str, *, number: int, repeat: int) -> dict[str, float]:
    expression = compile_expression(source, FIELDS, result=result)
    program = cel.compile(expression.cel_source)
    converted = {
        "amount": float(RECORD["amount"]),
        "discount": float(RECORD["discount"]),
        "close_date": datetime(2024, 7, 31, tzinfo=UTC),
        "created_at": RECORD["created_at"],
    }
    bare = {alias(name): converted[name] for name in expression.referenced_fields}
    return {
        "evaluate": best_microseconds(
            lambda: expression.evaluate(RECORD, now=NOW), number=number, repeat=repeat
        ),
        "runtime": best_microseconds(lambda: program.execute(bare), number=number, repeat=repeat),
        "compile": best_microseconds(
            lambda: compile_expression(source, FIELDS, result=result),
            number=max(1, number // 100),
            repeat=repeat,
        ),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.expressions", description=__doc__)
    parser.add_argument("--number", type=int, default=100_000, help="calls per round")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (the best is reported)")
    args = parser.parse_args(argv)
    print(f"{'expression':<45} {'evaluate':>10} {'CEL runtime':>12} {'compile':>10}")
    for label, (source, result) in CASES.items():
        figures = measure(source, result, number=args.number, repeat=args.repeat)
        print(
            f"{label + ': ' + source:<45} {figures['evaluate']:>8.2f}µs "
            f"{figures['runtime']:>10.2f}µs {figures['compile']:>8.1f}µs"
        )


if __name__ == "__main__":
    main()
