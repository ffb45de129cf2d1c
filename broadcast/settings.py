"""Settings: read once at start-up into a frozen object and passed down.

Order: the embedded defaults in config/defaults.toml and config/carriers.toml, then the TOML
file named by LOA_CONFIG, then LOA_* environment variables. Validation is done by marshmallow
schemas so that every refusal names the key (``delivery.batch_size: Not a valid integer.``).
Nothing here reads the environment at import time.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate

from broadcast.errors import ConfigError
from smpp_gateway.config import GatewayConfig

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
DEV_SECRET_KEY = "dev-insecure-secret-change-me"  # noqa: S105 (refused in production)
CARRIER_CODES = ("viettel", "vinaphone", "mobifone", "vietnamobile", "gmobile", "itelecom", "reddi")
ENV_PREFIX = "LOA_"


@dataclass(frozen=True)
class CarrierSettings:
    code: str
    name: str
    mps: int
    binds: int
    window: int
    gateway: GatewayConfig  # the SMSC, as the SMPP client takes it (its window is `window`)
    enabled: bool = True
    # The gateway is the bundled SMSC simulator (`loa demo`): every console page says so.
    simulated: bool = False


@dataclass(frozen=True)
class ImportSettings:
    max_file_mb: int = 200
    max_rows: int = 5_000_000
    chunk_rows: int = 250_000
    retention_days: int = 30
    max_shrink: float = 0.2
    max_cells: int = 20_000_000
    max_unzipped_mb: int = 1000
    max_memory_mb: int = 4096
    max_seconds: float = 900.0
    # How long past max_seconds reconcile leaves an import `running` before it fails it as
    # abandoned: the time a live parent needs to stop its child and record why.
    abandoned_grace_seconds: float = 10.0


@dataclass(frozen=True)
class DeliverySettings:
    batch_size: int = 2000
    lease_seconds: int = 120
    max_attempts: int = 5
    retry_backoff_initial: float = 2.0
    retry_backoff_max: float = 300.0
    reconcile_interval: float = 60.0
    throttle_decrease: float = 0.5
    jitter_margin: float = 0.02
    catch_up_seconds: float = 0.25
    throttle_recovery_seconds: float = 60.0
    # The fan-out's chunks (subscriber positions per INSERT … SELECT, each committed and
    # enqueued before the next): a small first one per carrier, then big ones in turn.
    fan_out_first_rows: int = 2_000
    fan_out_chunk_rows: int = 50_000


@dataclass(frozen=True)
class ReplySettings:
    # A reply is attributed to the latest alert that reached its number this many hours back.
    window_hours: int = 72


@dataclass(frozen=True)
class PolicySettings:
    quiet_hours_start: str = "22:00"
    quiet_hours_end: str = "07:00"
    daily_cap: int = 3
    # An alert approved without an expiry expires this many hours after sending starts.
    default_validity_hours: int = 24


@dataclass(frozen=True)
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 5000
    login_attempts_per_minute: int = 5
    # Attempts on one username from devices it never logged in from, whatever their address,
    # per window: a guess spread over many addresses is slowed, and the user's own browser
    # (known by a signed cookie set at login) is never locked out.
    login_attempts_per_account: int = 20
    login_account_window_seconds: int = 900
    # A console session ends after this many hours whatever happens (absolute lifetime)…
    session_hours: int = 12
    # …and sooner when nobody used it for this many minutes (idle timeout).
    session_idle_minutes: int = 60
    # A new API token expires after this many days unless its owner asks otherwise; 0: never.
    token_expiry_days: int = 90
    # Reverse proxies in front of the app whose X-Forwarded-For / -Proto are believed (Werkzeug
    # ProxyFix); 0 trusts none, so a client cannot pick the address login throttling keys on.
    trusted_proxies: int = 0
    default_locale: str = "vi"
    # Bearer token Prometheus sends for /metrics; empty: open in development, refused in
    # production.
    metrics_token: str = ""
    max_body_kb: int = 1024
    upload_wait_max_seconds: float = 10.0
    upload_waiters: int = 2


@dataclass(frozen=True)
class AreaSettings:
    """The province Loa serves and where its area list and old-label mapping come from."""

    province: str = "42"
    file: Path | None = None  # None: the official list of `province` (vietnam-provinces)
    old_labels_dir: Path | None = None  # holds <province>.csv, the pre-2025 labels mapping

    @property
    def old_labels_file(self) -> Path | None:
        if self.old_labels_dir is None:
            return None
        path = self.old_labels_dir / f"{self.province}.csv"
        return path if path.is_file() else None


@dataclass(frozen=True)
class Settings:
    mode: str
    secret_key: str
    instance_path: Path
    database_url: str
    redis_url: str
    log_level: str
    log_format: str
    timezone: str
    config_dir: Path
    carriers_file: Path
    number_ranges_file: Path
    number_conversions_file: Path
    areas: AreaSettings
    imports: ImportSettings = field(default_factory=ImportSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    web: WebSettings = field(default_factory=WebSettings)
    carriers: tuple[CarrierSettings, ...] = ()
    replies: ReplySettings = field(default_factory=ReplySettings)

    @property
    def production(self) -> bool:
        return self.mode == "production"

    @property
    def embedded_redis(self) -> bool:
        return not self.redis_url

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the driver SQLAlchemy should use."""
        if not self.database_url:
            return f"sqlite:///{self.instance_path / 'loa.db'}"
        return normalise_database_url(self.database_url)

    def carrier(self, code: str) -> CarrierSettings:
        for carrier in self.carriers:
            if carrier.code == code:
                return carrier
        raise ConfigError(f"unknown carrier {code!r}; configured: {', '.join(self.carrier_codes)}")

    @property
    def rate_limits(self) -> dict[str, int]:
        """Each carrier's contracted segments per second (`mps`): the one source of a
        carrier's rate, for the senders, the ETA and the metrics alike."""
        return {c.code: c.mps for c in self.carriers}

    @property
    def simulated_carriers(self) -> tuple[CarrierSettings, ...]:
        """The enabled carriers whose gateway is the SMSC simulator: a demo, not a live service."""
        return tuple(c for c in self.carriers if c.enabled and c.simulated)

    @property
    def carrier_codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.carriers)


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever scheme the operator wrote."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


