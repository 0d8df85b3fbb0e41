"""The metadata store: drafts, published versions and history, per environment.

Generic over document kinds (:data:`formloom.engine.meta.document_kinds`).
Publishing validates a document, carries out its kind's side effects (an
entity's DDL) and records the new version in one transaction: a failure at any
point leaves metadata and tables exactly as they were.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import networkx as nx
from sqlalchemy import (
    BindParameter,
    CompoundSelect,
    Connection,
    Insert,
    Select,
    Update,
    bindparam,
    func,
    insert,
    null,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError, ProgrammingError

from formloom.engine.errors import DocumentInvalid, Issue, RegistryError
from formloom.engine.fields import field_types
from formloom.engine.meta import CheckContext, DocumentKind, document_kinds
from formloom.platform.database import Workspace
from formloom.platform.environments import (
    environment_not_found,
    exists_column,
    require_environment,
)
from formloom.platform.errors import Conflict, Invalid, NotFound
from formloom.platform.publishers import PublishSession, publisher_for
from formloom.platform.schema_sync import Observer, SchemaSync
from formloom.platform.tables import meta_document, meta_version, user

DRAFT = "draft"
PUBLISHED = "published"
REMOVED = "removed"


@dataclass(frozen=True)
class PublishOptions:
    """``force`` accepts lossy type changes; ``purge`` drops removed fields/entities for good."""

    force: bool = False
    purge: bool = False
    comment: str = ""
    actor: str | None = None


@dataclass(frozen=True)
class SourceDocument:
    """A document to publish in a batch, with where it came from (a file name, for errors)."""

    kind: str
    body: Any
    source: str


class BatchInvalid(Invalid):
    """Some documents of a batch are invalid; ``failures`` maps each source to its issues."""

    def __init__(self, failures: dict[str, list[Issue]]) -> None:
        count = sum(len(v) for v in failures.values())
        issues = [
            Issue(f"{source}#{i.path}", i.code, i.message)
            for source, found in failures.items()
            for i in found
        ]
        super().__init__(f"{count} problem(s) in {len(failures)} document(s)", issues=issues)
        self.failures = failures


@dataclass(frozen=True)
class PublishResult:
    kind: str
    name: str
    version: int
    changed: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "changed": self.changed,
        }


class MetaStore:
    """Reads and writes metadata documents of one workspace."""

    def __init__(self, workspace: Workspace, *, ddl_observer: Observer | None = None) -> None:
        self.workspace = workspace
        self.ddl_observer = ddl_observer

    # -- reading ---------------------------------------------------------------------------

    def get(self, env: str, kind: str, name: str) -> dict[str, Any]:
        """The document's state: status, draft, published version and its body."""
        kind_of(kind)
        require_environment(self.workspace, env)
        with self.workspace.begin(env, readonly=True) as conn:
            row = _document_row(conn, kind, name)
            if row is None:
                raise NotFound(f"{kind} `{name}` does not exist in environment `{env}`")
            body = _version_body(conn, kind, name, row.published_version)
        return {
            "kind": kind,
            "name": name,
            "status": row.status,
            "published_version": row.published_version,
            "published": body,
            "draft": row.draft,
        }

    def list_documents(self, env: str, kind: str | None = None) -> list[dict[str, Any]]:
        if kind is not None:
            kind_of(kind)
        require_environment(self.workspace, env)
        query = select(meta_document).order_by(meta_document.c.kind, meta_document.c.name)
        if kind is not None:
            query = query.where(meta_document.c.kind == kind)
        with self.workspace.begin(env, readonly=True) as conn:
            rows = conn.execute(query).all()
        return [
            {
                "kind": r.kind,
                "name": r.name,
                "status": r.status,
                "published_version": r.published_version,
                "has_draft": r.draft is not None,
                "updated_at": r.updated_at.isoformat(),
            }
            for r in rows
        ]

    def published(self, env: str, kind: str | None = None) -> dict[str, dict[str, dict[str, Any]]]:
        """Every currently published body, by kind and name."""
        require_environment(self.workspace, env)
        with self.workspace.begin(env, readonly=True) as conn:
            bodies = _published_bodies(conn)
        return {k: v for k, v in bodies.items() if kind is None or k == kind}

    def versions(self, env: str, kind: str, name: str) -> list[dict[str, Any]]:
        kind_of(kind)
        require_environment(self.workspace, env)
        query = (
            select(meta_version)
            .where(meta_version.c.kind == kind, meta_version.c.name == name)
            .order_by(meta_version.c.version)
        )
        with self.workspace.begin(env, readonly=True) as conn:
            rows = conn.execute(query).all()
        if not rows:
            raise NotFound(f"{kind} `{name}` has no published versions in environment `{env}`")
        return [
            {
                "version": r.version,
                "action": r.action,
                "comment": r.comment,
                "published_at": r.published_at.isoformat(),
                "published_by": r.published_by,
            }
            for r in rows
        ]

    def version(self, env: str, kind: str, name: str, version: int) -> dict[str, Any]:
        kind_of(kind)
        require_environment(self.workspace, env)
        with self.workspace.begin(env, readonly=True) as conn:
            body = _version_body(conn, kind, name, version)
        if body is None:
            raise NotFound(f"{kind} `{name}` has no version {version} in environment `{env}`")
        return body

    def validate(self, env: str, kind: str, body: Any) -> list[Issue]:
        """Every problem of ``body`` as if it were published now (nothing is saved)."""
        document_kind = kind_of(kind)
        users = None
        if kind in NAMES_USERS:
            with self.workspace.begin(readonly=True) as conn:
                users = _active_users(conn)
        context = CheckContext(published=self.published(env), users=users)
        try:
            document_kind.validate(body, context)
        except DocumentInvalid as exc:
            return exc.issues
        return []

    # -- drafts ----------------------------------------------------------------------------

    def save_draft(self, env: str, kind: str, name: str, body: Any) -> dict[str, Any]:
        """Save a draft (even an invalid one) and report its problems."""
        kind_of(kind)
        body = _named_body(body, name)
        issues = self.validate(env, kind, body)
        now = datetime.now(UTC)
        with self.workspace.begin(env) as conn:
            if _document_row(conn, kind, name, lock=True) is None:
                conn.execute(
                    insert(meta_document).values(
                        kind=kind,
                        name=name,
                        draft=body,
                        draft_updated_at=now,
                        published_version=None,
                        status=DRAFT,
                        updated_at=now,
                    )
                )
            else:
                _update_document(conn, kind, name, draft=body, draft_updated_at=now, updated_at=now)
        return {"kind": kind, "name": name, "draft": body, "issues": [i.as_dict() for i in issues]}

    # -- publishing ------------------------------------------------------------------------

    def publish(self, env: str, kind: str, name: str, options: PublishOptions) -> PublishResult:
        """Publish the saved draft of a document."""
        kind_of(kind)
        with self._session(env, options, kinds={kind}) as (conn, session):
            row = _document_row(conn, kind, name, lock=True)
            if row is None or row.draft is None:
                raise Conflict(
                    f"{kind} `{name}` has no draft to publish in `{env}`; save one first with "
                    f"PUT /api/envs/{env}/meta/{kind}/{name}"
                )
            result = self._publish_one(conn, session, kind, name, row.draft, "publish", options)
            _raise_if_invalid({f"{kind}/{name}": session.issues})
            return result

    def apply(
        self, env: str, documents: Sequence[SourceDocument], options: PublishOptions
    ) -> list[PublishResult]:
        """Validate and publish several documents in one transaction (all or nothing).

        Entities are published in lookup order, so documents may refer to each other.
        """
        failures: dict[str, list[Issue]] = {}
        named: list[tuple[SourceDocument, str]] = []
        sources: dict[tuple[str, str], str] = {}
        for doc in documents:
            try:
                kind_of(doc.kind)
            except NotFound as exc:
                failures[doc.source] = [Issue("", "unknown_kind", exc.message)]
                continue
            name = doc.body.get("name") if isinstance(doc.body, dict) else None
            if not isinstance(name, str):
                failures[doc.source] = [Issue("/name", "required", "the document needs a `name`")]
                continue
            first = sources.setdefault((doc.kind, name), doc.source)
            if first != doc.source:
                failures[doc.source] = [
                    Issue(
                        "/name",
                        "duplicate_document",
                        f"{doc.kind} `{name}` is also in {first}; a batch publishes each "
                        "document once",
                    )
                ]
                continue
            named.append((doc, name))
        pending: dict[str, dict[str, dict[str, Any]]] = {}
        for doc, name in named:
            pending.setdefault(doc.kind, {})[name] = doc.body
        results = []
        with self._session(env, options, pending=pending, kinds=set(pending)) as (conn, session):
            for doc, name in _in_dependency_order(named):
                before = len(session.issues)
                try:
                    results.append(
                        self._publish_one(
                            conn, session, doc.kind, name, doc.body, "publish", options
                        )
                    )
                except DocumentInvalid as exc:
                    session.issues.extend(exc.issues)
                found = session.issues[before:]
                if found:
                    failures[doc.source] = found
            _raise_if_invalid(failures, batch=True)
        return results

    def rollback(
        self, env: str, kind: str, name: str, version: int, options: PublishOptions
    ) -> PublishResult:
        """Publish an earlier version again, as a new version."""
        body = self.version(env, kind, name, version)
        comment = options.comment or f"rollback to version {version}"
        with self._session(env, options, kinds={kind}) as (conn, session):
            _document_row(conn, kind, name, lock=True)
            result = self._publish_one(
                conn, session, kind, name, body, "rollback", options, comment=comment
            )
            _raise_if_invalid({f"{kind}/{name}": session.issues})
            return result

    def remove(self, env: str, kind: str, name: str, options: PublishOptions) -> PublishResult:
        """Remove a published document: soft (data kept) unless ``options.purge``."""
        kind_of(kind)
        with self._session(env, options) as (conn, session):
            row = _document_row(conn, kind, name, lock=True)
            purging_removed = row is not None and row.status == REMOVED and options.purge
            if row is None or (row.status != PUBLISHED and not purging_removed):
                raise NotFound(f"{kind} `{name}` is not published in environment `{env}`")
            publisher = publisher_for(kind)
            issues = publisher.removal_issues(session, name)
            if issues:
                raise Invalid(issues[0].message, issues=issues)
            old = _version_body(conn, kind, name, row.published_version)
            assert old is not None
            publisher.remove(session, old)
            _raise_if_invalid({f"{kind}/{name}": session.sync.issues})
            version = _next_version(conn, kind, name)
            action = "purge" if options.purge else "remove"
            _insert_version(conn, kind, name, version, old, action, options, options.comment)
            status = DRAFT if options.purge else REMOVED
            published_version = None if options.purge else row.published_version
            _update_document(
                conn,
                kind,
                name,
                status=status,
                published_version=published_version,
                updated_at=datetime.now(UTC),
            )
            return PublishResult(kind, name, version, True)

    @contextmanager
    def _session(
        self,
        env: str,
        options: PublishOptions,
        pending: dict[str, dict[str, dict[str, Any]]] | None = None,
        kinds: set[str] | None = None,
    ) -> Iterator[tuple[Connection, PublishSession]]:
        try:
            with self.workspace.begin(env) as conn:
                sync = SchemaSync(
                    conn, self.workspace, env, force=options.force, observer=self.ddl_observer
                )
                published = _published_bodies_of(conn, self.workspace, env)
                users = _active_users(conn) if (kinds or set()) & NAMES_USERS else None
                context = CheckContext(published=published, pending=pending or {}, users=users)
                yield conn, PublishSession(sync=sync, context=context, purge=options.purge)
                sync.finish()
        except DocumentInvalid as exc:
            raise Invalid(str(exc), issues=exc.issues) from None
        except IntegrityError as exc:
            raise Conflict(
                "another change to the same metadata was committed at the same time; "
                f"reload and try again ({exc.orig})"
            ) from None

    def _publish_one(
        self,
        conn: Connection,
        session: PublishSession,
        kind: str,
        name: str,
        raw: Any,
        action: str,
        options: PublishOptions,
        *,
        comment: str = "",
    ) -> PublishResult:
        document_kind = kind_of(kind)
        raw = _named_body(raw, name)
        document = document_kind.validate(raw, session.context)
        row = _document_row(conn, kind, name, lock=True, with_latest=True)
        old = None
        if row is not None and row.published_version is not None:
            # The session read every published body in this transaction; a removed
            # document's last body is read on its own.
            current = session.context.published.get(kind, {}).get(name)
            old = current if row.status == PUBLISHED and current is not None else None
            if old is None:
                old = _version_body(conn, kind, name, row.published_version)
        version = 1 if row is None else int(row.latest_version or 0) + 1
        before = len(session.sync.issues)
        body = publisher_for(kind).publish(session, old, document, version)
        session.issues.extend(session.sync.issues[before:])
        if row is not None and row.status == PUBLISHED and old == body:
            _clear_draft(conn, kind, name)
            return PublishResult(kind, name, row.published_version or 0, changed=False)
        _insert_version(
            conn, kind, name, version, body, action, options, comment or options.comment
        )
        now = datetime.now(UTC)
        values = dict(
            draft=None,
            draft_updated_at=None,
            published_version=version,
            status=PUBLISHED,
            updated_at=now,
        )
        if row is None:
            conn.execute(_insert_document_statement(), {"kind": kind, "name": name, **values})
        else:
            _update_document(conn, kind, name, **values)
        published = dict(session.context.published)
        published[kind] = {**published.get(kind, {}), name: body}
        session.context = CheckContext(
            published=published, pending=session.context.pending, users=session.context.users
        )
        return PublishResult(kind, name, version, changed=True)


