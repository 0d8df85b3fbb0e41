"""Entities: the document model, its kind, and how a change becomes table operations."""

from formloom.engine.entities.kind import entity_kind
from formloom.engine.entities.model import EntityDoc, FieldDef, IndexDef, RetiredField

__all__ = ["EntityDoc", "FieldDef", "IndexDef", "RetiredField", "entity_kind"]
