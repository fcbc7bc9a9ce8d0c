"""The OpenAPI description is made from the route table, and a real server answers what it
says: a bounded schemathesis run against ``lenslet serve`` (seeded with the gallery's real
paths) finds no server error and no answer outside the description."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

from lenslet_http import create_app
from lenslet_http.openapi import describe
from tests.imagegen import jpeg_bytes, png_bytes, write
from tests.servers import serving

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def gallery_tree(root: Path) -> None:
    write(root / "a" / "x.jpg", jpeg_bytes(64, 48, seed=1))
    write(root / "a" / "x.jpg.json", b'{"tags": ["sea"], "notes": "low tide"}')
    write(root / "b" / "y.png", png_bytes(40, 30))
    write(root / "top.jpg", jpeg_bytes(32, 32, seed=2))


def seeded(document: dict[str, Any]) -> dict[str, Any]:
    """The description with the gallery's real paths as examples, so the run also asks for
    what is there (not only for random paths, which are 404s)."""
    document = copy.deepcopy(document)
    for route, methods in document["paths"].items():
        for operation in methods.values():
            for param in operation.get("parameters", []):
                if param["name"] == "path":
                    image = route in ("/item", "/thumb", "/file")
                    param["examples"] = (
                        {"jpeg": {"value": "a/x.jpg"}, "png": {"value": "/b/y.png"}}
                        if image
                        else {"root": {"value": ""}, "folder": {"value": "/a"}}
                    )
                    param.pop("example", None)
    return document


def test_every_route_and_method_is_described_from_the_route_table(tmp_path: Path) -> None:
    gallery_tree(tmp_path)
    app = create_app(str(tmp_path))
    document = describe(app.routes, "test")
    served = {
        (route.path, method.lower())
        for route in app.routes
        if isinstance(route, Route) and route.path != "/"
        for method in route.methods or ()
        if method != "HEAD"
    }
    described = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert described == served
    assert ("/metrics", "get") in described
    responses = document["paths"]["/folders"]["get"]["responses"]
    assert "content" not in responses["304"]  # 304 has no body
    assert set(responses) >= {"200", "304", "400", "401", "404"}
    assert document["paths"]["/item"]["put"]["security"]  # a token applies ...
    assert document["paths"]["/health"]["get"]["security"] == []  # ... not to /health
    headers = {p["name"] for p in document["paths"]["/file"]["get"]["parameters"]}
    assert {"Range", "If-None-Match"} <= headers
    for name in ("Manifest", "FolderItem", "Sidecar", "Hit", "Health", "Error"):
        assert name in document["components"]["schemas"]


def test_a_real_server_answers_what_its_description_says(tmp_path: Path) -> None:
    gallery_tree(tmp_path)
    with serving(str(tmp_path), "--no-index") as (_, url):
        document = httpx.get(f"{url}/openapi.json").json()
        schema = schemathesis.openapi.from_dict(seeded(document))
        schema.config.update(base_url=url)
        ran, calls = 0, []
        for result in schema.get_all_operations():
            operation = result.ok()  # type: ignore[union-attr]  # an Err raises here
            if operation.path == "/events":
                continue  # a stream that does not end: /events has tests of its own

            @given(case=operation.as_strategy())
            @settings(
                max_examples=20,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: schemathesis.Case[Any]) -> None:
                answer = case.call_and_validate(base_url=url, checks=CHECKS, timeout=30)
                calls.append((case.method, case.path, answer.status_code))

            run()
            ran += 1
    assert ran >= 12  # every operation but the stream
    assert len(calls) >= ran * 6  # several cases each
    found = {(method, path) for method, path, status in calls if status in (200, 201, 206)}
    assert ("GET", "/thumb") in found  # the seeded paths reached real images
    assert ("GET", "/item") in found