# --- schemas -------------------------------------------------------------------------------

_HHMM = validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", error="Expected HH:MM.")
_POSITIVE = validate.Range(min=1)
# Durations are bounded: a value past the end of its range would overflow the dates computed
# from it (reconcile, expiry, sessions) long after the setting was accepted.
_HOUR = 3600
_DAY = 24 * _HOUR


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class GatewaySchema(_Strict):
    host = fields.String(required=True, validate=validate.Length(min=1))
    port = fields.Integer(required=True, strict=False, validate=validate.Range(min=1, max=65535))
    system_id = fields.String(required=True, validate=validate.Length(min=1, max=15))
    password = fields.String(required=True, validate=validate.Length(max=8 * 8))
    system_type = fields.String(load_default="")
    bind_mode = fields.String(
        load_default="transceiver",
        validate=validate.OneOf(["transceiver", "transmitter", "receiver"]),
    )
    source_addr = fields.String(load_default="")
    source_addr_ton = fields.Integer(load_default=5, validate=validate.Range(min=0, max=6))
    source_addr_npi = fields.Integer(load_default=0, validate=validate.Range(min=0, max=18))
    dest_addr_ton = fields.Integer(load_default=1, validate=validate.Range(min=0, max=6))
    dest_addr_npi = fields.Integer(load_default=1, validate=validate.Range(min=0, max=18))
    data_coding_gsm = fields.Integer(load_default=0, validate=validate.OneOf([0, 1, 3]))
    concatenation = fields.String(
        load_default="udh", validate=validate.OneOf(["udh", "udh16", "sar", "payload"])
    )
    receipt_id_format = fields.String(
        load_default="hex", validate=validate.OneOf(["hex", "dec", "as_is"])
    )
    enquire_link_interval = fields.Float(
        load_default=30.0, validate=validate.Range(min=1, max=_HOUR)
    )
    response_timeout = fields.Float(load_default=10.0, validate=validate.Range(min=0.1, max=600))

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> GatewayConfig:
        return GatewayConfig(**data)


class CarrierSchema(_Strict):
    name = fields.String(required=True, validate=validate.Length(min=1))
    mps = fields.Integer(required=True, validate=_POSITIVE)
    binds = fields.Integer(load_default=1, validate=validate.Range(min=1, max=64))
    window = fields.Integer(load_default=10, validate=validate.Range(min=1, max=1000))
    enabled = fields.Boolean(load_default=True)
    simulated = fields.Boolean(load_default=False)
    gateway = fields.Nested(GatewaySchema, required=True)


class ImportSchema(_Strict):
    max_file_mb = fields.Integer(validate=_POSITIVE)
    max_rows = fields.Integer(validate=_POSITIVE)
    chunk_rows = fields.Integer(validate=validate.Range(min=1000))
    retention_days = fields.Integer(validate=validate.Range(min=0, max=3650))
    max_shrink = fields.Float(validate=validate.Range(min=0.0, max=1.0))
    max_cells = fields.Integer(validate=_POSITIVE)
    max_unzipped_mb = fields.Integer(validate=_POSITIVE)
    max_memory_mb = fields.Integer(validate=validate.Range(min=256))
    max_seconds = fields.Float(validate=validate.Range(min=0.1, max=_DAY))
    abandoned_grace_seconds = fields.Float(validate=validate.Range(min=0, max=_HOUR))

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> ImportSettings:
        return ImportSettings(**data)


