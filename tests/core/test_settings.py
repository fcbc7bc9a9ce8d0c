from __future__ import annotations

import math

import pytest

from lenslet_core import Settings, SettingsError


def test_defaults_are_valid() -> None:
    settings = Settings()
    assert settings.page_size == 5000
    assert settings.io_concurrency is None  # decided by the storage backend
    assert settings.cpu_concurrency >= 1


@pytest.mark.parametrize(
    "changes",
    [
        {"page_size": 0},
        {"page_size": True},
        {"page_size": 2.5},
        {"max_pixels": -1},
        {"max_file_bytes": 0},
        {"io_concurrency": 0},
        {"cpu_concurrency": 0},
        {"manifest_ttl": -1},
        {"manifest_ttl": math.nan},
        {"manifest_ttl": math.inf},
        {"manifest_ttl": True},
        {"writer": ""},
        {"writer": 5},
        {"readonly": "false"},
    ],
)
def test_invalid_settings_fail_at_construction(changes: dict[str, object]) -> None:
    with pytest.raises(SettingsError, match="setting"):
        Settings(**changes)  # type: ignore[arg-type]


def test_replace_checks_again() -> None:
    settings = Settings(page_size=10)
    assert settings.replace(page_size=20).page_size == 20
    with pytest.raises(SettingsError):
        settings.replace(page_size=0)
