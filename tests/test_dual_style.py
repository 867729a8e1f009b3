"""Dual-style-image-gen dual-style blending: masks, DualStyleEpsilonMix and CrossAttnInterpolate on tiny models."""

from __future__ import annotations

import copy

import pytest
import torch

from blendspace.dual_style_mask import style_mask


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> bool:
    """Max abs diff <= tol, relative to the latent's scale (a random U-Net leaves latents ~100)."""
    return (a - b).abs().max().item() <= tol * max(1.0, b.abs().max().item())


# --------------------------------------------------------------------------------------------- masks

def test_default_masks_are_the_source_formulas():
    width = 64
    u = torch.linspace(1, 0, width)
    eps_source = torch.sigmoid(20 * (u - 0.5))
    assert torch.allclose(style_mask(8, width)[3], eps_source, atol=1e-6)
    assert torch.allclose(style_mask(8, width, shape="linear")[0], torch.linspace(1, 0, width), atol=1e-6)
    col = torch.linspace(0, 1, 16)
    cross_b = torch.sigmoid(30 * (col - 0.5))
    assert torch.allclose(1 - style_mask(16, 16, sharpness=30.0)[5], cross_b, atol=1e-6)


def test_mask_directions_and_center():
    m = style_mask(6, 10)
    assert torch.equal(style_mask(6, 10, direction="right-left"), m.flip(1))
    tb = style_mask(10, 6, direction="top-bottom")
    assert torch.allclose(tb[:, 0], m[0], atol=1e-6) and torch.equal(tb[:, 0], tb[:, 5])
    assert torch.equal(style_mask(10, 6, direction="bottom-top"), tb.flip(0))
    shifted = style_mask(1, 101, center=0.25)
    assert shifted[0, 25].item() == pytest.approx(0.5, abs=1e-6)
    with pytest.raises(ValueError, match="direction"):
        style_mask(4, 4, direction="diagonal")


def test_mask_node_sizes_from_image(comfy):
    node = comfy.node("BlendspaceDualStyleMask")
    (m,) = node.build(32, 16, "left-right", "sigmoid", 0.5, 20.0, 1.0)
    assert m.shape == (1, 16, 32) and m[0, 0, 0] > 0.99 and m[0, 0, -1] < 0.01
    (m2,) = node.build(32, 16, "left-right", "sigmoid", 0.5, 20.0, 1.0, image=torch.zeros(1, 24, 40, 3))
    assert m2.shape == (1, 24, 40)


# ------------------------------------------------------------------------------------ epsilon mix

def _prompts(comfy, clip):
    enc = comfy.tiny.encode_prompt
    return enc(clip, "a minecraft bear"), enc(clip, "a van gogh bear"), enc(clip, "")


def _sample(comfy, model, pos, neg, steps=2, seed=3, cfg=6.0, size=(16, 16)):
    latent = {"samples": torch.zeros(1, 4, *size)}
    return comfy.node("KSampler").sample(model, seed, steps, cfg, "euler", "normal", pos, neg, latent, 1.0)[0]["samples"]


def _eps_mix(comfy, a, b, mask=None, shape="sigmoid", width=0.25, latent_size=(16, 16)):
    node = comfy.node("DualStyleEpsilonMix")
    latent = {"samples": torch.zeros(1, 4, *latent_size)}
    return node.mix(a, b, 128, 128, "left-right", shape, 0.5, 20.0, width, latent=latent, mask=mask)


def test_all_a_mask_equals_prompt_a_and_all_b_equals_b(comfy, tiny_models):
    model, clip, _ = tiny_models
    a, b, neg = _prompts(comfy, clip)
    ref_a, ref_b = _sample(comfy, model, a, neg), _sample(comfy, model, b, neg)
    all_a, _ = _eps_mix(comfy, a, b, mask=torch.ones(1, 16, 16))
    all_b, _ = _eps_mix(comfy, a, b, mask=torch.zeros(1, 16, 16))
    assert _close(_sample(comfy, model, all_a, neg), ref_a)
    assert _close(_sample(comfy, model, all_b, neg), ref_b)
    assert not _close(ref_a, ref_b, 1e-2)


