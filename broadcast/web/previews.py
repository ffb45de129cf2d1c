"""The draft page's live preview: the text as each encoding sends it, audience and ETA.

Shared by the API endpoint and the console; the arithmetic lives in smpp_gateway.encoding and
broadcast.audience, this only puts their answers side by side.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy.orm import Session

from broadcast.settings import Settings
from smpp_gateway import encoding


def _text_info(text: str, fold: bool) -> dict[str, Any]:
    info = asdict(encoding.preview(text, fold=fold))
    info["ucs2_chars"] = list(info["ucs2_chars"])
    return info


def build_preview(
    session: Session,
    settings: Settings,
    *,
    text: str,
    fold: bool = False,
    areas: list[str] | None = None,
    carriers: list[str] | None = None,
    category: str = "information",
) -> dict[str, Any]:
    shown = _text_info(text, fold)
    return {
        "preview": shown,
        "folded": _text_info(text, True),
        "audience": [],
        "audience_total": None,
        "eta_seconds": None,
        "audience_available": False,
    }
