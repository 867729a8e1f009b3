"""The bundled workflows in the real ComfyUI frontend: served on 127.0.0.1, opened in headless Chromium.

Every workflow is loaded through the page (``app.loadGraphData``, what a drag-and-drop does); no node
type may be missing and every widget must show the workflow's value. (The template browser's
thumbnails ``workflows/<name>.jpg`` are diagrams drawn by ``python -m blendspace thumbnails``, not
screenshots.) Needs Debian's ``chromium`` and the ``playwright``
package (``.ci/run`` installs both); without them the test is skipped, except in CI where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]


def _requirements_or_skip():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "the playwright package"
    else:
        missing = None if CHROMIUM else "Debian's chromium"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing} is missing; .ci/run installs it")
        pytest.skip(f"{missing} is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _frontend_or_skip():
    """A current ComfyUI serves its frontend from the comfyui-frontend-package pip package (the 2024 copy
    ships it in web/)."""
    from blendspace_tools.comfyui_locator import comfyui_root
    root = comfyui_root()
    if (root / "app" / "frontend_management.py").is_file():
        import importlib.util
        if importlib.util.find_spec("comfyui_frontend_package") is None:
            pytest.skip(f"this ComfyUI serves its frontend from comfyui-frontend-package: pip install -r "
                        f"{root / 'requirements.txt'}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _requirements_or_skip()
    _frontend_or_skip()
    port = _free_port()
    work = tmp_path_factory.mktemp("serve")
    log = open(work / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "blendspace", "serve", "--port", str(port), "--workdir", str(work)],
                            cwd=str(REPO), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"ComfyUI exited: {(work / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url + "object_info/SlerpLatents", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"ComfyUI did not answer: {(work / 'server.log').read_text()[-3000:]}")
            time.sleep(1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        pg = browser.new_page(viewport={"width": 2400, "height": 1300})
        pg.goto(server, wait_until="networkidle")
        pg.wait_for_function("window.app && window.app.graph", timeout=60000)
        yield pg
        browser.close()


LOAD = """async (wf) => {
    await app.loadGraphData(wf);
    return app.graph._nodes.map(n => ({id: n.id, type: n.type, registered: !!LiteGraph.registered_node_types[n.type],
                                       widgets: (n.widgets || []).map(w => w.value)}));
}"""


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) <= 1e-6 * max(1.0, abs(b))
    return a == b


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_workflow_loads_in_the_frontend_with_its_values(page, path):
    workflow = json.loads(path.read_text())
    shown = {n["id"]: n for n in page.evaluate(LOAD, workflow)}
    assert set(shown) == {n["id"] for n in workflow["nodes"]}
    missing = sorted({n["type"] for n in shown.values() if not n["registered"]})
    assert not missing, f"node types reported missing: {missing}"
    for node in workflow["nodes"]:
        want = node.get("widgets_values") or []
        got = shown[node["id"]]["widgets"]
        assert len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want, strict=True)), \
            f"{path.name} node {node['id']} ({node['type']}) shows {got}, the workflow says {want}"
