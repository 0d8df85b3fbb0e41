"""HTTP routes for the shipped dataset of Chinese administrative divisions: ``/api/regions``.

- ``GET /api/regions/{code}/children``: the divisions directly under ``code``
  (``0``: the provinces), as ``[{code, name, level}]`` in code order. Forms load the
  next level of a cascading region select from it. An unknown code is a 404 that
  names it.
- ``GET /api/regions/{code}``: one division with its path (province first).

The dataset is public reference data (the same for every workspace), so the
routes need no credential; they read no database.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from formloom.engine.fields.regions import Division, divisions
from formloom.platform.auth_deps import LangDep
from formloom.platform.errors import NotFound
from formloom.platform.record_errors import say

#: The code that stands for "above the provinces" in ``children``.
TOP = "0"

router = APIRouter(prefix="/api/regions", tags=["regions"])


@router.get("/{code}/children")
def region_children(code: str, lang: LangDep) -> list[dict[str, Any]]:
    """The divisions under ``code`` (``0`` for the provinces)."""
    dataset = divisions()
    if code != TOP and dataset.get(code) is None:
        raise _unknown(code, lang)
    return [_json(d) for d in dataset.children(None if code == TOP else code)]


@router.get("/{code}")
def region(code: str, lang: LangDep) -> dict[str, Any]:
    """One division and its path, province first."""
    path = divisions().path(code)
    if not path:
        raise _unknown(code, lang)
    return {**_json(path[-1]), "path": [_json(d) for d in path]}


def _json(division: Division) -> dict[str, Any]:
    return {"code": division.code, "name": division.name, "level": division.level}


def _unknown(code: str, lang: str) -> NotFound:
    return NotFound(
        say(
            lang,
            f"no administrative division has the code `{code}`: use a 6-digit code from "
            "GET /api/regions/0/children (the provinces) and the levels below",
            f"没有代码为 `{code}` 的行政区划：请使用 GET /api/regions/0/children（省级）"
            "及其下级返回的 6 位代码",
        )
    )
