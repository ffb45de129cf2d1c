"""Alert text templates, Vietnamese first with English, including correction and all-clear.

A false alert must be correctable in one click (DOMAIN.md: Hawaii 2018), so the correction and
the all-clear are templates `derive` fills from the original alert. Texts are short on purpose:
who sends it, what happened, what to do, where to learn more; one or two UCS-2 parts.
Placeholders use str.format names. A value not given renders as a visible marker, `[[địa bàn]]`,
never as a silent blank: "Sơ tán ngay khỏi . Đến ." reads like a finished text to a tired
approver at night, a marker does not, and `validate_draft` refuses any text still holding one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from string import Formatter
from typing import Any

from broadcast.errors import NotFound, Reason
from broadcast.models import AlertCategory
from broadcast.replies import DEFAULT_KEYWORDS, ReplyKeyword

LANGUAGES = ("vi", "en")

# What a drafter is asked to write in place of each placeholder (shown inside the marker).
FIELD_LABELS: dict[str, dict[str, str]] = {
    "sender": {"vi": "đơn vị gửi", "en": "sender"},
    "name": {"vi": "tên bão", "en": "storm name"},
    "area": {"vi": "địa bàn", "en": "area"},
    "time": {"vi": "thời gian", "en": "time"},
    "place": {"vi": "nơi đến", "en": "destination"},
    "subject": {"vi": "nội dung", "en": "subject"},
    "web": {"vi": "trang web", "en": "web address"},
}
# A marker: two brackets round a short label. Alert texts never need `[[` otherwise.
PLACEHOLDER_RE = re.compile(r"\[\[[^\[\]\n]{1,60}\]\]")


def marker(name: str, language: str = "vi") -> str:
    """The visible stand-in for a placeholder nobody filled yet."""
    label = FIELD_LABELS.get(name, {}).get(language, name)
    return f"[[{label}]]"


def unfilled(text: str) -> list[str]:
    """The placeholder markers still in a text, in order, each once."""
    return list(dict.fromkeys(PLACEHOLDER_RE.findall(text or "")))


@dataclass(frozen=True)
class Template:
    key: str
    category: AlertCategory
    name: dict[str, str]
    title: dict[str, str]
    body: dict[str, str]
    instruction: dict[str, str]
    event: str = ""
    urgency: str = "Unknown"
    severity: str = "Unknown"
    certainty: str = "Unknown"
    # What people may text back; a test message or a notice asks nothing.
    reply_keywords: tuple[ReplyKeyword, ...] = DEFAULT_KEYWORDS

    @property
    def fields(self) -> tuple[str, ...]:
        """Placeholder names the console asks for."""
        names: dict[str, None] = {}
        for texts in (self.title, self.body, self.instruction):
            for text in texts.values():
                for _, name, _, _ in Formatter().parse(text):
                    if name:
                        names[name] = None
        return tuple(names)


def _t(**kw: Any) -> Template:
    return Template(**kw)


TEMPLATES: dict[str, Template] = {
    t.key: t
    for t in (
        _t(
            key="storm",
            category=AlertCategory.WARNING,
            name={"vi": "Cảnh báo bão", "en": "Storm warning"},
            title={"vi": "Cảnh báo bão {name}", "en": "Storm warning: {name}"},
            body={
                "vi": "{sender}: Bão {name} dự kiến đổ bộ {area} vào {time}. {instruction} "
                "Chi tiết: {web}",
                "en": "{sender}: Storm {name} expected to reach {area} at {time}. {instruction} "
                "More: {web}",
            },
            instruction={
                "vi": "Chằng chống nhà cửa, không ra biển, chuẩn bị sơ tán khi có lệnh.",
                "en": "Secure your home, stay off the sea, be ready to evacuate when told.",
            },
            event="Bão / Storm",
            urgency="Expected",
            severity="Severe",
            certainty="Likely",
        ),
        _t(
            key="flood",
            category=AlertCategory.WARNING,
            name={"vi": "Cảnh báo lũ", "en": "Flood warning"},
            title={"vi": "Cảnh báo lũ tại {area}", "en": "Flood warning for {area}"},
            body={
                "vi": "{sender}: Nguy cơ lũ, ngập lụt tại {area} từ {time}. {instruction} "
                "Chi tiết: {web}",
                "en": "{sender}: Flood risk in {area} from {time}. {instruction} More: {web}",
            },
            instruction={
                "vi": "Di chuyển người, tài sản lên nơi cao; không qua ngầm, tràn.",
                "en": "Move people and goods to high ground; do not cross flooded roads.",
            },
            event="Lũ / Flood",
            urgency="Expected",
            severity="Severe",
            certainty="Likely",
        ),
        _t(
            key="evacuate",
            category=AlertCategory.EMERGENCY,
            name={"vi": "Lệnh sơ tán khẩn cấp", "en": "Emergency evacuation"},
            title={"vi": "KHẨN CẤP: sơ tán {area}", "en": "EMERGENCY: evacuate {area}"},
            body={
                "vi": "{sender} KHẨN CẤP: Sơ tán ngay khỏi {area}. Đến {place}. {instruction}",
                "en": "{sender} EMERGENCY: Leave {area} now. Go to {place}. {instruction}",
            },
            instruction={
                "vi": "Mang giấy tờ, thuốc men; giúp người già, trẻ em.",
                "en": "Take documents and medicine; help the elderly and children.",
            },
            event="Sơ tán / Evacuation",
            urgency="Immediate",
            severity="Extreme",
            certainty="Observed",
        ),
        _t(
            key="information",
            category=AlertCategory.INFORMATION,
            name={"vi": "Thông báo", "en": "Notice"},
            title={"vi": "Thông báo: {subject}", "en": "Notice: {subject}"},
            body={
                "vi": "{sender}: {subject}. Chi tiết: {web}",
                "en": "{sender}: {subject}. More: {web}",
            },
            instruction={"vi": "", "en": ""},
            reply_keywords=(),
        ),
        _t(
            key="test",
            category=AlertCategory.TEST,
            name={"vi": "Tin thử nghiệm", "en": "Test message"},
            title={"vi": "Thử nghiệm hệ thống", "en": "System test"},
            body={
                "vi": "{sender}: Đây là tin THỬ NGHIỆM, không phải cảnh báo thật. "
                "Không cần làm gì.",
                "en": "{sender}: This is a TEST, not a real alert. No action needed.",
            },
            instruction={"vi": "Không cần làm gì.", "en": "No action needed."},
            reply_keywords=(),
        ),
        # The three below are filled by `derive` from the original alert. An update restates
        # the original's instruction and keeps its CAP assessment; a correction or an all-clear
        # says the hazard is over, so it has its own instruction and assessment.
        _t(
            key="update",
            category=AlertCategory.WARNING,
            name={"vi": "Cập nhật", "en": "Update"},
            title={"vi": "Cập nhật: {title}", "en": "Update: {title}"},
            body={
                "vi": "{sender} CẬP NHẬT tin lúc {sent}: {body}",
                "en": "{sender} UPDATE to the alert of {sent}: {body}",
            },
            instruction={"vi": "{original_instruction}", "en": "{original_instruction}"},
        ),
        _t(
            key="correction",
            category=AlertCategory.WARNING,
            name={"vi": "Đính chính", "en": "Correction"},
            title={"vi": "Đính chính: {title}", "en": "Correction: {title}"},
            body={
                "vi": '{sender} ĐÍNH CHÍNH: Tin "{title}" lúc {sent} đã gửi NHẦM. '
                "Không cần làm theo tin đó.",
                "en": '{sender} CORRECTION: the alert "{title}" of {sent} was sent in ERROR. '
                "Disregard it.",
            },
            instruction={
                "vi": "Không cần làm theo tin trước.",
                "en": "Disregard the earlier alert.",
            },
            # CAP: no action needed any more (Past) for a hazard not expected at all (Unlikely).
            urgency="Past",
            severity="Minor",
            certainty="Unlikely",
        ),
        _t(
            key="all_clear",
            category=AlertCategory.WARNING,
            name={"vi": "Hết nguy hiểm", "en": "All clear"},
            title={"vi": "Hết nguy hiểm: {title}", "en": "All clear: {title}"},
            body={
                "vi": '{sender}: Tình huống "{title}" (tin lúc {sent}) đã kết thúc. '
                "Người dân trở lại sinh hoạt bình thường, tiếp tục theo dõi thông tin.",
                "en": '{sender}: The situation "{title}" (alert of {sent}) is over. '
                "Return to normal activities and keep following the news.",
            },
            instruction={
                "vi": "Trở lại sinh hoạt bình thường.",
                "en": "Return to normal activities.",
            },
            # CAP: no action needed any more (Past) for a hazard seen to be over (Observed).
            urgency="Past",
            severity="Minor",
            certainty="Observed",
        ),
    )
}


class _Marked(dict[str, Any]):
    """Values for str.format_map: a placeholder not given becomes its visible marker."""

    def __init__(self, values: dict[str, Any], language: str) -> None:
        super().__init__(values)
        self.language = language

    def __missing__(self, key: str) -> str:
        return marker(key, self.language)


def _fill(text: str, values: dict[str, Any], language: str) -> str:
    filled = text.format_map(_Marked(values, language))
    return " ".join(filled.split())  # collapse gaps left by values given as empty


def get(key: str) -> Template:
    try:
        return TEMPLATES[key]
    except KeyError:
        raise NotFound(
            Reason(
                "template_unknown",
                "unknown template %(template)r; known: %(known)s",
                template=key,
                known=list(TEMPLATES),
            )
        ) from None


def render(key: str, *, language: str = "vi", **values: Any) -> dict[str, str]:
    """Title, body and instruction of a template in one language, placeholders filled (those
    not given are marked, see `marker`)."""
    if language not in LANGUAGES:
        raise NotFound(
            Reason(
                "language_unknown",
                "unknown language %(language)r; known: %(known)s",
                language=language,
                known=list(LANGUAGES),
            )
        )
    template = get(key)
    instruction = values.get("instruction") or _fill(
        template.instruction[language], values, language
    )
    values = {**values, "instruction": instruction}
    return {
        "title": _fill(template.title[language], values, language),
        "body": _fill(template.body[language], values, language),
        "instruction": instruction,
    }


def prefill(key: str, *, language: str = "vi", **values: Any) -> dict[str, Any]:
    """A new draft's starting values from a template: its text (see `render`) and its category
    and CAP assessment, so the evacuation template starts as an emergency."""
    template = get(key)
    return {
        **render(key, language=language, **values),
        "category": template.category.value,
        "event": template.event,
        "urgency": template.urgency,
        "severity": template.severity,
        "certainty": template.certainty,
        "reply_keywords": [k.as_dict() for k in template.reply_keywords],
    }


def catalogue(language: str = "vi") -> list[dict[str, Any]]:
    """What the console lists in its template picker (JSON-able)."""
    return [
        {
            "key": t.key,
            "name": t.name.get(language, t.name["vi"]),
            "category": t.category.value,
            "fields": list(t.fields),
            "event": t.event,
            "urgency": t.urgency,
            "severity": t.severity,
            "certainty": t.certainty,
            "reply_keywords": [k.as_dict() for k in t.reply_keywords],
        }
        for t in TEMPLATES.values()
    ]
