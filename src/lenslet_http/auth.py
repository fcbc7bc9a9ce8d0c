"""The bearer token, and the session cookie a browser gets for it.

With a token set, every request needs ``Authorization: Bearer <token>`` — or the session cookie
that ``POST /session`` (``{"token": "..."}``) sets for a browser, so that ``<img>`` and
``EventSource`` work without the token ever being in a URL. The cookie is HttpOnly and
SameSite=Strict, and a write it carries also needs the ``X-Requested-With`` header (which another
site's page cannot send without a CORS preflight this app never grants): no cross-site request
forgery. The page itself and its files stay open, so that it can ask for the token.
"""

from __future__ import annotations

import hashlib
import hmac
from http.cookies import CookieError, SimpleCookie

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lenslet_core import CrossSiteRefused, Unauthorized

from .responses import ORJSONResponse, error_answer
from .routing import route_path

__all__ = ["SESSION_COOKIE", "BearerToken"]

SESSION_COOKIE = "lenslet_session"
#: Methods that change nothing: a session cookie is enough for them.
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
#: Routes of the page, open to anyone (they hold no gallery data).
_PAGE = ("/", "/session")
_PAGE_FILES = "/ui/"
#: The largest ``POST /session`` body read.
_SESSION_BODY = 4096


class BearerToken:
    """Requests must carry the bearer token or its session cookie (compared in constant time);
    ``open_paths`` (e.g. ``/health``) and the page stay open, and ``request.state.authorized``
    says whether a request was authorized (open routes show less to those that were not)."""

    def __init__(self, app: ASGIApp, token: str, open_paths: tuple[str, ...] = ()) -> None:
        self.app = app
        self.token = token.encode()
        # Derived from the token: valid while the token is, never the token itself.
        self.session = hmac.new(self.token, b"lenslet session", hashlib.sha256).hexdigest()
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root = scope.get("root_path", "")
        path = route_path(scope)
        headers = {name: value for name, value in scope.get("headers", ())}
        if path == "/session" and scope["method"] == "POST":
            await self._open_session(scope, receive, send, root)
            return
        given = headers.get(b"authorization", b"")
        by_token = given[:7].lower() == b"bearer " and hmac.compare_digest(
            given[7:].strip(), self.token
        )
        by_cookie = not by_token and hmac.compare_digest(
            _cookie(headers.get(b"cookie", b"")).encode(), self.session.encode()
        )
        if by_cookie and scope["method"] not in _SAFE and b"x-requested-with" not in headers:
            response = error_answer(
                CrossSiteRefused(
                    "a write with the session cookie needs the X-Requested-With header"
                )
            )
            await response(scope, receive, send)
            return
        authorized = by_token or by_cookie
        scope.setdefault("state", {})["authorized"] = authorized
        public = path in self.open_paths or path in _PAGE or path.startswith(_PAGE_FILES)
        if authorized or public:
            await self.app(scope, receive, send)
            return
        response = error_answer(Unauthorized("a bearer token is required"))
        await response(scope, receive, send)

    async def _open_session(self, scope: Scope, receive: Receive, send: Send, root: str) -> None:
        """``POST /session`` with ``{"token": ...}``: the session cookie, or 401."""
        body = b""
        while True:
            message: Message = await receive()
            body += message.get("body", b"")
            if len(body) > _SESSION_BODY or not message.get("more_body", False):
                break
        try:
            token = orjson.loads(body).get("token", "") if len(body) <= _SESSION_BODY else ""
        except (orjson.JSONDecodeError, AttributeError):
            token = ""
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), self.token):
            response = error_answer(Unauthorized("that is not the token"))
            await response(scope, receive, send)
            return
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        cookie = (
            f"{SESSION_COOKIE}={self.session}; Path={root or '/'}; HttpOnly; "
            f"SameSite=Strict{secure}"
        )
        await ORJSONResponse({"ok": True}, headers={"Set-Cookie": cookie})(scope, receive, send)


def _cookie(header: bytes) -> str:
    """The session cookie's value in a ``Cookie`` header ("" when it has none)."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header.decode("latin-1"))
    except CookieError:  # a malformed Cookie header is no session, whatever is in it
        return ""
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel is not None else ""
