"""Settings: defaults, override layers, and refusals that name the key."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from broadcast.errors import ConfigError
from broadcast.settings import DEV_SECRET_KEY, load_settings


def test_embedded_defaults(tmp_path: Path) -> None:
    settings = load_settings({"LOA_INSTANCE_PATH": str(tmp_path)})
    assert settings.mode == "development"
    assert settings.sqlalchemy_url == f"sqlite:///{tmp_path / 'loa.db'}"
    assert settings.embedded_redis
    assert settings.carrier_codes == (
        "gmobile",
        "itelecom",
        "mobifone",
        "reddi",
        "vietnamobile",
        "viettel",
        "vinaphone",
    )
    viettel = settings.carrier("viettel")
    assert viettel.mps == 300
    assert viettel.gateway.concatenation == "udh"
    assert settings.areas.province == "42" and settings.areas.file is None
    assert settings.areas.old_labels_file is not None and settings.areas.old_labels_file.is_file()


def test_environment_overrides_nested_keys() -> None:
    settings = load_settings(
        {
            "LOA_DATABASE_URL": "postgresql://loa@db.example/loa",
            "LOA_DELIVERY__BATCH_SIZE": "250",
            "LOA_CARRIERS__VIETTEL__MPS": "500",
            "LOA_CARRIERS__VIETTEL__GATEWAY__PASSWORD": "s3cret",
        }
    )
    assert settings.sqlalchemy_url == "postgresql+psycopg://loa@db.example/loa"
    assert settings.delivery.batch_size == 250
    assert settings.carrier("viettel").mps == 500
    assert settings.carrier("viettel").gateway.password == "s3cret"
    # Untouched neighbours keep their defaults.
    assert settings.carrier("viettel").gateway.port == 12775


def test_config_file_layer_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "loa.toml"
    path.write_text('log_level = "DEBUG"\n[web]\nport = 8080\n[policy]\ndaily_cap = 5\n')
    settings = load_settings({"LOA_CONFIG": str(path), "LOA_WEB__PORT": "9090"})
    assert settings.log_level == "DEBUG"
    assert settings.policy.daily_cap == 5
    assert settings.web.port == 9090  # the environment wins over the file


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"LOA_DELIVERY__BATCH_SIZE": "lots"}, "delivery.batch_size"),
        ({"LOA_WEB__PORT": "70000"}, "web.port"),
        ({"LOA_MODE": "staging"}, "mode"),
        ({"LOA_POLICY__QUIET_HOURS_START": "25:00"}, "policy.quiet_hours_start"),
        ({"LOA_CARRIERS__VIETTEL__GATEWAY__CONCATENATION": "smoke"}, "concatenation"),
        ({"LOA_DELIVERY__BATCH_SZE": "10"}, "batch_sze"),
    ],
)
def test_malformed_environment_value_names_the_key(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert named in str(info.value)


def test_malformed_config_file_names_the_file_and_key(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[delivery\nbatch_size = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({"LOA_CONFIG": str(broken)})

    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[delivery]\nbatchsize = 3\n")
    with pytest.raises(ConfigError, match=r"delivery\.batchsize"):
        load_settings({"LOA_CONFIG": str(unknown)})

    with pytest.raises(ConfigError, match="file not found"):
        load_settings({"LOA_CONFIG": str(tmp_path / "missing.toml")})


def test_production_refuses_missing_or_development_secret() -> None:
    with pytest.raises(ConfigError, match="secret_key"):
        load_settings({"LOA_MODE": "production"})
    with pytest.raises(ConfigError, match="secret_key"):
        load_settings({"LOA_MODE": "production", "LOA_SECRET_KEY": DEV_SECRET_KEY})
    with pytest.raises(ConfigError, match="secret_key"):
        load_settings({"LOA_MODE": "production", "LOA_SECRET_KEY": "short"})
    ok = load_settings({"LOA_MODE": "production", "LOA_SECRET_KEY": secrets.token_hex(16)})
    assert ok.production


@pytest.mark.parametrize(
    "trivial",
    ["x" * 48, " " * 40, "\t" * 40, "abcd" * 12, "0123456" * 6, " " + secrets.token_hex(20)],
    ids=["one-letter", "spaces", "tabs", "repeated-4", "repeated-7", "leading-space"],
)
def test_production_refuses_a_long_but_trivial_secret(trivial: str) -> None:
    with pytest.raises(ConfigError, match="secret_key: production mode refuses a trivial key"):
        load_settings({"LOA_MODE": "production", "LOA_SECRET_KEY": trivial})


def test_unknown_carrier_is_named() -> None:
    settings = load_settings({})
    with pytest.raises(ConfigError, match="unknown carrier 'telco'"):
        settings.carrier("telco")


@pytest.mark.parametrize(
    ("key", "largest"),
    [
        ("IMPORTS__MAX_SECONDS", "86400"),
        ("IMPORTS__ABANDONED_GRACE_SECONDS", "3600"),
        ("IMPORTS__RETENTION_DAYS", "3650"),
        ("DELIVERY__LEASE_SECONDS", "86400"),
        ("DELIVERY__RETRY_BACKOFF_MAX", "86400"),
        ("DELIVERY__RECONCILE_INTERVAL", "3600"),
        ("DELIVERY__THROTTLE_RECOVERY_SECONDS", "3600"),
        ("WEB__SESSION_HOURS", "720"),
        ("WEB__SESSION_IDLE_MINUTES", "1440"),
        ("CARRIERS__VIETTEL__GATEWAY__ENQUIRE_LINK_INTERVAL", "3600"),
        ("CARRIERS__VIETTEL__GATEWAY__RESPONSE_TIMEOUT", "600"),
    ],
)
def test_a_duration_past_its_range_is_refused_at_start(key: str, largest: str) -> None:
    """A duration no date can be computed from (1e14 s overflows a datetime) is refused by
    name when the settings load, not when reconcile first adds it to a date."""
    load_settings({f"LOA_{key}": largest})  # the end of the range is accepted
    with pytest.raises(ConfigError) as info:
        load_settings({f"LOA_{key}": "100000000000000"})
    assert key.lower().replace("__", ".").split(".")[-1] in str(info.value)
