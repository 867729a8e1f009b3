"""Contact sheets: many result images on one labelled sheet, for grids, sweeps and score reports.

IMAGE batches are ComfyUI's ``(N, H, W, C)`` float tensors in [0, 1]. :func:`annotate` draws a label
on each image (PIL's default bitmap font on a dark box, top left) and :func:`tile` lays a batch out
row by row. Pure torch and PIL; imports nothing from ComfyUI.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw


def annotate(images: torch.Tensor, text: str) -> torch.Tensor:
    """A copy of the IMAGE batch with ``text`` drawn on a dark box at the top left of each image."""
    out = []
    for img in images:
        pil = Image.fromarray((img[..., :3].clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8))
        draw = ImageDraw.Draw(pil)
        box = draw.multiline_textbbox((4, 4), text)
        draw.rectangle((0, 0, box[2] + 4, box[3] + 4), fill=(0, 0, 0))
        draw.multiline_text((4, 4), text, fill=(255, 255, 255))
        out.append(torch.from_numpy(np.asarray(pil).astype(np.float32) / 255.0))
    return torch.stack(out)


def tile(images: torch.Tensor, columns: int) -> torch.Tensor:
    """An IMAGE batch (N, H, W, C) laid out row by row on one (1, rows·H, columns·W, C) sheet (black padding)."""
    n, h, w, c = images.shape
    columns = max(1, min(int(columns), n))
    rows = -(-n // columns)
    sheet = torch.zeros(rows * h, columns * w, c, dtype=images.dtype)
    for i in range(n):
        r, k = divmod(i, columns)
        sheet[r * h:(r + 1) * h, k * w:(k + 1) * w] = images[i].cpu()
    return sheet.unsqueeze(0)
