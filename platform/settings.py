"""Where formloom keeps its data, read from the environment."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

NAMESPACE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


@dataclass(frozen=True)
class Settings:
    """Runtime settings.

    ``database_url`` is the platform database (SQLite file or PostgreSQL);
    ``namespace`` names the PostgreSQL schema of the platform tables and prefixes
    every environment schema (``<namespace>_<env>``), so that several workspaces
    (and test runs) can share one PostgreSQL database.
    """

    data_dir: Path
    database_url: str
    namespace: str = "formloom"

    @classmethod
    def from_environment(cls, *, data_dir: Path | None = None) -> Settings:
        folder = Path(data_dir or os.environ.get("FORMLOOM_DATA_DIR") or "var").resolve()
        url = os.environ.get("FORMLOOM_DATABASE_URL") or f"sqlite:///{folder / 'formloom.db'}"
        namespace = os.environ.get("FORMLOOM_NAMESPACE", "formloom")
        return cls(data_dir=folder, database_url=normalise_url(url), namespace=namespace)

    def __post_init__(self) -> None:
        if not NAMESPACE_PATTERN.match(self.namespace):
            raise ValueError(
                f"namespace `{self.namespace}` must be 1-31 lowercase letters, digits or "
                "underscores, starting with a letter"
            )


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given without a driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)
