"""Shared fixtures: the pure ``blendspace`` package, a real ComfyUI with the pack loaded, tiny models.

Every test body runs under ``torch.inference_mode()``, as ComfyUI's executor runs nodes.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent


def _load_pure_package():
    """Import ``blendspace/`` (the pure math) as a top-level package without putting the repo on
    sys.path (its ``nodes/`` folder would shadow ComfyUI's ``nodes.py``)."""
    if "blendspace" in sys.modules:
        return sys.modules["blendspace"]
    spec = importlib.util.spec_from_file_location("blendspace", REPO / "blendspace" / "__init__.py",
                                                  submodule_search_locations=[str(REPO / "blendspace")])
    module = importlib.util.module_from_spec(spec)
    sys.modules["blendspace"] = module
    spec.loader.exec_module(module)
    return module


_load_pure_package()


@pytest.fixture(autouse=True)
def _inference_mode():
    with torch.inference_mode():
        yield


@pytest.fixture(scope="session")
def comfy():
    """ComfyUI booted once per session, with Blendspace and the test pack loaded by its loader."""
    from comfy_harness import boot
    with torch.inference_mode():
        return boot()


@pytest.fixture(scope="session")
def tiny_models(comfy):
    """(model, clip, vae) built once, as the executor would (inside inference mode)."""
    with torch.inference_mode():
        return comfy.tiny.tiny_unet(0), comfy.tiny.tiny_clip(1), comfy.tiny.tiny_vae(2)
