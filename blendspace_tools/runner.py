"""Run ComfyUI in-process with Blendspace loaded, and execute workflows headlessly.

Used by ``python -m blendspace run`` (``cli``) and by the test harness. ComfyUI is imported inside the
functions (at run time, from the folder ``comfyui_locator`` finds), never at import of this module.

``--smoke`` swaps the model loaders for tiny random-weight models (the test pack's), caps the steps
and image sizes, and says so: any workflow then runs in seconds on a CPU, producing noise.

Nothing is left behind: the custom-nodes links and ComfyUI's temp folder live in a work folder
under the pack's cache (``$BLENDSPACE_CACHE/work``, never the system temp folder), removed when
the session closes (``close_session``), when the process exits, and, for a process that was
killed, by the next session (a folder whose process is gone).
"""

from __future__ import annotations

import asyncio
import atexit
import importlib
import importlib.util
import inspect
import logging
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace

from .workflow import WorkflowError, describe_execution_error, describe_prompt_errors

REPO = Path(__file__).resolve().parent.parent
PACK_NAME = "Blendspace"
TEST_PACK_NAME = "BlendspaceTesting"
SMOKE_LOADERS = {
    "CheckpointLoaderSimple": ("BlendspaceTest_TinyCheckpoint", {"weights_seed": 0}),
    "CLIPVisionLoader": ("BlendspaceTest_TinyClipVision", {"weights_seed": 3}),
    "LoadImage": ("BlendspaceTest_RandomImage", {"width": 64, "height": 64, "seed": 0}),
    # Flux's loaders (a current ComfyUI): a tiny Flux, the tiny CLIP for both text encoders, a 16-channel VAE
    "UNETLoader": ("BlendspaceTest_TinyFluxUnet", {"weights_seed": 0}),
    "DualCLIPLoader": ("BlendspaceTest_TinyFluxClip", {"weights_seed": 1}),
    "CLIPLoader": ("BlendspaceTest_TinyFluxClip", {"weights_seed": 1}),  # one text encoder (Chroma's T5...)
    "VAELoader": ("BlendspaceTest_TinyVAE16", {"weights_seed": 2}),
    "StyleModelLoader": ("BlendspaceTest_TinyRedux", {"weights_seed": 7}),
    # a CoCa stays a CoCa: the tiny model's kind follows the architecture or file name asked for
    "BlendspaceOpenClipLoader": ("BlendspaceTest_TinyOpenClip", lambda inputs: {
        "weights_seed": 5, "coca": "coca" in f"{inputs.get('architecture')} {inputs.get('clip_name')}".lower()}),
}
MODEL_INPUTS: dict[str, list[tuple[str, str]]] = {  # loader class → its (input, folder_paths folder name) pairs
    "CheckpointLoaderSimple": [("ckpt_name", "checkpoints")],
    "CLIPVisionLoader": [("clip_name", "clip_vision")],
    "VAELoader": [("vae_name", "vae")],
    "LoraLoader": [("lora_name", "loras")],
    "CLIPLoader": [("clip_name", "text_encoders")],
    "DualCLIPLoader": [("clip_name1", "text_encoders"), ("clip_name2", "text_encoders")],
    "UNETLoader": [("unet_name", "diffusion_models")],
    "StyleModelLoader": [("style_model_name", "style_models")],
    "BlendspaceOpenClipLoader": [("clip_name", "open_clip")],
}
LEGACY_FOLDERS = {"text_encoders": "clip", "diffusion_models": "unet"}  # their names in the 2024 ComfyUI
SMOKE_MAX_STEPS = 3
SMOKE_MAX_SIZE = 64


class GraphError(RuntimeError):
    """ComfyUI refused or failed a graph; the message carries ComfyUI's own errors."""


def _run(value):
    return asyncio.run(value) if inspect.iscoroutine(value) else value


