"""Relative dates such as `this_month` or `last_n_days`, resolved to periods.

A relative date names a run of whole days in a timezone (Asia/Shanghai unless
told otherwise): ``today``, ``this_week`` (Monday to Sunday), ``last_month``…
:func:`resolve_period` turns one into a half-open :class:`Period`
``[start, stop)``: dates for date fields, UTC instants for date-time fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Asia/Shanghai"
#: Relative dates that take a day count ``n``.
COUNTED = ("last_n_days", "next_n_days")
#: Relative dates without a count.
NAMED = (
    "today",
    "yesterday",
    "tomorrow",
    "this_week",
    "last_week",
    "next_week",
    "this_month",
    "last_month",
    "next_month",
    "this_quarter",
    "last_quarter",
    "next_quarter",
    "this_year",
    "last_year",
    "next_year",
)
RELATIVE_NAMES = (*NAMED, *COUNTED)
MAX_DAYS = 3660


@dataclass(frozen=True)
class Period:
    """A half-open run of time ``[start, stop)``: dates, or timezone-aware UTC instants."""

    start: date
    stop: date


def timezone_named(name: str) -> tzinfo | None:
    """The IANA timezone ``name`` (e.g. ``Asia/Shanghai``), or None when there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def days_of(name: str, n: int | None, today: date) -> tuple[date, date]:
    """First and last day (both included) of the relative date ``name`` seen from ``today``.

    Weeks run Monday to Sunday; quarters are calendar quarters. ``last_n_days``
    is the ``n`` days ending today and ``next_n_days`` the ``n`` days starting
    today (today is included in both).
    """
    if name in COUNTED:
        if n is None or not 1 <= n <= MAX_DAYS:
            raise ValueError(f"`{name}` needs a day count n between 1 and {MAX_DAYS}")
        if name == "last_n_days":
            return today - timedelta(days=n - 1), today
        return today, today + timedelta(days=n - 1)
    step = {"last": -1, "this": 0, "next": 1}
    if name in ("today", "yesterday", "tomorrow"):
        day = today + timedelta(days={"yesterday": -1, "today": 0, "tomorrow": 1}[name])
        return day, day
    which, _, unit = name.partition("_")
    if which not in step:
        raise ValueError(f"unknown relative date `{name}`")
    shift = step[which]
    if unit == "week":
        monday = today - timedelta(days=today.weekday()) + timedelta(weeks=shift)
        return monday, monday + timedelta(days=6)
    if unit == "month":
        first = _add_months(today.replace(day=1), shift)
        return first, _add_months(first, 1) - timedelta(days=1)
    if unit == "quarter":
        first = _add_months(today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1), 3 * shift)
        return first, _add_months(first, 3) - timedelta(days=1)
    if unit == "year":
        first = date(today.year + shift, 1, 1)
        return first, date(today.year + shift, 12, 31)
    raise ValueError(f"unknown relative date `{name}`")


def resolve_period(
    name: str, n: int | None, *, now: datetime, tz: tzinfo, instants: bool
) -> Period:
    """The period ``name`` covers at ``now`` in ``tz``; ``instants`` gives UTC datetimes.

    ``now`` must be timezone-aware. Raises ValueError for unknown names or a bad ``n``.
    """
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    first, last = days_of(name, n, now.astimezone(tz).date())
    stop = last + timedelta(days=1)
    if not instants:
        return Period(first, stop)
    return Period(_midnight(first, tz), _midnight(stop, tz))


def _midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _add_months(first_of_month: date, months: int) -> date:
    index = first_of_month.year * 12 + first_of_month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
