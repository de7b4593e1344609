"""UI routes: the page shell at `/` that later capabilities fill with their screens."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from byteor_cloud import __version__
from byteor_cloud.ui.browser import TEMPLATE_GLOBALS

UI_DIR = Path(__file__).parent
templates = Jinja2Templates(directory=UI_DIR / "templates")
templates.env.globals["version"] = __version__
# csrf_field(), csrf_token(), signed_in_user(): see ui/browser.py.
templates.env.globals.update(TEMPLATE_GLOBALS)

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "home.html", {"title": "Home"})


def mount_ui(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=UI_DIR / "static"), name="static")
    app.include_router(router)