def import_comfyui(root: Path, cpu: bool = True):
    """Import ComfyUI from ``root`` for CPU use (unless ``cpu`` is False: ComfyUI then picks its own device, as
    the benchmarks' ``--device cuda``); return ``(nodes, execution, folder_paths, is_current)``."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from comfy.cli_args import args
    args.cpu = cpu
    if (root / "utils" / "extra_config.py").is_file():
        # before `import nodes`: nodes.py puts comfy/ first on sys.path, and comfy/utils.py would then
        # shadow ComfyUI's top-level `utils` package that the server modules import later
        importlib.import_module("utils.extra_config")
    execution = importlib.import_module("execution")
    folder_paths = importlib.import_module("folder_paths")
    nodes = importlib.import_module("nodes")
    return nodes, execution, folder_paths, hasattr(nodes, "init_extra_nodes")


def find_module(path: Path):
    """The module ComfyUI's loader made for the pack folder ``path`` (matched on the unresolved path)."""
    wanted = os.path.abspath(path / "__init__.py")
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        if f and os.path.abspath(f) == wanted:
            return mod
    raise RuntimeError(f"ComfyUI did not import the custom node pack at {path}; see the log above.")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def work_folder() -> Path:
    """A fresh work folder for this process under the pack's cache, removed at exit; folders left by processes
    that were killed are removed first."""
    from .comfyui_locator import cache_dir
    parent = cache_dir() / "work"
    parent.mkdir(parents=True, exist_ok=True)
    for old in parent.glob("run-*-*"):
        pid = old.name.split("-")[1]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=parent))
    atexit.register(shutil.rmtree, work, True)
    return work


def start_comfyui(root: Path, with_test_pack: bool = False, output_dir: str | None = None,
                  isolate_dirs: bool = True, cpu: bool = True) -> SimpleNamespace:
    """Import ComfyUI, load its extra nodes and Blendspace (and the test pack) with its own loader.

    The pack links and ComfyUI's temp folder are in a work folder (:func:`work_folder`). ``isolate_dirs``: the
    input and output folders there too (tests); otherwise ComfyUI's own input folder and ``output_dir`` (else
    ComfyUI's own output folder)."""
    work = work_folder()
    # torch writes a compile cache into the system temp folder when ComfyUI imports torch._dynamo: keep it here
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(work / "torch"))
    nodes, execution, folder_paths, is_current = import_comfyui(root, cpu)
    custom = work / "custom_nodes"
    custom.mkdir()
    (custom / PACK_NAME).symlink_to(REPO, target_is_directory=True)
    if with_test_pack:
        (custom / TEST_PACK_NAME).symlink_to(REPO / "tests" / "testing_pack", target_is_directory=True)
    for sub in ("output", "input", "temp"):
        (work / sub).mkdir()
    folder_paths.folder_names_and_paths["custom_nodes"] = ([str(custom)], set())
    folder_paths.set_temp_directory(str(work / "temp"))
    if isolate_dirs:
        folder_paths.set_input_directory(str(work / "input"))
    if isolate_dirs or output_dir:
        folder_paths.set_output_directory(output_dir or str(work / "output"))
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)
    try:
        if is_current:
            _run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
        else:
            nodes.init_custom_nodes()
    finally:
        logging.getLogger().setLevel(level)
    pack = find_module(custom / PACK_NAME)
    testing = find_module(custom / TEST_PACK_NAME) if with_test_pack else None
    missing = [k for k in pack.NODE_CLASS_MAPPINGS if k not in nodes.NODE_CLASS_MAPPINGS]
    if missing:
        raise RuntimeError(f"Blendspace nodes not registered by ComfyUI: {missing}")
    return SimpleNamespace(root=root, work=work, is_current=is_current, nodes=nodes, execution=execution,
                           folder_paths=folder_paths, pack=pack, testing=testing)


def close_session(session: SimpleNamespace) -> None:
    """Remove the session's work folder (pack links, ComfyUI's temp files)."""
    shutil.rmtree(session.work, ignore_errors=True)


class _Server:
    """What PromptExecutor and the progress hooks touch on the server, in both ComfyUI versions."""

    client_id = None
    last_node_id = None
    last_prompt_id = None
    sockets_metadata: dict = {}

    def __init__(self, echo=None):
        self.messages: list = []
        self.echo = echo

    def send_sync(self, event, data, sid=None):
        self.messages.append((event, data))
        if self.echo is not None:
            self.echo(event, data)


