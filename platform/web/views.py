"""What the pages of the staff web app show, read through the platform's services.

Every read goes through the records service or the access layer with the
viewer's principal, so read scopes, hidden fields and read-only fields apply
exactly as in the API: a page never sees a value the API would not return.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from formloom.engine.forms import LayoutDoc, choose_layout, layout_kind
from formloom.engine.forms.model import Purpose
from formloom.engine.forms.widgets import choice_list
from formloom.engine.records.compiled import CompiledEntity
from formloom.engine.relative_dates import DEFAULT_TIMEZONE, timezone_named
from formloom.platform.access import Access, load_access
from formloom.platform.database import Workspace
from formloom.platform.entity_runtime import load_entity
from formloom.platform.metastore import MetaStore
from formloom.platform.principal import Principal

#: Field types a list can sort by (scalar columns).
SORTABLE_TYPES = frozenset(
    {
        "text",
        "email",
        "phone",
        "url",
        "integer",
        "decimal",
        "currency",
        "percent",
        "rating",
        "progress",
        "date",
        "datetime",
        "boolean",
        "single_select",
        "auto_number",
    }
)
#: Field types too large or nested for a list column.
UNLISTED_TYPES = frozenset(
    {"long_text", "rich_text", "json", "child_table", "signature", "file", "image", "address"}
)
LIST_COLUMNS = 6


@dataclass(frozen=True)
class NavEntity:
    name: str
    label: str


@dataclass(frozen=True)
class EntityView:
    """One entity as one viewer may use it: the compiled entity, their field modes, a layout."""

    compiled: CompiledEntity
    field_modes: Mapping[str, str]
    layout: LayoutDoc | None
    entities: Mapping[str, CompiledEntity]
    access: Access

    def label(self, lang: str) -> str:
        label = self.compiled.document.label
        return label.zh if lang == "zh" else label.en


def business_now() -> datetime:
    """The current time in the business timezone (what forms resolve ``today()`` in)."""
    return datetime.now(timezone_named(DEFAULT_TIMEZONE) or UTC)


def navigation(
    workspace: Workspace, metastore: MetaStore, *, env: str, principal: Principal, lang: str
) -> list[NavEntity]:
    """The entities of ``env`` the principal may read, by label."""
    bodies = metastore.published(env, "entity").get("entity", {})
    with workspace.begin(env, readonly=True) as conn:
        access = load_access(conn, cache_key=workspace.cache_key, env=env, principal=principal)
    shown = [
        NavEntity(name, _label(body.get("label"), lang, name))
        for name, body in bodies.items()
        if access.may(name, "read")
    ]
    return sorted(shown, key=lambda entity: entity.label)


def entity_view(
    workspace: Workspace,
    metastore: MetaStore,
    *,
    env: str,
    entity: str,
    principal: Principal,
    purpose: Purpose,
    action: str,
    lang: str,
) -> EntityView:
    """The entity, the viewer's field modes and the layout for ``purpose``.

    Raises :class:`~formloom.platform.access.AccessDenied` unless the viewer may
    ``action`` the entity, :class:`~formloom.platform.errors.NotFound` if it is
    not published.
    """
    published = metastore.published(env)
    namespace = workspace.cache_key
    with workspace.begin(env, readonly=True) as conn:
        access = load_access(conn, cache_key=namespace, env=env, principal=principal)
        access.require(entity, action, lang=lang)
        runtime = load_entity(conn, namespace=namespace, env=env, name=entity)
        entities = {
            name: load_entity(conn, namespace=namespace, env=env, name=name).compiled
            for name in published.get("entity", {})
        }
    layouts = [
        LayoutDoc.model_validate(layout_kind.upgrade(body))
        for body in published.get("layout", {}).values()
    ]
    roles: Sequence[str] = access.grants.roles if access.grants is not None else ()
    modes = {name: "read_only" for name in access.read_only(entity)}
    modes.update({name: "hidden" for name in access.hidden(entity)})
    return EntityView(
        compiled=runtime.compiled,
        field_modes=modes,
        layout=choose_layout(layouts, entity=entity, roles=roles, purpose=purpose),
        entities=entities,
        access=access,
    )


def list_columns(view: EntityView) -> list[str]:
    """The fields a list shows: the title field first, then the others that fit a column."""
    compiled = view.compiled
    names = [
        name
        for name, field in compiled.fields.items()
        if view.field_modes.get(name) != "hidden"
        and field.field_type.name not in UNLISTED_TYPES
        and not field.field_type.virtual  # no column of their own (multi-lookups' links)
    ]
    title = compiled.title_field
    if title in names:
        names.remove(title)
        names.insert(0, title)
    return names[:LIST_COLUMNS]


def display_value(compiled: CompiledEntity, name: str, record: Mapping[str, Any], lang: str) -> str:
    """A record's value of field ``name`` as text: choice labels, lookup titles, yes/no."""
    value = record.get(name)
    if value is None or value == "" or value == []:
        return "—"
    field = compiled.fields.get(name)
    type_name = field.field_type.name if field is not None else ""
    titles = record.get("_titles")
    if isinstance(titles, Mapping) and titles.get(name) is not None:
        return str(titles[name])
    if type_name in ("single_select", "multi_select") and field is not None:
        labels = {c["value"]: c["label"] for c in choice_list(field, lang)}
        chosen = value if isinstance(value, list) else [value]
        return ", ".join(labels.get(str(v), str(v)) for v in chosen)
    if isinstance(value, bool):
        return ("是" if value else "否") if lang == "zh" else ("Yes" if value else "No")
    if isinstance(value, list):
        return ", ".join(
            str(v.get("name") or v.get("id")) if isinstance(v, dict) else str(v) for v in value
        )
    if isinstance(value, dict):
        return str(value.get("name") or ", ".join(f"{k}: {v}" for k, v in value.items()))
    return str(value)


def _label(label: Any, lang: str, fallback: str) -> str:
    if isinstance(label, Mapping):
        return str(label.get(lang) or label.get("en") or fallback)
    if label is not None and hasattr(label, "zh"):
        return str(label.zh if lang == "zh" else label.en)
    return fallback
