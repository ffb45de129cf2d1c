"""Create or upgrade a database and put the configuration's carriers and areas in it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcast import accounts, audit
from broadcast.areas import load_configured_areas
from broadcast.db import Database
from broadcast.models import Area, Carrier, Role, User
from broadcast.settings import Settings


@dataclass(frozen=True)
class InitResult:
    revision: str | None
    carriers: int
    areas_loaded: int
    admin_created: bool
    admin_username: str
    admin_password: str | None  # only when it was generated here; shown once


def sync_carriers(session: Session, settings: Settings) -> int:
    """Carriers are configuration; the database keeps a row per code for foreign keys."""
    existing = {c.code: c for c in session.scalars(select(Carrier))}
    for cfg in settings.carriers:
        row = existing.get(cfg.code)
        if row is None:
            row = Carrier(code=cfg.code)
            session.add(row)
            audit.record(
                session,
                actor="system",
                action="carrier.create",
                object_type="carrier",
                object_id=cfg.code,
                after={"name": cfg.name, "mps": cfg.mps},
            )
        row.name, row.active = cfg.name, cfg.enabled
    for code, row in existing.items():
        if code not in settings.carrier_codes:
            row.active = False
    session.flush()
    return len(settings.carriers)


def init_database(
    database: Database,
    settings: Settings,
    *,
    admin_username: str = "admin",
    admin_password: str | None = None,
    reset_admin_password: bool = True,
) -> InitResult:
    """Migrate to head, sync carriers, load the configured areas once, ensure an admin exists.

    A password given for an admin who already exists replaces theirs (`loa init
    --admin-password`), unless reset_admin_password is False (the demo, on every start).
    """
    database.upgrade()
    generated: str | None = None
    with database.session() as session:
        carriers = sync_carriers(session, settings)
        areas_loaded = 0
        if session.scalar(select(Area.id).limit(1)) is None:
            areas_loaded = load_configured_areas(session, settings).loaded
        admin = session.scalar(select(User).where(User.username == admin_username))
        created = False
        if admin is None:
            if admin_password is None:
                generated = admin_password = accounts.generate_password()
            accounts.create_user(
                session,
                username=admin_username,
                password=admin_password,
                role=Role.ADMIN,
                display_name="Administrator",
            )
            created = True
        elif admin_password is not None and reset_admin_password:
            accounts.set_password(session, admin, admin_password, actor="loa init")
    return InitResult(
        revision=database.current_revision(),
        carriers=carriers,
        areas_loaded=areas_loaded,
        admin_created=created,
        admin_username=admin_username,
        admin_password=generated,
    )
