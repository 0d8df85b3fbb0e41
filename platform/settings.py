"""Where formloom keeps its data, read from the environment."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

NAMESPACE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
#: ``standard``: argon2id with RFC 9106's low-memory parameters; ``fast``: cheap parameters
#: for test suites only (a stored hash is upgraded at the next login under ``standard``).
PASSWORD_HASHING = ("standard", "fast")


@dataclass(frozen=True)
class Settings:
    """Runtime settings.

    ``database_url`` is the platform database (SQLite file or PostgreSQL);
    ``namespace`` names the PostgreSQL schema of the platform tables and prefixes
    every environment schema (``<namespace>_<env>``), so that several workspaces
    (and test runs) can share one PostgreSQL database.

    ``secure_cookies`` marks the session cookie ``Secure`` even when the request
    reached formloom over plain HTTP (behind a proxy that terminates TLS);
    ``password_hashing`` picks the argon2 parameters (:data:`PASSWORD_HASHING`).
    """

    data_dir: Path
    database_url: str
    namespace: str = "formloom"
    secure_cookies: bool = False
    password_hashing: str = "standard"

    @classmethod
    def from_environment(cls, *, data_dir: Path | None = None) -> Settings:
        folder = Path(data_dir or os.environ.get("FORMLOOM_DATA_DIR") or "var").resolve()
        url = os.environ.get("FORMLOOM_DATABASE_URL") or f"sqlite:///{folder / 'formloom.db'}"
        namespace = os.environ.get("FORMLOOM_NAMESPACE", "formloom")
        return cls(
            data_dir=folder,
            database_url=normalise_url(url),
            namespace=namespace,
            secure_cookies=os.environ.get("FORMLOOM_SECURE_COOKIES", "") in ("1", "true"),
            password_hashing=os.environ.get("FORMLOOM_PASSWORD_HASHING") or "standard",
        )

    def __post_init__(self) -> None:
        if not NAMESPACE_PATTERN.match(self.namespace):
            raise ValueError(
                f"namespace `{self.namespace}` must be 1-31 lowercase letters, digits or "
                "underscores, starting with a letter"
            )
        if self.password_hashing not in PASSWORD_HASHING:
            raise ValueError(
                f"password hashing `{self.password_hashing}` is not one of {PASSWORD_HASHING}"
            )


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given without a driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)
