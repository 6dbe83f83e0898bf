"""/docs and /redoc load from assets shipped in the package (issue 10); / is the web console
once `suanli serve` installs it (issue 17), and its assets are package data too."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from importlib import resources
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from suanli.console import install as install_console

ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_root_is_the_console_and_docs_stay(app) -> None:  # type: ignore[no-untyped-def]
    install_console(app)
    client = TestClient(app)
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_every_asset_from_this_server(client, page) -> None:  # type: ignore[no-untyped-def]
    html = client.get(page)
    assert html.status_code == 200
    assets = ASSET.findall(html.text)
    assert any(a.endswith(".js") for a in assets), assets
    for asset in assets:
        assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
        served = client.get(asset)
        assert served.status_code == 200 and len(served.content) > 500, asset
    assert "fonts.googleapis" not in html.text and "cdn.jsdelivr" not in html.text


def test_the_docs_assets_and_their_licences_are_package_data() -> None:
    static = resources.files("suanli.api").joinpath("static")
    patterns = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-data"]
    shipped = [f"api/static/{d.name}/{f.name}" for d in static.iterdir() if d.is_dir()
               for f in d.iterdir()]
    assert any(name.endswith("LICENSE") for name in shipped)
    for name in shipped:
        assert any(fnmatch.fnmatch(name, p) for p in patterns["suanli"]), name


def test_the_consoles_templates_and_assets_are_package_data() -> None:
    console = resources.files("suanli.console")
    patterns = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-data"]
    shipped = [f"console/{d}/{f.name}" for d in ("templates", "static")
               for f in console.joinpath(d).iterdir()]
    assert "console/static/htmx.min.js" in shipped and "console/static/htmx.LICENSE" in shipped
    for name in shipped:
        assert any(fnmatch.fnmatch(name, p) for p in patterns["suanli"]), name
