"""Tier 2: SlerpLatents and SlerpConditioning as loaded by ComfyUI, called directly and in graphs."""

from __future__ import annotations

import copy

import pytest
import torch

from blendspace.slerp import slerp


def _latent(seed: int, shape=(1, 4, 8, 8), **extra) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"samples": torch.randn(*shape, generator=g), **extra}


def _snapshot(obj):
    return copy.deepcopy(obj)


def _assert_same(a, b):
    """Deep equality of latents / conditionings (tensors compared exactly)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    else:
        assert a == b


# --------------------------------------------------------------------------------------- SlerpLatents

def test_slerp_latents_endpoints_and_midpoint(comfy):
    node = comfy.node("SlerpLatents")
    a, b = _latent(0), _latent(1)
    a0, b0 = _snapshot(a), _snapshot(b)
    assert torch.equal(node.mix(a, b, 0.0)[0]["samples"], a["samples"])
    assert torch.equal(node.mix(a, b, 1.0)[0]["samples"], b["samples"])
    mid = node.mix(a, b, 0.3)[0]["samples"]
    assert torch.allclose(mid, slerp(a["samples"], b["samples"], 0.3, per="sample"))
    _assert_same(a, a0)
    _assert_same(b, b0)


def test_slerp_latents_keeps_input_dtype_and_lerp_option(comfy):
    node = comfy.node("SlerpLatents")
    a, b = _latent(0), _latent(1)
    half = node.mix({"samples": a["samples"].half()}, {"samples": b["samples"].half()}, 0.5)[0]["samples"]
    assert half.dtype == torch.float16
    lerped = node.mix(a, b, 0.25, method="lerp")[0]["samples"]
    assert torch.allclose(lerped, 0.75 * a["samples"] + 0.25 * b["samples"])


def test_slerp_latents_per_sample_versus_whole_batch(comfy):
    node = comfy.node("SlerpLatents")
    a, b = _latent(0, (3, 4, 8, 8)), _latent(1, (3, 4, 8, 8))
    per = node.mix(a, b, 0.4, scope="per sample")[0]["samples"]
    whole = node.mix(a, b, 0.4, scope="whole batch (source)")[0]["samples"]
    for i in range(3):
        assert torch.allclose(per[i:i + 1], slerp(a["samples"][i:i + 1], b["samples"][i:i + 1], 0.4, per="tensor"))
    assert torch.allclose(whole, slerp(a["samples"], b["samples"], 0.4, per="tensor"))
    assert not torch.allclose(per, whole)


def test_slerp_latents_frames_walk(comfy):
    node = comfy.node("SlerpLatents")
    a = _latent(0, (2, 4, 8, 8), batch_index=[5, 6], noise_mask=torch.rand(2, 1, 64, 64))
    b = _latent(1, (2, 4, 8, 8))
    out = node.mix(a, b, 0.5, frames=5)[0]
    s = out["samples"]
    assert s.shape == (10, 4, 8, 8)
    assert torch.equal(s[:2], a["samples"]) and torch.equal(s[8:], b["samples"])
    assert torch.allclose(s[4:6], slerp(a["samples"], b["samples"], 0.5, per="sample"))
    assert out["batch_index"] == [5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    assert out["noise_mask"].shape[0] == 10
    assert torch.equal(out["noise_mask"][2:4], a["noise_mask"])


def test_slerp_latents_batch_broadcast_and_mismatch(comfy):
    node = comfy.node("SlerpLatents")
    one, four, three = _latent(0), _latent(1, (4, 4, 8, 8)), _latent(2, (3, 4, 8, 8))
    out = node.mix(one, four, 0.5)[0]["samples"]
    assert out.shape[0] == 4
    for i in range(4):
        assert torch.allclose(out[i], slerp(one["samples"][0], four["samples"][i], 0.5, per="tensor"))
    assert node.mix(four, one, 0.5)[0]["samples"].shape[0] == 4
    with pytest.raises(ValueError, match="batch of 4 .* 3"):
        node.mix(four, three, 0.5)


def test_slerp_latents_channel_and_size_errors(comfy):
    node = comfy.node("SlerpLatents")
    sd, flux = _latent(0), _latent(1, (1, 16, 8, 8))
    with pytest.raises(ValueError, match="SD3 / Flux") as err:
        node.mix(sd, flux, 0.5)
    assert "same model's VAE" in str(err.value)
    big = _latent(2, (1, 4, 12, 8))
    with pytest.raises(ValueError, match="64x64 px but latent_b is 64x96 px"):
        node.mix(sd, big, 0.5)
    resized = node.mix(sd, big, 1.0, size_mismatch="resize b to a")[0]["samples"]
    expected = torch.nn.functional.interpolate(big["samples"], size=(8, 8), mode="bilinear", align_corners=False)
    assert resized.shape == (1, 4, 8, 8) and torch.allclose(resized, expected)


def test_slerp_latents_carries_other_keys(comfy):
    node = comfy.node("SlerpLatents")
    mask = torch.ones(1, 64, 64)
    a = _latent(0, noise_mask=mask, batch_index=[3])
    out = node.mix(a, _latent(1), 0.5)[0]
    assert out["noise_mask"] is mask and out["batch_index"] == [3]


# ---------------------------------------------------------------------------------- SlerpConditioning

def _cond(seed: int, tokens=77, width=32, pooled: int | None = 32, batch=1, **extra):
    g = torch.Generator().manual_seed(seed)
    d = dict(extra)
    if pooled:
        d["pooled_output"] = torch.randn(batch, pooled, generator=g)
    return [[torch.randn(batch, tokens, width, generator=g), d]]


def test_slerp_conditioning_endpoints_and_formula(comfy):
    node = comfy.node("SlerpConditioning")
    a, b = _cond(0), _cond(1)
    a0, b0 = _snapshot(a), _snapshot(b)
    _assert_same(node.mix(a, b, 0.0)[0], a)
    out1 = node.mix(a, b, 1.0)[0]
    assert torch.equal(out1[0][0], b[0][0]) and torch.equal(out1[0][1]["pooled_output"], b[0][1]["pooled_output"])
    out = node.mix(a, b, 0.35)[0]
    assert torch.allclose(out[0][0], slerp(a[0][0], b[0][0], 0.35, per="tensor"))
    assert torch.allclose(out[0][1]["pooled_output"], slerp(a[0][1]["pooled_output"], b[0][1]["pooled_output"], 0.35))
    per_token = node.mix(a, b, 0.35, mode="per token")[0][0][0]
    assert torch.allclose(per_token, slerp(a[0][0], b[0][0], 0.35, per="token"))
    assert not torch.allclose(per_token, out[0][0])
    _assert_same(a, a0)
    _assert_same(b, b0)


def test_slerp_conditioning_follows_conditioning_average_for_lists(comfy):
    node = comfy.node("SlerpConditioning")
    mask = torch.ones(1, 8, 8)
    a = _cond(0, mask=mask, strength=0.7) + _cond(2, start_percent=0.2)
    b = _cond(1) + _cond(3)
    out = node.mix(a, b, 0.5)[0]
    assert len(out) == 2
    for i in range(2):
        assert torch.allclose(out[i][0], slerp(a[i][0], b[0][0], 0.5, per="tensor"))
    assert out[0][1]["mask"] is mask and out[0][1]["strength"] == 0.7
    assert out[1][1]["start_percent"] == 0.2
    assert out[0][1] is not a[0][1]


def test_slerp_conditioning_pooled_rules(comfy):
    node = comfy.node("SlerpConditioning")
    only_b = node.mix(_cond(0, pooled=None), _cond(1), 0.5)[0]
    assert torch.equal(only_b[0][1]["pooled_output"], _cond(1)[0][1]["pooled_output"])
    only_a = node.mix(_cond(0), _cond(1, pooled=None), 0.5)[0]
    assert torch.equal(only_a[0][1]["pooled_output"], _cond(0)[0][1]["pooled_output"])


def test_slerp_conditioning_token_lengths_tile_to_multiples_of_77(comfy):
    node = comfy.node("SlerpConditioning")
    a, b = _cond(0, tokens=77), _cond(1, tokens=154)
    out = node.mix(a, b, 0.5)[0][0][0]
    assert out.shape == (1, 154, 32)
    assert torch.allclose(out, slerp(a[0][0].repeat(1, 2, 1), b[0][0], 0.5, per="tensor"))
    assert node.mix(_cond(0, tokens=154), _cond(1, tokens=231), 0.5)[0][0][0].shape[1] == 462
    with pytest.raises(ValueError, match="tiling them would need 6006 tokens.*pad"):
        node.mix(_cond(0, tokens=77), _cond(1, tokens=78), 0.5, length_mismatch="tile (SD cross-attention)")
    assert node.mix(_cond(0, tokens=77), _cond(1, tokens=78), 0.5)[0][0][0].shape[1] == 78, "auto pads odd lengths"
    ends = node.mix(a, b, 0.0)[0][0][0], node.mix(a, b, 1.0)[0][0][0]
    assert torch.equal(ends[0], a[0][0]) and torch.equal(ends[1], b[0][0]), "the ends are the inputs, unmatched"


def test_tiled_conditioning_means_the_same_prompt(comfy, tiny_models):
    """Tiling 77 -> 154 tokens must not change what the U-Net sees (so t = 0 equals prompt a)."""
    model, clip, _ = tiny_models
    pos = comfy.tiny.encode_prompt(clip, "a red house")
    long_b = [[torch.cat([comfy.tiny.encode_prompt(clip, "blue sky")[0][0]] * 2, dim=1), {}]]
    neg = comfy.tiny.encode_prompt(clip, "")
    from blendspace.conditioning import match_token_lengths
    tiled = [[match_token_lengths(pos[0][0], long_b[0][0])[0], pos[0][1]]]
    assert tiled[0][0].shape[1] == 154
    ks = comfy.node("KSampler")
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    ref = ks.sample(model, 7, 3, 5.0, "euler", "normal", pos, neg, latent, 1.0)[0]["samples"]
    out = ks.sample(model, 7, 3, 5.0, "euler", "normal", tiled, neg, latent, 1.0)[0]["samples"]
    # a random U-Net does not denoise, so latents stay ~100 in VAE space: compare relatively
    assert torch.allclose(ref, out, rtol=1e-5, atol=1e-5 * ref.abs().max().item())


@pytest.mark.parametrize("width,pooled,label", [(768, None, "SD1.x"), (1024, None, "SD2.x"), (2048, 1280, "SDXL")])
def test_slerp_conditioning_model_families(comfy, width, pooled, label):
    node = comfy.node("SlerpConditioning")
    a, b = _cond(0, width=width, pooled=pooled), _cond(1, width=width, pooled=pooled)
    out = node.mix(a, b, 0.5)[0]
    assert out[0][0].shape == (1, 77, width)
    if pooled:
        assert out[0][1]["pooled_output"].shape == (1, pooled)


def test_slerp_conditioning_width_mismatch_names_the_models(comfy):
    node = comfy.node("SlerpConditioning")
    with pytest.raises(ValueError, match="768-d tokens, SD1.x .* 1024-d tokens, SD2.x"):
        node.mix(_cond(0, width=768, pooled=None), _cond(1, width=1024, pooled=None), 0.5)
    with pytest.raises(ValueError, match="not a CONDITIONING|empty"):
        node.mix([], _cond(1), 0.5)


# ------------------------------------------------------------------------------ graphs via the executor

def _graph_prompt(t: float) -> dict:
    return {
        "1": {"class_type": "BlendspaceTest_TinyCheckpoint", "inputs": {"weights_seed": 0}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a castle", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "a forest", "clip": ["1", 1]}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "seed": 1, "steps": 2, "cfg": 4.0,
                                                   "sampler_name": "euler", "scheduler": "normal", "positive": ["2", 0],
                                                   "negative": ["4", 0], "latent_image": ["5", 0], "denoise": 1.0}},
        "7": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "seed": 2, "steps": 2, "cfg": 4.0,
                                                   "sampler_name": "euler", "scheduler": "normal", "positive": ["3", 0],
                                                   "negative": ["4", 0], "latent_image": ["5", 0], "denoise": 1.0}},
        "8": {"class_type": "SlerpLatents", "inputs": {"latent_a": ["6", 0], "latent_b": ["7", 0], "t": t, "frames": 1,
                                                       "method": "slerp", "scope": "per sample",
                                                       "size_mismatch": "error"}},
        "9": {"class_type": "SlerpConditioning", "inputs": {"conditioning_a": ["2", 0], "conditioning_b": ["3", 0],
                                                            "t": t, "mode": "whole tensor (source)", "method": "slerp"}},
        "10": {"class_type": "BlendspaceTest_Capture_LATENT", "inputs": {"value": ["6", 0], "key": "a"}},
        "11": {"class_type": "BlendspaceTest_Capture_LATENT", "inputs": {"value": ["7", 0], "key": "b"}},
        "12": {"class_type": "BlendspaceTest_Capture_LATENT", "inputs": {"value": ["8", 0], "key": "mixed"}},
        "13": {"class_type": "BlendspaceTest_Capture_CONDITIONING", "inputs": {"value": ["9", 0], "key": "cond"}},
        "14": {"class_type": "BlendspaceTest_Capture_CONDITIONING", "inputs": {"value": ["2", 0], "key": "cond_a"}},
        "15": {"class_type": "BlendspaceTest_Capture_CONDITIONING", "inputs": {"value": ["3", 0], "key": "cond_b"}},
        "16": {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0], "vae": ["1", 2]}},
        "17": {"class_type": "SaveImage", "inputs": {"images": ["16", 0], "filename_prefix": "slerp"}},
    }


def test_both_nodes_run_in_a_graph_executed_by_comfyui(comfy):
    captured = comfy.testing.CAPTURED
    captured.clear()
    outputs = comfy.run_graph(_graph_prompt(0.3))
    a, b, mixed = captured["a"]["samples"], captured["b"]["samples"], captured["mixed"]["samples"]
    assert not torch.allclose(a, b)
    assert torch.allclose(mixed, slerp(a, b, 0.3, per="sample"))
    cond, ca, cb = captured["cond"], captured["cond_a"], captured["cond_b"]
    assert torch.allclose(cond[0][0], slerp(ca[0][0], cb[0][0], 0.3, per="tensor"))
    assert outputs["17"]["images"][0]["filename"].startswith("slerp")


def test_out_of_range_t_fails_validation(comfy):
    from comfy_harness import GraphError
    with pytest.raises(GraphError, match="value_bigger_than_max|t"):
        comfy.run_graph(_graph_prompt(1.5))


# ------------------------------------------------------------------------------ T5 / joint attention (Flux, SD3)

def test_slerp_conditioning_pads_t5_lengths_instead_of_tiling(comfy):
    """Flux-style 256 vs 300 tokens: padded with the shorter one's last (pad) token, never tiled; guidance and
    the other keys of a are kept, the pooled outputs slerped, the ends returned unchanged."""
    node = comfy.node("SlerpConditioning")
    a, b = comfy.tiny.flux_conditioning(1, tokens=256), comfy.tiny.flux_conditioning(2, tokens=300, guidance=2.0)
    out = node.mix(a, b, 0.5, "per token")[0]
    tokens, extra = out[0]
    assert tokens.shape == (1, 300, 32) and extra["guidance"] == 3.5
    padded_a = torch.cat([a[0][0], a[0][0][:, -1:].expand(-1, 44, -1)], dim=1)
    assert torch.allclose(tokens, slerp(padded_a, b[0][0], 0.5, per="token"))
    assert torch.allclose(extra["pooled_output"], slerp(a[0][1]["pooled_output"], b[0][1]["pooled_output"], 0.5))
    assert torch.equal(node.mix(a, b, 0.0)[0][0][0], a[0][0]) and torch.equal(node.mix(a, b, 1.0)[0][0][0], b[0][0])
    t5_wide = [[torch.randn(1, 154, 4096), {}]], [[torch.randn(1, 231, 4096), {}]]
    assert node.mix(*t5_wide, 0.5)[0][0][0].shape[1] == 231, "auto pads T5-wide (Flux/SD3) even in chunks of 77"
    forced = node.mix(_cond(0, tokens=77), _cond(1, tokens=154), 0.5, length_mismatch="pad (T5 / joint attention)")
    assert forced[0][0][0].shape[1] == 154


def test_slerp_conditioning_keeps_sdxl_pooled_and_size_keys(comfy):
    a, b = comfy.tiny.sdxl_conditioning(1), comfy.tiny.sdxl_conditioning(2, tokens=154)
    out = comfy.node("SlerpConditioning").mix(a, b, 0.3)[0][0]
    assert out[0].shape == (1, 154, 32) and out[1]["pooled_output"].shape == (1, 1280)
    assert all(out[1][k] == 128 for k in ("width", "height", "target_width", "target_height"))


def test_tiling_would_change_a_joint_attention_model(comfy):
    """Why Flux/SD3 prompts are padded, not tiled: the same prompt tiled twice changes a tiny Flux's output."""
    comfy.tiny.current_comfyui_only("Flux")
    model = comfy.tiny.tiny_flux(0)
    a = comfy.tiny.flux_conditioning(1)
    tiled = [[a[0][0].repeat(1, 2, 1), a[0][1]]]
    ks, latent = comfy.node("KSampler"), {"samples": torch.zeros(1, 16, 8, 8)}
    ref = ks.sample(model, 7, 2, 1.0, "euler", "simple", a, a, latent, 1.0)[0]["samples"]
    out = ks.sample(model, 7, 2, 1.0, "euler", "simple", tiled, a, latent, 1.0)[0]["samples"]
    assert not torch.allclose(ref, out, atol=1e-3)
