"""Metadata document kinds and the generic validation pipeline they share.

A kind is one registered class: its pydantic model, the JSON Schema generated
from it (the published meta-schema), its chain of version upgrades and its
semantic checks. :meth:`DocumentKind.validate` runs the whole pipeline on raw
JSON and reports *every* problem as an :class:`~formloom.engine.errors.Issue`.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sized
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar, cast

import jsonschema
from pydantic import BaseModel, ValidationError

from formloom.engine.errors import DocumentInvalid, Issue, pointer
from formloom.engine.names import API_NAME_PATTERN, api_name_problem
from formloom.engine.registry import Registry

M = TypeVar("M", bound=BaseModel)
Upgrade = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class CheckContext:
    """What semantic checks may know about the environment a document is published into.

    ``published`` maps kind → document name → the published body (as a dict).
    ``pending`` holds documents published in the same batch. ``users`` holds the
    ids of the workspace's users when the caller knows them; None means "not
    known": documents that name users by id are then not checked against it.
    """

    published: Mapping[str, Mapping[str, dict[str, Any]]] = field(default_factory=dict)
    pending: Mapping[str, Mapping[str, dict[str, Any]]] = field(default_factory=dict)
    users: frozenset[int] | None = None

    def exists(self, kind: str, name: str) -> bool:
        return name in self.published.get(kind, {}) or name in self.pending.get(kind, {})


class DocumentKind(ABC, Generic[M]):
    """One kind of metadata document (entity, layout, flow, …)."""

    name: ClassVar[str]
    model: type[M]
    #: The schema_version documents of this kind are written in today.
    current_version: ClassVar[int] = 1
    #: upgrades[n] turns a version-n document into a version-(n+1) one (pure functions).
    upgrades: ClassVar[Mapping[int, Upgrade]] = {}

    def schema_key(self) -> tuple[str, ...]:
        """What the generated schema depends on besides the model (cache key)."""
        return ()

    def validator(self) -> jsonschema.Draft202012Validator:
        """A compiled validator for :meth:`validation_schema`, cached while ``schema_key`` holds."""
        key = self.schema_key()
        cached = self.__dict__.get("_validator")
        if cached is None or cached[0] != key:
            cached = (key, jsonschema.Draft202012Validator(self.validation_schema()))
            self.__dict__["_validator"] = cached
        return cached[1]

    def validation_schema(self) -> dict[str, Any]:
        """The schema that words the errors of documents the model refuses.

        It may leave out what the semantic checks report themselves (so that a
        problem gets the same code whichever way it is found); by default it is
        the published :meth:`json_schema`.
        """
        return self.json_schema()

    def json_schema(self) -> dict[str, Any]:
        """The published meta-schema of this kind (served to tools and written to docs)."""
        schema = self.model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://formloom.dev/schemas/{self.name}.schema.json"
        return schema

    @abstractmethod
    def check(self, document: M, context: CheckContext) -> list[Issue]:
        """Semantic checks beyond the JSON Schema (references, uniqueness, limits)."""

    def check_parts(
        self, raw: dict[str, Any], flagged: set[str], context: CheckContext
    ) -> list[Issue]:
        """Semantic checks of the parts of a document that fails its schema.

        ``flagged`` holds the JSON pointers the schema complained about. Checking
        what can be checked lets one round trip show every problem; issues at a
        flagged path are dropped. The default checks nothing.
        """
        return []

    def document_name(self, document: M) -> str:
        name = getattr(document, "name", None)
        assert isinstance(name, str), f"documents of kind {self.name} must have a name"
        return name

    def upgrade(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Bring a raw document up to ``current_version`` through the upgrade chain."""
        version = raw.get("schema_version", self.current_version)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise DocumentInvalid(
                [Issue("/schema_version", "type", "schema_version must be a positive integer")]
            )
        if version > self.current_version:
            raise DocumentInvalid(
                [
                    Issue(
                        "/schema_version",
                        "too_new",
                        f"schema_version {version} is newer than this formloom understands "
                        f"({self.current_version}); upgrade formloom",
                    )
                ]
            )
        document = dict(raw)
        while version < self.current_version:
            document = self.upgrades[version](document)
            version += 1
            document["schema_version"] = version
        document["schema_version"] = version
        return document

    def validate(self, raw: Any, context: CheckContext | None = None) -> M:
        """Upgrade, parse, schema-check and semantically check a raw document.

        The typed model parses first (fast); only a document it refuses goes
        through the JSON Schema, whose errors name every problem with a pointer.
        The semantic checks cover what the schema adds beyond the model (field
        type names and each type's options), so both paths accept the same documents.
        """
        if not isinstance(raw, dict):
            raise DocumentInvalid([Issue("", "type", f"a {self.name} document must be an object")])
        document = self.upgrade(raw)
        context = context or CheckContext()
        try:
            parsed = self.model.model_validate(document)
        except ValidationError as exc:
            issues = schema_issues(self.validator(), document)
            if not issues:
                raise DocumentInvalid(pydantic_issues(exc)) from None
            flagged = {i.path for i in issues}
            parts = self.check_parts(document, flagged, context)
            found = issues + [i for i in parts if i.path not in flagged]
            raise DocumentInvalid(sorted(found, key=_document_order)) from None
        issues = self.check(parsed, context)
        if issues:
            raise DocumentInvalid(issues)
        return parsed


document_kinds: Registry[DocumentKind[Any]] = Registry("document kind")


def _document_order(issue: Issue) -> tuple[tuple[int, int, str], ...]:
    """Issues in the order of the document (array indexes compared as numbers)."""
    parts = issue.path.split("/")[1:]
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def schema_issues(validator: jsonschema.Draft202012Validator, document: Any) -> list[Issue]:
    """Every JSON Schema violation of ``document``, as issues with JSON pointers."""
    issues = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path)):
        issues.extend(_issues_from(error))
    return issues


# Size errors say how big the value is instead of repeating it (a 501-field list, a long label).
_SIZE_LIMITS = {
    "maxItems": ("items", "at most"),
    "minItems": ("items", "at least"),
    "maxLength": ("characters", "at most"),
    "minLength": ("characters", "at least"),
}


def _issues_from(error: jsonschema.ValidationError) -> list[Issue]:
    if error.validator in ("allOf", "anyOf", "oneOf") and error.context:
        out: list[Issue] = []
        for sub in error.context:
            out.extend(_issues_from(sub))
        return out
    path = pointer(*error.absolute_path)
    code = str(error.validator)
    message = error.message
    if code == "pattern" and error.validator_value == API_NAME_PATTERN:
        message = api_name_problem(str(error.instance), what="name") or message
    elif code == "additionalProperties":
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        allowed = sorted(schema.get("properties", {}))
        message = f"{error.message}; allowed properties: {', '.join(allowed)}"
    elif code == "enum":
        allowed = [str(v) for v in cast(list[Any], error.validator_value)]
        close = difflib.get_close_matches(str(error.instance), allowed, n=1)
        hint = f" (did you mean `{close[0]}`?)" if close else ""
        message = f"`{error.instance}` is not allowed here{hint}; allowed: {', '.join(allowed)}"
    elif code == "required":
        message = f"{error.message} (missing here)"
    elif code in _SIZE_LIMITS:
        what, limit = _SIZE_LIMITS[code]
        size = len(error.instance) if isinstance(error.instance, Sized) else "?"
        message = f"has {size} {what}; {limit} {error.validator_value} allowed"
    return [Issue(path, code, message)]


def pydantic_issues(exc: ValidationError) -> list[Issue]:
    return [Issue(pointer(*e["loc"]), e["type"], e["msg"]) for e in exc.errors()]
