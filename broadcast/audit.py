"""The append-only audit log: who did what, when, before and after."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from broadcast.models import AuditEntry, User


def record(
    session: Session,
    *,
    actor: User | str | None,
    action: str,
    object_type: str,
    object_id: object = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEntry:
    """Add an entry in the caller's transaction, so the decision and its record commit together."""
    if isinstance(actor, User):
        actor_id, actor_name = actor.id, actor.username
    else:
        actor_id, actor_name = None, actor or "system"
    entry = AuditEntry(
        actor_id=actor_id,
        actor=actor_name,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        before=before,
        after=after,
        ip=ip,
    )
    session.add(entry)
    return entry
