"""The exception family of the broadcast core. The web and CLI turn these into clear messages."""

from __future__ import annotations

from typing import Any


class Reason(str):
    """A sentence of a refusal: English text that also carries a stable `key` and the `params`
    it was made from, so that the web layer can say it again in the reader's language.

    It is a `str` (the English), so messages, details and logs keep working unchanged; the
    English template uses %-style names, `Reason("carrier_unknown", "unknown carrier
    %(carrier)r", carrier="xyz")`. Parameters are plain values (numbers, dates, lists, codes)
    for the reader's side to format."""

    key: str
    params: dict[str, Any]

    def __new__(cls, key: str, english: str, /, **params: Any) -> Reason:
        shown = {
            name: ", ".join(map(str, value)) if isinstance(value, list | tuple) else value
            for name, value in params.items()
        }
        made = super().__new__(cls, english % shown if params else english)
        made.key = key
        made.params = params
        return made

    def __reduce__(self) -> tuple[Any, ...]:
        return (_reason, (self.key, str(self), self.params))


def _reason(key: str, text: str, params: dict[str, Any]) -> Reason:
    made = str.__new__(Reason, text)
    made.key = key
    made.params = params
    return made


class LoaError(Exception):
    """Root of Loa's own errors; its message is meant for the person who caused it.

    A message (and each detail) that is a `Reason` carries its key and parameters: the
    console and the API say it in the reader's language from them."""

    code = "error"

    @property
    def reason(self) -> Reason | None:
        """The message as a Reason, when the core gave one."""
        message = getattr(self, "message", None) or (self.args[0] if self.args else None)
        return message if isinstance(message, Reason) else None


class ConfigError(LoaError):
    """A configuration file or LOA_* variable is missing or malformed; names the key."""

    code = "config_error"


class NotFound(LoaError):
    code = "not_found"


class PermissionDenied(LoaError):
    code = "forbidden"


class InvalidTransition(LoaError):
    """An alert cannot move from its current state by the action asked."""

    code = "invalid_transition"


class ValidationFailed(LoaError):
    """Input was refused; `details` maps field names to messages."""

    code = "validation_failed"

    def __init__(self, message: str, details: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def __str__(self) -> str:
        if not self.details:
            return self.message
        parts = "; ".join(
            f"{field}: {', '.join(map(str, msgs))}" for field, msgs in self.details.items()
        )
        return f"{self.message} ({parts})"


class VersionChanged(LoaError):
    """The alert changed after the approver read it: an approval names the version it read."""

    code = "version_changed"

    def __init__(self, alert_id: int, read: int, current: int) -> None:
        super().__init__(
            Reason(
                "version_changed",
                "alert %(alert)s is now version %(current)s, not version %(read)s that was read; "
                "read it again before deciding",
                alert=alert_id,
                current=current,
                read=read,
            )
        )
        self.read = read
        self.current = current
        self.details = {
            "version": [
                Reason(
                    "version_read", "read %(read)s, current %(current)s", read=read, current=current
                )
            ]
        }
