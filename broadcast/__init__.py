"""Loa's core: settings, storage, alert rules and audience. No Flask, no RQ (see DESIGN.md)."""
