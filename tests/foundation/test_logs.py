"""Structured logs: one JSON object per line when log_format is json."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from broadcast.logs import configure_logging
from broadcast.settings import load_settings


def test_json_lines_keep_extra_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings({"LOA_LOG_FORMAT": "json", "LOA_INSTANCE_PATH": str(tmp_path)})
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        configure_logging(settings, process="test")
        logging.getLogger("loa.test").warning(
            "batch sent", extra={"carrier": "viettel", "sent": 500}
        )
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    entry = json.loads(line)
    assert entry["msg"] == "batch sent"
    assert entry["level"] == "WARNING"
    assert entry["carrier"] == "viettel"
    assert entry["sent"] == 500


def test_text_format_names_the_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings({"LOA_INSTANCE_PATH": str(tmp_path)})
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        configure_logging(settings, process="loa-web")
        logging.getLogger("loa.test").info("ready")
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    assert "loa-web[" in capsys.readouterr().err
