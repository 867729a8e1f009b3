"""Seeds 003 / 004 experiments: strength sweep, GIF, latent walk, denoising replay, any guidance scale."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from blendspace.animation import frame_order
from blendspace.guidance import guided_epsilon
from blendspace.strength_sweep import arange_strengths, diffusers_start_step, parse_strengths


def _close(a, b, tol=1e-5):
    return (a - b).abs().max().item() <= tol * max(1.0, b.abs().max().item())


def _prompts(comfy, clip):
    enc = comfy.tiny.encode_prompt
    return enc(clip, "renaissance lady, evening light"), enc(clip, "a cyberpunk city"), enc(clip, "")


def _image_latent(seed=4):
    g = torch.Generator().manual_seed(seed)
    return {"samples": torch.randn(1, 4, 8, 8, generator=g) * 4}


# ------------------------------------------------------------------------------------------ pure

def test_source_strengths_and_schedules():
    s = arange_strengths(0.05, 0.98, 0.03)
    assert len(s) == 31 and s[0] == 0.05 and s[-1] == 0.95
    assert np.allclose(s, np.arange(0.05, 0.98, 0.03))
    assert parse_strengths("0.1, 0.3 0.55") == [0.1, 0.3, 0.55]
    with pytest.raises(ValueError, match="outside"):
        parse_strengths("0.5, 1.5")
    assert diffusers_start_step(50, 0.8) == 10 and diffusers_start_step(50, 0.05) == 48
    assert diffusers_start_step(50, 0.95) == 3 and diffusers_start_step(50, 1.0) == 0


def test_guided_epsilon_formula_and_rescale():
    g = torch.Generator().manual_seed(0)
    c, u = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    assert torch.equal(guided_epsilon(c, u, -3.0), u + -3.0 * (c - u))
    plain = u + 7.0 * (c - u)
    r = guided_epsilon(c, u, 7.0, rescale=1.0)
    assert torch.allclose(r.std(dim=(1, 2, 3)), c.std(dim=(1, 2, 3)), rtol=1e-5)
    assert torch.allclose(guided_epsilon(c, u, 7.0, rescale=0.7), 0.3 * plain + 0.7 * r, atol=1e-5)


def test_ping_pong_order():
    assert frame_order(4, False) == [0, 1, 2, 3]
    assert frame_order(4, True) == [0, 1, 2, 3, 2, 1]


# ------------------------------------------------------------------------------------ strength sweep

def test_sweep_frames_equal_ksampler_runs(comfy, tiny_models):
    model, clip, _ = tiny_models
    pos, _, neg = _prompts(comfy, clip)
    latent = _image_latent()
    node = comfy.node("BlendspaceStrengthSweep")
    args = (model, pos, neg, latent, 7, 10, 9.0, "euler", "normal")
    comfy_out, labels = node.sweep(*args, "comfyui denoise", 0.2, 0.9, 0.3, "")
    assert labels == "0.2, 0.5, 0.8" and comfy_out["samples"].shape[0] == 3
    ks = comfy.node("KSampler")
    for k, s in enumerate((0.2, 0.5, 0.8)):
        ref = ks.sample(model, 7, 10, 9.0, "euler", "normal", pos, neg, latent, s)[0]["samples"]
        assert _close(comfy_out["samples"][k:k + 1], ref)
    src, labels = node.sweep(*args, "diffusers (source)", 0.05, 0.98, 0.03, "0.3, 0.75")
    adv = comfy.node("KSamplerAdvanced")
    for k, s in enumerate((0.3, 0.75)):
        start = 10 - int(10 * s)
        ref = adv.sample(model, "enable", 7, 10, 9.0, "euler", "normal", pos, neg, latent, start, 10, "disable")[0]
        assert _close(src["samples"][k:k + 1], ref["samples"])
    assert not _close(src["samples"][0:1], src["samples"][1:2], 1e-3)


def test_sweep_honours_cancel(comfy, tiny_models, monkeypatch):
    import comfy.model_management as mm
    model, clip, _ = tiny_models
    pos, _, neg = _prompts(comfy, clip)
    calls = {"n": 0}

    def interrupt():
        calls["n"] += 1
        if calls["n"] > 3:
            raise mm.InterruptProcessingException()

    monkeypatch.setattr(mm, "throw_exception_if_processing_interrupted", interrupt)
    with pytest.raises(mm.InterruptProcessingException):
        comfy.node("BlendspaceStrengthSweep").sweep(model, pos, neg, _image_latent(), 7, 4, 9.0, "euler", "normal",
                                                    "comfyui denoise", 0.1, 1.0, 0.1, "")
    assert calls["n"] < 10  # stopped early, not after all 9 strengths


# ------------------------------------------------------------------------------------------------ GIF

def test_gif_has_frames_duration_and_loop(comfy):
    images = torch.stack([torch.full((16, 16, 3), v) for v in (0.0, 0.3, 0.6, 1.0)])
    out = comfy.node("BlendspaceSaveAnimatedGIF").save(images, "bstest/morph", 400, 0, True)
    info = out["ui"]["images"][0]
    path = os.path.join(comfy.folder_paths.get_output_directory(), info["subfolder"], info["filename"])
    with Image.open(path) as gif:
        assert gif.n_frames == 6
        assert gif.info["loop"] == 0
        durations = []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info["duration"])
        assert durations == [400] * 6
    out = comfy.node("BlendspaceSaveAnimatedGIF").save(images, "bstest/once", 120, 3, False)
    with Image.open(os.path.join(comfy.folder_paths.get_output_directory(), out["ui"]["images"][0]["subfolder"],
                                 out["ui"]["images"][0]["filename"])) as gif:
        assert gif.n_frames == 4 and gif.info["loop"] == 3 and gif.info["duration"] == 120


# ---------------------------------------------------------------------------------------- latent walk

def test_walk_endpoints_equal_their_own_samples(comfy, tiny_models):
    model, clip, _ = tiny_models
    a, b, neg = _prompts(comfy, clip)
    empty = {"samples": torch.zeros(1, 4, 8, 8)}
    node = comfy.node("BlendspaceLatentWalk")
    out = node.walk(model, a, b, neg, empty, 11, 4, 6.0, "euler", "normal", 22, 5, "slerp", "lerp", 3)[0]["samples"]
    assert out.shape[0] == 5
    ks = comfy.node("KSampler")
    ref_a = ks.sample(model, 11, 4, 6.0, "euler", "normal", a, neg, empty, 1.0)[0]["samples"]
    ref_b = ks.sample(model, 22, 4, 6.0, "euler", "normal", b, neg, empty, 1.0)[0]["samples"]
    assert _close(out[0:1], ref_a) and _close(out[4:5], ref_b)
    assert not _close(out[2:3], ref_a, 1e-3) and not _close(out[2:3], ref_b, 1e-3)
    all_at_once = node.walk(model, a, b, neg, empty, 11, 4, 6.0, "euler", "normal", 22, 5, "slerp", "lerp", 0)[0]
    assert _close(all_at_once["samples"], out)
    with pytest.raises(ValueError, match="batch of 2"):
        node.walk(model, a, b, neg, {"samples": torch.zeros(2, 4, 8, 8)}, 1, 2, 6.0, "euler", "normal", 2, 3,
                  "slerp", "lerp", 0)


# ----------------------------------------------------------------------------------- denoising replay

def test_replay_history_lengths_and_last_x0(comfy, tiny_models):
    model, clip, _ = tiny_models
    pos, _, neg = _prompts(comfy, clip)
    empty = {"samples": torch.zeros(1, 4, 8, 8)}
    latent, x0s, xts = comfy.node("BlendspaceDenoisingReplay").sample(model, 5, 6, 7.0, "euler", "normal", pos, neg,
                                                                      empty, 1.0)
    ref = comfy.node("KSampler").sample(model, 5, 6, 7.0, "euler", "normal", pos, neg, empty, 1.0)[0]["samples"]
    assert torch.equal(latent["samples"], ref)
    assert x0s["samples"].shape[0] == 6 and xts["samples"].shape[0] == 7
    assert _close(x0s["samples"][-1:], ref)
    assert torch.equal(xts["samples"][-1:], ref)
    assert not _close(x0s["samples"][0:1], ref, 1e-3)


# ----------------------------------------------------------------------------------- guidance scale

@pytest.mark.parametrize("scale", [-3.0, 0.0, 1.0])
def test_any_guidance_scale_is_exact(comfy, tiny_models, scale):
    """One Euler step from sigma_max returns the guided x0: it must be u + s·(c - u) of the separate predictions."""
    model, clip, _ = tiny_models
    pos, _, neg = _prompts(comfy, clip)
    empty = {"samples": torch.zeros(1, 4, 8, 8)}
    ks = comfy.node("KSampler")
    before = dict(model.model_options)
    patched = comfy.node("BlendspaceGuidanceScale").patch(model, scale, 0.0)[0]
    assert model.model_options.keys() == before.keys() and "sampler_cfg_function" not in model.model_options
    calls = []

    def wrapper(apply_model, args):
        calls.append(len(args["cond_or_uncond"]))
        return apply_model(args["input"], args["timestep"], **args["c"])

    patched.set_model_unet_function_wrapper(wrapper)
    out = ks.sample(patched, 9, 1, 1.0, "euler", "normal", pos, neg, empty, 1.0)[0]["samples"]
    assert calls == [2], "the unconditional pass must run even at sampler cfg 1"
    cond = ks.sample(model, 9, 1, 1.0, "euler", "normal", pos, neg, empty, 1.0)[0]["samples"]
    uncond = ks.sample(model, 9, 1, 1.0, "euler", "normal", neg, neg, empty, 1.0)[0]["samples"]
    assert _close(out, uncond + scale * (cond - uncond), 1e-5)


# ------------------------------------------------------------------------ variations around one latent

def test_perturbed_latents_formula():
    from blendspace.latents import perturbed_latents
    g = torch.Generator().manual_seed(3)
    z, n = torch.randn(1, 4, 8, 8, generator=g), torch.randn(3, 4, 8, 8, generator=g)
    out = perturbed_latents(z, n, 0.25)
    mixed = 0.75 * z + 0.25 * n
    assert torch.allclose(out, (mixed - mixed.mean()) / mixed.std(), atol=1e-6)
    assert abs(out.mean().item()) < 1e-5 and abs(out.std().item() - 1) < 1e-5, "one mean/std over the whole batch"
    same = perturbed_latents(z, n, 0.0)
    z3 = z.repeat(3, 1, 1, 1)
    assert torch.allclose(same[0], same[2]) and torch.allclose(same, (z3 - z3.mean()) / z3.std(), atol=1e-6)
    with pytest.raises(ValueError, match="outside"):
        perturbed_latents(z, n, 1.5)


def test_latent_variations_node(comfy, tiny_models):
    model, clip, _ = tiny_models
    pos, _, neg = _prompts(comfy, clip)
    empty = {"samples": torch.zeros(1, 4, 8, 8)}
    node = comfy.node("BlendspaceLatentVariations")
    out = node.vary(model, pos, neg, empty, 44, 3, 7.5, "euler", "normal", 0.25, 4, 45)[0]["samples"]
    assert out.shape == (4, 4, 8, 8) and torch.isfinite(out).all()
    assert not _close(out[0:1], out[1:2], 1e-3)
    zero = node.vary(model, pos, neg, empty, 44, 3, 7.5, "euler", "normal", 0.0, 2, 45)[0]["samples"]
    assert _close(zero[0:1], zero[1:2]), "strength 0: every variation is the base latent"
    with pytest.raises(ValueError, match="batch of 2"):
        node.vary(model, pos, neg, {"samples": torch.zeros(2, 4, 8, 8)}, 1, 2, 7.5, "euler", "normal", 0.2, 2, 1)


# ------------------------------------------------------------------------------ guidance × steps grid

def test_guidance_grid_cells_equal_their_own_runs(comfy, tiny_models):
    model, clip, vae = tiny_models
    pos, _, neg = _prompts(comfy, clip)
    empty = {"samples": torch.zeros(1, 4, 8, 8)}
    latents, grid, labels = comfy.node("BlendspaceGuidanceGrid").grid(model, pos, neg, empty, vae, 42, "euler",
                                                                      "normal", "1, 2", "-1.5:0:1.5", 0.7)
    assert latents["samples"].shape[0] == 4
    assert labels.splitlines() == ["steps 1, scale -1.5", "steps 1, scale 0", "steps 2, scale -1.5",
                                   "steps 2, scale 0"]
    one = vae.decode(latents["samples"][:1])
    assert grid.shape == (1, 2 * one.shape[1], 2 * one.shape[2], one.shape[3])
    patched = comfy.node("BlendspaceGuidanceScale").patch(model, -1.5, 0.7)[0]
    ref = comfy.node("KSampler").sample(patched, 42, 2, 1.0, "euler", "normal", pos, neg, empty, 1.0)[0]["samples"]
    assert _close(latents["samples"][2:3], ref)
    with pytest.raises(ValueError, match="guidance_scales"):
        comfy.node("BlendspaceGuidanceGrid").grid(model, pos, neg, empty, vae, 42, "euler", "normal", "1", "40", 0.7)
