"""Alert text templates, Vietnamese first with English, including correction and all-clear.

A false alert must be correctable in one click (DOMAIN.md: Hawaii 2018), so the correction and
the all-clear are templates `derive` fills from the original alert. Texts are short on purpose:
who sends it, what happened, what to do, where to learn more; one or two UCS-2 parts.
Placeholders use str.format names; a missing value renders as an empty string, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Formatter
from typing import Any

from broadcast.errors import NotFound
from broadcast.models import AlertCategory

LANGUAGES = ("vi", "en")


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


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def _fill(text: str, values: dict[str, Any]) -> str:
    filled = text.format_map(_Blank(values))
    return " ".join(filled.split())  # collapse gaps left by empty placeholders


def get(key: str) -> Template:
    try:
        return TEMPLATES[key]
    except KeyError:
        raise NotFound(f"unknown template {key!r}; known: {', '.join(TEMPLATES)}") from None


def render(key: str, *, language: str = "vi", **values: Any) -> dict[str, str]:
    """Title, body and instruction of a template in one language, placeholders filled."""
    if language not in LANGUAGES:
        raise NotFound(f"unknown language {language!r}; known: {', '.join(LANGUAGES)}")
    template = get(key)
    instruction = values.get("instruction") or _fill(template.instruction[language], values)
    values = {**values, "instruction": instruction}
    return {
        "title": _fill(template.title[language], values),
        "body": _fill(template.body[language], values),
        "instruction": instruction,
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
        }
        for t in TEMPLATES.values()
    ]
