"""Finding a good mix by complete enumeration (the images-mixing pipeline's ``example-find-best-mix-result`` notebook; its
grid values are lost, so the grid is the user's, with the README's start points).
See docs/techniques.md, "Finding the best mix".

Every cell of ``noise_strength × slerp_latent × slerp_prompt × slerp_clip_image`` is sampled with the
same seed and scored by the cosine similarity of its CLIP image embedding to the content image
(``c``) and to the style image (``s``). The best cell maximises the objective:

* ``balanced``: ``min(c, s)``, the mix that is least far from either source;
* ``mean``: ``(c + s) / 2``;
* ``content`` / ``style``: ``c`` or ``s`` alone.

Ties go to the first cell in grid order (noise outermost, CLIP image innermost); a NaN score ranks last.
Pure torch.
"""

from __future__ import annotations

import itertools
import math

import torch

from .errors import BlendspaceInputError

PARAMETERS = ("noise_strength", "slerp_latent_style_strength", "slerp_prompt_style_strength",
              "slerp_clip_image_style_strength")
SHORT = {"noise_strength": "noise", "slerp_latent_style_strength": "latent", "slerp_prompt_style_strength": "prompt",
         "slerp_clip_image_style_strength": "clip"}
OBJECTIVES = ("balanced (min of content and style)", "mean of content and style", "content", "style")
MAX_CELLS = 256


def parse_values(text: str, name: str, lo: float = 0.0, hi: float = 1.0) -> list[float]:
    """``"0.5, 0.6, 0.7"`` or ``"0.5:0.7:0.1"`` (start:stop:step, stop included) → values in [lo, hi]."""
    values: list[float] = []
    for part in (p.strip() for p in (text or "").replace(";", ",").split(",")):
        if not part:
            continue
        try:
            if ":" in part:
                start, stop, step = (float(x) for x in part.split(":"))
                if step <= 0:
                    raise ValueError
                n = int(math.floor((stop - start) / step + 1e-9)) + 1
                values += [round(start + i * step, 10) for i in range(max(0, n))]
            else:
                values.append(float(part))
        except ValueError as err:
            raise BlendspaceInputError(f"{name}: cannot read {part!r}; write values like '0.2, 0.8' or a range "
                                       "'0.5:0.7:0.1' (start:stop:step).") from err
    if not values:
        raise BlendspaceInputError(f"{name}: give at least one value, e.g. '0.2, 0.8'.")
    bad = [v for v in values if not lo <= v <= hi]
    if bad:
        raise BlendspaceInputError(f"{name}: {bad} outside [{lo}, {hi}].")
    return values


def grid_cells(values: dict[str, list[float]]) -> list[dict[str, float]]:
    """All combinations, noise outermost and CLIP image innermost."""
    cells = [dict(zip(PARAMETERS, combo, strict=True)) for combo in itertools.product(*(values[p] for p in PARAMETERS))]
    if len(cells) > MAX_CELLS:
        raise BlendspaceInputError(f"the grid has {len(cells)} cells (each a full sampling run); use at most "
                                   f"{MAX_CELLS} by giving fewer values.")
    return cells


def objective(content: torch.Tensor, style: torch.Tensor, which: str) -> torch.Tensor:
    if which == OBJECTIVES[0]:
        return torch.minimum(content, style)
    if which == OBJECTIVES[1]:
        return (content + style) / 2
    if which == OBJECTIVES[2]:
        return content.clone()
    if which == OBJECTIVES[3]:
        return style.clone()
    raise BlendspaceInputError(f"objective must be one of {OBJECTIVES}")


def best_index(scores: torch.Tensor) -> int:
    """The first index of the highest score; NaN scores rank last, and when every score is NaN the first cell."""
    ranked = torch.nan_to_num(scores.float(), nan=-math.inf)
    return int(torch.nonzero(ranked == ranked.max())[0])


def cell_label(cell: dict[str, float]) -> str:
    return " ".join(f"{SHORT[p]} {cell[p]:g}" for p in PARAMETERS)
