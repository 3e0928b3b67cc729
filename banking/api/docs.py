"""The interactive API pages, /docs (Swagger UI) and /redoc (ReDoc), served offline.

Their scripts and styles are the files the `fastapi-offline` package ships (Swagger UI and
ReDoc builds), served from /docs/static; Swagger UI is started by a script file of ours
(docs_static/swagger-init.js) rather than an inline one, so no page needs a CDN or an inline
script (their Content-Security-Policy: banking/api/security.py PAGE_CSP).
"""

from html import escape
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

VENDOR = Path(fastapi_offline.__file__).resolve().parent / "static"
INIT_SCRIPT = Path(__file__).resolve().parent / "docs_static" / "swagger-init.js"
STATIC = "/docs/static"


def add_api_docs(app: FastAPI) -> None:
    """/docs, /redoc and their files; the app is made with docs_url=None, redoc_url=None."""
    title, schema = escape(app.title), escape(app.openapi_url or "/openapi.json")
    head = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} - %s'
        f'</title><link rel="icon" href="{STATIC}/favicon.png">'
    )
    swagger = (
        head % "Swagger UI" + f'<link rel="stylesheet" href="{STATIC}/swagger-ui.css"></head>'
        f'<body><div id="swagger-ui" data-openapi="{schema}"></div>'
        f'<script src="{STATIC}/swagger-ui-bundle.js"></script>'
        f'<script src="{STATIC}/swagger-init.js"></script></body></html>'
    )
    redoc = (
        head % "ReDoc" + f'</head><body><redoc spec-url="{schema}"></redoc>'
        f'<script src="{STATIC}/redoc.standalone.js"></script></body></html>'
    )

    @app.get("/docs", include_in_schema=False)
    def swagger_page() -> HTMLResponse:
        return HTMLResponse(swagger)

    @app.get("/redoc", include_in_schema=False)
    def redoc_page() -> HTMLResponse:
        return HTMLResponse(redoc)

    @app.get(f"{STATIC}/swagger-init.js", include_in_schema=False)
    def swagger_init() -> FileResponse:
        return FileResponse(INIT_SCRIPT, media_type="text/javascript")

    app.mount(STATIC, StaticFiles(directory=VENDOR), name="api-docs")