def test_ramp_columns_follow_their_prompt_and_formula_holds(comfy, tiny_models):
    """One Euler step returns the guided x0 at sigma_max: columns with m = 1 equal prompt A's, m = 0 equal B's,
    and every column equals uncond + cfg·(m·A + (1-m)·B - uncond) of the separate predictions."""
    model, clip, _ = tiny_models
    a, b, neg = _prompts(comfy, clip)
    mixed, mask = _eps_mix(comfy, a, b, shape="linear", width=0.25)
    m = mask[0]
    left = m[0] == 1.0
    right = m[0] == 0.0
    assert left.sum() >= 4 and right.sum() >= 4
    out = _sample(comfy, model, mixed, neg, steps=1)
    ref_a, ref_b = _sample(comfy, model, a, neg, steps=1), _sample(comfy, model, b, neg, steps=1)
    assert _close(out[..., left], ref_a[..., left]) and _close(out[..., right], ref_b[..., right])
    # cfg = 1 gives the cond prediction alone: check the blend per pixel, including the transition
    c1 = _sample(comfy, model, mixed, neg, steps=1, cfg=1.0)
    ca, cb = _sample(comfy, model, a, neg, steps=1, cfg=1.0), _sample(comfy, model, b, neg, steps=1, cfg=1.0)
    assert _close(c1, m * ca + (1 - m) * cb)


def test_eps_mix_runs_one_unet_call_per_step_with_three_chunks(comfy, tiny_models):
    model, clip, _ = tiny_models
    a, b, neg = _prompts(comfy, clip)
    mixed, _ = _eps_mix(comfy, a, b)
    calls = []

    def wrapper(apply_model, args):
        calls.append(len(args["cond_or_uncond"]))
        return apply_model(args["input"], args["timestep"], **args["c"])

    counted = model.clone()
    counted.set_model_unet_function_wrapper(wrapper)
    _sample(comfy, counted, mixed, neg, steps=3)
    assert calls == [3, 3, 3]


def test_eps_mix_refuses_masked_inputs_and_keeps_inputs(comfy, tiny_models):
    _, clip, _ = tiny_models
    a, b, _ = _prompts(comfy, clip)
    a0 = copy.deepcopy(a)
    mixed, _ = _eps_mix(comfy, a, b)
    assert len(mixed) == 2 and "mask" not in a[0][1]
    assert torch.equal(a[0][0], a0[0][0]) and a[0][1].keys() == a0[0][1].keys()
    masked = [[a[0][0], {**a[0][1], "mask": torch.ones(1, 8, 8)}]]
    with pytest.raises(ValueError, match="already has a mask"):
        _eps_mix(comfy, masked, b)


def test_eps_mix_works_on_an_sdxl_shaped_model(comfy):
    model = comfy.tiny.tiny_sdxl_unet(0)
    a, b, neg = (comfy.tiny.sdxl_conditioning(s) for s in (1, 2, 3))
    all_a, _ = _eps_mix(comfy, a, b, mask=torch.ones(1, 16, 16))
    assert _close(_sample(comfy, model, all_a, neg), _sample(comfy, model, a, neg))
    mixed, _ = _eps_mix(comfy, a, b)
    out = _sample(comfy, model, mixed, neg)
    assert torch.isfinite(out).all()


# ------------------------------------------------------------------------------ cross-attention

def _xattn(comfy, model, b, strength=1.0, mask=None, blocks="all", start=0.0, end=1.0, sharpness=30.0):
    node = comfy.node("CrossAttnInterpolate")
    return node.patch(model, b, "left-right", "sigmoid", 0.5, sharpness, 1.0, strength, start, end, blocks, mask=mask)[0]


def _options_snapshot(model):
    return copy.deepcopy({k: v for k, v in model.model_options.items() if k != "transformer_options"}), \
        repr(model.model_options.get("transformer_options"))


def test_cross_attention_endpoints(comfy, tiny_models):
    model, clip, _ = tiny_models
    a, b, neg = _prompts(comfy, clip)
    before = _options_snapshot(model)
    ref_a, ref_b = _sample(comfy, model, a, neg), _sample(comfy, model, b, neg)
    assert _close(_sample(comfy, _xattn(comfy, model, b, strength=0.0), a, neg), ref_a)
    all_b = _xattn(comfy, model, b, mask=torch.zeros(1, 16, 16))
    assert _close(_sample(comfy, all_b, a, neg), ref_b, 1e-4)
    assert _options_snapshot(model) == before, "the input MODEL was patched"


