"""Configuration precedence (CLI > env > file > defaults), validation and warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from raceway_server.config import Config, ConfigError, load, resolve


def test_defaults_are_local_memory_and_open() -> None:
    config, warnings = resolve()
    assert (config.host, config.port, config.storage_backend) == ("127.0.0.1", 8080, "memory")
    assert not config.auth_required and not config.cors_active
    assert warnings == []


def test_precedence_cli_over_env_over_file() -> None:
    file_data = {"server": {"port": 9001, "host": "127.0.0.1", "rate_limit_rpm": 5}}
    env = {"RACEWAY_PORT": "9002", "RACEWAY_RATE_LIMIT_RPM": "7"}
    config, _ = resolve({"port": 9003}, env, file_data)
    assert config.port == 9003  # CLI wins
    assert config.rate_limit_rpm == 7  # env beats file
    config, _ = resolve({}, {}, file_data)
    assert config.port == 9001 and config.rate_limit_rpm == 5


def test_original_toml_keys_map_and_unknown_keys_warn() -> None:
    file_data = {
        "server": {"api_keys": ["k1"], "cors_origins": ["http://a.example"], "bogus": 1},
        "storage": {"backend": "postgres", "postgres": {"connection_string": "postgresql://x@h/db"}},
        "engine": {"batch_size": 100},
        "mystery": {"x": 1},
    }
    config, warnings = resolve({}, {}, file_data, "raceway.toml")
    assert config.api_keys == ("k1",) and config.auth_required
    assert config.cors_active and config.cors_origins == ("http://a.example",)
    assert config.database_url == "postgresql://x@h/db"
    text = "\n".join(warnings)
    assert "unknown key 'server.bogus'" in text
    assert "unknown key 'mystery.x'" in text
    assert "'engine.batch_size' has no effect" in text


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"RACEWAY_PORT": "eighty"}, "environment RACEWAY_PORT"),
        ({"RACEWAY_PORT": "70000"}, "0-65535"),
        ({"RACEWAY_RATE_LIMIT_RPM": "0"}, "must be > 0"),
        ({"RACEWAY_STORAGE": "mysql"}, "expected one of memory, postgres"),
        ({"RACEWAY_VERBOSE": "maybe"}, "expected a boolean"),
    ],
)
def test_bad_values_name_their_source(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        resolve({}, env, {})


def test_file_errors_name_the_file_and_key() -> None:
    with pytest.raises(ConfigError, match=r"my.toml key 'server.port'"):
        resolve({}, {}, {"server": {"port": "x"}}, "my.toml")


def test_postgres_requires_connection_string() -> None:
    with pytest.raises(ConfigError, match="connection string"):
        resolve({"storage_backend": "postgres"}, {}, {})


def test_public_bind_without_key_warns_and_with_key_does_not() -> None:
    _, warnings = resolve({"host": "0.0.0.0"})
    assert any("without an API key" in w for w in warnings)
    _, warnings = resolve({"host": "0.0.0.0"}, {"RACEWAY_API_KEYS": "a,b"})
    assert warnings == []


def test_redacted_hides_secrets() -> None:
    config = Config(api_keys=("supersecret",), ui_password="pw", database_url="postgresql://u:pass@h/db")
    text = repr(config.redacted())
    assert "supersecret" not in text and "pass@" not in text and "'pw'" not in text


def test_load_reads_explicit_file_and_rejects_missing(tmp_path: Path) -> None:
    path = tmp_path / "raceway.toml"
    path.write_text('[server]\nport = 9100\n[logging]\nlevel = "debug"\n')
    config, _ = load({}, str(path), environ={})
    assert config.port == 9100 and config.log_level == "debug"
    with pytest.raises(ConfigError, match="does not exist"):
        load({}, str(tmp_path / "missing.toml"), environ={})
    path.write_text("[server\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load({}, str(path), environ={})
