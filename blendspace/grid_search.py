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


MAX_VALUES = 256
"""The most values one list may hold (the grid itself holds at most ``MAX_CELLS``)."""


def _shown(part: str) -> str:
    return repr(part) if len(part) <= 40 else repr(part[:37] + "...")


def _range(part: str, name: str, room: int) -> list[float]:
    """``start:stop:step`` (stop included) → its values; refused when it would give more than ``room``."""
    start, stop, step = (float(x) for x in part.split(":"))
    if not all(math.isfinite(v) for v in (start, stop, step)) or step <= 0:
        raise ValueError(part)
    count = math.floor((stop - start) / step + 1e-9) + 1  # finite: the three are finite and step > 0
    if count > room:
        raise BlendspaceInputError(f"{name}: the range {_shown(part)} gives {count:.0f} values; give at most "
                                   f"{room} more (a larger step or a shorter range).")
    return [round(start + i * step, 10) for i in range(max(0, int(count)))]


def parse_values(text: str, name: str, lo: float = 0.0, hi: float = 1.0, max_values: int = MAX_VALUES) -> list[float]:
    """``"0.5, 0.6, 0.7"`` or ``"0.5:0.7:0.1"`` (start:stop:step, stop included) → at most ``max_values`` finite
    values in [lo, hi]; a list or range that would give more is refused before it is expanded."""
    parts = [p.strip() for p in (text or "").replace(";", ",").split(",")]
    parts = [p for p in parts if p]
    if len(parts) > max_values:
        raise BlendspaceInputError(f"{name}: {len(parts)} values; give at most {max_values}.")
    values: list[float] = []
    for part in parts:
        try:
            values += _range(part, name, max_values - len(values)) if ":" in part else [float(part)]
        except BlendspaceInputError:
            raise
        except (ValueError, OverflowError) as err:
            raise BlendspaceInputError(f"{name}: cannot read {_shown(part)}; write values like '0.2, 0.8' or a range "
                                       "'0.5:0.7:0.1' (start:stop:step, step above 0).") from err
    if not values:
        raise BlendspaceInputError(f"{name}: give at least one value, e.g. '0.2, 0.8'.")
    if len(values) > max_values:
        raise BlendspaceInputError(f"{name}: {len(values)} values; give at most {max_values}.")
    bad = [v for v in values if not lo <= v <= hi]  # NaN fails this too
    if bad:
        raise BlendspaceInputError(f"{name}: {bad[:5]} outside [{lo:g}, {hi:g}]: give numbers from {lo:g} to {hi:g}.")
    return values


def grid_cells(values: dict[str, list[float]]) -> list[dict[str, float]]:
    """All combinations, noise outermost and CLIP image innermost; at most ``MAX_CELLS`` (counted before any is
    made)."""
    count = math.prod(len(values[p]) for p in PARAMETERS)
    if count > MAX_CELLS:
        sizes = " × ".join(f"{len(values[p])} ({p})" for p in PARAMETERS)
        raise BlendspaceInputError(f"the grid has {count} cells ({sizes}), each a full sampling run; use at most "
                                   f"{MAX_CELLS} by giving fewer values.")
    return [dict(zip(PARAMETERS, combo, strict=True)) for combo in itertools.product(*(values[p] for p in PARAMETERS))]


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
