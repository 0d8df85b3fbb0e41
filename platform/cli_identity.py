"""``formloom users``, ``formloom roles`` and ``formloom teams``, and the first administrator.

The commands act as the platform itself (no login needed: whoever runs them
can read the database anyway), and every change lands in the security audit
log like a change made through the API. Passwords are never echoed; prefer
``--prompt`` to ``--password`` (which shows in the shell history).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import click

from formloom.platform import role_assignments, teams, user_passwords, users
from formloom.platform.caller import PLATFORM_CALLER
from formloom.platform.cli_support import handles_errors, open_workspace
from formloom.platform.database import Workspace
from formloom.platform.passwords import generate_password
from formloom.platform.settings import Settings

FIRST_ADMIN = "admin"
ADMIN_PASSWORD_VARIABLE = "FORMLOOM_ADMIN_PASSWORD"
CREDENTIALS_FILE = "admin-credentials.txt"


def create_first_admin(workspace: Workspace, settings: Settings) -> None:
    """Create user ``admin`` when the workspace has no user yet, and say how to log in.

    The password comes from ``$FORMLOOM_ADMIN_PASSWORD``, else it is generated and
    written to ``<data dir>/admin-credentials.txt`` (mode 0600) for ``make run`` to show.
    """
    if users.count_users(workspace) > 0:
        return
    given = os.environ.get(ADMIN_PASSWORD_VARIABLE)
    password = given or generate_password()
    new = users.NewUser(
        login=FIRST_ADMIN,
        password=password,
        admin=True,
        display_name_en="Administrator",
        display_name_zh="管理员",
    )
    users.create_user(workspace, new, caller=PLATFORM_CALLER)
    if given:
        click.echo(
            f"created the first administrator: login `{FIRST_ADMIN}`, password from "
            f"${ADMIN_PASSWORD_VARIABLE}"
        )
        return
    target = settings.data_dir / CREDENTIALS_FILE
    _write_private(target, _credentials_text(password))
    click.echo(
        f"created the first administrator: login `{FIRST_ADMIN}`, password {password}\n"
        f"(also in {target}); log in with POST /api/auth/login, then change the password "
        "with POST /api/auth/password and delete that file"
    )


@click.group("users")
def users_group() -> None:
    """Create, list, deactivate and activate users; set passwords; grant admin."""


@users_group.command("create")
@click.argument("login")
@click.option("--password", default=None, help="The password (shows in shell history).")
@click.option("--prompt", is_flag=True, help="Ask for the password.")
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
@click.option("--display-name", default="", help="Name shown in English.")
@click.option("--display-name-zh", default="", help="Name shown in Chinese.")
@click.option("--email", default=None)
@click.option("--mobile", default=None, help="e.g. 13800138000 or +14155550100")
@click.option("--language", type=click.Choice(users.LANGUAGES), default="en", show_default=True)
@click.option("--manager", default=None, help="Login of the user's manager.")
@click.option("--team", "team_names", multiple=True, help="Team name (repeatable).")
@click.pass_context
@handles_errors
def users_create(
    ctx: click.Context,
    login: str,
    password: str | None,
    prompt: bool,
    admin: bool,
    display_name: str,
    display_name_zh: str,
    email: str | None,
    mobile: str | None,
    language: str,
    manager: str | None,
    team_names: tuple[str, ...],
) -> None:
    """Create user LOGIN (without --password or --prompt a password is generated and shown)."""
    workspace = open_workspace(ctx)
    generated = password is None and not prompt
    if prompt:
        password = _ask_password()
    elif generated:
        password = generate_password()
    new = users.NewUser(
        login=login,
        password=password,
        admin=admin,
        display_name_en=display_name,
        display_name_zh=display_name_zh,
        email=email,
        mobile=mobile,
        language=language,
        manager_id=_user_id(workspace, manager) if manager else None,
        team_ids=[_team_id(workspace, name) for name in team_names],
    )
    created = users.create_user(workspace, new, caller=PLATFORM_CALLER)
    click.echo(f"created user {created['login']} (id {created['id']})")
    if generated:
        click.echo(f"password: {password}")


@users_group.command("list")
@click.pass_context
@handles_errors
def users_list(ctx: click.Context) -> None:
    """List users: id, login, status, admin, name, email."""
    workspace = open_workspace(ctx)
    after: int | None = None
    while True:
        query = users.UserQuery(limit=users.MAX_LIMIT, after=after)
        page = users.list_users(workspace, query, caller=PLATFORM_CALLER)
        for u in page["items"]:
            status = "active" if u["active"] else "deactivated"
            name = u["display_name"]["en"] or u["display_name"]["zh"]
            flag = "admin" if u["admin"] else "-"
            click.echo(f"{u['id']}\t{u['login']}\t{status}\t{flag}\t{name}\t{u['email'] or ''}")
        if page["next"] is None:
            return
        after = int(page["next"])


@users_group.command("deactivate")
@click.argument("login")
@click.pass_context
@handles_errors
def users_deactivate(ctx: click.Context, login: str) -> None:
    """Deactivate LOGIN: their sessions, tokens and API keys stop working at once."""
    workspace = open_workspace(ctx)
    users.set_active(workspace, _user_id(workspace, login), False, caller=PLATFORM_CALLER)
    click.echo(f"deactivated {login}")


@users_group.command("activate")
@click.argument("login")
@click.pass_context
@handles_errors
def users_activate(ctx: click.Context, login: str) -> None:
    """Activate LOGIN again."""
    workspace = open_workspace(ctx)
    users.set_active(workspace, _user_id(workspace, login), True, caller=PLATFORM_CALLER)
    click.echo(f"activated {login}")


@users_group.command("set-password")
@click.argument("login")
@click.option("--password", default=None, help="The password (default: ask for it).")
@click.pass_context
@handles_errors
def users_set_password(ctx: click.Context, login: str, password: str | None) -> None:
    """Set LOGIN's password (ends their sessions and login tokens, lifts a login lock)."""
    workspace = open_workspace(ctx)
    user_id = _user_id(workspace, login)
    chosen = password if password is not None else _ask_password()
    user_passwords.set_password(workspace, user_id, chosen, caller=PLATFORM_CALLER)
    click.echo(f"password of {login} set")