def test_cross_attention_left_right_changes_sides_differently(comfy, tiny_models):
    model, clip, _ = tiny_models
    a, b, neg = _prompts(comfy, clip)
    ref_a = _sample(comfy, model, a, neg, steps=1, size=(16, 32))
    ref_b = _sample(comfy, model, b, neg, steps=1, size=(16, 32))
    out = _sample(comfy, _xattn(comfy, model, b), a, neg, steps=1, size=(16, 32))
    left, right = slice(0, 8), slice(24, 32)
    to_a_left = (out[..., left] - ref_a[..., left]).abs().mean()
    to_a_right = (out[..., right] - ref_a[..., right]).abs().mean()
    to_b_left = (out[..., left] - ref_b[..., left]).abs().mean()
    to_b_right = (out[..., right] - ref_b[..., right]).abs().mean()
    assert to_a_left < to_a_right and to_b_right < to_b_left
    assert to_a_left < to_b_left and to_b_right < to_a_right


def test_cross_attention_only_touches_positive_chunks_and_chosen_blocks(comfy, tiny_models):
    model, clip, _ = tiny_models
    a, b, neg = _prompts(comfy, clip)
    seen = []

    def spy(n, context, value, extra_options):
        seen.append((tuple(extra_options["block"]), extra_options.get("blendspace_xattn_split")))
        return n, context, value

    patched = _xattn(comfy, model, b, blocks="middle, output 1")
    patched.set_model_attn2_patch(spy)  # runs after ours: sees the split we recorded
    _sample(comfy, patched, a, neg, steps=1)
    active = {blk for blk, split in seen if split is not None}
    assert active == {("middle", 0), ("output", 1)}
    with pytest.raises(ValueError, match="It has: input 1"):
        _xattn(comfy, model, b, blocks="input 2")
    with pytest.raises(ValueError, match="cannot read"):
        _xattn(comfy, model, b, blocks="mid")


def test_cross_attention_step_window(comfy, tiny_models):
    model, clip, _ = tiny_models
    a, b, neg = _prompts(comfy, clip)
    ref_a = _sample(comfy, model, a, neg, steps=3)
    never = _xattn(comfy, model, b, start=1.0, end=1.0)
    assert _close(_sample(comfy, never, a, neg, steps=3), ref_a)
    early = _xattn(comfy, model, b, start=0.0, end=0.3)
    assert not _close(_sample(comfy, early, a, neg, steps=3), ref_a, 1e-3)
    with pytest.raises(ValueError, match="after end_percent"):
        _xattn(comfy, model, b, start=0.6, end=0.2)


def test_existing_replace_patches_are_chained_not_overwritten(comfy, tiny_models):
    """A fake IP-Adapter replace adds a term to every attn2 output; after CrossAttnInterpolate (all B) the model
    must equal the fake-patched model prompted with B, on both key forms (block, i) and (block, i, index)."""
    model, clip, _ = tiny_models
    a, b, neg = _prompts(comfy, clip)
    attention = comfy.pack.nodes.runtime.attention.attention
    calls = []

    def fake_ip(q, k, v, extra_options):
        calls.append(q.shape[0])
        return attention(q, k, v, extra_options["n_heads"]) + 0.05

    fake = model.clone()
    keys = comfy.pack.nodes.runtime.cross_attention.cross_attention_blocks(model)
    for i, (name, index) in enumerate(keys):
        if i % 2:
            fake.set_model_attn2_replace(fake_ip, name, index, 0)
        else:
            fake.set_model_attn2_replace(fake_ip, name, index)
    ref = _sample(comfy, fake, b, neg, steps=1)
    calls.clear()
    blended = _xattn(comfy, fake, b, mask=torch.zeros(1, 16, 16))
    out = _sample(comfy, blended, a, neg, steps=1)
    assert _close(out, ref, 1e-4)
    assert len(calls) == 2 * len(keys), "the previous replace runs once for A and once for B per layer"
    assert not _close(ref, _sample(comfy, model, b, neg, steps=1), 1e-4)


def test_cross_attention_on_sdxl_shaped_model(comfy):
    model = comfy.tiny.tiny_sdxl_unet(0)
    a, b, neg = (comfy.tiny.sdxl_conditioning(s) for s in (1, 2, 3))
    ref_a = _sample(comfy, model, a, neg)
    assert _close(_sample(comfy, _xattn(comfy, model, b, strength=0.0), a, neg), ref_a)
    out = _sample(comfy, _xattn(comfy, model, b), a, neg)
    assert torch.isfinite(out).all() and not _close(out, ref_a, 1e-3)
