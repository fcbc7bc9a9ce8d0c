"""The query parser endpoints read their parameters with: what Starlette's ``query_params``
(``urllib.parse.parse_qsl``) reads, for any query string a client can send."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lenslet_http.params import parse_query, query

#: Bytes that matter to a query string, and some that do not.
_PIECES = st.sampled_from(
    [b"%", b"+", b"=", b"&", b"%2F", b"%2f", b"%C3%A9", b"%E2%82", b"%zz", b"%4", b"a", b"Z",
     b"0", b"/", b";", b" ", b"\xc3\xa9", b"\xff", b"\x00", b"path", b"q"]
)  # fmt: skip


def _starlette(raw: bytes) -> dict[str, str]:
    return dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))


@given(st.lists(_PIECES, max_size=30).map(b"".join))
def test_it_reads_what_parse_qsl_reads(raw: bytes) -> None:
    assert parse_query(raw) == _starlette(raw)


@given(st.binary(max_size=60))
def test_any_bytes_read_as_parse_qsl_reads_them(raw: bytes) -> None:
    assert parse_query(raw) == _starlette(raw)


@given(st.dictionaries(st.text(min_size=1), st.text(), max_size=5))
def test_what_a_client_encodes_comes_back(params: dict[str, str]) -> None:
    assert parse_query(urlencode(params).encode()) == params


def test_the_last_of_a_name_given_twice_and_a_bare_name() -> None:
    assert parse_query(b"path=a&path=b&flag&&=x") == {"path": "b", "flag": "", "": "x"}


@pytest.mark.anyio
async def test_an_endpoint_reads_it_once_per_request() -> None:
    async def echo(request: Request) -> JSONResponse:
        first = query(request)
        assert query(request) is first  # parsed once, kept for the request
        return JSONResponse(dict(first))

    app = Starlette(routes=[Route("/echo", echo)])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        answer = await http.get("/echo", params={"path": "trips/été/a b.jpg", "q": "x+y"})
    assert answer.json() == {"path": "trips/été/a b.jpg", "q": "x+y"}


@pytest.mark.anyio
async def test_a_query_asked_again_is_kept_and_cannot_be_changed_by_an_endpoint() -> None:
    seen = []

    async def echo(request: Request) -> JSONResponse:
        found = query(request)
        seen.append(found)
        with pytest.raises(TypeError):
            found["path"] = "elsewhere"  # type: ignore[index]  # shared between requests
        return JSONResponse(dict(found))

    app = Starlette(routes=[Route("/echo", echo)])
    transport = httpx.ASGITransport(app=app)
    long = "x" * 2000  # too long to keep: parsed each time
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        for params in ({"path": "a/b.jpg"}, {"path": "a/b.jpg"}, {"q": long}, {"q": long}):
            answer = await http.get("/echo", params=params)
            assert answer.json() == params
    assert seen[0] is seen[1]
    assert seen[2] is not seen[3]
    assert seen[2] == seen[3]
