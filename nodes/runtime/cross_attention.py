"""The U-Net cross-attention (``attn2``) patches: which blocks hold cross-attention, reading a user's block list,
chaining replace patches, and SDPA for the passes that are differentiated. Same calls on the 2024 and the
current ComfyUI."""

from __future__ import annotations

from collections.abc import Callable

from ...blendspace.errors import BlendspaceInputError
from .attention import sdpa_attention
from .model_facts import diffusion_model, family_name

BLOCK_NAMES = ("input", "middle", "output")


def transformer_blocks(unet) -> list[tuple[str, int]]:
    """``(name, index)`` of the blocks of a U-Net (``diffusion_model``) that hold a SpatialTransformer."""
    parts = (("input", getattr(unet, "input_blocks", [])), ("middle", [getattr(unet, "middle_block", None)]),
             ("output", getattr(unet, "output_blocks", [])))
    keys = []
    for name, blocks in parts:
        for i, block in enumerate(blocks):
            if block is not None and any(type(m).__name__ == "SpatialTransformer" for m in block.modules()):
                keys.append((name, i))
    return keys


def cross_attention_blocks(model) -> list[tuple[str, int]]:
    """The U-Net blocks holding a SpatialTransformer, as ComfyUI's replace-patch keys ``(name, index)``."""
    keys = transformer_blocks(diffusion_model(model))
    if not keys:
        raise BlendspaceInputError(f"this model ({family_name(model)}) has no U-Net cross-attention blocks (SD1.x, "
                                   "SD2.x and SDXL have them; Flux and SD3 mix text and image tokens in joint "
                                   "attention instead): use DualStyleEpsilonMix instead.")
    return keys


MAX_BLOCK_ENTRIES = 64
"""The most entries a ``blocks`` list may hold (a U-Net has a few dozen blocks at most)."""


def parse_blocks(spec: str, available: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """'all', or a comma list of at most ``MAX_BLOCK_ENTRIES`` block names ('input') and single blocks
    ('input 4')."""
    text = (spec or "").strip().lower()
    if text in ("", "all"):
        return list(available)
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) > MAX_BLOCK_ENTRIES:
        raise BlendspaceInputError(f"blocks: {len(parts)} entries; give at most {MAX_BLOCK_ENTRIES} ('all', or names "
                                   "like 'input', 'output 3').")
    chosen: list[tuple[str, int]] = []
    for part in parts:
        words = part.replace(":", " ").split()
        if words[0] not in BLOCK_NAMES or len(words) > 2:
            shown = part if len(part) <= 40 else part[:37] + "..."
            raise BlendspaceInputError(f"blocks: cannot read '{shown}'. Use 'all', or names like 'input', 'middle', "
                                       "'output', 'input 4'.")
        if len(words) == 1:
            keys = [k for k in available if k[0] == words[0]]
        else:
            try:
                keys = [(words[0], int(words[1]))]
            except ValueError as err:
                raise BlendspaceInputError(f"blocks: '{part}' needs a block number, e.g. 'input 4'.") from err
            if keys[0] not in available:
                names = ", ".join(f"{n} {i}" for n, i in available)
                raise BlendspaceInputError(f"blocks: this model has no cross-attention in '{part}'. It has: {names}.")
        chosen.extend(k for k in keys if k not in chosen)
    return chosen


def chain_attn2_replace(model, blocks: list[tuple[str, int]], make_replace: Callable[[Callable | None], Callable]) -> None:
    """Register ``make_replace(previous)`` on every block, wrapping the replace patch already there (both
    ``(name, i)`` and ``(name, i, transformer_index)`` keys) instead of overwriting it."""
    existing = dict(model.model_options.get("transformer_options", {}).get("patches_replace", {}).get("attn2", {}))
    for name, index in blocks:
        for key, previous in existing.items():
            if len(key) == 3 and key[0] == name and key[1] == index:
                model.set_model_attn2_replace(make_replace(previous), name, index, key[2])
        model.set_model_attn2_replace(make_replace(existing.get((name, index))), name, index)


def attention_is_sdpa() -> bool:
    """Whether ComfyUI's attention kernel is PyTorch's SDPA (``attention_pytorch``, its choice on most GPUs)."""
    import comfy.ldm.modules.attention as attention
    return attention.optimized_attention is getattr(attention, "attention_pytorch", None)


def grad_attention_options(model_options: dict, blocks: list[tuple[str, int]]) -> dict:
    """``model_options`` for a forward pass that will be differentiated: attention through PyTorch's SDPA, whose
    backward is far cheaper than the CPU sub-quadratic kernel's (:func:`with_sdpa_attention`); unchanged where
    ComfyUI's kernel already is SDPA (most GPUs), where the patch would only add a Python call per attention."""
    return model_options if attention_is_sdpa() else with_sdpa_attention(model_options, blocks)


def with_sdpa_attention(model_options: dict, blocks: list[tuple[str, int]]) -> dict:
    """A copy of ``model_options`` whose self- and cross-attention use :func:`sdpa_attention` in every
    transformer block of ``blocks`` (from :func:`transformer_blocks`) that has no replace patch of its own
    (those are kept as they are)."""
    to = dict(model_options.get("transformer_options", {}))
    replace = {k: dict(v) for k, v in to.get("patches_replace", {}).items()}
    for attn in ("attn1", "attn2"):
        patches = replace.setdefault(attn, {})
        taken = {key[:2] for key in patches}
        for block in blocks:
            if block not in taken:
                patches[block] = sdpa_attention
    to["patches_replace"] = replace
    return {**model_options, "transformer_options": to}


def blend_prompt_b(model, context_b, mask_a_at: Callable, strength: float, start_percent: float, end_percent: float,
                   blocks: str):
    """A clone of ``model`` whose U-Net cross-attention blends prompt B into the positive pass
    (``blendspace/cross_attention.py``, dual-style-image-gen's cross-attention interpolation) on the blocks named
    by ``blocks`` (:func:`parse_blocks`) within the step window; ``mask_a_at(h, w, device)`` is A's weight on an
    ``h×w`` attention map. Replace patches already on the model are chained, not overwritten."""
    from ...blendspace.cross_attention import CrossAttnInterpolation
    from .attention import attention
    from .model_facts import percent_sigmas
    chosen = parse_blocks(blocks, cross_attention_blocks(model))
    selected = set(chosen)
    sigma_start, sigma_end = percent_sigmas(model, start_percent, end_percent)

    def active(sigmas, block) -> bool:
        if block is not None and tuple(block[:2]) not in selected:
            return False
        return sigmas is None or sigma_end <= float(sigmas.reshape(-1)[0]) <= sigma_start

    interp = CrossAttnInterpolation(context_b, mask_a_at, strength, active, attention)
    m = model.clone()

    def attn2_patch(n, context, value, extra_options):  # a plain function: clone() copies it by reference
        return interp.attn2_patch(n, context, value, extra_options)

    m.set_model_attn2_patch(attn2_patch)
    chain_attn2_replace(m, chosen, interp.make_replace)
    return m
