"""The exception family of the broadcast core. The web and CLI turn these into clear messages."""

from __future__ import annotations


class LoaError(Exception):
    """Root of Loa's own errors; its message is meant for the person who caused it."""

    code = "error"


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
            f"alert {alert_id} is now version {current}, not version {read} that was read; "
            "read it again before deciding"
        )
        self.read = read
        self.current = current
        self.details = {"version": [f"read {read}, current {current}"]}
