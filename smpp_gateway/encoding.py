"""SMS encoding, splitting and preview: pure functions, no I/O.

The console previews on every keystroke and the sender splits every message, so everything
here is table driven (`str.translate`, set checks) and only loops per character when a text
needs more than one part.

GSM 03.38 text is carried unpacked in short_message (one octet per septet, as SMPP expects);
`Part.air_octets` gives the size on the air interface, which is what the 140-octet limit is about.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from smpp_gateway.errors import EncodingError

GSM7 = "gsm7"
UCS2 = "ucs2"

DC_UCS2 = 0x08
DC_LATIN1 = 0x03
ESM_UDHI = 0x40
MAX_PARTS = 255

# GSM 03.38 basic table, index = septet value; 0x1B is the escape and is not a character.
_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
assert len(_BASIC) == 128
_EXTENSION = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D,
              "]": 0x3E, "|": 0x40, "€": 0x65}  # fmt: skip

GSM_BASIC = frozenset(_BASIC) - {"\x1b"}
GSM_EXTENSION = frozenset(_EXTENSION)
GSM_CHARS = GSM_BASIC | GSM_EXTENSION

# char -> its unpacked septets as a latin-1 string, so encoding is one translate + encode.
_TO_SEPTETS = {ord(c): chr(i) for i, c in enumerate(_BASIC) if c != "\x1b"}
_TO_SEPTETS.update({ord(c): "\x1b" + chr(v) for c, v in _EXTENSION.items()})
_FROM_BASIC = dict(enumerate(_BASIC))
_FROM_EXTENSION = {v: c for c, v in _EXTENSION.items()}

# (single part, per part when concatenated) in units, per concatenation method.
_CAPACITY = {
    (GSM7, "udh"): (160, 153),
    (GSM7, "udh16"): (160, 152),
    (GSM7, "sar"): (160, 153),
    (GSM7, "payload"): (160, 153),
    (UCS2, "udh"): (70, 67),
    (UCS2, "udh16"): (70, 66),
    (UCS2, "sar"): (70, 67),
    (UCS2, "payload"): (70, 67),
}


def _build_fold_table() -> dict[int, str | None]:
    """Vietnamese "không dấu": strip marks from letters (đ/Đ need their own entry, NFD leaves
    them), and turn typographic punctuation into its GSM look-alike."""
    keep = set("ÄÖÑÜäöñüÅåÇÆæØøß")  # GSM letters that are not Vietnamese: leave them be
    table: dict[int, str | None] = {}
    for cp in [*range(0x00C0, 0x0250), *range(0x1E00, 0x1F00)]:
        ch = chr(cp)
        if ch in keep:
            continue
        base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
        if base and base != ch and base.isascii() and set(base) <= GSM_CHARS:
            table[cp] = base
    for cp in range(0x0300, 0x0370):  # stray combining marks left after NFC
        table[cp] = None
    extra = {
        "đ": "d", "Đ": "D", "ð": "d", "Ð": "D",
        "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "´": "'", "`": "'",
        "“": '"', "”": '"', "„": '"', "‟": '"', "″": '"', "«": '"', "»": '"',
        "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "―": "-", "−": "-",
        "…": "...", "•": "-", "·": ".", "\t": " ",
        "\u00a0": " ", "\u2002": " ", "\u2003": " ", "\u2009": " ", "\u202f": " ",
        "\u200b": None, "\ufeff": None,
    }  # fmt: skip
    table.update({ord(k): v for k, v in extra.items()})
    return table


_FOLD = _build_fold_table()


@dataclass(frozen=True)
class Preview:
    """What the console shows while an alert is typed."""

    text: str
    encoding: str
    units: int
    parts: int
    chars_left: int
    ucs2_chars: tuple[str, ...]


@dataclass(frozen=True)
class Part:
    """One submit_sm worth of a message.

    `tlvs` uses smpplib's optional-parameter names (sar_*, message_payload) so the session can
    pass them straight to smpplib's SubmitSM.
    """

    short_message: bytes
    data_coding: int
    esm_class: int
    text: str
    units: int
    udh: bytes = b""
    tlvs: tuple[tuple[str, int | bytes], ...] = field(default=())

    @property
    def air_octets(self) -> int:
        """User data octets on the air interface (UDH included): never more than 140."""
        if self.data_coding == DC_UCS2:
            return len(self.udh) + 2 * self.units
        if not self.udh:
            return -(-self.units * 7 // 8)
        udh_septets = -(-len(self.udh) * 8 // 7)  # the UDH is padded to a septet boundary
        return -(-(udh_septets + self.units) * 7 // 8)


def is_gsm7(text: str) -> bool:
    """True if every character is in the GSM 03.38 basic or extension table."""
    return GSM_CHARS.issuperset(text)


def fold(text: str) -> str:
    """Turn text into GSM 7-bit where possible: Vietnamese without diacritics, plain punctuation.

    Characters with no GSM look-alike (emoji, CJK) are left as they are, so the result may still
    need UCS-2; `preview(..., fold=True).ucs2_chars` names them.
    """
    return unicodedata.normalize("NFC", text).translate(_FOLD)


_fold = fold


def gsm_encode(text: str) -> bytes:
    """Unpacked GSM 03.38 septets (extension characters as escape pairs)."""
    if not is_gsm7(text):
        bad = "".join(dict.fromkeys(c for c in text if c not in GSM_CHARS))
        raise EncodingError(f"not GSM 7-bit: {bad!r}")
    return text.translate(_TO_SEPTETS).encode("latin-1")


def gsm_decode(data: bytes) -> str:
    """Inverse of `gsm_encode`; an escape followed by an unknown code decodes as the basic char."""
    out: list[str] = []
    escape = False
    for b in data:
        if escape:
            out.append(_FROM_EXTENSION.get(b, _FROM_BASIC.get(b, "?")))
            escape = False
        elif b == 0x1B:
            escape = True
        else:
            out.append(_FROM_BASIC.get(b, "?"))
    return "".join(out)


def _units(text: str, encoding: str) -> int:
    if encoding == GSM7:
        return len(text) + sum(text.count(c) for c in GSM_EXTENSION if c in text)
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def _chunks(text: str, encoding: str, cap: int) -> list[tuple[int, int, int]]:
    """Greedy cut into (start, end, units) of at most `cap` units; never splits an escape pair
    (GSM) or a surrogate pair (UCS-2), because each part must decode on its own."""
    wide = GSM_EXTENSION if encoding == GSM7 else None
    chunks: list[tuple[int, int, int]] = []
    start = 0
    used = 0
    for i, c in enumerate(text):
        w = (2 if c in wide else 1) if wide is not None else (2 if ord(c) > 0xFFFF else 1)
        if used + w > cap:
            chunks.append((start, i, used))
            start, used = i, 0
        used += w
    chunks.append((start, len(text), used))
    return chunks


def _layout(text: str, encoding: str, concatenation: str) -> tuple[int, list[tuple[int, int, int]]]:
    """(total units, chunks) for a text in a given encoding and concatenation method."""
    single, multi = _CAPACITY[(encoding, concatenation)]
    units = _units(text, encoding)
    if units <= single:
        return units, [(0, len(text), units)]
    return units, _chunks(text, encoding, multi)


def preview(text: str, *, fold: bool = False, concatenation: str = "udh") -> Preview:
    """Encoding, size and parts of a text as the sender would send it (well under 1 ms)."""
    if fold:
        text = _fold(text)
    gsm = is_gsm7(text)
    encoding = GSM7 if gsm else UCS2
    ucs2_chars = () if gsm else tuple(dict.fromkeys(c for c in text if c not in GSM_CHARS))
    single, multi = _CAPACITY[(encoding, concatenation)]
    if not text:
        return Preview(text, encoding, 0, 0, single, ucs2_chars)
    units, chunks = _layout(text, encoding, concatenation)
    cap = single if len(chunks) == 1 else multi
    return Preview(text, encoding, units, len(chunks), cap - chunks[-1][2], ucs2_chars)


def segments(text: str, *, concatenation: str = "udh") -> int:
    """How many SMS a text costs on the air (what a per-segment rate limit is charged)."""
    if not text:
        return 0
    encoding = GSM7 if is_gsm7(text) else UCS2
    return len(_layout(text, encoding, concatenation)[1])


def _encode_body(text: str, encoding: str, data_coding_gsm: int) -> tuple[bytes, int]:
    if encoding == UCS2:
        return text.encode("utf-16-be"), DC_UCS2
    if data_coding_gsm == DC_LATIN1:
        return text.encode("latin-1"), DC_LATIN1
    return gsm_encode(text), data_coding_gsm


def split(text: str, *, concatenation: str, reference: int, data_coding_gsm: int = 0) -> list[Part]:
    """Cut a text into the submit_sm bodies for one gateway.

    GSM text goes as unpacked septets with `data_coding_gsm` (0x00 or 0x01); with 0x03 it goes
    as Latin-1 octets when it can (sized by GSM rules, since the SMSC converts it) and as UCS-2
    otherwise. `reference` ties the parts together (8 bits for udh, 16 for udh16 and sar).
    Raises EncodingError for empty text or more than 255 parts, before anything is sent.
    """
    if not text:
        raise EncodingError("empty text: nothing to send")
    encoding = GSM7 if is_gsm7(text) else UCS2
    if encoding == GSM7 and data_coding_gsm == DC_LATIN1:
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            encoding = UCS2
    units, chunks = _layout(text, encoding, concatenation)
    total = len(chunks)
    if total > MAX_PARTS:
        raise EncodingError(f"text needs {total} parts; at most {MAX_PARTS} can be concatenated")
    if concatenation == "payload":
        body, dc = _encode_body(text, encoding, data_coding_gsm)
        tlvs: tuple[tuple[str, int | bytes], ...] = (("message_payload", body),)
        return [Part(b"", dc, 0, text, units, tlvs=tlvs)]
    parts: list[Part] = []
    for seq, (start, end, used) in enumerate(chunks, start=1):
        piece = text[start:end]
        body, dc = _encode_body(piece, encoding, data_coding_gsm)
        if total == 1:
            parts.append(Part(body, dc, 0, piece, used))
        elif concatenation == "udh":
            udh = bytes((0x05, 0x00, 0x03, reference & 0xFF, total, seq))
            parts.append(Part(udh + body, dc, ESM_UDHI, piece, used, udh=udh))
        elif concatenation == "udh16":
            ref = reference & 0xFFFF
            udh = bytes((0x06, 0x08, 0x04, ref >> 8, ref & 0xFF, total, seq))
            parts.append(Part(udh + body, dc, ESM_UDHI, piece, used, udh=udh))
        else:  # sar
            tlvs = (
                ("sar_msg_ref_num", reference & 0xFFFF),
                ("sar_total_segments", total),
                ("sar_segment_seqnum", seq),
            )
            parts.append(Part(body, dc, 0, piece, used, tlvs=tlvs))
    return parts


def decode(short_message: bytes, data_coding: int, esm_class: int = 0) -> str:
    """Text of one received part (UDH stripped): what a handset would show for it."""
    if esm_class & ESM_UDHI and short_message:
        short_message = short_message[1 + short_message[0] :]
    if data_coding == DC_UCS2:
        return short_message.decode("utf-16-be")
    if data_coding == DC_LATIN1:
        return short_message.decode("latin-1")
    return gsm_decode(short_message)


def validate_source(source: str) -> None:
    """Sender brandname rules (Decree 91/2020): at most 11 of Latin letters, digits, `-_.` and
    space, not all digits; a numeric sender is up to 20 digits. Empty means the SMSC default."""
    if not source:
        return
    if source.isdigit() and source.isascii():
        if len(source) > 20:
            raise EncodingError(f"numeric sender {source!r} is longer than 20 digits")
        return
    if len(source) > 11:
        raise EncodingError(f"sender brandname {source!r} is longer than 11 characters")
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_. ")
    bad = set(source) - allowed
    if bad:
        raise EncodingError(f"sender brandname {source!r} has invalid characters {sorted(bad)}")


def join(parts: Iterable[Part]) -> str:
    """The text a list of parts carries, read back from their bytes (for tests and checks)."""
    out = []
    for p in parts:
        for name, value in p.tlvs:
            if name == "message_payload":
                out.append(decode(bytes(value), p.data_coding))
                break
        else:
            out.append(decode(p.short_message, p.data_coding, p.esm_class))
    return "".join(out)
