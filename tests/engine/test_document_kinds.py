"""The generic document-kind pipeline: upgrades, schema errors, registry behaviour."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict

from formloom.engine.errors import DocumentInvalid, Issue, RegistryError
from formloom.engine.meta import CheckContext, DocumentKind, document_kinds
from formloom.engine.meta.kinds import Upgrade


class NoteDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int
    name: str
    title: str
    tags: list[str]


def from_version_1(document: dict[str, Any]) -> dict[str, Any]:
    """v1 → v2: `heading` was renamed `title`."""
    out = dict(document)
    out["title"] = out.pop("heading")
    return out


def from_version_2(document: dict[str, Any]) -> dict[str, Any]:
    """v2 → v3: `tags` became required (default: none)."""
    return {**document, "tags": document.get("tags", [])}


class NoteKind(DocumentKind[NoteDoc]):
    name = "note"
    model = NoteDoc
    current_version = 3
    upgrades: ClassVar[Mapping[int, Upgrade]] = {1: from_version_1, 2: from_version_2}

    def check(self, document: NoteDoc, context: CheckContext) -> list[Issue]:
        if document.title.strip() == "":
            return [Issue("/title", "empty", "title must not be blank")]
        return []


def test_old_documents_are_upgraded_through_the_chain():
    with document_kinds.restored_after() as kinds:
        kinds.register(NoteKind())
        note = kinds.get("note").validate({"schema_version": 1, "name": "n", "heading": "Hi"})
    assert note == NoteDoc(schema_version=3, name="n", title="Hi", tags=[])


def test_documents_from_a_newer_version_are_refused():
    with pytest.raises(DocumentInvalid) as caught:
        NoteKind().validate({"schema_version": 4, "name": "n", "title": "x", "tags": []})
    assert caught.value.issues[0].code == "too_new"


def test_semantic_checks_run_after_the_schema():
    with pytest.raises(DocumentInvalid) as caught:
        NoteKind().validate({"schema_version": 3, "name": "n", "title": " ", "tags": []})
    assert caught.value.issues == [Issue("/title", "empty", "title must not be blank")]


def test_schema_errors_are_all_reported_with_pointers():
    with pytest.raises(DocumentInvalid) as caught:
        NoteKind().validate({"schema_version": 3, "name": 5, "tags": ["a", 7], "extra": True})
    paths = sorted(i.path for i in caught.value.issues)
    assert paths == ["", "", "/name", "/tags/1"]


def test_non_object_documents_are_refused():
    with pytest.raises(DocumentInvalid) as caught:
        NoteKind().validate(["not", "an", "object"])
    assert caught.value.issues[0].code == "type"


def test_registry_fails_loudly_with_a_suggestion():
    with pytest.raises(RegistryError) as caught:
        document_kinds.get("entiti")
    assert "did you mean `entity`" in str(caught.value)


def test_registry_refuses_duplicates_and_restores_after_tests():
    with document_kinds.restored_after() as kinds:
        kinds.register(NoteKind())
        with pytest.raises(RegistryError):
            kinds.register(NoteKind())
    assert "note" not in document_kinds
