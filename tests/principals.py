"""Principals for tests that call the services directly (not through HTTP).

``SYSTEM`` is the platform acting on its own behalf (no checks);
``acting_as(n)`` is an admin user with id ``n`` (no checks, but the id fills
``created_by``, ``owner_id`` and the audit actor). Permission tests use real
users and roles instead (:mod:`tests.identity`).
"""

from __future__ import annotations

from formloom.platform.principal import SYSTEM, Principal

__all__ = ["SYSTEM", "acting_as"]


def acting_as(user_id: int | None) -> Principal:
    return Principal(user_id=user_id, login=f"user{user_id}", admin=True)
