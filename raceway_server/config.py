"""Server configuration: CLI flags > ``RACEWAY_*`` environment > TOML file > defaults.

One table (:data:`SETTINGS`) names every setting once: its key in the original ``raceway.toml``
(``server.port``, ``storage.postgres.connection_string``, ...), its environment variable and its
type. :func:`resolve` is a pure function over the three sources, so precedence is unit-tested
without touching the process environment. Every bad value raises :class:`ConfigError` naming the
source and the key; unknown file keys produce warnings, never silence.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    try:
        import tomli as tomllib
    except ImportError:
        tomllib = None

DEFAULT_FILE = "raceway.toml"


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the source and the key."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Resolved settings of one ``raceway serve`` process."""

    host: str = "127.0.0.1"
    port: int = 8080
    verbose: bool = False
    log_level: str = "info"
    cors_enabled: bool = True
    cors_origins: tuple[str, ...] = ()
    cors_allow_all: bool = False
    rate_limit_enabled: bool = False
    rate_limit_rpm: int = 1000
    trust_forwarded_for: bool = False
    auth_enabled: bool | None = None
    api_keys: tuple[str, ...] = ()
    ui_password: str | None = None
    max_body_bytes: int = 16 * 1024 * 1024
    max_pending_events: int = 200_000
    storage_backend: str = "memory"
    database_url: str | None = None
    pg_max_connections: int = 10
    pg_min_connections: int = 2
    pg_connect_timeout: float = 30.0
    auto_migrate: bool = True
    retention_max_age_hours: float | None = None
    retention_max_traces: int | None = None
    retention_interval_seconds: float = 60.0
    race_detection: bool = True
    anomaly_detection: bool = True
    include_modules: bool = False

    @property
    def auth_required(self) -> bool:
        """Auth is on when keys or a UI password exist, unless explicitly switched off."""
        if self.auth_enabled is False:
            return False
        return bool(self.api_keys) or self.ui_password is not None or bool(self.auth_enabled)

    @property
    def cors_active(self) -> bool:
        """CORS is off unless origins are configured (the original defaulted to ``*``)."""
        return self.cors_enabled and (bool(self.cors_origins) or self.cors_allow_all)

    def redacted(self) -> dict[str, Any]:
        """Settings for display: secrets replaced, so they can be logged."""
        out = dataclasses.asdict(self)
        out["api_keys"] = [f"<{len(self.api_keys)} keys>"] if self.api_keys else []
        out["ui_password"] = "<set>" if self.ui_password else None
        if self.database_url:
            out["database_url"] = _redact_url(self.database_url)
        return out


def _redact_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


# --- value parsers ------------------------------------------------------------------------------


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected a boolean, got {value!r}")


def _int(value: Any) -> int:
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(f"expected an integer, got {value!r}")
    return int(value)


def _pos_int(value: Any) -> int:
    n = _int(value)
    if n <= 0:
        raise ValueError(f"must be > 0, got {n}")
    return n


def _port(value: Any) -> int:
    n = _int(value)
    if not 0 <= n <= 65535:
        raise ValueError(f"must be a TCP port (0-65535), got {n}")
    return n


def _pos_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    f = float(value)
    if not f > 0:
        raise ValueError(f"must be > 0, got {f}")
    return f


def _opt(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def inner(value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
            return None
        return parse(value)

    return inner


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"expected a list of strings, got {value!r}")


def _choice(*choices: str) -> Callable[[Any], str]:
    def inner(value: Any) -> str:
        text = _str(value).lower()
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return text

    return inner


@dataclasses.dataclass(frozen=True)
class Setting:
    field: str
    toml: str
    env: str
    parse: Callable[[Any], Any]


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "server.host", "RACEWAY_HOST", _str),
    Setting("port", "server.port", "RACEWAY_PORT", _port),
    Setting("verbose", "server.verbose", "RACEWAY_VERBOSE", _bool),
    Setting("cors_enabled", "server.cors_enabled", "RACEWAY_CORS_ENABLED", _bool),
    Setting("cors_origins", "server.cors_origins", "RACEWAY_CORS_ORIGINS", _list),
    Setting("cors_allow_all", "development.cors_allow_all", "RACEWAY_CORS_ALLOW_ALL", _bool),
    Setting("rate_limit_enabled", "server.rate_limit_enabled", "RACEWAY_RATE_LIMIT_ENABLED", _bool),
    Setting("rate_limit_rpm", "server.rate_limit_rpm", "RACEWAY_RATE_LIMIT_RPM", _pos_int),
    Setting(
        "trust_forwarded_for",
        "server.trust_forwarded_for",
        "RACEWAY_TRUST_FORWARDED_FOR",
        _bool,
    ),
    Setting("auth_enabled", "server.auth_enabled", "RACEWAY_AUTH_ENABLED", _opt(_bool)),
    Setting("api_keys", "server.api_keys", "RACEWAY_API_KEYS", _list),
    Setting("ui_password", "server.ui_password", "RACEWAY_UI_PASSWORD", _opt(_str)),
    Setting("max_body_bytes", "server.max_body_bytes", "RACEWAY_MAX_BODY_BYTES", _pos_int),
    Setting("max_pending_events", "engine.buffer_size", "RACEWAY_MAX_PENDING_EVENTS", _pos_int),
    Setting("storage_backend", "storage.backend", "RACEWAY_STORAGE", _choice("memory", "postgres")),
    Setting(
        "database_url",
        "storage.postgres.connection_string",
        "RACEWAY_DATABASE_URL",
        _opt(_str),
    ),
    Setting(
        "pg_max_connections",
        "storage.postgres.max_connections",
        "RACEWAY_PG_MAX_CONNECTIONS",
        _pos_int,
    ),
    Setting(
        "pg_min_connections",
        "storage.postgres.min_connections",
        "RACEWAY_PG_MIN_CONNECTIONS",
        _int,
    ),
    Setting(
        "pg_connect_timeout",
        "storage.postgres.connection_timeout_seconds",
        "RACEWAY_PG_CONNECT_TIMEOUT",
        _pos_float,
    ),
    Setting("auto_migrate", "storage.postgres.auto_migrate", "RACEWAY_AUTO_MIGRATE", _bool),
    Setting(
        "retention_max_age_hours",
        "retention.max_age_hours",
        "RACEWAY_RETENTION_MAX_AGE_HOURS",
        _opt(_pos_float),
    ),
    Setting(
        "retention_max_traces",
        "retention.max_traces",
        "RACEWAY_RETENTION_MAX_TRACES",
        _opt(_pos_int),
    ),
    Setting(
        "retention_interval_seconds",
        "retention.interval_seconds",
        "RACEWAY_RETENTION_INTERVAL_SECONDS",
        _pos_float,
    ),
    Setting("race_detection", "race_detection.enabled", "RACEWAY_RACE_DETECTION", _bool),
    Setting("anomaly_detection", "anomaly_detection.enabled", "RACEWAY_ANOMALY_DETECTION", _bool),
    Setting(
        "log_level",
        "logging.level",
        "RACEWAY_LOG_LEVEL",
        _choice("trace", "debug", "info", "warn", "warning", "error"),
    ),
    Setting("include_modules", "logging.include_modules", "RACEWAY_LOG_INCLUDE_MODULES", _bool),
)
_BY_FIELD = {s.field: s for s in SETTINGS}
_BY_TOML = {s.toml: s for s in SETTINGS}

