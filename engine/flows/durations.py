"""Durations of flow timeouts, written as ISO-8601 durations (``PT48H``, ``P2D``, ``P1W``).

Only exact units are accepted: weeks, days, hours, minutes and seconds. Months
and years have no fixed length, so ``P1M`` is refused (write ``P30D``). Days
are calendar days of 24 hours.
"""

from __future__ import annotations

import re
from datetime import timedelta

#: The JSON Schema pattern of a duration (the published meta-schema uses it).
DURATION_PATTERN = r"^P(?!$)(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$"
_DURATION = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)
MIN_DURATION = timedelta(minutes=1)
MAX_DURATION = timedelta(days=365)
_EXAMPLES = "e.g. `PT30M` (30 minutes), `PT48H` (48 hours), `P2D` (2 days), `P1W` (1 week)"


class DurationInvalid(ValueError):
    """A duration that is not ISO-8601, or out of range; the message says how to fix it."""


def parse_duration(text: str) -> timedelta:
    """The length of an ISO-8601 duration such as ``PT48H``.

    Raises :class:`DurationInvalid` for other text, for months and years, and for
    lengths outside one minute to 365 days.
    """
    match = _DURATION.match(text)
    if match is None:
        hint = " (months and years vary in length: count days)" if _has_month(text) else ""
        raise DurationInvalid(
            f"`{_shown(text)}` is not an ISO-8601 duration{hint}; write {_EXAMPLES}"
        )
    parts = {unit: int(value) for unit, value in match.groupdict(default="0").items()}
    length = timedelta(**parts)
    if not MIN_DURATION <= length <= MAX_DURATION:
        raise DurationInvalid(
            f"`{text}` is {_spelled(length)}; timeouts last from 1 minute to 365 days"
        )
    return length


def _has_month(text: str) -> bool:
    date_part = text.upper().partition("T")[0]
    return date_part.startswith("P") and ("M" in date_part or "Y" in date_part)


def _spelled(length: timedelta) -> str:
    if length < MIN_DURATION:
        return "shorter than a minute"
    return f"{length.days} days long"


def _shown(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."
