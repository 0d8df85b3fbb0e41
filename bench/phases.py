"""Time the parts of a publish without a profiler, by wrapping a few formloom functions.

cProfile slows pure-Python code far more than code that waits on the database, so
its shares overstate Python. These wrappers cost a microsecond or two each and
give undistorted wall times. Only used by ``--profile``; everything is restored
afterwards. A function that no longer exists is skipped (the code moves on).
"""

from __future__ import annotations

import functools
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any

from formloom.platform import database, metastore, publishers, schema_sync
from formloom.platform.database import Workspace

#: (label, object, attribute): each wrapped call adds its wall time to its label.
#: Nesting: "publisher" contains "plan + DDL"; "commit" is the end of the main transaction.
_TARGETS: tuple[tuple[str, Any, str], ...] = (
    ("require_environment (own transaction)", metastore, "require_environment"),
    ("load every published body", metastore, "_published_bodies"),
    ("read document row", metastore, "_document_row"),
    ("read previous version body", metastore, "_version_body"),
    ("next version number", metastore, "_next_version"),
    ("insert version row", metastore, "_insert_version"),
    ("SchemaSync() incl. Alembic MigrationContext", schema_sync.SchemaSync, "__post_init__"),
    ("DDL: SchemaSync.apply (Alembic)", schema_sync.SchemaSync, "apply"),
    ("SQLite ATTACH/DETACH (_attach)", database.Workspace, "_attach"),
)


def _wrap(totals: dict[str, float], label: str, function: Callable[..., Any]) -> Any:
    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            totals[label] += (time.perf_counter() - started) * 1000

    return timed


@contextmanager
def _patched(target: Any, attribute: str, replacement: Any) -> Iterator[None]:
    """Replace a module or class attribute for the duration of the block."""
    saved = vars(target)[attribute]
    setattr(target, attribute, replacement)
    try:
        yield
    finally:
        setattr(target, attribute, saved)


@contextmanager
def phase_timers() -> Iterator[dict[str, float]]:
    """Accumulated ms per phase while the block runs (validation, publisher, transaction)."""
    totals: dict[str, float] = defaultdict(float)
    with ExitStack() as stack:
        for label, target, attribute in _TARGETS:
            if attribute in vars(target):
                wrapped = _wrap(totals, label, getattr(target, attribute))
                stack.enter_context(_patched(target, attribute, wrapped))
        entity_kind = metastore.kind_of("entity")
        stack.enter_context(
            _instance_patch(entity_kind, "validate", "validate the document (engine)", totals)
        )
        publisher = publishers.publisher_for("entity")
        stack.enter_context(
            _instance_patch(publisher, "publish", "EntityPublisher.publish (plan + DDL)", totals)
        )
        timed_begin = _timed_begin(Workspace.begin, totals)
        stack.enter_context(_patched(Workspace, "begin", timed_begin))
        yield totals


@contextmanager
def _instance_patch(
    instance: object, attribute: str, label: str, totals: dict[str, float]
) -> Iterator[None]:
    bound = getattr(instance, attribute)
    instance.__dict__[attribute] = _wrap(totals, label, bound)
    try:
        yield
    finally:
        del instance.__dict__[attribute]


def _timed_begin(
    original: Callable[..., AbstractContextManager[Any]], totals: dict[str, float]
) -> Callable[..., AbstractContextManager[Any]]:
    @contextmanager
    def begin(self: Workspace, env: str | None = None, *, readonly: bool = False) -> Iterator[Any]:
        manager = original(self, env, readonly=readonly)
        started = time.perf_counter()
        conn = manager.__enter__()
        totals["Workspace.begin: connect, ATTACH, BEGIN"] += (time.perf_counter() - started) * 1000
        try:
            yield conn
        except BaseException:
            if not manager.__exit__(*sys.exc_info()):
                raise
        else:
            started = time.perf_counter()
            manager.__exit__(None, None, None)
            totals["Workspace.begin: COMMIT, release"] += (time.perf_counter() - started) * 1000

    return begin
