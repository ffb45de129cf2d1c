"""Demo data for Ha Tinh: generated subscriber lists and count reports, users, a test group.

The lists are written as the CSV files a carrier would upload (with the usual mess: national
and international forms, spaces, a few old 11-digit numbers, duplicates and bad rows) and go
through the real importer, so the demo shows real import reports.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from broadcast import accounts
from broadcast.areas import read_old_labels
from broadcast.db import Database
from broadcast.models import (
    Area,
    Brandname,
    Carrier,
    ListStatus,
    RecipientGroup,
    Role,
    SubscriberList,
    TestRecipient,
    User,
)
from broadcast.settings import Settings

SHARES = {
    "viettel": 0.50,
    "vinaphone": 0.20,
    "mobifone": 0.20,
    "vietnamobile": 0.05,
    "gmobile": 0.02,
    "itelecom": 0.02,
    "reddi": 0.01,
}
DEMO_BRANDNAME = "UBND HaTinh"
DEMO_USERS = (
    ("admin", Role.ADMIN, None, "Administrator"),
    ("drafter", Role.DRAFTER, None, "Cán bộ soạn thảo (Drafter)"),
    ("approver", Role.APPROVER, None, "Lãnh đạo phê duyệt (Approver)"),
    ("auditor", Role.AUDITOR, None, "Kiểm tra (Auditor)"),
    ("viettel", Role.CARRIER, "viettel", "Viettel Hà Tĩnh"),
    ("vinaphone", Role.CARRIER, "vinaphone", "VNPT VinaPhone Hà Tĩnh"),
)


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    password: str


def _prefixes(settings: Settings) -> dict[str, list[str]]:
    ranges = pd.read_csv(settings.number_ranges_file, dtype=str)
    short = ranges[ranges["prefix"].str.len() <= 3]
    return {code: list(group["prefix"]) for code, group in short.groupby("carrier")}


def generate_list_csv(
    path: Path,
    *,
    carrier: str,
    count: int,
    prefixes: list[str],
    area_codes: list[str],
    seed: int,
    old_labels: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    """Write one carrier's list as a carrier would export it; returns the clean numbers.

    About one row in ten names its commune by a pre-2025 label (`old_labels`: new code → old
    codes and names), as carriers' exports still do; the import maps them back.
    """
    rng = np.random.default_rng(seed)
    prefix = rng.choice(np.array(prefixes), size=count)
    # A national number has 9 digits after 84: the prefix and the digits it leaves.
    tail_len = 9 - np.char.str_len(prefix.astype(str))
    tail = rng.integers(0, 10**tail_len)
    national = np.char.add(
        prefix.astype(str),
        np.array([f"{t:0{n}d}" for t, n in zip(tail, tail_len, strict=True)]),
    )
    national = pd.Series(national).drop_duplicates()
    areas = rng.choice(np.array(area_codes), size=len(national))
    form = rng.integers(0, 10, size=len(national))
    written = np.where(
        form < 6,
        "0" + national,
        np.where(form < 8, "84" + national, "+84 " + national.str[:2] + " " + national.str[2:]),
    )
    labels = areas.astype(object)
    old_labels = old_labels or {}
    for i in np.flatnonzero(rng.random(len(areas)) < 0.1):
        choices = old_labels.get(str(areas[i]))
        if choices:
            labels[i] = choices[int(rng.integers(len(choices)))]
    frame = pd.DataFrame({"so_thue_bao": written, "ma_xa": labels})
    # The usual mess: a few duplicates and a few rows that are not numbers at all.
    mess = pd.DataFrame(
        {
            "so_thue_bao": [*list(frame["so_thue_bao"].iloc[:5]), "02393855555", "12345", "n/a"],
            "ma_xa": list(frame["ma_xa"].iloc[:5]) + [area_codes[0]] * 3,
        }
    )
    pd.concat([frame, mess]).to_csv(path, index=False, quoting=csv.QUOTE_MINIMAL)
    return pd.DataFrame({"msisdn": "84" + national, "area": areas})


def write_counts_csv(path: Path, lists: pd.DataFrame, *, seed: int, as_of: date) -> None:
    """Counts that do not quite match the lists: carriers count differently."""
    rng = np.random.default_rng(seed)
    per_area = lists.groupby("area").size()
    factor = rng.uniform(1.02, 1.15, size=len(per_area))
    counts = pd.DataFrame(
        {
            "ma_xa": per_area.index,
            "so_thue_bao": (per_area.to_numpy() * factor).astype(int),
            "ngay": as_of.isoformat(),
        }
    )
    counts.to_csv(path, index=False)


def demo_passwords(instance: Path) -> dict[str, str]:
    """The demo accounts' passwords, generated on first use and kept in the instance folder
    (mode 0600) so that every start can print them. Demo only: real accounts keep no copy."""
    store = instance / "demo-users.json"
    known: dict[str, str] = json.loads(store.read_text()) if store.exists() else {}
    for username, *_ in DEMO_USERS:
        known.setdefault(username, accounts.generate_password())
    instance.mkdir(parents=True, exist_ok=True)
    store.write_text(json.dumps(known, indent=2))
    os.chmod(store, 0o600)
    return known


def ensure_users(database: Database, known: dict[str, str]) -> list[DemoUser]:
    """Demo accounts, one per role (the admin is made by init_database)."""
    with database.session() as session:
        for username, role, carrier, name in DEMO_USERS:
            exists = session.scalar(select(User).where(User.username == username))
            if exists is None:
                accounts.create_user(
                    session,
                    username=username,
                    password=known[username],
                    role=role,
                    carrier_code=carrier,
                    display_name=name,
                    actor="loa demo",
                )
        if session.scalar(select(Brandname).where(Brandname.name == DEMO_BRANDNAME)) is None:
            session.add(Brandname(name=DEMO_BRANDNAME))
        if session.scalar(select(func.count(TestRecipient.id))) == 0:
            carriers = {c.code: c.id for c in session.scalars(select(Carrier))}
            for i, (code, number) in enumerate(
                [
                    ("viettel", "84981000001"),
                    ("vinaphone", "84911000002"),
                    ("mobifone", "84901000003"),
                ]
            ):
                session.add(
                    TestRecipient(
                        msisdn=number, carrier_id=carriers[code], name=f"Test phone {i + 1}"
                    )
                )
                session.add(  # the same phones take part in drills (the drill group)
                    TestRecipient(
                        msisdn=number,
                        carrier_id=carriers[code],
                        name=f"Drill phone {i + 1}",
                        kind=RecipientGroup.DRILL,
                    )
                )
    return [
        DemoUser(username, role.value, known.get(username, "(set before this demo)"))
        for username, role, _carrier, _name in DEMO_USERS
    ]


def needs_subscribers(database: Database) -> bool:
    with database.session() as session:
        active = session.scalar(
            select(func.count(SubscriberList.id)).where(SubscriberList.status == ListStatus.ACTIVE)
        )
    return not active


def area_codes(database: Database) -> list[str]:
    """The current communes, wards and special zones: where carriers place their subscribers."""
    with database.session() as session:
        return list(
            session.scalars(
                select(Area.code).where(Area.level != "province", Area.retired_at.is_(None))
            )
        )


def old_labels_by_commune(settings: Settings) -> dict[str, list[str]]:
    """New commune code → the old codes and names that map to it alone (no splits)."""
    path = settings.areas.old_labels_file
    out: dict[str, list[str]] = {}
    for label in read_old_labels(path) if path is not None else []:
        if len(label.new_codes) == 1:
            out.setdefault(label.new_codes[0], []).extend([label.code, label.name])
    return out


def build_files(
    settings: Settings, database: Database, folder: Path, total: int
) -> list[tuple[str, Path, Path]]:
    """Write a list file and a counts file per carrier; returns (carrier, list, counts)."""
    folder.mkdir(parents=True, exist_ok=True)
    prefixes = _prefixes(settings)
    codes = area_codes(database)
    old_labels = old_labels_by_commune(settings)
    today = datetime.now(ZoneInfo(settings.timezone)).date()  # the province's day, as imports
    out = []
    for seed, (carrier, share) in enumerate(SHARES.items(), start=1):
        if carrier not in settings.carrier_codes:
            continue
        list_path = folder / f"{carrier}-subscribers.csv"
        counts_path = folder / f"{carrier}-counts.csv"
        clean = generate_list_csv(
            list_path,
            carrier=carrier,
            count=max(50, int(total * share)),
            prefixes=prefixes[carrier],
            area_codes=codes,
            seed=seed,
            old_labels=old_labels,
        )
        write_counts_csv(counts_path, clean, seed=seed + 100, as_of=today)
        out.append((carrier, list_path, counts_path))
    return out
