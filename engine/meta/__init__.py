"""Metadata document kinds: registry and validation pipeline.

Importing this package registers the built-in kinds, so `document_kinds` is
complete whichever module is imported first.
"""

from formloom.engine.access import kind as _role_kind  # noqa: F401  (registers `role`)
from formloom.engine.entities import kind as _entity_kind  # noqa: F401  (registers `entity`)
from formloom.engine.flows import kind as _flow_kind  # noqa: F401  (registers `flow`)
from formloom.engine.forms import kind as _layout_kind  # noqa: F401  (registers `layout`)
from formloom.engine.meta.kinds import CheckContext, DocumentKind, document_kinds

__all__ = ["CheckContext", "DocumentKind", "document_kinds"]
