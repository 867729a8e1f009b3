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
from pathlib import Path

import pytest
from comfy_servers import start_server

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
    comfyui = start_server(tmp_path_factory.mktemp("serve"))
    try:
        try:
            comfyui.wait_ready(timeout=180)
        except RuntimeError as err:
            pytest.fail(str(err))
        yield comfyui.url + "/"
    finally:
        comfyui.stop()


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
    from blendspace_tools.bundled_workflows import NEEDS_CURRENT_COMFYUI
    from blendspace_tools.comfyui_locator import comfyui_root
    is_current = (comfyui_root() / "comfy_extras" / "nodes_flux.py").is_file()
    if path.stem in NEEDS_CURRENT_COMFYUI and not is_current:
        pytest.skip("needs a current ComfyUI (Flux nodes): the 2024 ComfyUI has no FluxGuidance or EmptySD3LatentImage")
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


# ---------------------------------------------------------------------------------------------- help pages

HELP_NODE = "SlerpLatents"
FETCH = """async (url) => {
    const r = await fetch(url);
    return {status: r.status, text: await r.text()};
}"""
# The current frontend's own help panel: the node library sidebar showing the node's help page, fetched and
# rendered by the frontend (its nodeHelp store: the locale page docs/<id>/<locale>.md, then docs/<id>.md).
OPEN_HELP = """async (nodeId) => {
    const pinia = document.querySelector('#vue-app')?.__vue_app__?.config.globalProperties.$pinia;
    const help = pinia?._s.get('nodeHelp');
    if (!help) return null;
    const commands = pinia._s.get('command');
    const panel = () => document.querySelector('.node-help-content');
    await commands.execute('Workspace.ToggleSidebarTab.node-library');
    help.openHelp(pinia._s.get('nodeDef').nodeDefsByName[nodeId]);
    for (let i = 0; i < 100 && (help.isLoading || !panel()?.querySelector('h1')); i++)
        await new Promise(r => setTimeout(r, 100));
    const shown = panel();
    const result = {error: help.error, baseUrl: help.baseUrl, visible: !!shown && shown.offsetParent !== null,
                    title: shown?.querySelector('h1')?.textContent ?? null,
                    rows: [...(shown?.querySelectorAll('tr td:first-child') ?? [])].map(td => td.textContent.trim())};
    help.closeHelp();
    await commands.execute('Workspace.ToggleSidebarTab.node-library');
    return result;
}"""


def _served_inputs(page, node_id: str) -> list[str]:
    got = page.evaluate(FETCH, f"/object_info/{node_id}")
    assert got["status"] == 200
    spec = json.loads(got["text"])[node_id]["input"]
    return [*spec.get("required", {}), *spec.get("optional", {})]


def test_help_page_is_served_where_the_frontend_looks(page):
    """The page is served (2024 and current ComfyUI alike) at the address the current frontend's help panel
    reads for a custom node: /extensions/<pack folder>/docs/<NodeId>.md."""
    from blendspace_tools.runner import PACK_NAME
    got = page.evaluate(FETCH, f"/extensions/{PACK_NAME}/docs/{HELP_NODE}.md")
    assert got["status"] == 200, f"the help page is not served: HTTP {got['status']}"
    assert got["text"].startswith("# Slerp Latents\n")
    missing = [name for name in _served_inputs(page, HELP_NODE) if f"`{name}`" not in got["text"]]
    assert not missing, f"the served help page does not name the inputs {missing}"


def test_help_panel_shows_the_help_page(page):
    from blendspace_tools.runner import PACK_NAME
    shown = page.evaluate(OPEN_HELP, HELP_NODE)
    if shown is None:
        pytest.skip("this ComfyUI's frontend (the 2024 one) has no node help panel; the page is still served "
                    "(test_help_page_is_served_where_the_frontend_looks)")
    assert shown["error"] is None, f"the help panel could not load the page: {shown['error']}"
    assert shown["baseUrl"] == f"/extensions/{PACK_NAME}/docs/"
    assert shown["visible"] and shown["title"] == "Slerp Latents"
    assert [r for r in shown["rows"] if r in _served_inputs(page, HELP_NODE)] == _served_inputs(page, HELP_NODE)


def test_search_aliases_are_served_where_comfyui_supports_them(page):
    got = page.evaluate(FETCH, "/object_info")
    assert got["status"] == 200
    ours = {k: v for k, v in json.loads(got["text"]).items() if v.get("category", "").startswith("Blendspace/")}
    pages = {p.stem for p in (REPO / "web" / "docs").glob("*.md")}
    assert pages <= set(ours), f"nodes with a help page missing from /object_info: {sorted(pages - set(ours))}"
    served = {k: v.get("search_aliases") for k, v in ours.items()}
    if all(a is None for a in served.values()):
        pytest.skip("this ComfyUI's /object_info has no search_aliases (newer versions serve SEARCH_ALIASES to the "
                    "node search); the attribute is ignored here")
    empty = sorted(k for k, a in served.items() if not a or not all(isinstance(x, str) and x for x in a))
    assert not empty, f"nodes served without search aliases: {empty}"
