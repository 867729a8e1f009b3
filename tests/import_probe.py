"""Run in a fresh process by test_pack.py: import ComfyUI, then load Blendspace with ComfyUI's
loader while the network, weight loading and downloads are forbidden, and report what changed in
ComfyUI's modules. Prints one JSON line."""

from __future__ import annotations

import json
import socket
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from comfy_harness import REPO, comfyui_root  # noqa: E402

from blendspace_tools.runner import PACK_NAME, _run, import_comfyui  # noqa: E402

nodes, execution, folder_paths, is_current = import_comfyui(comfyui_root())
import comfy.k_diffusion.sampling  # noqa: E402
import comfy.ldm.modules.attention  # noqa: E402
import comfy.model_management  # noqa: E402
import comfy.model_patcher  # noqa: E402
import comfy.sample  # noqa: E402
import comfy.samplers  # noqa: E402
import comfy.utils  # noqa: E402
import torch  # noqa: E402

MODULES = [nodes, execution, folder_paths, comfy.samplers, comfy.sample, comfy.model_patcher, comfy.model_management,
           comfy.ldm.modules.attention, comfy.utils, comfy.k_diffusion.sampling, torch.nn.functional]
blocked: list[str] = []


def _forbid(what):
    def fail(*args, **kwargs):
        blocked.append(what)
        raise RuntimeError(f"{what} is forbidden while importing the pack")
    return fail


def snapshot():
    snap = {}
    for mod in MODULES:
        for name, value in vars(mod).items():
            if name in ("NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "LOADED_MODULE_DIRS", "EXTENSION_WEB_DIRS"):
                continue
            snap[f"{mod.__name__}.{name}"] = id(value)
    snap["folder_paths.folder_names_and_paths"] = repr(sorted(folder_paths.folder_names_and_paths))
    return snap


before = snapshot()
core_nodes = dict(nodes.NODE_CLASS_MAPPINGS)
socket.socket.connect = _forbid("socket.connect")
socket.create_connection = _forbid("socket.create_connection")
torch.load = _forbid("torch.load")
try:
    import safetensors.torch
    safetensors.torch.load_file = _forbid("safetensors.load_file")
except ImportError:
    pass

with tempfile.TemporaryDirectory() as tmp:
    link = Path(tmp) / PACK_NAME
    link.symlink_to(REPO, target_is_directory=True)
    ok = bool(_run(nodes.load_custom_node(str(link))))

after = snapshot()
changed = sorted(k for k in before if after.get(k) != before[k])
added = sorted(k for k in after if k not in before)
replaced = sorted(k for k in core_nodes if nodes.NODE_CLASS_MAPPINGS.get(k) is not core_nodes[k])
new_nodes = sorted(k for k in nodes.NODE_CLASS_MAPPINGS if k not in core_nodes)
print(json.dumps({"loaded": ok, "changed": changed, "added": added, "replaced_core_nodes": replaced,
                  "new_nodes": new_nodes, "blocked": blocked}))
