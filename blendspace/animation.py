"""Animated GIF frames as the blog's morph GIF writes them
(the img2img blog post; docs/techniques.md, "img2img strength sweeps and morph GIFs"):
``images[0].save(out, save_all=True, append_images=images[1:], duration=400, loop=0)``:
400 ms a frame, looping forever. Pure numpy / Pillow.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .errors import BlendspaceInputError


def frame_order(count: int, ping_pong: bool) -> list[int]:
    """Frame indices: 0…n-1, or 0…n-1…1 for ping-pong (the ends are not repeated)."""
    if count < 1:
        raise BlendspaceInputError("an animation needs at least one image")
    order = list(range(count))
    if ping_pong and count > 2:
        order += list(range(count - 2, 0, -1))
    return order


def to_pil(images) -> list[Image.Image]:
    """A (B, H, W, C) float array in [0, 1] to PIL images (RGB or RGBA)."""
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3, 4):
        raise BlendspaceInputError(f"expected an IMAGE batch (B, H, W, C), got shape {arr.shape}")
    arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return [Image.fromarray(a) for a in arr]


def save_gif(images, path: str, frame_ms: int = 400, loop: int = 0, ping_pong: bool = False) -> int:
    """Write an animated GIF; returns the number of frames written."""
    if frame_ms < 10:
        raise BlendspaceInputError("GIF frame duration must be at least 10 ms")
    pil = to_pil(images)
    frames = [pil[i].convert("RGB") for i in frame_order(len(pil), ping_pong)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=int(frame_ms), loop=int(loop),
                   optimize=False, disposal=1)
    return len(frames)
