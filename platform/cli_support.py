"""What every ``formloom`` command shares: opening the workspace, errors as exit codes.

Exit codes: 0 success, 1 invalid input (every problem printed as
``file: JSON pointer: message``), 2 usage errors (bad options, unknown names).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from formloom.engine.errors import Issue
from formloom.platform import environments
from formloom.platform.database import Workspace
from formloom.platform.errors import Invalid, PlatformError
from formloom.platform.metastore import BatchInvalid
from formloom.platform.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def open_workspace(ctx: click.Context) -> Workspace:
    """The workspace of the command's settings, migrated, closed with the command."""
    settings: Settings = ctx.obj["settings"]
    workspace = Workspace(settings)
    environments.initialise_workspace(workspace)
    ctx.call_on_close(workspace.dispose)
    return workspace


def handles_errors(func: F) -> F:
    """Turn platform errors into messages and exit codes instead of tracebacks."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BatchInvalid as exc:
            for source, issues in exc.failures.items():
                print_issues(source, issues)
            sys.exit(1)
        except Invalid as exc:
            print_issues("", exc.issues or [Issue("", exc.code, exc.message)])
            sys.exit(1)
        except PlatformError as exc:
            fail(exc.message, 2)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper  # type: ignore[return-value]


def print_issues(source: str, issues: list[Issue]) -> None:
    for issue in issues:
        prefix = f"{source}: " if source else ""
        click.echo(f"{prefix}{issue.path or '/'}: {issue.message}", err=True)
