"""The repository layout keeps the standard library's `platform` module reachable."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_platform_folder_is_a_namespace_not_a_package():
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_stdlib_platform_and_formloom_platform_both_import_from_repo_root():
    code = (
        "import platform, sys; platform.system(); "
        "assert hasattr(platform, 'python_version'), platform; "
        "import formloom.platform.database as d; print(platform.__file__, d.__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    stdlib_file, module = result.stdout.split()
    assert not stdlib_file.startswith(str(ROOT))
    assert module == "formloom.platform.database"


def test_every_python_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    mapping = config["tool"]["setuptools"]["package-dir"]
    found = set()
    for package, folder in mapping.items():
        base = ROOT / folder
        found.add(package)
        for init in base.rglob("__init__.py"):
            relative = init.parent.relative_to(base)
            if relative.parts:
                found.add(".".join([package, *relative.parts]))
    assert found == listed


def test_engine_imports_no_io_library():
    forbidden = ("sqlalchemy", "alembic", "fastapi", "starlette", "httpx", "psycopg", "uvicorn")
    offenders = []
    for file in (ROOT / "engine").rglob("*.py"):
        for line in file.read_text().splitlines():
            words = line.strip().split()
            imports = len(words) >= 2 and words[0] in ("import", "from")
            if imports and words[1].split(".")[0] in forbidden:
                offenders.append(f"{file.relative_to(ROOT)}: {line.strip()}")
    assert offenders == []
