from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lenslet_core import Settings, SettingsError
from lenslet_core.s3 import DEFAULTS, with_defaults
from lenslet_core.storage import options_for


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


def test_s3_options_are_per_protocol_storage_options() -> None:
    settings = Settings().with_s3(endpoint_url="http://127.0.0.1:9000", region="eu-west-1")
    settings = settings.with_s3(profile="photos")  # adds, keeps the rest
    assert settings.storage_options == {
        "s3": {
            "endpoint_url": "http://127.0.0.1:9000",
            "client_kwargs": {"region_name": "eu-west-1"},
            "profile": "photos",
        }
    }
    assert Settings().with_s3() == Settings()  # nothing given, nothing changed
    with pytest.raises(SettingsError, match="storage_options"):
        Settings(storage_options={"s3": "http://x"})  # type: ignore[dict-item]


def test_a_root_opens_with_its_protocols_options_over_the_backends_defaults() -> None:
    given = {"s3": {"endpoint_url": "http://e", "config_kwargs": {"read_timeout": 5}}}
    options = options_for("s3://bucket/gallery", given)
    assert options["endpoint_url"] == "http://e"
    assert options["config_kwargs"]["read_timeout"] == 5  # given wins ...
    assert options["config_kwargs"]["connect_timeout"] == 3.0  # ... over the defaults kept
    assert options_for("/photos", given) == {}  # a local root takes no S3 options
    assert options_for("memory://g", {"memory": {"x": 1}}) == {"x": 1}


@given(
    st.dictionaries(
        st.sampled_from(["endpoint_url", "profile", "config_kwargs", "client_kwargs"]),
        st.dictionaries(st.sampled_from(["connect_timeout", "read_timeout", "region_name"]),
                        st.integers(1, 9)),
    )
)  # fmt: skip
def test_given_s3_options_always_win_and_defaults_fill_the_rest(given: dict[str, Any]) -> None:
    merged = with_defaults(given)
    for key, value in given.items():
        if key in ("config_kwargs", "client_kwargs"):
            assert value.items() <= merged[key].items()
        else:
            assert merged[key] == value
    for key, value in DEFAULTS["config_kwargs"].items():
        assert merged["config_kwargs"].get(key) == given.get("config_kwargs", {}).get(key, value)
