"""Settings: defaults, environment, TOML file, and one clear line for every bad value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dpi.settings import SETTINGS, Settings, SettingsError

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_need_no_configuration() -> None:
    settings = Settings.from_environment({})
    assert settings.database == f"sqlite+aiosqlite:///{Path('var') / 'dpi.sqlite3'}"
    assert settings.key_directory == Path("var") / "keys"
    assert settings.public_url == "http://127.0.0.1:8000"
    assert settings.blocks is None


def test_environment_values_are_parsed() -> None:
    settings = Settings.from_environment(
        {
            "DPI_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/test",
            "DPI_PORT": "9000",
            "DPI_BLOCKS": "identity, consent,",
            "DPI_MIGRATE_ON_START": "no",
            "DPI_BASE_URL": "https://gov.example/",
            "DPI_MEMBER_ID": "DPI/GOV/MOI/civil-registry",
            "UNRELATED": "ignored",
        }
    )
    assert settings.port == 9000
    assert settings.blocks == ("identity", "consent")
    assert settings.migrate_on_start is False
    assert settings.public_url == "https://gov.example"
    assert settings.database.startswith("postgresql+asyncpg://")


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("DPI_PORT", "eighty", "DPI_PORT: must be a whole number"),
        ("DPI_PORT", "70000", "DPI_PORT: must be between 1 and 65535"),
        ("DPI_WORKERS", "0", "DPI_WORKERS: must be between"),
        ("DPI_DATABASE_URL", "postgresql://u@h/db", "DPI_DATABASE_URL: must start with"),
        ("DPI_DATABASE_URL", "mysql://u@h/db", "DPI_DATABASE_URL: must start with"),
        ("DPI_LOG_LEVEL", "LOUD", "DPI_LOG_LEVEL: must be one of"),
        ("DPI_KEY_ALGORITHM", "HS256", "DPI_KEY_ALGORITHM: must be one of"),
        ("DPI_BASE_URL", "ftp://x", "DPI_BASE_URL: must be an http"),
        ("DPI_MIGRATE_ON_START", "maybe", "DPI_MIGRATE_ON_START: must be true or false"),
        ("DPI_MEMBER_ID", "DPI/GOV", "DPI_MEMBER_ID: must look like"),
        ("DPI_MEMBER_ID", "DPI GOV/G OV/M<O>I", "DPI_MEMBER_ID: must look like"),
        ("DPI_MEMBER_ID", "DPI/GOV/MOI/-civil", "DPI_MEMBER_ID: must look like"),
        ("DPI_MAX_BODY_BYTES", "10", "DPI_MAX_BODY_BYTES: must be between"),
        ("DPI_HOST", "  ", "DPI_HOST: must not be empty"),
        ("DPI_TELEMETRY_EXPORTER", "otlp", "DPI_OTLP_ENDPOINT: must be set"),
        ("DPI_OTP_SENDER", "pigeon", "DPI_OTP_SENDER: must be one of"),
        ("DPI_OTP_SENDER", "http", "DPI_SMS_GATEWAY_URL: must be set"),
    ],
)
def test_bad_values_name_the_setting(variable: str, value: str, fragment: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_environment({variable: value})
    message = str(raised.value)
    assert fragment in message
    assert "\n" not in message


def test_toml_file_then_environment(tmp_path: Path) -> None:
    config = tmp_path / "dpi.toml"
    config.write_text('port = 8100\nblocks = ["registry"]\nmigrate_on_start = false\nhost = "0.0.0.0"\n')
    settings = Settings.from_environment({"DPI_CONFIG_FILE": str(config), "DPI_PORT": "8200"})
    assert settings.port == 8200
    assert settings.blocks == ("registry",)
    assert settings.migrate_on_start is False
    assert settings.public_url == "http://127.0.0.1:8200"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("colour = 'blue'\n", "unknown setting 'colour'"),
        ("port = [\n", "cannot read"),
        ("port = 'x'\n", "DPI_PORT: must be a whole number"),
        ("port = 1.5\n", "unsupported value"),
    ],
)
def test_bad_config_file(tmp_path: Path, content: str, fragment: str) -> None:
    config = tmp_path / "dpi.toml"
    config.write_text(content)
    with pytest.raises(SettingsError, match=re.escape(fragment)):
        Settings.from_environment({"DPI_CONFIG_FILE": str(config)})


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="no such file"):
        Settings.from_environment({"DPI_CONFIG_FILE": str(tmp_path / "absent.toml")})


def test_readme_documents_every_setting() -> None:
    text = README.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(DPI_[A-Z_]+)` \|", text, flags=re.MULTILINE))
    declared = {setting.env for setting in SETTINGS} | {"DPI_TEST_DATABASE_URL"}
    assert documented == declared
