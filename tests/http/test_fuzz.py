"""No input makes the HTTP API fail with a 500: any path, page, limit, wait or query."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lenslet_core import Lenslet, Settings
from lenslet_http import create_app
from tests.imagegen import jpeg_bytes, write

ROUTES = ["/folders", "/item", "/thumb", "/file", "/search"]
#: Text a client might send: traversal, encodings, NUL, flat files, unicode, plain junk.
pieces = st.sampled_from(
    ["", "/", "..", "%2e%2e", "%2f", "\\", "\x00", "a.jpg", "_index.json", "x.jpg.json", "é", "~"]
)
texts = st.one_of(st.text(max_size=40), st.lists(pieces, max_size=6).map("/".join))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz")
    write(folder / "a.jpg", jpeg_bytes(64, 48))
    write(folder / "sub" / "b.jpg", jpeg_bytes(32, 24, seed=1))
    return folder


@settings(max_examples=150, deadline=None)
@given(
    route=st.sampled_from(ROUTES),
    path=texts,
    extra=st.dictionaries(st.sampled_from(["page", "limit", "wait", "q"]), texts, max_size=2),
)
def test_no_input_gives_a_500(root: Path, route: str, path: str, extra: dict[str, str]) -> None:
    async def ask() -> httpx.Response:
        async with Lenslet(str(root), Settings(cpu_concurrency=2, readonly=True)) as lens:
            transport = httpx.ASGITransport(app=create_app(lens), raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://fuzz") as http:
                return await http.get(route, params={"path": path, **extra})

    response = anyio.run(ask)
    assert response.status_code < 500, (route, path, extra, response.text)
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"code", "message"}
