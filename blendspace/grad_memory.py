"""Memory and precision of the guidance gradients: gradient checkpointing of marked blocks, and the autocast
dtype of the decoder-and-CLIP gradients.

Checkpointing (Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost"; ``torch.utils.checkpoint``
with ``use_reentrant=False``): a checkpointed block keeps only its inputs from the forward pass and runs its
forward again inside the backward pass. The backward then sees the same operations on the same inputs, so
the gradient is unchanged; the saved activations of a chain of n blocks fall from the sum of all blocks'
to their n inputs plus one block's, for one more forward of those blocks.

A block wrapped by :func:`checkpointed` checkpoints only inside :func:`checkpointing` (so one wrapped module
serves runs with and without it), only while gradients are recorded and an input needs them, and never
inside another checkpointed block (its recompute would otherwise checkpoint again).

Autocast: on CUDA the decoder-and-CLIP gradients (fast, taesd) may run in bf16 (fp16 where the GPU has no
bf16); the CPU keeps fp32 (:func:`autocast_dtype`). Pure torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch.utils.checkpoint import checkpoint

_ACTIVE: ContextVar[bool] = ContextVar("blendspace_checkpointing", default=False)

AUTOCAST_CHOICES = ("auto", "off", "bf16", "fp16")
"""``auto``: bf16 (else fp16) on CUDA, none on the CPU; ``off``: the models' own dtype; or a forced dtype."""


@contextmanager
def checkpointing(enabled: bool = True):
    """Blocks wrapped by :func:`checkpointed` checkpoint inside this context when ``enabled``."""
    token = _ACTIVE.set(bool(enabled))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def checkpoint_enabled() -> bool:
    """Whether :func:`checkpointing` is on here (a caller may narrow it: ``checkpointing(checkpoint_enabled() and
    ...)``)."""
    return _ACTIVE.get()


def _needs_grad(values: Iterable) -> bool:
    return any(isinstance(v, torch.Tensor) and v.requires_grad for v in values)


def checkpoint_call(fn: Callable, *args, **kwargs):
    """``fn(*args, **kwargs)``, checkpointed when :func:`checkpointing` is on, gradients are recorded and an
    input needs them. ``fn`` itself always runs with checkpointing off (no nested checkpoints)."""
    def run(*a, **k):
        token = _ACTIVE.set(False)
        try:
            return fn(*a, **k)
        finally:
            _ACTIVE.reset(token)

    if _ACTIVE.get() and torch.is_grad_enabled() and _needs_grad((*args, *kwargs.values())):
        return checkpoint(run, *args, use_reentrant=False, **kwargs)
    return fn(*args, **kwargs)


def checkpointed(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` with its forward routed through :func:`checkpoint_call` (in place, on this instance only;
    wrapping twice wraps once). Returns the module."""
    if getattr(module, "_blendspace_checkpointed", False):
        return module
    forward = module.forward
    module.forward = lambda *args, **kwargs: checkpoint_call(forward, *args, **kwargs)
    module._blendspace_checkpointed = True
    return module


def checkpoint_blocks(root: torch.nn.Module, class_names: Iterable[str]) -> int:
    """Wrap every submodule of ``root`` whose class is named in ``class_names`` with :func:`checkpointed`;
    returns how many are wrapped (none may contain another, or it would be recomputed twice)."""
    names = set(class_names)
    blocks = [m for m in root.modules() if type(m).__name__ in names]
    for block in blocks:
        checkpointed(block)
    return len(blocks)


def autocast_dtype(device: torch.device | str, choice: str = "auto") -> torch.dtype | None:
    """The dtype the fast and taesd gradients run in under autocast, or None for none. ``auto``: bf16 on a CUDA
    device that supports it, else fp16 there; None on every other device (the CPU keeps fp32). ``bf16`` /
    ``fp16`` force that dtype on any device (the CPU test of the bf16 path); ``off``: None."""
    if choice not in AUTOCAST_CHOICES:
        raise ValueError(f"autocast must be one of {AUTOCAST_CHOICES}, got {choice!r}")
    if choice == "off":
        return None
    if choice != "auto":
        return torch.bfloat16 if choice == "bf16" else torch.float16
    if torch.device(device).type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@contextmanager
def maybe_autocast(device: torch.device | str, dtype: torch.dtype | None):
    """``torch.autocast`` on ``device``'s type with ``dtype``; nothing when ``dtype`` is None."""
    if dtype is None:
        yield
        return
    with torch.autocast(torch.device(device).type, dtype=dtype):
        yield
