"""Vietnamese first, English second. Source strings are English; the vi catalogue is shipped
as a .po file and compiled into the instance folder at start-up when missing or stale, so a
plain `pip install -e .` (no build step) gives a translated console.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, request, session
from flask_babel import Babel
from flask_login import current_user

SOURCE = Path(__file__).resolve().parent / "translations"
LOCALES = ("vi", "en")

babel = Babel()


def compile_catalogues(target: Path, source: Path = SOURCE) -> Path:
    """Compile every <locale>/LC_MESSAGES/*.po under `source` into `target`; returns target."""
    for po_path in source.glob("*/LC_MESSAGES/*.po"):
        relative = po_path.relative_to(source).with_suffix(".mo")
        mo_path = target / relative
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        with po_path.open("rb") as fh:
            catalog = read_po(fh, locale=relative.parts[0])
        tmp = mo_path.with_suffix(".mo.tmp")
        with tmp.open("wb") as fh:
            write_mo(fh, catalog)
        tmp.replace(mo_path)
    return target


def select_locale() -> str:
    from broadcast.web.context import services

    chosen = session.get("locale") if request else None
    if chosen in LOCALES:
        return chosen
    if getattr(current_user, "via_token", False):  # an API caller may ask for its language
        asked = request.accept_languages.best_match(LOCALES) if request.accept_languages else None
        if asked:
            return asked
    user_locale = getattr(current_user, "locale", "")
    if user_locale in LOCALES:
        return user_locale
    return services().settings.web.default_locale


def init_i18n(app: Flask, instance_path: Path) -> None:
    compiled = compile_catalogues(instance_path / "translations")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(compiled)
    app.config["BABEL_DEFAULT_LOCALE"] = "en"
    babel.init_app(app, locale_selector=select_locale, timezone_selector=lambda: "UTC")
