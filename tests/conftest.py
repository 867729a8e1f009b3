"""Shared fixtures: the pure ``blendspace`` package, a real ComfyUI with the pack loaded, tiny models.

Every test body runs under ``torch.inference_mode()``, as ComfyUI's executor runs nodes.
"""

from __future__ import annotations

import comfy_harness  # noqa: E402,F401  (loads the pure `blendspace` package)
import pytest
import torch


@pytest.fixture(autouse=True)
def _inference_mode():
    with torch.inference_mode():
        yield


@pytest.fixture(scope="session")
def comfy():
    """ComfyUI booted once per session, with Blendspace and the test pack loaded by its loader."""
    with torch.inference_mode():
        return comfy_harness.boot()


@pytest.fixture(scope="session")
def tiny_models(comfy):
    """(model, clip, vae) built once, as the executor would (inside inference mode)."""
    with torch.inference_mode():
        return comfy.tiny.tiny_unet(0), comfy.tiny.tiny_clip(1), comfy.tiny.tiny_vae(2)
