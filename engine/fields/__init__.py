"""Field types: one registered class per type."""

from formloom.engine.fields import computed as _computed  # noqa: F401  (registers the types)
from formloom.engine.fields import files as _files  # noqa: F401
from formloom.engine.fields import measures as _measures  # noqa: F401
from formloom.engine.fields import people as _people  # noqa: F401
from formloom.engine.fields import places as _places  # noqa: F401
from formloom.engine.fields import relations as _relations  # noqa: F401
from formloom.engine.fields import rich as _rich  # noqa: F401
from formloom.engine.fields import structured as _structured  # noqa: F401
from formloom.engine.fields import types as _builtin_types  # noqa: F401
from formloom.engine.fields.base import FieldType, FieldValueError, field_types, register
from formloom.engine.fields.storage import Storage

__all__ = ["FieldType", "FieldValueError", "Storage", "field_types", "register"]
