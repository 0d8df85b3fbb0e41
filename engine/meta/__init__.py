"""Metadata document kinds: registry and validation pipeline."""

from formloom.engine.meta.kinds import CheckContext, DocumentKind, document_kinds

__all__ = ["CheckContext", "DocumentKind", "document_kinds"]
