"""Slerp of two CLIP vision outputs (the diffusers images-mixing pipeline: its slerp of the content and style
images' CLIP embeddings; docs/techniques.md, "CLIP-guided image mixing", paragraph "Slerp CLIP Vision Output").

A CLIP vision output is a set of named tensors of one image batch: ``image_embeds`` (B, D),
``last_hidden_state`` and ``penultimate_hidden_states`` (B, T, C), and in current ComfyUI
``all_hidden_states`` (B, L, T, C) and ``mm_projected`` (SigLIP-based Redux reads
``last_hidden_state``). Every tensor both outputs carry is slerped with the same weight ``t``
(:func:`blendspace.slerp.slerp`; 0 returns A's tensors exactly, 1 B's):

    field_t = sin((1-t)θ)/sin θ · field_A + sin(tθ)/sin θ · field_B,   cos θ = <field_A, field_B>/(‖field_A‖‖field_B‖)

with one vector per image (``"sample"``, the pipeline's whole-tensor slerp for one image) or per token
(``"token"``, each vector along the last dimension). Unlike the guidance target (``mixed_target``),
the tensors are not normalised first: what reads them downstream (unCLIP, Redux, IP-Adapter) expects
the encoder's magnitudes, and the weights 0 and 1 must give A and B unchanged. Pure torch.
"""

from __future__ import annotations

import torch

from .conditioning import match_batch
from .errors import BlendspaceInputError
from .slerp import lerp, slerp


def tensor_fields(output) -> dict[str, torch.Tensor]:
    """The tensors of a CLIP vision output (an object with attributes, or a dict), by name."""
    items = output.items() if isinstance(output, dict) else vars(output).items()
    return {k: v for k, v in items if isinstance(v, torch.Tensor)}


def _batch_pair(a: torch.Tensor, b: torch.Tensor, name: str,
                names: tuple[str, str]) -> tuple[torch.Tensor, torch.Tensor]:
    if a.shape[1:] != b.shape[1:]:
        raise BlendspaceInputError(f"the {name} of {names[0]} and {names[1]} differ in shape ({tuple(a.shape)} vs "
                                   f"{tuple(b.shape)}): encode both images with the same CLIP vision model (and the "
                                   "same crop setting).")
    return match_batch(a, b, (f"{names[0]}'s {name}", f"{names[1]}'s {name}"))


def slerp_fields(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], t: float, per: str = "sample",
                 method: str = "slerp",
                 names: tuple[str, str] = ("clip_vision_output_a", "clip_vision_output_b")) -> dict[str, torch.Tensor]:
    """Every tensor of ``a`` slerped (or lerped) with the same-named tensor of ``b`` at weight ``t``.

    Both must carry the same tensor names and shapes (a batch of 1 is repeated against N)."""
    if set(a) != set(b):
        raise BlendspaceInputError(f"{names[0]} and {names[1]} carry different tensors ({sorted(a)} vs "
                                   f"{sorted(b)}): encode both images with the same CLIP vision model.")
    if not a:
        raise BlendspaceInputError(f"{names[0]} and {names[1]} carry no tensors: connect CLIP Vision Encode outputs.")
    out = {}
    for name in a:
        va, vb = _batch_pair(a[name], b[name].to(a[name].device), name, names)
        if method == "lerp":
            out[name] = lerp(va.contiguous(), vb.contiguous(), float(t))
        else:
            out[name] = slerp(va.contiguous(), vb.contiguous(), float(t), per=per)
    return out
