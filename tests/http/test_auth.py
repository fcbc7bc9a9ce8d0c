"""The bearer token and the browser's session cookie (lenslet_http.auth), over real HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.http.test_app import client
from tests.imagegen import jpeg_bytes, write

pytestmark = pytest.mark.anyio


async def test_a_session_cookie_stands_in_for_the_token_and_writes_need_the_header(
    gallery: Path,
) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    async with client(gallery, token="s3cret") as http:
        for open_route in ("/", "/ui/app.js", "/health"):  # the page can load and ask
            assert (await http.get(open_route)).status_code == 200, open_route
        assert (await http.get("/folders", params={"path": "a"})).status_code == 401
        wrong = await http.post("/session", json={"token": "guess"})
        assert wrong.status_code == 401
        assert "set-cookie" not in wrong.headers
        assert (await http.post("/session", content=b"not json")).status_code == 401
        right = await http.post("/session", json={"token": "s3cret"})
        assert right.status_code == 200
        cookie = right.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert "s3cret" not in cookie  # derived from the token, never the token
        # The client keeps the cookie: reads work as with the token, <img> included.
        assert (await http.get("/folders", params={"path": "a"})).status_code == 200
        assert (await http.get("/thumb", params={"path": "a/x.jpg"})).status_code == 200
        health = (await http.get("/health")).json()
        assert "gallery" in health  # signed in: the details
        # A write with only the cookie (what a cross-site form could send) is refused ...
        forged = await http.put("/item", params={"path": "a/x.jpg"}, json={"tags": ["x"]})
        assert forged.status_code == 403
        assert forged.json()["error"]["code"] == "csrf"
        # ... one from the page (with the header) is not.
        page = await http.put(
            "/item",
            params={"path": "a/x.jpg"},
            json={"tags": ["x"]},
            headers={"X-Requested-With": "lenslet"},
        )
        assert page.status_code == 200, page.text
        http.cookies.clear()
        http.cookies.set("lenslet_session", "forged-value")
        assert (await http.get("/folders", params={"path": "a"})).status_code == 401
        bearer = await http.put(
            "/item",
            params={"path": "a/x.jpg"},
            json={"tags": ["y"]},
            headers={"Authorization": "Bearer s3cret"},
        )
        assert bearer.status_code == 200  # the token itself needs no extra header
