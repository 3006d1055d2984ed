"""/docs (Swagger UI) and /redoc served whole by this process: their scripts, styles and favicon
ship with the fastapi-offline package, so the pages work without internet and a visitor's
browser calls no third party (no CDN, no web fonts)."""

from __future__ import annotations

import json
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs/assets"
DOCS_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
REDOC_URL = "/redoc"
# The fonts people already have: ReDoc's default theme asks for Roboto and Montserrat.
FONTS = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
MONO = 'ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace'

# The pages may load and call nothing but this server: ReDoc's footer, for one, shows a logo from
# its vendor's CDN, which the browser now refuses instead of asking for. Their own inline start-up
# scripts and the styles their libraries inject are allowed; `data:`/`blob:` serve their icons
# and ReDoc's search worker.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'self'",
    )
)
HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY}

REDOC_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" type="image/png" href="{assets}/favicon.png">
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<div id="redoc"></div>
<script src="{assets}/redoc.standalone.js"></script>
<script>
Redoc.init({openapi_url}, {options}, document.getElementById("redoc"));
</script>
</body>
</html>
"""


def install_docs(app: FastAPI) -> None:
    """Create the app with ``docs_url=None, redoc_url=None``; this adds both pages."""
    assert app.openapi_url
    openapi_url = app.openapi_url
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
            init_oauth=app.swagger_ui_init_oauth,
            # No badge that asks validator.swagger.io about the document.
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
        )
        page.headers.update(HEADERS)
        return page

    async def oauth2_redirect(_: Request) -> HTMLResponse:
        page = get_swagger_ui_oauth2_redirect_html()
        page.headers.update(HEADERS)
        return page

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        theme = {
            "typography": {
                "fontFamily": FONTS,
                "headings": {"fontFamily": FONTS},
                "code": {"fontFamily": MONO},
            }
        }
        return HTMLResponse(
            REDOC_PAGE.format(
                title=f"{app.title} - ReDoc",
                assets=root + ASSETS_URL,
                openapi_url=json.dumps(root + openapi_url),
                options=json.dumps({"theme": theme}),
            ),
            headers=HEADERS,
        )

    app.add_route(DOCS_URL, swagger_ui, include_in_schema=False)
    app.add_route(OAUTH2_REDIRECT_URL, oauth2_redirect, include_in_schema=False)
    app.add_route(REDOC_URL, redoc, include_in_schema=False)