class DeliverySchema(_Strict):
    batch_size = fields.Integer(validate=validate.Range(min=1, max=100_000))
    lease_seconds = fields.Integer(validate=validate.Range(min=1, max=_DAY))
    max_attempts = fields.Integer(validate=_POSITIVE)
    retry_backoff_initial = fields.Float(validate=validate.Range(min=0, max=_DAY))
    retry_backoff_max = fields.Float(validate=validate.Range(min=0, max=_DAY))
    reconcile_interval = fields.Float(validate=validate.Range(min=1, max=_HOUR))
    throttle_decrease = fields.Float(
        validate=validate.Range(min=0, max=1, min_inclusive=False, max_inclusive=False)
    )
    jitter_margin = fields.Float(validate=validate.Range(min=0.001, max=0.5))
    catch_up_seconds = fields.Float(validate=validate.Range(min=0, max=1))
    throttle_recovery_seconds = fields.Float(
        validate=validate.Range(min=0, max=_HOUR, min_inclusive=False)
    )
    fan_out_first_rows = fields.Integer(validate=validate.Range(min=1, max=1_000_000))
    fan_out_chunk_rows = fields.Integer(validate=validate.Range(min=1, max=1_000_000))

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> DeliverySettings:
        return DeliverySettings(**data)


class PolicySchema(_Strict):
    quiet_hours_start = fields.String(validate=_HHMM)
    quiet_hours_end = fields.String(validate=_HHMM)
    daily_cap = fields.Integer(validate=validate.Range(min=0))
    default_validity_hours = fields.Integer(validate=validate.Range(min=1, max=24 * 30))

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> PolicySettings:
        return PolicySettings(**data)


class ReplySchema(_Strict):
    window_hours = fields.Integer(validate=validate.Range(min=1, max=24 * 30))

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> ReplySettings:
        return ReplySettings(**data)


class AreaSchema(_Strict):
    province = fields.String(
        validate=validate.Regexp(r"^\d{1,3}$", error="Expected a province code.")
    )
    file = fields.String()
    old_labels_dir = fields.String()


class WebSchema(_Strict):
    host = fields.String()
    port = fields.Integer(validate=validate.Range(min=0, max=65535))
    login_attempts_per_minute = fields.Integer(validate=_POSITIVE)
    login_attempts_per_account = fields.Integer(validate=_POSITIVE)
    login_account_window_seconds = fields.Integer(validate=validate.Range(min=1, max=86400))
    session_hours = fields.Integer(validate=validate.Range(min=1, max=24 * 30))
    session_idle_minutes = fields.Integer(validate=validate.Range(min=1, max=24 * 60))
    token_expiry_days = fields.Integer(validate=validate.Range(min=0, max=3650))
    trusted_proxies = fields.Integer(validate=validate.Range(min=0, max=10))
    default_locale = fields.String(validate=validate.OneOf(["vi", "en"]))
    metrics_token = fields.String()
    max_body_kb = fields.Integer(validate=_POSITIVE)
    upload_wait_max_seconds = fields.Float(validate=validate.Range(min=0, max=60))
    upload_waiters = fields.Integer(validate=validate.Range(min=0))

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> WebSettings:
        return WebSettings(**data)


class SettingsSchema(_Strict):
    mode = fields.String(required=True, validate=validate.OneOf(["development", "production"]))
    secret_key = fields.String(required=True)
    instance_path = fields.String(required=True, validate=validate.Length(min=1))
    database_url = fields.String(required=True)
    redis_url = fields.String(required=True)
    log_level = fields.String(
        required=True, validate=validate.OneOf(["DEBUG", "INFO", "WARNING", "ERROR"])
    )
    log_format = fields.String(required=True, validate=validate.OneOf(["text", "json"]))
    timezone = fields.String(required=True)
    carriers_file = fields.String(required=True)
    number_ranges_file = fields.String(required=True)
    number_conversions_file = fields.String(required=True)
    areas = fields.Nested(AreaSchema, required=True)
    imports = fields.Nested(ImportSchema, required=True)
    delivery = fields.Nested(DeliverySchema, required=True)
    policy = fields.Nested(PolicySchema, required=True)
    web = fields.Nested(WebSchema, required=True)
    replies = fields.Nested(ReplySchema, load_default=ReplySettings)
    carriers = fields.Dict(
        keys=fields.String(validate=validate.Regexp(r"^[a-z][a-z0-9_]{1,31}$")),
        values=fields.Nested(CarrierSchema),
        required=True,
    )


