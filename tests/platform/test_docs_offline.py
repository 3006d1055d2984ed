"""/docs and /redoc work without internet: every script, style and icon they use is served here,
and nothing on the pages points a visitor's browser at another host."""

import re

import pytest

PAGES = ["/docs", "/redoc", "/docs/oauth2-redirect"]
# src="...", href="...", url: '...' (Swagger UI's document), Redoc.init("...", ...)
REFERENCES = re.compile(
    r"""(?:src|href)=["']([^"']+)["']|url: ?'([^']+)'|Redoc\.init\("([^"]+)\""""
)


def references(html: str) -> list[str]:
    return [next(filter(None, groups)) for groups in REFERENCES.findall(html)]


@pytest.mark.parametrize("page", PAGES)
async def test_the_page_names_no_other_host(client, page):
    r = await client.get(page)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    # No http(s)://host, no protocol-relative //host (a CDN), no web fonts.
    assert re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}", r.text, re.IGNORECASE) == []
    assert "fonts.googleapis" not in r.text and "cdn" not in r.text.lower()
    for ref in references(r.text):
        assert ref.startswith("/"), ref


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (
            "/docs",
            {
                "/docs/assets/swagger-ui.css": "text/css",
                "/docs/assets/favicon.png": "image/png",
                "/docs/assets/swagger-ui-bundle.js": "javascript",
                "/openapi.json": "application/json",
            },
        ),
        (
            "/redoc",
            {
                "/docs/assets/favicon.png": "image/png",
                "/docs/assets/redoc.standalone.js": "javascript",
                "/openapi.json": "application/json",
            },
        ),
    ],
)
async def test_every_asset_the_page_uses_is_served(client, page, expected):
    html = (await client.get(page)).text
    assert set(references(html)) == set(expected)
    for ref, media_type in expected.items():
        r = await client.get(ref)
        assert r.status_code == 200, ref
        assert media_type in r.headers["content-type"], (ref, r.headers["content-type"])
        assert len(r.content) > 1000, ref


async def test_swagger_ui_keeps_the_authorize_button_working(client):
    html = (await client.get("/docs")).text
    # The OAuth2 flow's redirect page is ours, and the password flow posts to our token URL.
    assert "oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect'" in html
    assert '"persistAuthorization": true' in html
    assert '"validatorUrl": null' in html  # no badge fetched from validator.swagger.io
    redirect = (await client.get("/docs/oauth2-redirect")).text
    assert "swaggerUIRedirectOauth2" in redirect
    document = (await client.get("/openapi.json")).json()
    (scheme,) = document["components"]["securitySchemes"].values()
    assert scheme["flows"]["password"]["tokenUrl"] == "/v1/auth/token"


async def test_redoc_asks_for_no_web_font(client):
    html = (await client.get("/redoc")).text
    assert "<link" not in html.replace('<link rel="icon"', "")
    assert '"fontFamily": "system-ui' in html


@pytest.mark.parametrize("page", PAGES)
async def test_the_browser_may_fetch_from_this_server_only(client, page):
    # ReDoc's footer shows a logo from its vendor's CDN: the policy makes the browser refuse it.
    policy = (await client.get(page)).headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'self'"
    for name in ("img-src", "connect-src", "font-src", "script-src", "style-src", "worker-src"):
        sources = directives[name].split()
        assert set(sources) <= {"'self'", "'unsafe-inline'", "data:", "blob:"}, (name, sources)
