"""One exception family for the gateway, so callers can catch `GatewayError` and nothing else."""

from __future__ import annotations


class GatewayError(Exception):
    """Root of every error the gateway raises (link down for too long, misuse, bad input)."""


class BindError(GatewayError):
    """The SMSC could not be reached or refused the bind; retrying with the same settings won't help
    (wrong credentials) or may help later (refused port): the message says which."""

    def __init__(self, message: str, *, command_status: int | None = None) -> None:
        super().__init__(message)
        self.command_status = command_status


class EncodingError(GatewayError, ValueError):
    """Input that can never be sent (empty text, more than 255 parts, bad sender): raised before
    anything goes on the wire so that no half-sent message exists."""
