"""img2img strength sweeps (the img2img blog post, dmnfarrell's;
docs/techniques.md, "img2img strength sweeps and morph GIFs").

The blog morphs a photo into a painting by running img2img at increasing strengths with one fixed
seed: ``np.arange(0.05, 0.98, 0.03)`` gives 31 strengths 0.05 … 0.95 (the stop is excluded), each
one a frame of a 400 ms GIF.

Two meanings of "strength", which run different steps for the same number (a source's value must be
read its own way):

- ``diffusers`` (the source): an N-step schedule of which the LAST ``int(N·strength)`` steps run,
  noise added at the first kept timestep; in ComfyUI terms ``steps = N``,
  ``start_at_step = N - int(N·strength)``, ``end_at_step = N`` (KSampler Advanced).
- ``comfyui``: KSampler's ``denoise``: ``int(steps/denoise)`` sigmas, the last ``steps`` of them run.

Pure Python; no ComfyUI import.
"""

from __future__ import annotations

import math

from .errors import BlendspaceInputError

STRENGTH_MODES = ("diffusers (source)", "comfyui denoise")
MAX_FRAMES = 1000


def arange_strengths(start: float, stop: float, step: float) -> list[float]:
    """``numpy.arange(start, stop, step)`` (stop excluded), rounded to 6 decimals; values must be in (0, 1]."""
    if step <= 0:
        raise BlendspaceInputError(f"strength step must be positive, got {step}")
    if stop <= start:
        raise BlendspaceInputError(f"strength stop ({stop}) must be above start ({start})")
    count = math.ceil((stop - start) / step - 1e-9)
    if count > MAX_FRAMES:
        raise BlendspaceInputError(f"{count} strengths is too many (at most {MAX_FRAMES}); raise the step")
    values = [round(start + i * step, 6) for i in range(count)]
    return _checked(values, "start, stop and step")


def parse_strengths(text: str, name: str = "strength_list") -> list[float]:
    """A comma or space separated list such as ``0.1, 0.3, 0.55``: at most ``MAX_FRAMES`` values in (0, 1]."""
    parts = [p for p in text.replace(",", " ").split() if p]
    if not parts:
        raise BlendspaceInputError(f"{name} is empty: write values such as '0.2, 0.4, 0.6'")
    if len(parts) > MAX_FRAMES:
        raise BlendspaceInputError(f"{name} has {len(parts)} values: give at most {MAX_FRAMES}")
    for p in parts:
        try:
            float(p)
        except ValueError as err:
            shown = p if len(p) <= 40 else p[:37] + "..."
            raise BlendspaceInputError(f"{name}: cannot read {shown!r}: use numbers such as '0.2, 0.4'") from err
    return _checked([float(p) for p in parts], name)


def _checked(values: list[float], name: str = "strength") -> list[float]:
    for v in values:
        if not 0.0 < v <= 1.0 or not math.isfinite(v):
            raise BlendspaceInputError(f"{name}: strength {v} is outside (0, 1]")
    return values


def diffusers_start_step(steps: int, strength: float) -> int:
    """First step of the N-step schedule that diffusers' img2img runs at ``strength``."""
    init = min(int(steps * strength), steps)
    return max(steps - init, 0)
