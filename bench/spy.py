"""Where a running server spends its CPU: py-spy samples, summarised by code location.

``py-spy record --format raw`` writes one line per distinct stack
(``frame;frame;… count``, each frame ``function (file:line)``), sampling only the
thread that holds the GIL (``--gil``): the Python code that is running, not the
threads waiting on the database or the network, so the shares are shares of
the server's Python CPU time. :func:`summarise` turns it into:

- **app lines**: the innermost frame in the application's own code (formloom's
  ``platform/``, ``engine/``, ``designer_api/``; ``bench/`` for the baseline) of
  every sample, so the cost of a library call is charged to the app line that
  made it;
- **app functions**: inclusive share per application function;
- **libraries**: self time by the package of the innermost frame (sqlalchemy,
  pydantic, psycopg, the standard library…);
- **leaf frames**: the hottest innermost frames anywhere.

py-spy is not a project dependency: ``.venv/bin/pip install py-spy``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: Application code: formloom's packages, and bench/ for the baseline app.
OWN_FOLDERS = ("platform", "engine", "designer_api", "apps", "bench")
#: Samples per second.
RATE = 200
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*):(?P<line>\d+)\)$")


def py_spy() -> str | None:
    """The py-spy executable (next to this Python first), or None."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start_recording(
    pid: int, seconds: float, output: Path, *, rate: int = RATE
) -> subprocess.Popen[bytes]:
    """Sample process ``pid`` for ``seconds`` in the background (raw collapsed stacks)."""
    executable = py_spy()
    if executable is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
    return subprocess.Popen(
        [
            executable,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--nonblocking",
            "--gil",
            "--full-filenames",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _frame(text: str) -> tuple[str, str, int]:
    found = _FRAME.match(text)
    if found is None:
        return text, "", 0
    return found["function"], found["file"], int(found["line"])


def _own(path: str) -> str | None:
    """The repository-relative path of an application source file, else None."""
    try:
        relative = Path(path).resolve().relative_to(ROOT)
    except ValueError:
        return None
    return str(relative) if relative.parts and relative.parts[0] in OWN_FOLDERS else None


def package(path: str) -> str:
    """What a file belongs to: a site-packages package, the app, or the standard library."""
    own = _own(path)
    if own is not None:
        return "app: " + own.split("/", 1)[0] + "/"
    parts = Path(path).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    if not path:
        return "(native)"
    return "stdlib/" + Path(path).stem


def summarise(raw: Path, *, top: int = 15) -> dict[str, Any]:
    """Shares of the samples in ``raw`` by app line, app function, package and leaf."""
    lines: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for entry in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = entry.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame(f) for f in stack.split(";")]
        leaf_function, leaf_file, leaf_line = frames[-1]
        leaves[f"{leaf_function} ({_short(leaf_file)}:{leaf_line})"] += count
        packages[package(leaf_file)] += count
        innermost = None
        seen: set[str] = set()
        for function, file, line in frames:
            own = _own(file)
            if own is None:
                continue
            innermost = f"{own}:{line} {function}"
            name = f"{own} {function}"
            if name not in seen:
                seen.add(name)
                functions[name] += count
        lines[innermost or "(no app frame: uvicorn, asyncio, anyio threads)"] += count

    def shares(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"where": where, "samples": n, "share": round(n / total, 4)}
            for where, n in counter.most_common(top)
        ]

    return {
        "samples": total,
        "app_lines": shares(lines),
        "app_functions": shares(functions),
        "packages": shares(packages),
        "leaves": shares(leaves),
    }


def _short(path: str) -> str:
    own = _own(path)
    if own is not None:
        return own
    parts = Path(path).parts
    if "site-packages" in parts:
        return "/".join(parts[parts.index("site-packages") + 1 :])
    return Path(path).name
