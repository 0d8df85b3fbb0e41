"""Forms: layout documents, and the forms built from them (JSON Schema, UI schema, HTML, rules).

- :class:`LayoutDoc` and the `layout` kind (:data:`layout_kind`) describe and check layouts;
- :func:`build_form` makes the :class:`Form` one viewer sees of one record;
- :func:`evaluate_rules` / :func:`effective_payload` decide what shows and what is saved
  (the browser runs the same rules with ``static/form_rules.js``);
- :func:`render_form` draws it as accessible HTML, :func:`payload_from_form` reads a post back.

See ``docs/forms.md``.
"""

import importlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from formloom.engine.forms.kind import layout_dependencies, layout_kind
from formloom.engine.forms.model import LayoutDoc, Purpose

if TYPE_CHECKING:
    from formloom.engine.forms.build import Form, FormField, FormSection, FormTab, build_form
    from formloom.engine.forms.layout import CompiledLayout, compile_layout, default_layout
    from formloom.engine.forms.render import FORM_RULES_JS, STATIC_DIR, render_form
    from formloom.engine.forms.rules import FieldState, RuleState
    from formloom.engine.forms.submit import effective_payload, evaluate_rules, payload_from_form
    from formloom.engine.forms.widgets import form_widgets

# The engine imports the `layout` kind while the entity kind is still loading (the metadata
# registry imports every kind), and forms build on conditions, which need the entity kind:
# so the form builder loads on first use.
_LAZY = {
    **dict.fromkeys(("Form", "FormField", "FormSection", "FormTab", "build_form"), "build"),
    **dict.fromkeys(("effective_payload", "evaluate_rules", "payload_from_form"), "submit"),
    **dict.fromkeys(("CompiledLayout", "compile_layout", "default_layout"), "layout"),
    **dict.fromkeys(("FORM_RULES_JS", "STATIC_DIR", "render_form"), "render"),
    **dict.fromkeys(("FieldState", "RuleState"), "rules"),
    "form_widgets": "widgets",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def choose_layout(
    layouts: Iterable[LayoutDoc], *, entity: str, roles: Sequence[str], purpose: Purpose = "edit"
) -> LayoutDoc | None:
    """The layout a user with ``roles`` gets for ``entity`` and ``purpose``.

    A layout naming one of the user's roles wins (the first, in the order of
    ``roles``), then a layout without roles; a `view` falls back to the `edit`
    layouts. None: no layout (build the default one).
    """
    candidates = [layout for layout in layouts if layout.entity == entity]
    for wanted in (purpose, "edit"):
        of_purpose = [layout for layout in candidates if layout.purpose == wanted]
        for role in roles:
            for layout in of_purpose:
                if role in layout.roles:
                    return layout
        for layout in of_purpose:
            if not layout.roles:
                return layout
    return None


__all__ = [
    "FORM_RULES_JS",
    "STATIC_DIR",
    "CompiledLayout",
    "FieldState",
    "Form",
    "FormField",
    "FormSection",
    "FormTab",
    "LayoutDoc",
    "Purpose",
    "RuleState",
    "build_form",
    "choose_layout",
    "compile_layout",
    "default_layout",
    "effective_payload",
    "evaluate_rules",
    "form_widgets",
    "layout_dependencies",
    "layout_kind",
    "payload_from_form",
    "render_form",
]