def _executor(session: SimpleNamespace, echo, reuse: bool):
    """ComfyUI's PromptExecutor with our stand-in server; with ``reuse``, the session's one, so unchanged nodes
    (loaders, text encoders) are served from its cache as a server does between prompts."""
    if reuse and getattr(session, "executor", None) is not None:
        session.server.echo = echo
        session.server.messages.clear()
        return session.executor, session.server
    server = _Server(echo)
    if session.is_current:
        ex = session.execution.PromptExecutor(server, cache_type=session.execution.CacheType.CLASSIC)
    else:
        ex = session.execution.PromptExecutor(server)
    if reuse:
        session.executor, session.server = ex, server
    return ex, server


def execute(session: SimpleNamespace, prompt: dict, echo=None, workflow: dict | None = None,
            reuse: bool = False) -> dict:
    """Validate (all outputs must validate) and execute an API prompt; return the UI outputs per node.
    ``workflow``: the UI workflow, written into saved images' metadata as ComfyUI's web page does.
    ``reuse``: keep one executor (and its cache) across calls, for the jobs of a sweep."""
    execution = session.execution
    if session.is_current:
        valid = _run(execution.validate_prompt(str(uuid.uuid4()), prompt, None))
    else:
        valid = execution.validate_prompt(prompt)
    if not valid[0] or valid[3]:
        raise GraphError(describe_prompt_errors(valid[1], valid[3]))
    ex, server = _executor(session, echo, reuse)
    extra_data: dict = {"client_id": None}
    if workflow is not None:
        extra_data["extra_pnginfo"] = {"workflow": workflow}
    ex.execute(prompt, str(uuid.uuid4()), extra_data, valid[2])
    if not ex.success:
        errors = [m for m in list(getattr(ex, "status_messages", [])) + server.messages
                  if m[0] in ("execution_error", "execution_interrupted")]
        raise GraphError("execution failed: " + ("; ".join(describe_execution_error(e, d) for e, d in errors[:1])
                                                 or "no error message"))
    return dict(ex.history_result["outputs"] if session.is_current else ex.outputs_ui)


class NodeDefinitions(Mapping):
    """``class_type`` → ``INPUT_TYPES()`` of the registered nodes, each asked for only when it is looked up.

    Some core nodes write when asked for their inputs (the current ComfyUI's Load 3D makes ``input/3d`` in the
    input folder), so a run must not ask every node: only those its workflow uses. A node whose
    ``INPUT_TYPES()`` fails counts as absent (a broken third-party node must not stop the conversion)."""

    def __init__(self, classes: Mapping):
        self._classes = classes
        self._known: dict[str, dict | None] = {}

    def _lookup(self, name: str) -> dict | None:
        if name not in self._known:
            cls = self._classes.get(name)
            try:
                self._known[name] = None if cls is None else cls.INPUT_TYPES()
            except Exception:  # noqa: BLE001 - see the class docstring
                self._known[name] = None
        return self._known[name]

    def __getitem__(self, name: str) -> dict:
        found = self._lookup(name) if isinstance(name, str) else None
        if found is None:
            raise KeyError(name)
        return found

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._lookup(name) is not None

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._classes if name in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __bool__(self) -> bool:  # ``if node_defs:`` must not ask every node (``__len__`` would)
        return bool(self._classes)


def node_definitions(nodes) -> tuple[NodeDefinitions, dict]:
    """The registered nodes' ``INPUT_TYPES()`` (looked up lazily: :class:`NodeDefinitions`) and ``RETURN_TYPES``."""
    outs = {}
    for name, cls in nodes.NODE_CLASS_MAPPINGS.items():
        try:
            outs[name] = list(cls.RETURN_TYPES)
        except Exception:  # noqa: BLE001 - a broken third-party node must not stop the conversion
            continue
    return NodeDefinitions(nodes.NODE_CLASS_MAPPINGS), outs


def _searched(folder_paths, folder: str) -> tuple[str, list[str]]:
    """The folder name this ComfyUI knows (the 2024 one names two folders differently) and its paths."""
    if folder not in folder_paths.folder_names_and_paths and folder in LEGACY_FOLDERS:
        folder = LEGACY_FOLDERS[folder]
    try:
        return folder, list(folder_paths.get_folder_paths(folder))
    except KeyError:
        return folder, []


