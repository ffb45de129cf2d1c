"""Imports and coverage API: lands with subscriber_import."""

from __future__ import annotations