# --- loading -------------------------------------------------------------------------------


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{what}: file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what}: {path} is not valid TOML: {exc}") from None


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """LOA_DATABASE_URL -> database_url; LOA_DELIVERY__BATCH_SIZE -> delivery.batch_size."""
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "LOA_CONFIG":
            continue
        if name.startswith(("LOA_TEST_", "LOA_ADMIN_", "LOA_REQUIRE_")):
            continue  # read by tests and `loa init`, not settings
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{name}: conflicts with another LOA_ variable")
        node[path[-1]] = value
    return tree


def _flatten_errors(messages: Any, prefix: str = "") -> list[str]:
    out: list[str] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            label = f"{prefix}.{key}" if prefix else str(key)
            if key == "value" and prefix:
                label = prefix
            out.extend(_flatten_errors(value, label))
    elif isinstance(messages, list):
        out.append(f"{prefix}: {' '.join(str(m) for m in messages)}")
    else:
        out.append(f"{prefix}: {messages}")
    return out


def _resolve(base: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else base / path


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    config_dir: Path | None = None,
) -> Settings:
    """Build the one Settings object. `environ` defaults to os.environ (read now, not at import).

    `overrides` is a nested mapping applied last (tests and embedded tools use it).
    Raises ConfigError naming every bad key.
    """
    env = dict(os.environ if environ is None else environ)
    cdir = config_dir or CONFIG_DIR
    data = _read_toml(cdir / "defaults.toml", "embedded defaults")
    layers: list[tuple[str, Mapping[str, Any]]] = []
    if env.get("LOA_CONFIG"):
        layers.append(("LOA_CONFIG", _read_toml(Path(env["LOA_CONFIG"]), "LOA_CONFIG")))
    layers.append(("environment", _env_overrides(env)))
    if overrides:
        layers.append(("overrides", overrides))

    carriers_name = data.get("carriers_file", "carriers.toml")
    for _, layer in layers:
        carriers_name = layer.get("carriers_file", carriers_name)
    data["carriers"] = _read_toml(_resolve(cdir, str(carriers_name)), "carriers_file")
    for _, layer in layers:
        data = _merge(data, layer)

    try:
        loaded = SettingsSchema().load(data)
    except ValidationError as exc:
        problems = "; ".join(_flatten_errors(exc.messages))
        raise ConfigError(f"invalid configuration: {problems}") from None

    carriers = tuple(
        CarrierSettings(
            code=code, **{**values, "gateway": replace(values["gateway"], window=values["window"])}
        )
        for code, values in sorted(loaded["carriers"].items())
    )
    settings = Settings(
        mode=loaded["mode"],
        secret_key=loaded["secret_key"],
        instance_path=Path(loaded["instance_path"]).expanduser().resolve(),
        database_url=loaded["database_url"],
        redis_url=loaded["redis_url"],
        log_level=loaded["log_level"],
        log_format=loaded["log_format"],
        timezone=loaded["timezone"],
        config_dir=cdir,
        carriers_file=_resolve(cdir, loaded["carriers_file"]),
        number_ranges_file=_resolve(cdir, loaded["number_ranges_file"]),
        number_conversions_file=_resolve(cdir, loaded["number_conversions_file"]),
        areas=AreaSettings(
            province=str(int(loaded["areas"]["province"])),
            file=_resolve(cdir, loaded["areas"]["file"]) if loaded["areas"]["file"] else None,
            old_labels_dir=(
                _resolve(cdir, loaded["areas"]["old_labels_dir"])
                if loaded["areas"]["old_labels_dir"]
                else None
            ),
        ),
        imports=loaded["imports"],
        delivery=loaded["delivery"],
        policy=loaded["policy"],
        web=loaded["web"],
        carriers=carriers,
        replies=loaded["replies"],
    )
    check_production(settings)
    return settings


# A secret key with fewer distinct characters than this is a pattern, not a random value
# (a 32-character random hex key has about 14).
MIN_SECRET_DISTINCT = 8


def check_production(settings: Settings) -> None:
    """Production refuses to start with a missing, development or trivial secret key."""
    if not settings.production:
        return
    if not settings.secret_key or settings.secret_key == DEV_SECRET_KEY:
        raise ConfigError(
            "secret_key: production mode needs LOA_SECRET_KEY set to a long random value "
            "(the development default is refused)"
        )
    if len(settings.secret_key) < 32:
        raise ConfigError("secret_key: production mode needs at least 32 characters")
    if settings.secret_key.strip() != settings.secret_key or (
        len(set(settings.secret_key)) < MIN_SECRET_DISTINCT
    ):
        raise ConfigError(
            "secret_key: production mode refuses a trivial key (surrounding whitespace or fewer "
            f"than {MIN_SECRET_DISTINCT} distinct characters); use `python -c "
            "'import secrets; print(secrets.token_hex(32))'`"
        )
