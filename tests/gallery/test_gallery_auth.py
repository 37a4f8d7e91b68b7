"""The gallery with tokens on: every route answers as the services do for the signed-in token.

The route table comes from the app's own router, so a new route without a row here fails the
first test. Statuses: 401 without a valid token, 403 for a namespace the token may not read (or
write, to save), 200 otherwise.
"""

from __future__ import annotations

import ssl

import httpx
import pytest
from starlette.routing import Mount, Route

from thresher.gallery.sessions import COOKIE

from ..deploy.conftest import make_certificate

# reader: team/* read; alice: team/* write; bob: other/* write (tests/deploy/conftest.py's TOKENS).
PUBLIC = {"/", "/api/login", "/api/logout"}


def cases(team, other) -> dict[tuple[str, str], dict]:
    """(method, route path) → the request and who gets what."""
    first = team.get_datapoint("train/img_001.png").datapoint_id
    source = {"namespace": "team/pets", "source": "datasource:images"}
    reads = {"reader-token": 200, "alice-token": 200, "bob-token": 403, None: 401, "wrong": 401}
    ids = f"{team.id}/{first}"
    return {
        ("GET", "/api/namespaces"): {"url": "/api/namespaces", "expect": {**reads, "bob-token": 200}},
        ("GET", "/api/sources"): {"url": "/api/sources", "params": {"namespace": "team/pets"}, "expect": reads},
        ("GET", "/api/describe"): {"url": "/api/describe", "params": source, "expect": reads},
        ("GET", "/api/count"): {"url": "/api/count", "params": source, "expect": reads},
        ("GET", "/api/items"): {"url": "/api/items", "params": source, "expect": reads},
        ("GET", "/api/facet"): {"url": "/api/facet", "params": {**source, "field": "label"}, "expect": reads},
        ("GET", "/api/datapoint/{datasource_id}/{datapoint_id}"): {"url": f"/api/datapoint/{ids}", "expect": reads},
        ("GET", "/api/thumb/{datasource_id}/{datapoint_id}"): {
            "url": f"/api/thumb/{ids}",
            "params": {"v": "1"},
            "expect": reads,
        },
        ("GET", "/api/file/{datasource_id}/{datapoint_id}"): {"url": f"/api/file/{ids}", "expect": reads},
        ("GET", "/api/neighbours/{datasource_id}/{datapoint_id}"): {"url": f"/api/neighbours/{ids}", "expect": reads},
        ("POST", "/api/datasets"): {
            "url": "/api/datasets",
            "json": {**source, "q": 'label == "cat"', "name": "cats"},
            "expect": {**reads, "reader-token": 403},
        },
    }


def request(server, case: dict, token: str | None) -> httpx.Response:
    cookies = {COOKIE: token} if token else {}
    with httpx.Client(base_url=server.url.rstrip("/"), cookies=cookies) as client:
        if "json" in case:
            return client.post(case["url"], json=case["json"])
        return client.get(case["url"], params=case.get("params"))


def test_every_route_is_in_the_matrix(secured_gallery):
    server, team, other = secured_gallery
    routes = set()
    for route in server.app.routes:
        if isinstance(route, Mount):
            continue  # /static: the page's own files, the same for everyone
        assert isinstance(route, Route), f"an unexpected kind of route: {route!r}"
        routes.update((method, route.path) for method in route.methods - {"HEAD"})
    covered = set(cases(team, other)) | {(m, p) for m in ("GET", "POST") for p in PUBLIC}
    assert routes <= covered, f"routes without an authorization test: {sorted(routes - covered)}"


@pytest.mark.parametrize("token", ["reader-token", "alice-token", "bob-token", None, "wrong"])
def test_each_route_answers_as_the_services_do(secured_gallery, token):
    server, team, other = secured_gallery
    for (method, path), case in cases(team, other).items():
        response = request(server, case, token)
        expected = case["expect"][token]
        assert response.status_code == expected, (
            f"{method} {path} with {token}: {response.status_code} {response.text[:200]}, expected {expected}"
        )
        if expected in (401, 403):
            assert "error" in response.json()


def test_listings_show_only_readable_namespaces(secured_gallery):
    server, team, other = secured_gallery
    listing = cases(team, other)[("GET", "/api/namespaces")]
    assert request(server, listing, "reader-token").json()["namespaces"] == ["team/pets"]
    assert request(server, listing, "bob-token").json()["namespaces"] == ["other/stuff"]


def test_bytes_of_another_namespace_are_refused_even_when_cached(secured_gallery):
    server, team, other = secured_gallery
    point = other.get_datapoint("train/img_001.png")
    url = {"url": f"/api/thumb/{other.id}/{point.datapoint_id}", "params": {"v": "x"}}
    assert request(server, url, "bob-token").status_code == 200  # bob may: now the thumbnail is cached
    assert request(server, url, "alice-token").status_code == 403
    assert request(server, {"url": f"/api/file/{other.id}/{point.datapoint_id}"}, "alice-token").status_code == 403
    assert request(server, {"url": f"/api/datapoint/{other.id}/{point.datapoint_id}"}, "alice-token").status_code == 403


def test_login_sets_a_strict_http_only_cookie_and_refuses_bad_tokens(secured_gallery):
    server, _, _ = secured_gallery
    with httpx.Client(base_url=server.url.rstrip("/")) as client:
        refused = client.post("/api/login", json={"token": "wrong"})
        assert refused.status_code == 401 and COOKIE not in refused.cookies
        accepted = client.post("/api/login", json={"token": "reader-token"})
        assert accepted.status_code == 200
        cookie = accepted.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
        assert client.get("/api/namespaces").json() == {"namespaces": ["team/pets"], "signed_in": True}
        client.post("/api/logout")
        assert client.get("/api/namespaces").status_code == 401


def test_the_cookie_is_secure_under_tls(secured_gallery, tmp_path):
    from thresher.gallery import serve

    server, _, _ = secured_gallery
    options = server.app.state.gallery.connections.addresses
    cert, key = make_certificate(tmp_path)
    tls = serve(
        host="127.0.0.1",
        ssl_certfile=cert,
        ssl_keyfile=key,
        metadata_address=options.metadata,
        flight_address=options.flight,
        scanner_address=options.scanner,
        cache_dir=str(tmp_path / "cache"),
    )
    try:
        with httpx.Client(base_url=tls.url.rstrip("/"), verify=ssl.create_default_context(cafile=cert)) as client:
            response = client.post("/api/login", json={"token": "reader-token"})
        assert response.status_code == 200 and "secure" in response.headers["set-cookie"].lower()
    finally:
        tls.stop()


def test_the_browser_asks_for_a_token_and_shows_only_what_it_may_read(page, secured_gallery):
    from .conftest import screenshot

    server, _, _ = secured_gallery
    page.goto(server.url)
    page.wait_for_selector("#signin:not([hidden])")
    page.fill("#token", "wrong")
    page.click("#signin-form button")
    page.wait_for_function("document.getElementById('signin-error').textContent.length > 0")
    assert "not accepted" in page.inner_text("#signin-error"), "a wrong token says so"
    screenshot(page, "sign-in-refused")
    page.fill("#token", "reader-token")
    page.click("#signin-form button")
    page.wait_for_selector(".tile")
    options = page.eval_on_selector_all("#namespace option", "o => o.map(x => x.value)")
    assert options == ["team/pets"], f"the reader was offered namespaces {options}"
    assert page.evaluate("document.cookie") == "", "the token cookie must be invisible to scripts"
    screenshot(page, "signed-in")