def _missing_models(nid: str, ctype: str, inputs: dict, folder_paths) -> list[str]:
    problems = []
    for key, wanted in MODEL_INPUTS.get(ctype, []):
        name = inputs.get(key)
        folder, searched = _searched(folder_paths, wanted)
        if isinstance(name, str) and (not searched or folder_paths.get_full_path(folder, name) is None):
            problems.append(f"node {nid} ({ctype}): model file {name!r} not found in the '{folder}' folders "
                            f"{searched}; put it there or pick one of yours with --set {nid}.{key}=FILE")
    return problems


def check_model_files(prompt: dict, folder_paths) -> None:
    """Every model file and input image a loader names must exist; the error lists the folders searched (and
    ``python -m blendspace models`` says where to download them)."""
    problems = []
    for nid, node in prompt.items():
        ctype, inputs = node["class_type"], node["inputs"]
        problems += _missing_models(nid, ctype, inputs, folder_paths)
        if ctype == "LoadImage" and isinstance(inputs.get("image"), str):
            path = os.path.join(folder_paths.get_input_directory(), inputs["image"])
            if not os.path.isfile(path):
                problems.append(f"node {nid} (LoadImage): image {inputs['image']!r} not found in the input folder "
                                f"{folder_paths.get_input_directory()}; use --set {nid}.image=FILE")
            elif (why := unreadable_image(Path(path))) is not None:
                problems.append(f"node {nid} (LoadImage): cannot read image {path}: {why}")
    if problems:
        raise WorkflowError("missing files (python -m blendspace models WORKFLOW says where to get the models; or "
                            "run with --smoke to try the workflow on tiny random models):\n  " + "\n  ".join(problems))


def unreadable_image(path: Path) -> str | None:
    """Why Pillow cannot read the image at ``path``, or None when it can."""
    from PIL import Image
    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as err:  # noqa: BLE001 - Pillow raises many kinds for a damaged file
        return f"{type(err).__name__}: {err}"
    return None


def _smoke_caps(nid: str, inputs: dict) -> list[str]:
    """Steps and sizes capped (whole numbers only: a link or a text is left to ComfyUI's own check)."""
    notes = []
    for key, cap in (("steps", SMOKE_MAX_STEPS), ("width", SMOKE_MAX_SIZE), ("height", SMOKE_MAX_SIZE)):
        value = inputs.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > cap:
            inputs[key] = cap
            notes.append(f"node {nid}: {key} {value} -> {cap}")
    if isinstance(inputs.get("steps_list"), str):  # a grid's rows of step counts
        notes.append(f"node {nid}: steps_list {inputs['steps_list']!r} -> '1, 2'")
        inputs["steps_list"] = "1, 2"
    return notes


def smoke_prompt(prompt: dict) -> tuple[dict, list[str]]:
    """Swap loaders for tiny random models and cap steps and sizes; return the prompt and what changed."""
    notes = []
    for nid, node in prompt.items():
        ctype = node["class_type"]
        if ctype in SMOKE_LOADERS:
            new_type, inputs = SMOKE_LOADERS[ctype]
            inputs = inputs(node["inputs"]) if callable(inputs) else dict(inputs)
            node["class_type"], node["inputs"] = new_type, inputs
            notes.append(f"node {nid}: {ctype} -> {new_type} (random weights)")
        notes += _smoke_caps(nid, node["inputs"])
        skip = node["inputs"].get("skip_steps", 0)
        if ctype == "BlendspaceCycleDiffusionInvert" and isinstance(skip, int) and not isinstance(skip, bool):
            node["inputs"]["skip_steps"] = min(skip, SMOKE_MAX_STEPS - 1)
    return prompt, notes


def open_session(comfyui: str | None, smoke: bool, output_dir: str | None, input_dir: str | None) -> SimpleNamespace:
    """ComfyUI in this process for ``python -m blendspace run``: its own input folder (the test pack too for
    ``smoke``) unless ``input_dir``, and ``output_dir``. Close it with :func:`close_session`."""
    from .comfyui_locator import comfyui_root
    session = start_comfyui(comfyui_root(comfyui), with_test_pack=smoke, output_dir=output_dir, isolate_dirs=False)
    if input_dir:
        session.folder_paths.set_input_directory(str(Path(input_dir).resolve()))
    return session
