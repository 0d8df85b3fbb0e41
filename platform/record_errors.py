"""Errors of the records service; the records API renders them as problem+json.

Each is a :class:`PlatformError` (the HTTP layer knows nothing of records);
errors that carry more than a message (the current record of a stale update)
put it in ``details``, which the records API adds to the problem body.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from formloom.engine.errors import Issue
from formloom.platform.errors import Conflict, Invalid, NotFound, PlatformError


def say(lang: str, en: str, zh: str) -> str:
    """The message in the caller's language (``zh`` or anything else for English)."""
    return zh if lang == "zh" else en


class RecordNotFound(NotFound):
    """No record with that id exists (it may have been purged)."""

    code = "not_found"


class RecordInRecycleBin(NotFound):
    """The record is soft-deleted: reads and updates treat it as gone until restored."""

    code = "in_recycle_bin"


class NotInRecycleBin(Conflict):
    """Restore and purge work on deleted records only."""

    code = "not_deleted"


class VersionRequired(PlatformError):
    """An update did not say which version it was based on (HTTP 428 Precondition Required)."""

    status = 428
    code = "version_required"


class StaleVersion(Conflict):
    """The record changed since the client read it; ``details["current"]`` is the record now."""

    code = "stale_version"

    def __init__(self, message: str, *, current: dict[str, Any]) -> None:
        super().__init__(message)
        self.details: dict[str, Any] = {"current": current}


class DeleteRestricted(Conflict):
    """Records still look the record up through a lookup whose ``on_delete`` is ``restrict``."""

    code = "delete_restricted"


class RestoreBlocked(Conflict):
    """The record looks up records that are in the recycle bin (or gone)."""

    code = "restore_blocked"


class WriteConflict(Conflict):
    """The database refused a write twice (a constraint raced with another transaction)."""

    code = "write_conflict"


class BatchRejected(PlatformError):
    """Rows of a bulk request failed; nothing was written.

    The status is 409 when every failure is a conflict (stale version, blocked
    delete), else 422. ``details["current"]`` maps the path of each stale row to
    the record as it is now.
    """

    code = "batch_rejected"

    def __init__(
        self, issues: Iterable[Issue], *, conflict_only: bool, current: dict[str, Any]
    ) -> None:
        found = list(issues)
        rows = len({_row_of(i.path) for i in found})
        super().__init__(
            f"{rows} row(s) of the batch failed ({len(found)} problem(s)); nothing was written: "
            "fix them and send the whole batch again",
            issues=found,
        )
        self.status = 409 if conflict_only else 422
        self.details: dict[str, Any] = {"current": current} if current else {}


def invalid(issues: list[Issue]) -> Invalid:
    """One :class:`Invalid` naming the first problems and carrying all of them."""
    summary = "; ".join(f"{i.path or '/'}: {i.message}" for i in issues[:3])
    more = f" (and {len(issues) - 3} more)" if len(issues) > 3 else ""
    return Invalid(f"{len(issues)} problem(s): {summary}{more}", issues=issues)


def _row_of(path: str) -> str:
    return "/".join(path.split("/")[:3])
