"""Alerts API: lands with broadcast.alerts."""

from __future__ import annotations