#: Kinds whose documents name users by id (checked against the workspace's active users).
NAMES_USERS = frozenset({"flow"})


def _active_users(conn: Connection) -> frozenset[int]:
    """Ids of the workspace's active users (the platform tables are reachable from any
    environment transaction)."""
    query = select(user.c.id).where(user.c.active.is_(True))
    return frozenset(int(i) for i in conn.execute(query).scalars())


def kind_of(kind: str) -> DocumentKind[Any]:
    try:
        return document_kinds.get(kind)
    except RegistryError as exc:
        raise NotFound(str(exc)) from None


def _named_body(body: Any, name: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Invalid(
            "a metadata document must be a JSON object",
            issues=[Issue("", "type", "a metadata document must be a JSON object")],
        )
    given = body.get("name", name)
    if given != name:
        message = f"the document is named `{given}` but was sent to `{name}`; make them match"
        raise Invalid(message, issues=[Issue("/name", "name_mismatch", message)])
    return {**body, "name": name}


def _document_row(
    conn: Connection, kind: str, name: str, *, lock: bool = False, with_latest: bool = False
) -> Any:
    """The document's row (locked on PostgreSQL with ``lock``); ``with_latest`` adds
    ``latest_version``, the highest version number recorded (in the same round trip)."""
    locked = lock and conn.dialect.name == "postgresql"
    query = _document_row_query(locked=locked, with_latest=with_latest)
    return conn.execute(query, {"kind": kind, "name": name}).first()


def _version_body(
    conn: Connection, kind: str, name: str, version: int | None
) -> dict[str, Any] | None:
    if version is None:
        return None
    body: dict[str, Any] | None = conn.execute(
        _version_body_query(), {"kind": kind, "name": name, "version": version}
    ).scalar()
    return body


def _next_version(conn: Connection, kind: str, name: str) -> int:
    current = conn.execute(_latest_version_query(), {"kind": kind, "name": name}).scalar()
    return int(current or 0) + 1


def _insert_version(
    conn: Connection,
    kind: str,
    name: str,
    version: int,
    body: dict[str, Any],
    action: str,
    options: PublishOptions,
    comment: str,
) -> None:
    conn.execute(
        _insert_version_statement(),
        {
            "kind": kind,
            "name": name,
            "version": version,
            "body": body,
            "action": action,
            "comment": comment[:500],
            "published_at": datetime.now(UTC),
            "published_by": options.actor,
        },
    )


def _update_document(conn: Connection, kind: str, name: str, **values: Any) -> None:
    """Set ``values`` on the document's row."""
    conn.execute(_update_document_statement(), {"doc_kind": kind, "doc_name": name, **values})


def _clear_draft(conn: Connection, kind: str, name: str) -> None:
    _update_document(conn, kind, name, draft=None, draft_updated_at=None)


# The statements of a publish are built once (per shape) and run with parameters: building
# a SQLAlchemy statement on every call cost more than running it (see docs/benchmarks.md).


@functools.cache
def _document_row_query(*, locked: bool, with_latest: bool) -> Select[Any]:
    kind: BindParameter[str] = bindparam("kind")
    name: BindParameter[str] = bindparam("name")
    columns: list[Any] = [meta_document]
    if with_latest:
        latest = (
            select(func.max(meta_version.c.version))
            .where(meta_version.c.kind == kind, meta_version.c.name == name)
            .scalar_subquery()
        )
        columns.append(latest.label("latest_version"))
    query = select(*columns).where(meta_document.c.kind == kind, meta_document.c.name == name)
    return query.with_for_update(of=meta_document) if locked else query


@functools.cache
def _version_body_query() -> Select[Any]:
    return select(meta_version.c.body).where(
        meta_version.c.kind == bindparam("kind"),
        meta_version.c.name == bindparam("name"),
        meta_version.c.version == bindparam("version"),
    )


@functools.cache
def _latest_version_query() -> Select[Any]:
    return select(func.max(meta_version.c.version)).where(
        meta_version.c.kind == bindparam("kind"), meta_version.c.name == bindparam("name")
    )


@functools.cache
def _insert_version_statement() -> Insert:
    return insert(meta_version)


@functools.cache
def _insert_document_statement() -> Insert:
    return insert(meta_document)


@functools.cache
def _update_document_statement() -> Update:
    """An ``UPDATE`` of one document row; the parameters besides its key name the columns set."""
    return update(meta_document).where(
        meta_document.c.kind == bindparam("doc_kind"),
        meta_document.c.name == bindparam("doc_name"),
    )


def _published_bodies_of(
    conn: Connection, workspace: Workspace, env: str
) -> dict[str, dict[str, dict[str, Any]]]:
    """The published bodies of ``env``, which must be registered (asked in the same
    statement: an environment's SQLite file or PostgreSQL schema may outlive its
    registration). On PostgreSQL a missing schema fails the statement itself.
    """
    try:
        rows = conn.execute(_registered_bodies_query(), {"env": env}).all()
    except ProgrammingError as exc:
        if type(exc.orig).__name__ != "UndefinedTable":
            raise
        raise environment_not_found(env) from None
    if not any(row.kind is None and row.environment_exists for row in rows):
        raise environment_not_found(env)
    return _bodies_by_kind(row for row in rows if row.kind is not None)


def _published_bodies(conn: Connection) -> dict[str, dict[str, dict[str, Any]]]:
    return _bodies_by_kind(conn.execute(_published_bodies_query()))


def _bodies_by_kind(rows: Iterable[Any]) -> dict[str, dict[str, dict[str, Any]]]:
    bodies: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        bodies.setdefault(row.kind, {})[row.name] = row.body
    return bodies


@functools.cache
def _published_bodies_query() -> Select[Any]:
    return (
        select(meta_document.c.kind, meta_document.c.name, meta_version.c.body)
        .join(
            meta_version,
            (meta_version.c.kind == meta_document.c.kind)
            & (meta_version.c.name == meta_document.c.name)
            & (meta_version.c.version == meta_document.c.published_version),
        )
        .where(meta_document.c.status == PUBLISHED)
    )


@functools.cache
def _registered_bodies_query() -> CompoundSelect[Any]:
    """The published bodies, and one more row (``kind`` NULL) telling whether environment
    ``:env`` is registered (``environment_exists``)."""
    bodies = _published_bodies_query().add_columns(true().label("environment_exists"))
    registered = select(null(), null(), null(), exists_column())
    return union_all(bodies, registered)


def _in_dependency_order(
    named: Iterable[tuple[SourceDocument, str]],
) -> list[tuple[SourceDocument, str]]:
    """Entities that others look up come first; other kinds follow in the given order."""
    items = list(named)
    if len(items) < 2:
        return items
    graph: nx.DiGraph[str] = nx.DiGraph()
    by_key = {}
    for doc, name in items:
        key = f"{doc.kind}/{name}"
        by_key[key] = (doc, name)
        graph.add_node(key)
    for doc, name in items:
        if doc.kind != "entity" or not isinstance(doc.body.get("fields"), list):
            continue
        for f in doc.body["fields"]:
            target = _lookup_target(f)
            if target and target != name and f"entity/{target}" in by_key:
                graph.add_edge(f"entity/{target}", f"entity/{name}")
    condensed = nx.condensation(graph)
    order = itertools.chain.from_iterable(
        sorted(condensed.nodes[c]["members"], key=list(by_key).index)
        for c in nx.topological_sort(condensed)
    )
    ranked = sorted(order, key=lambda key: not key.startswith("entity/"))
    return [by_key[k] for k in ranked]


def _lookup_target(raw_field: Any) -> str | None:
    """The entity a raw (not yet validated) field looks up, if it is a valid lookup."""
    if not isinstance(raw_field, dict) or raw_field.get("type") not in field_types:
        return None
    options = raw_field.get("options") or {}
    try:
        return field_types.get(raw_field["type"]).references(options)
    except (ValueError, TypeError):
        return None


def _raise_if_invalid(failures: dict[str, list[Issue]], *, batch: bool = False) -> None:
    failures = {k: v for k, v in failures.items() if v}
    if not failures:
        return
    if batch:
        raise BatchInvalid(failures)
    ((source, issues),) = failures.items()
    raise Invalid(f"{source}: {len(issues)} problem(s): {issues[0].message}", issues=issues)