# Original keys that are understood but have no effect here (warned about, not rejected).
IGNORED_KEYS: dict[str, str] = {
    "engine.batch_size": "ingestion is synchronous (acknowledged after commit); no batching loop",
    "engine.flush_interval_ms": "ingestion is synchronous (acknowledged after commit); no flush loop",
    "distributed_tracing.enabled": "services and edges always come from event metadata",
}


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and name not in _BY_TOML:
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def read_file(path: Path) -> dict[str, Any]:
    """Parse a TOML config file; ``[tool.raceway]`` is used when the file is a pyproject."""
    if tomllib is None:  # pragma: no cover
        raise ConfigError(f"{path}: reading TOML needs Python >= 3.11 or the 'tomli' package")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path}: invalid TOML: {exc}") from exc
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("raceway", {})
    return data


def resolve(
    cli: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    file_data: Mapping[str, Any] | None = None,
    file_name: str = DEFAULT_FILE,
) -> tuple[Config, list[str]]:
    """Merge the sources (CLI > env > file > defaults) into a validated :class:`Config`.

    ``cli`` maps field names to values (``None`` = flag not given). Returns the config and the
    warnings to show (unknown or ineffective file keys, insecure binding).
    """
    warnings: list[str] = []
    values: dict[str, Any] = {}
    for key, raw in _flatten(file_data or {}).items():
        setting = _BY_TOML.get(key)
        if setting is None:
            if key in IGNORED_KEYS:
                warnings.append(f"{file_name}: '{key}' has no effect: {IGNORED_KEYS[key]}")
            else:
                warnings.append(f"{file_name}: unknown key '{key}' ignored")
            continue
        values[setting.field] = _parse(setting, raw, f"{file_name} key '{key}'")
    for setting in SETTINGS:
        raw_env = (env or {}).get(setting.env)
        if raw_env is not None:
            values[setting.field] = _parse(setting, raw_env, f"environment {setting.env}")
    for field, raw in (cli or {}).items():
        if raw is None:
            continue
        setting = _BY_FIELD.get(field)
        if setting is None:
            raise ConfigError(f"internal: unknown CLI setting {field!r}")
        values[field] = _parse(setting, raw, f"option --{field.replace('_', '-')}")
    config = Config(**values)
    _validate(config)
    if config.host not in ("127.0.0.1", "localhost", "::1") and not config.auth_required:
        warnings.append(
            f"binding to {config.host} without an API key: anyone who can reach this port can "
            "read and write traces (set server.api_keys or RACEWAY_API_KEYS)"
        )
    return config, warnings


def _parse(setting: Setting, raw: Any, source: str) -> Any:
    try:
        return setting.parse(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _validate(config: Config) -> None:
    if config.storage_backend == "postgres" and not config.database_url:
        raise ConfigError(
            "storage.backend is 'postgres' but no connection string is set "
            "(storage.postgres.connection_string, RACEWAY_DATABASE_URL or --database-url)"
        )
    if config.auth_enabled and not config.api_keys and config.ui_password is None:
        raise ConfigError("server.auth_enabled is true but server.api_keys is empty")
    if config.pg_min_connections > config.pg_max_connections:
        raise ConfigError(
            "storage.postgres.min_connections must not exceed storage.postgres.max_connections"
        )
    if any(not key.strip() for key in config.api_keys):
        raise ConfigError("server.api_keys contains an empty key")


def load(
    cli: Mapping[str, Any] | None = None,
    config_path: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Config, list[str]]:
    """Resolve from the real sources: an explicit file (must exist), else ``raceway.toml`` if present."""
    env = os.environ if environ is None else environ
    path_text = config_path or env.get("RACEWAY_CONFIG")
    file_data: dict[str, Any] = {}
    file_name = DEFAULT_FILE
    if path_text:
        path = Path(path_text)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        file_data, file_name = read_file(path), str(path)
    elif Path(DEFAULT_FILE).is_file():
        file_data = read_file(Path(DEFAULT_FILE))
    return resolve(cli, env, file_data, file_name)
