"""Embedding without surprises: a host runs lenslet's background work from its own lifespan
(``lenslet_http.background``), under a real uvicorn, Starlette or FastAPI; a mounted app whose
work nobody started says so."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount

from lenslet_core import Settings
from lenslet_http import background, create_app
from tests.imagegen import jpeg_bytes, write
from tests.servers import serving_app

SETTINGS = Settings(cpu_concurrency=2, manifest_ttl=0)


def _starlette(gallery: Starlette, lifespan: Any) -> Any:
    return Starlette(routes=[Mount("/gallery", gallery)], lifespan=lifespan)


def _fastapi(gallery: Starlette, lifespan: Any) -> Any:
    host = FastAPI(lifespan=lifespan)
    host.mount("/gallery", gallery)
    return host


def until(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "it did not happen in time"
        time.sleep(0.05)


@pytest.mark.parametrize("host", [_starlette, _fastapi], ids=["starlette", "fastapi"])
def test_a_host_runs_the_background_work_from_its_lifespan(host: Any, tmp_path: Path) -> None:
    write(tmp_path / "a" / "x.jpg", jpeg_bytes())
    gallery = create_app(str(tmp_path), SETTINGS, index_on_start=True, watch=True)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with background(gallery):
            yield

    with serving_app(host(gallery, lifespan)) as url, httpx.Client(base_url=url) as http:
        until(lambda: (tmp_path / "_rollup.json").exists())  # the start-up index ran
        write(tmp_path / "a" / "new.jpg", jpeg_bytes(seed=2))  # and the watch sees this

        def listed() -> bool:
            page = http.get("/gallery/folders", params={"path": "a"}).json()
            return "new.jpg" in [i["name"] for i in page["items"]]

        until(listed)
        thumb = http.get("/gallery/thumb", params={"path": "a/new.jpg", "wait": "5"})
        assert thumb.status_code == 200
    assert not gallery.served.started  # stopped with the host


def test_a_mounted_app_whose_work_nobody_started_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path / "x.jpg", jpeg_bytes())
    gallery = create_app(str(tmp_path), SETTINGS, watch=True)
    host = Starlette(routes=[Mount("/gallery", gallery)])  # no lifespan runs the gallery's
    with (
        caplog.at_level(logging.WARNING, logger="lenslet.http"),
        serving_app(host) as url,
        httpx.Client(base_url=url) as http,
    ):
        http.get("/gallery/health")
        http.get("/gallery/health")
    warnings = [r.getMessage() for r in caplog.records if "never started" in r.getMessage()]
    assert len(warnings) == 1  # once, at the first request
    assert "opening its gallery, watch" in warnings[0]
    assert "lenslet_http.background" in warnings[0]
    assert not _layers_named(gallery, "WarnNotStarted")  # its one look taken, it stepped out
    assert _layers_named(gallery, "Timed")  # and only it


def _layers_named(app: Starlette, name: str) -> list[object]:
    layers, layer = [], getattr(app, "middleware_stack", None)
    while layer is not None:
        if type(layer).__name__ == name:
            layers.append(layer)
        layer = getattr(layer, "app", None)
    return layers


def test_an_app_run_on_its_own_starts_its_work_and_warns_of_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path / "x.jpg", jpeg_bytes())
    app = create_app(str(tmp_path), SETTINGS, index_on_start=True)
    with (
        caplog.at_level(logging.WARNING, logger="lenslet.http"),
        serving_app(app) as url,
        httpx.Client(base_url=url) as http,
    ):
        assert http.get("/health").status_code == 200
        until(lambda: (tmp_path / "_rollup.json").exists())
    assert not [r for r in caplog.records if "never started" in r.getMessage()]
