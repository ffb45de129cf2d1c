"""The rules every text a person types must pass, whichever door it comes in by (API, console,
CLI): a maximum length equal to its database column, no control characters, no text made only
of invisible characters, and no bidirectional controls in what the public reads.

Why bidi controls: U+202E (right-to-left override) and its kin make an SMS or a title display
in another order than the characters stored and approved, so the approver could approve one
message and the public read another. Vietnamese needs none of them.

Pure functions, no I/O; the marshmallow schemas of the API and the core services both call
`problems()` with the same `TextRule`, so a limit is stated once (the constants below).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from broadcast.errors import Reason

# U+202A–U+202E embeddings and overrides, U+2066–U+2069 isolates, U+200E/U+200F marks,
# U+061C the Arabic letter mark.
BIDI_CONTROLS = frozenset(
    [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
    + ["\u200e", "\u200f", "\u061c"]
)
# Characters that draw nothing although Unicode does not class them as format or space.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e")
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp", "Mn", "Me"})
_ALLOWED_CONTROLS_MULTILINE = frozenset("\n\r\t")


@dataclass(frozen=True)
class TextRule:
    """What one field accepts. `max_length` counts code points, as the database columns do."""

    max_length: int
    required: bool = False  # must have at least one visible character
    multiline: bool = False  # newlines and tabs allowed
    public: bool = False  # read by the public (SMS, CAP): no bidi controls


def is_visible(char: str) -> bool:
    return unicodedata.category(char) not in _INVISIBLE_CATEGORIES and char not in _BLANK_LETTERS


def problems(value: str, rule: TextRule) -> list[str]:
    """Why `value` is refused under `rule` (empty when it is fine), in words for the sender."""
    found: list[str] = []
    if len(value) > rule.max_length:
        found.append(
            Reason(
                "text_too_long",
                "%(length)s characters; at most %(most)s",
                length=len(value),
                most=rule.max_length,
            )
        )
    allowed = _ALLOWED_CONTROLS_MULTILINE if rule.multiline else frozenset()
    controls = sorted(
        {c for c in value if unicodedata.category(c) in ("Cc", "Cs") and c not in allowed}
    )
    if controls:
        found.append(
            Reason(
                "text_controls",
                "control characters not allowed: %(chars)s",
                chars=[_name(c) for c in controls],
            )
        )
    if rule.public:
        bidi = sorted(set(value) & BIDI_CONTROLS)
        if bidi:
            found.append(
                Reason(
                    "text_bidi",
                    "bidirectional control characters change the order the text is read in; "
                    "remove %(chars)s",
                    chars=[_name(c) for c in bidi],
                )
            )
    if rule.required and not value.strip():
        found.append(Reason("text_required", "is required"))
    elif rule.required and not any(is_visible(c) for c in value):
        found.append(Reason("text_invisible", "has only invisible characters; type visible text"))
    return found


def _name(char: str) -> str:
    return f"U+{ord(char):04X}"


# One rule per field a person types; max_length equals the column in broadcast/models.py
# (Text columns get a limit here only). docs/console.md lists them.
TITLE = TextRule(200, required=True, public=True)
SMS_BODY = TextRule(5000, required=True, multiline=True, public=True)
SMS_PREVIEW = TextRule(5000, multiline=True, public=True)  # the draft page previews "" too
EVENT = TextRule(200, public=True)
INSTRUCTION = TextRule(2000, multiline=True, public=True)
WEB = TextRule(500)
REASON = TextRule(1000, required=True, multiline=True)
NETWORK_NOTE = TextRule(1000, multiline=True)
USERNAME = TextRule(80, required=True)
DISPLAY_NAME = TextRule(200)
PASSWORD = TextRule(256)
TOKEN_NAME = TextRule(120, required=True)
BRANDNAME = TextRule(11, required=True)
RECIPIENT_NAME = TextRule(200)
MSISDN = TextRule(32, required=True)
CODE = TextRule(32, required=True)
FILENAME = TextRule(255, required=True)
SHEET = TextRule(100)