@users_group.command("grant-admin")
@click.argument("login")
@click.pass_context
@handles_errors
def users_grant_admin(ctx: click.Context, login: str) -> None:
    """Make LOGIN an administrator."""
    workspace = open_workspace(ctx)
    users.set_admin(workspace, _user_id(workspace, login), True, caller=PLATFORM_CALLER)
    click.echo(f"{login} is an administrator")


@users_group.command("revoke-admin")
@click.argument("login")
@click.pass_context
@handles_errors
def users_revoke_admin(ctx: click.Context, login: str) -> None:
    """Take administrator rights from LOGIN (not from the last active administrator)."""
    workspace = open_workspace(ctx)
    users.set_admin(workspace, _user_id(workspace, login), False, caller=PLATFORM_CALLER)
    click.echo(f"{login} is no longer an administrator")


@users_group.command("unlock")
@click.argument("login")
@click.pass_context
@handles_errors
def users_unlock(ctx: click.Context, login: str) -> None:
    """Lift the lock on LOGIN after too many failed logins."""
    workspace = open_workspace(ctx)
    user_passwords.unlock(workspace, _user_id(workspace, login), caller=PLATFORM_CALLER)
    click.echo(f"unlocked {login}")


@click.group("roles")
def roles_group() -> None:
    """Assign roles to users per environment (role documents are metadata of that environment)."""


@roles_group.command("assign")
@click.argument("login")
@click.argument("roles", nargs=-1, required=True)
@click.option("--env", "env_name", required=True, help="Environment the roles apply in.")
@click.pass_context
@handles_errors
def roles_assign(ctx: click.Context, login: str, roles: tuple[str, ...], env_name: str) -> None:
    """Give LOGIN the ROLES in ENV (roles already held stay)."""
    workspace = open_workspace(ctx)
    now_held = role_assignments.change_roles(
        workspace, _user_id(workspace, login), env_name, caller=PLATFORM_CALLER, add=roles
    )
    click.echo(f"{login} in {env_name}: {', '.join(now_held) or '(no roles)'}")


