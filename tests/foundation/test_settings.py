"""Settings: defaults for local services, malformed values named in the error."""

from __future__ import annotations

import pytest

from integration_service.settings import SettingsError, load_settings


def test_defaults_match_the_seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SESSION_LOCK_TTL", "SESSION_LOCK_HEARTBEAT", "QR_TICKET_TTL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.session_lock_ttl == 90
    assert settings.session_lock_heartbeat == 30
    assert settings.qr_ticket_ttl == 600
    assert settings.session_validation_interval == 300
    assert settings.session_stale_threshold == 3600
    assert settings.session_file_permissions == 0o600
    assert settings.session_dir_permissions == 0o700


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SESSION_LOCK_TTL", "ninety"),
        ("SESSION_LOCK_TTL", "0"),
        ("QR_TICKET_TTL", "-5"),
        ("DATABASE_URL", "mysql://root@localhost/x"),
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("CELERY_BROKER_URL", "redis://127.0.0.1"),
        ("SESSION_FILE_PERMISSIONS", "rw-------"),
        ("SESSION_DIR_PERMISSIONS", "0o1777"),
        ("SESSION_CIPHER", "rot13"),
        ("TELEGRAM_API_ID", "abc"),
    ],
)
def test_malformed_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert variable in str(caught.value)


def test_heartbeat_must_fit_twice_in_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_LOCK_TTL", "10")
    monkeypatch.setenv("SESSION_LOCK_HEARTBEAT", "6")
    with pytest.raises(SettingsError, match="SESSION_LOCK_HEARTBEAT"):
        load_settings()


def test_permissions_accept_decimal_and_octal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_FILE_PERMISSIONS", "384")
    monkeypatch.setenv("SESSION_DIR_PERMISSIONS", "0o750")
    settings = load_settings()
    assert (settings.session_file_permissions, settings.session_dir_permissions) == (0o600, 0o750)


def test_broker_url_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.setenv("BROKER_URL", "amqp://u:p@broker.internal:5672/v")
    assert load_settings().broker_url == "amqp://u:p@broker.internal:5672/v"


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "s.very-secret-token")
    assert "very-secret-token" not in repr(load_settings())
