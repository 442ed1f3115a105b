"""Deployment settings, read from ``DPI_*`` environment variables and an optional TOML file.

Every setting is declared once in :data:`SETTINGS` (name, type, default, meaning); the README's
configuration table is checked against that declaration by a test. A bad value stops the program
with one line naming the setting, before anything is served.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final

__all__ = ["SETTINGS", "Setting", "Settings", "SettingsError"]


class SettingsError(ValueError):
    """A setting has a value the program cannot run with; the message names the setting."""


def _integer(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"must be a whole number, got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")
        return value

    return parse


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip()
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, got {raw!r}")
        return value

    return parse


def _text(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _optional_text(raw: str) -> str | None:
    return raw.strip() or None


def _database_url(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ValueError(
            "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
            f"(an async driver is required), got {value.split('://', 1)[0]!r}"
        )
    return value


def _base_url(raw: str) -> str | None:
    value = raw.strip().rstrip("/")
    if not value:
        return None
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"must be an http:// or https:// URL, got {raw!r}")
    return value


def _block_list(raw: str) -> tuple[str, ...] | None:
    names = tuple(name.strip() for name in raw.split(",") if name.strip())
    return names or None


def _path(raw: str) -> Path:
    return Path(_text(raw))


def _optional_path(raw: str) -> Path | None:
    return Path(raw.strip()) if raw.strip() else None


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"must be true or false, got {raw!r}")


# The identifier grammar of the ``common`` schema's memberId / subsystemId.
_SEGMENT: Final = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?"
_MEMBER_ID: Final = re.compile(rf"{_SEGMENT}/{_SEGMENT}/{_SEGMENT}(?:/{_SEGMENT})?")


def _member_id(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    if not _MEMBER_ID.fullmatch(value):
        raise ValueError(
            f"must look like INSTANCE/CLASS/MEMBER[/SUBSYSTEM] (letters, digits, . _ -), got {raw!r}"
        )
    return value


def _subsystem_id(raw: str) -> str | None:
    value = _member_id(raw)
    if value is not None and value.count("/") != 3:
        raise ValueError(f"must name a subsystem INSTANCE/CLASS/MEMBER/SUBSYSTEM, got {raw!r}")
    return value


@dataclass(frozen=True)
class Setting:
    """One ``DPI_*`` setting: its variable, the attribute it fills, how it is parsed, what it means."""

    env: str
    attribute: str
    parse: Callable[[str], Any]
    default: str
    meaning: str


SETTINGS: Final[tuple[Setting, ...]] = (
    Setting(
        "DPI_CONFIG_FILE",
        "config_file",
        _optional_path,
        "",
        "TOML file with any of the settings below (lower-case names without the DPI_ prefix); "
        "environment variables win over it",
    ),
    Setting(
        "DPI_DATABASE_URL",
        "database_url",
        _database_url,
        "",
        "SQLAlchemy async URL: postgresql+asyncpg://user@host/db, or a SQLite file; "
        "empty means the embedded SQLite database <DPI_VAR_DIR>/dpi.sqlite3 (WAL mode)",
    ),
    Setting(
        "DPI_VAR_DIR",
        "var_dir",
        _path,
        "var",
        "directory for local state: the SQLite database and the key store",
    ),
    Setting(
        "DPI_KEYS_DIR",
        "keys_dir",
        _optional_path,
        "",
        "directory of signing keys; defaults to <DPI_VAR_DIR>/keys",
    ),
    Setting(
        "DPI_KEY_ALGORITHM",
        "key_algorithm",
        _choice("EdDSA", "ES256", "PS256"),
        "EdDSA",
        "algorithm of newly generated signing keys",
    ),
    Setting(
        "DPI_KEY_GRACE_SECONDS",
        "key_grace_seconds",
        _integer(0, 365 * 86400),
        "604800",
        "how long a rotated-out public key stays in the JWKS so signatures made with it still verify",
    ),
    Setting("DPI_HOST", "host", _text, "127.0.0.1", "address `dpi serve` and `dpi demo` listen on"),
    Setting("DPI_PORT", "port", _integer(1, 65535), "8000", "port `dpi serve` and `dpi demo` listen on"),
    Setting("DPI_WORKERS", "workers", _integer(1, 256), "1", "server worker processes for `dpi serve`"),
    Setting(
        "DPI_BASE_URL",
        "base_url",
        _base_url,
        "",
        "public URL of this deployment, used in issued URLs (JWKS, issuer); defaults to http://HOST:PORT",
    ),
    Setting(
        "DPI_BLOCKS",
        "blocks",
        _block_list,
        "",
        "comma-separated blocks to load (e.g. identity,consent); empty loads every installed block",
    ),
    Setting(
        "DPI_MEMBER_ID",
        "member_id",
        _member_id,
        "",
        "this deployment's exchange identifier INSTANCE/CLASS/MEMBER[/SUBSYSTEM], shown in capabilities",
    ),
    Setting(
        "DPI_IDENTITY_SUBSYSTEM",
        "identity_subsystem",
        _subsystem_id,
        "",
        "the OpenID provider's subsystem, named as provider in the consents that record claim releases; "
        "defaults to DPI_MEMBER_ID when it names a subsystem, <DPI_MEMBER_ID>/identity when it names a "
        "member, else DPI/GOV/MOI/identity (the demo's)",
    ),
    Setting(
        "DPI_PAYMENTS_PROVIDERS",
        "payments_providers",
        _optional_path,
        "",
        "the payments block's providers file (TOML: [providers.NAME] and [g2p]); "
        "default <var_dir>/payments-providers.toml, else one sandbox provider",
    ),
    Setting(
        "DPI_MAX_BODY_BYTES",
        "max_body_bytes",
        _integer(1024, 1024**3),
        "1048576",
        "largest request body accepted; larger ones are refused with 413 request.too_large",
    ),
    Setting(
        "DPI_MIGRATE_ON_START",
        "migrate_on_start",
        _boolean,
        "true",
        "apply database migrations when `dpi serve` starts (`dpi demo` always does)",
    ),
    Setting(
        "DPI_TOKEN_ISSUER",
        "token_issuer",
        _base_url,
        "",
        "issuer of the access tokens blocks accept (the identity block's OpenID provider); "
        "defaults to <DPI_BASE_URL>/identity",
    ),
    Setting(
        "DPI_TOKEN_JWKS_URL",
        "token_jwks_url",
        _base_url,
        "",
        "where the token issuer publishes its keys; defaults to <issuer>/.well-known/jwks.json",
    ),
    Setting(
        "DPI_ALLOW_PRIVATE_CALLBACKS",
        "allow_private_callbacks",
        _boolean,
        "false",
        "let webhooks and callbacks target http:// and private, loopback or link-local addresses "
        "(development and single-machine demos only; production requires public https receivers)",
    ),
    Setting(
        "DPI_OTP_SENDER",
        "otp_sender",
        _choice("console", "http"),
        "console",
        "how one-time codes reach people: printed on the console (development and the demo) or sent "
        "through the SMS gateway at DPI_SMS_GATEWAY_URL",
    ),
    Setting(
        "DPI_SMS_GATEWAY_URL",
        "sms_gateway_url",
        _base_url,
        "",
        "SMS gateway endpoint that receives {to, text} as JSON when DPI_OTP_SENDER=http",
    ),
    Setting(
        "DPI_SMS_GATEWAY_TOKEN",
        "sms_gateway_token",
        _optional_text,
        "",
        "bearer token for the SMS gateway (keep it in a secret store, not in the TOML file)",
    ),
    Setting(
        "DPI_LOG_LEVEL",
        "log_level",
        _choice("DEBUG", "INFO", "WARNING", "ERROR"),
        "INFO",
        "level of the structured JSON logs written to standard error",
    ),
    Setting(
        "DPI_TELEMETRY_EXPORTER",
        "telemetry_exporter",
        _choice("none", "console", "otlp"),
        "none",
        "where OpenTelemetry traces and metrics go: nowhere, standard output, or OTLP over HTTP",
    ),
    Setting(
        "DPI_OTLP_ENDPOINT",
        "otlp_endpoint",
        _base_url,
        "",
        "OTLP/HTTP collector base URL when DPI_TELEMETRY_EXPORTER=otlp (e.g. http://127.0.0.1:4318)",
    ),
    Setting(
        "DPI_SERVICE_NAME",
        "service_name",
        _text,
        "dpi-blocks",
        "service.name reported in traces, metrics and logs",
    ),
)

_BY_ATTRIBUTE: Final[dict[str, Setting]] = {setting.attribute: setting for setting in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """The validated settings of one process. Build it with :meth:`from_environment` in programs."""

    config_file: Path | None = None
    database_url: str | None = None
    var_dir: Path = field(default_factory=lambda: Path("var"))
    keys_dir: Path | None = None
    key_algorithm: str = "EdDSA"
    key_grace_seconds: int = 604800
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    base_url: str | None = None
    blocks: tuple[str, ...] | None = None
    member_id: str | None = None
    identity_subsystem: str | None = None
    payments_providers: Path | None = None
    max_body_bytes: int = 1048576
    migrate_on_start: bool = True
    allow_private_callbacks: bool = False
    otp_sender: str = "console"
    sms_gateway_url: str | None = None
    sms_gateway_token: str | None = None
    token_issuer: str | None = None
    token_jwks_url: str | None = None
    log_level: str = "INFO"
    telemetry_exporter: str = "none"
    otlp_endpoint: str | None = None
    service_name: str = "dpi-blocks"

    @property
    def database(self) -> str:
        """The database URL in force: the configured one, or the embedded SQLite file."""
        if self.database_url is not None:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.var_dir / 'dpi.sqlite3'}"

    @property
    def key_directory(self) -> Path:
        return self.keys_dir if self.keys_dir is not None else self.var_dir / "keys"

    @property
    def public_url(self) -> str:
        if self.base_url is not None:
            return self.base_url
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::"} else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    @property
    def access_token_issuer(self) -> str:
        return self.token_issuer if self.token_issuer is not None else f"{self.public_url}/identity"

    @property
    def access_token_jwks_url(self) -> str:
        if self.token_jwks_url is not None:
            return self.token_jwks_url
        return f"{self.access_token_issuer}/.well-known/jwks.json"

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_environment(
        cls, env: Mapping[str, str] | None = None, config_file: Path | None = None
    ) -> Settings:
        """Read the settings: defaults, then the TOML file, then ``DPI_*`` variables.

        Raises :class:`SettingsError` with one line naming the first bad setting.
        """
        environ = os.environ if env is None else env
        raw: dict[str, str] = {}
        file_path = config_file or _optional_path(environ.get("DPI_CONFIG_FILE", ""))
        if file_path is not None:
            raw.update(_read_config_file(file_path))
            raw["config_file"] = str(file_path)
        for setting in SETTINGS:
            if setting.env in environ and setting.env != "DPI_CONFIG_FILE":
                raw[setting.attribute] = environ[setting.env]
        values: dict[str, Any] = {}
        for attribute, text in raw.items():
            setting = _BY_ATTRIBUTE[attribute]
            try:
                values[attribute] = setting.parse(text)
            except ValueError as error:
                raise SettingsError(f"{setting.env}: {error}") from None
        settings = cls(**values)
        if settings.telemetry_exporter == "otlp" and settings.otlp_endpoint is None:
            raise SettingsError("DPI_OTLP_ENDPOINT: must be set when DPI_TELEMETRY_EXPORTER=otlp")
        if settings.otp_sender == "http" and settings.sms_gateway_url is None:
            raise SettingsError("DPI_SMS_GATEWAY_URL: must be set when DPI_OTP_SENDER=http")
        return settings


def _read_config_file(path: Path) -> dict[str, str]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"DPI_CONFIG_FILE: no such file {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise SettingsError(f"DPI_CONFIG_FILE: cannot read {path}: {error}") from None
    known = {setting.attribute for setting in SETTINGS} - {"config_file"}
    values: dict[str, str] = {}
    for key, value in document.items():
        if key not in known:
            raise SettingsError(f"DPI_CONFIG_FILE: unknown setting {key!r} in {path}")
        if isinstance(value, bool):
            values[key] = "true" if value else "false"
        elif isinstance(value, list):
            values[key] = ",".join(str(item) for item in value)
        elif isinstance(value, str | int):
            values[key] = str(value)
        else:
            raise SettingsError(f"DPI_{key.upper()}: unsupported value in {path}")
    return values


_FIELD_NAMES: Final = {item.name for item in fields(Settings)}
assert set(_BY_ATTRIBUTE) == _FIELD_NAMES, "every Settings field is declared in SETTINGS"
