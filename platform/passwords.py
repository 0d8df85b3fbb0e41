"""Passwords: the policy a new password must meet, and argon2id hashing.

Only argon2id hashes are stored (``argon2-cffi``). :func:`verify` reports
whether a stored hash was made with other parameters than the current ones, so
the login that proves the password can store a fresh hash (``check_needs_rehash``).
A verify runs even for an unknown login (against a fixed dummy hash), so the
time a failed login takes does not tell whether the login exists.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.profiles import RFC_9106_LOW_MEMORY

from formloom.engine.errors import Issue
from formloom.platform.record_errors import say

MIN_LENGTH = 10
MAX_LENGTH = 1024


@dataclass(frozen=True)
class Verified:
    """The outcome of checking a password against a stored hash."""

    ok: bool
    needs_rehash: bool = False


@functools.cache
def hasher(profile: str) -> PasswordHasher:
    """The argon2 hasher of a ``Settings.password_hashing`` profile."""
    if profile == "fast":
        return PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    return PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)


@functools.cache
def _dummy_hash(profile: str) -> str:
    return hasher(profile).hash("formloom dummy password 0")


def hash_password(password: str, *, profile: str) -> str:
    """An argon2id hash of ``password`` (salted; the password cannot be read back)."""
    return hasher(profile).hash(password)


def verify(stored_hash: str | None, password: str, *, profile: str) -> Verified:
    """Check ``password`` against ``stored_hash`` (None: no password set, always fails)."""
    chosen = hasher(profile)
    try:
        chosen.verify(stored_hash or _dummy_hash(profile), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return Verified(ok=False)
    if stored_hash is None:
        return Verified(ok=False)
    return Verified(ok=True, needs_rehash=chosen.check_needs_rehash(stored_hash))


def password_issues(
    password: str, *, login: str, lang: str, path: str = "/password"
) -> list[Issue]:
    """Every rule ``password`` breaks (empty when it is acceptable). Never quotes the password."""
    issues = []
    if len(password) < MIN_LENGTH:
        issues.append(
            Issue(
                path,
                "password_too_short",
                say(
                    lang,
                    f"the password has {len(password)} characters; use at least {MIN_LENGTH}",
                    f"密码只有 {len(password)} 个字符；至少需要 {MIN_LENGTH} 个",
                ),
            )
        )
    if len(password) > MAX_LENGTH:
        issues.append(
            Issue(
                path,
                "password_too_long",
                say(
                    lang,
                    f"the password is longer than {MAX_LENGTH} characters",
                    f"密码超过 {MAX_LENGTH} 个字符",
                ),
            )
        )
    if password.casefold() == login.casefold():
        issues.append(
            Issue(
                path,
                "password_is_login",
                say(lang, "the password must not be the login", "密码不能与登录名相同"),
            )
        )
    if _character_classes(password) < 2:
        issues.append(
            Issue(
                path,
                "password_too_simple",
                say(
                    lang,
                    "the password uses one kind of character only; mix at least two of "
                    "letters, digits and other characters",
                    "密码只包含一类字符；请至少混合字母、数字和其他字符中的两类",
                ),
            )
        )
    return issues


def _character_classes(password: str) -> int:
    letters = any(c.isalpha() for c in password)
    digits = any(c.isdigit() for c in password)
    other = any(not c.isalnum() for c in password)
    return letters + digits + other


def generate_password() -> str:
    """A random password that meets the policy (20 characters, about 120 bits)."""
    while True:
        candidate = secrets.token_urlsafe(15)
        if _character_classes(candidate) >= 2 and candidate[0].isalnum():
            return candidate