@roles_group.command("revoke")
@click.argument("login")
@click.argument("roles", nargs=-1, required=True)
@click.option("--env", "env_name", required=True, help="Environment the roles apply in.")
@click.pass_context
@handles_errors
def roles_revoke(ctx: click.Context, login: str, roles: tuple[str, ...], env_name: str) -> None:
    """Take the ROLES in ENV away from LOGIN."""
    workspace = open_workspace(ctx)
    now_held = role_assignments.change_roles(
        workspace, _user_id(workspace, login), env_name, caller=PLATFORM_CALLER, remove=roles
    )
    click.echo(f"{login} in {env_name}: {', '.join(now_held) or '(no roles)'}")


@roles_group.command("list")
@click.option("--env", "env_name", required=True, help="Environment.")
@click.pass_context
@handles_errors
def roles_list(ctx: click.Context, env_name: str) -> None:
    """List the role assignments in ENV: login, role."""
    workspace = open_workspace(ctx)
    for row in role_assignments.list_assignments(workspace, env_name, caller=PLATFORM_CALLER):
        click.echo(f"{row['login']}\t{row['role']}")


@click.group("teams")
def teams_group() -> None:
    """Create teams, nest them and add members."""


@teams_group.command("create")
@click.argument("name")
@click.option("--label", "label_en", default="", help="Label in English (default: NAME).")
@click.option("--label-zh", default="", help="Label in Chinese.")
@click.option("--parent", default=None, help="Name of the parent team.")
@click.option("--leader", default=None, help="Login of the team's leader.")
@click.pass_context
@handles_errors
def teams_create(
    ctx: click.Context,
    name: str,
    label_en: str,
    label_zh: str,
    parent: str | None,
    leader: str | None,
) -> None:
    """Create team NAME (a slug such as east_sales)."""
    workspace = open_workspace(ctx)
    new = teams.NewTeam(
        name=name,
        label_en=label_en,
        label_zh=label_zh,
        parent_id=_team_id(workspace, parent) if parent else None,
        leader_id=_user_id(workspace, leader) if leader else None,
    )
    created = teams.create_team(workspace, new, caller=PLATFORM_CALLER)
    click.echo(f"created team {created['name']} (id {created['id']})")


@teams_group.command("add-member")
@click.argument("team")
@click.argument("logins", nargs=-1, required=True)
@click.pass_context
@handles_errors
def teams_add_member(ctx: click.Context, team: str, logins: tuple[str, ...]) -> None:
    """Add the users LOGINS to TEAM."""
    workspace = open_workspace(ctx)
    ids = [_user_id(workspace, login) for login in logins]
    teams.add_members(workspace, _team_id(workspace, team), ids, caller=PLATFORM_CALLER)
    click.echo(f"{team}: added {', '.join(logins)}")


@teams_group.command("remove-member")
@click.argument("team")
@click.argument("login")
@click.pass_context
@handles_errors
def teams_remove_member(ctx: click.Context, team: str, login: str) -> None:
    """Take LOGIN out of TEAM."""
    workspace = open_workspace(ctx)
    teams.remove_member(
        workspace, _team_id(workspace, team), _user_id(workspace, login), caller=PLATFORM_CALLER
    )
    click.echo(f"{team}: removed {login}")


@teams_group.command("list")
@click.pass_context
@handles_errors
def teams_list(ctx: click.Context) -> None:
    """List teams: id, name, parent, label, members."""
    workspace = open_workspace(ctx)
    found = teams.list_teams(workspace, caller=PLATFORM_CALLER)
    names = {t["id"]: t["name"] for t in found}
    for t in found:
        parent = names.get(t["parent_id"], "-")
        members = len(t["member_ids"])
        click.echo(f"{t['id']}\t{t['name']}\t{parent}\t{t['label']['en']}\t{members} member(s)")


def _user_id(workspace: Workspace, login: str) -> int:
    with workspace.begin(readonly=True) as conn:
        return users.user_id_for_login(conn, login)


def _team_id(workspace: Workspace, name: str) -> int:
    with workspace.begin(readonly=True) as conn:
        return teams.team_id_named(conn, name)


def _ask_password() -> str:
    answer: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return answer


def _credentials_text(password: str) -> str:
    return (
        f"formloom administrator, created by `formloom init` on {datetime.now(UTC):%Y-%m-%d}\n"
        f"login: {FIRST_ADMIN}\n"
        f"password: {password}\n"
        "Log in with POST /api/auth/login (interactive docs at /docs), change the password with\n"
        "POST /api/auth/password, then delete this file.\n"
    )


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (mode 0600, also when it existed before)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as target:
        target.write(text)
