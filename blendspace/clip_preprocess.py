"""CLIP image preprocessing on tensors, shared by CLIP guidance, FlexDiffuse and the CLIP loaders.

CLIP image towers expect a square picture of their own size (224 for ViT-B/32 and ViT-L/14), with
each channel normalised by the training set's mean and standard deviation:

    pixels = (resize(image) - mean) / std        (OpenAI's mean/std below unless the model has its own)

Two resizes are used by the source projects, and both are kept because each reproduces its source:

- :func:`shortest_side_pixels`: resize the shorter side to ``size`` (aspect kept), then centre-crop
  the longer side. This is what CLIP's own eval transform does, and what the CLIP-guided mixing
  pipeline (see docs/techniques.md, "CLIP-guided image mixing") applies inside its guidance
  function, on tensors so that gradients flow.
- :func:`centre_square_pixels`: crop the centre square first, then resize it (antialiased). This is
  FlexDiffuse's preprocessing; its faithful variant feeds pixels in [-1, 1] rather than [0, 1] and
  first applies the source's own long-side-512 / multiple-of-64 resize (:func:`source_resize_512`).

Nothing is rounded to 8 bits (unlike ComfyUI's ``encode_image``), so both are differentiable. Pure
torch; imports nothing from ComfyUI.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def normalize(pixels: torch.Tensor, mean: Sequence[float] = OPENAI_MEAN,
              std: Sequence[float] = OPENAI_STD) -> torch.Tensor:
    """``(pixels - mean) / std`` per channel of a ``(B, 3, H, W)`` tensor."""
    m = torch.tensor(mean, dtype=pixels.dtype, device=pixels.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=pixels.dtype, device=pixels.device).view(1, 3, 1, 1)
    return (pixels - m) / s


def centre_crop(pixels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The centre ``height × width`` window of a ``(..., H, W)`` tensor."""
    top, left = (pixels.shape[-2] - height) // 2, (pixels.shape[-1] - width) // 2
    return pixels[..., top:top + height, left:left + width]


def shortest_side_pixels(img: torch.Tensor, size: int = 224, mean: Sequence[float] = OPENAI_MEAN,
                         std: Sequence[float] = OPENAI_STD, mode: str = "bicubic", crop: bool = True) -> torch.Tensor:
    """``(B, 3, H, W)`` images in [0, 1] → CLIP pixels: the shorter side resized to ``size`` (aspect kept,
    ``mode`` interpolation without antialiasing, as torchvision's tensor ``Resize`` of the source's time),
    the longer one centre-cropped to ``size`` when ``crop`` (else left as it is), then normalised. Resized and
    returned in float32 whatever the input's dtype (fp16 and bf16 images included: the CPU has no half-precision
    bicubic resize)."""
    h, w = img.shape[-2:]
    scale = size / min(h, w)
    out = F.interpolate(img.float(), size=(max(size, round(h * scale)), max(size, round(w * scale))), mode=mode,
                        align_corners=False)
    if crop and out.shape[-1] != out.shape[-2]:
        out = centre_crop(out, size, size)
    return normalize(out, mean, std)


def source_resize_512(image: torch.Tensor, side: int = 512, multiple: int = 64) -> torch.Tensor:
    """FlexDiffuse's own image preprocessing before CLIP's: an IMAGE batch ``(B, H, W, C)`` in [0, 1] resized
    (PIL LANCZOS on the 8-bit picture, as the source loads it) so that the long side is ``side`` and the short
    side ``floor(short·side/long / multiple)·multiple`` (at least ``multiple``); aspect is NOT kept exactly
    (1280×720 → 512×256). A square picture becomes ``side × side``."""
    from PIL import Image

    h, w = image.shape[1:3]
    short = max(multiple, int(min(h, w) * side / max(h, w) / multiple) * multiple)
    size = (side, short) if w >= h else (short, side)  # PIL: (width, height)
    out = []
    for img in image[..., :3]:
        arr = (img.float().cpu().clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()
        pic = Image.fromarray(arr).resize(size, Image.LANCZOS)
        out.append(torch.from_numpy(np.asarray(pic).copy()).float() / 255.0)
    return torch.stack(out).to(image.device)


def centre_square_pixels(image: torch.Tensor, size: int = 224, signed: bool = False,
                         mean: Sequence[float] = OPENAI_MEAN, std: Sequence[float] = OPENAI_STD) -> torch.Tensor:
    """An IMAGE batch ``(B, H, W, C)`` in [0, 1] → CLIP pixels: the centre square, resized to ``size``
    (bicubic, antialiased), mapped to [-1, 1] first when ``signed`` (FlexDiffuse's faithful mode), then
    normalised; in float32 whatever the input's dtype."""
    x = image[..., :3].movedim(-1, 1).float()
    side = min(x.shape[-2:])
    x = centre_crop(x, side, side)
    x = F.interpolate(x, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    if signed:
        x = 2.0 * x - 1.0
    return normalize(x, mean, std)
