"""The images-mixing pipeline CLIP image guidance: the math, the derivation for k-diffusion, and the nodes on tiny models."""

from __future__ import annotations

import gc
import importlib
import math
import weakref

import pytest
import torch

from blendspace.clip_guidance import (
    GUIDANCE_RESIZES,
    StepClock,
    alpha_bar,
    embed_latent,
    fast_chain_factor,
    guidance_loss,
    guided_blend,
    guided_denoised,
    make_cutouts,
    mixed_target,
    spherical_dist_loss,
)
from blendspace.clip_preprocess import OPENAI_MEAN, OPENAI_STD, centre_square_pixels, shortest_side_pixels
from blendspace.slerp import slerp

EXACT, FAST = "exact (through the U-Net, source)", "fast (decoder only)"


# ---------------------------------------------------------------------------------------------- math

def test_spherical_distance_is_half_the_squared_angle():
    for theta in (0.1, 0.7, 2.0):
        x = torch.tensor([[1.0, 0.0]])
        y = torch.tensor([[math.cos(theta), math.sin(theta)]]) * 3.0
        assert spherical_dist_loss(x, y).item() == pytest.approx(theta ** 2 / 2, rel=1e-5)
    e, t = torch.randn(4, 8), torch.randn(1, 8)
    assert guidance_loss(e, t, 100.0).item() == pytest.approx(100 * spherical_dist_loss(e, t.expand(4, -1)).mean().item())


def test_k_diffusion_form_equals_the_source_epsilon_correction():
    """ε' = ε + sqrt(β)·∇_x L in DDPM space must give D' = D - σ²·∇_{x_k} L in k-diffusion space."""
    with torch.inference_mode(False):
        sigma = torch.tensor([2.5], dtype=torch.float64)
        ab = alpha_bar(sigma)
        x_k = torch.randn(1, 4, 3, 3, dtype=torch.float64)
        eps = torch.randn_like(x_k)

        def loss(v):
            return (v.sin() * torch.arange(36, dtype=torch.float64).view(1, 4, 3, 3)).sum()

        x_ddpm = (x_k * ab.sqrt()).requires_grad_(True)
        g_ddpm = torch.autograd.grad(loss(x_ddpm / ab.sqrt()), x_ddpm)[0]
        eps_source = eps + (1 - ab).sqrt() * g_ddpm
        d_source = x_k - sigma * eps_source
        xk = x_k.clone().requires_grad_(True)
        g_k = torch.autograd.grad(loss(xk), xk)[0]
        d_ours = (x_k - sigma * eps) - sigma ** 2 * g_k
        assert torch.allclose(d_source, d_ours, atol=1e-10)


def test_blend_and_fast_chain_factor():
    sigma = torch.tensor([1.3])
    ab = 1 / (1 + 1.3 ** 2)
    x0, xk = torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2)
    fac = math.sqrt(1 - ab)
    assert torch.allclose(guided_blend(x0, xk, sigma), fac * x0 + (1 - fac) * math.sqrt(ab) * xk, atol=1e-6)
    with torch.inference_mode(False):
        v = torch.randn(1, 4, 2, 2, requires_grad=True)
        s = guided_blend(v, v, sigma)  # x0 moving one-for-one with x_k
        g_exact = torch.autograd.grad((s ** 2).sum(), v)[0]
        s2 = guided_blend(v, v, sigma).detach().requires_grad_(True)
        g_fast = torch.autograd.grad((s2 ** 2).sum(), s2)[0] * fast_chain_factor(sigma, 4)
        assert torch.allclose(g_exact, g_fast.float(), atol=1e-5)


def test_preprocessing_and_cutouts_are_differentiable():
    with torch.inference_mode(False):
        img = torch.rand(2, 3, 64, 64, requires_grad=True)
        px = shortest_side_pixels(img, 224)
        assert px.shape == (2, 3, 224, 224)
        cuts = make_cutouts(img, 224, 3, generator=torch.Generator().manual_seed(0))
        assert cuts.shape == (6, 3, 224, 224)
        (px.sum() + cuts.sum()).backward()
        assert img.grad is not None and torch.isfinite(img.grad).all()


def test_preprocessing_crops_the_centre_and_normalises():
    img = torch.zeros(1, 3, 100, 50)
    img[..., 25:75, :] = 1.0  # the centre square is white, the rest black
    px = shortest_side_pixels(img, 20)
    white = (1.0 - torch.tensor(OPENAI_MEAN)) / torch.tensor(OPENAI_STD)
    assert px.shape == (1, 3, 20, 20) and torch.allclose(px[0, :, 10, 10], white, atol=1e-4)
    bhwc = img.movedim(1, -1)
    sq = centre_square_pixels(bhwc, 20)
    assert sq.shape == (1, 3, 20, 20) and torch.allclose(sq[0, :, 10, 10], white, atol=1e-3)
    signed = centre_square_pixels(bhwc, 20, signed=True)
    assert torch.allclose(signed[0, :, 10, 10], white, atol=1e-3), "white stays 1 in [-1, 1]"
    assert signed.min() < sq.min(), "black becomes -1 in the faithful [-1, 1] pixels"


def test_guidance_resize_is_the_source_bilinear_by_default_bicubic_on_request():
    s = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(2)) * 2 - 1

    def embed(resize=None):
        extra = {} if resize is None else {"resize": resize}
        return embed_latent(s, lambda z: z, lambda px: px.flatten(1), 24, OPENAI_MEAN, OPENAI_STD, **extra)

    img = (s + 1) / 2
    bilinear = shortest_side_pixels(img, 24, mode="bilinear").flatten(1)
    assert torch.equal(embed(), bilinear) and torch.equal(embed(GUIDANCE_RESIZES[0]), bilinear)
    assert torch.equal(embed(GUIDANCE_RESIZES[1]), shortest_side_pixels(img, 24, mode="bicubic").flatten(1))
    assert not torch.allclose(embed(GUIDANCE_RESIZES[1]), bilinear)


def _pattern(clock, sigmas, schedule=None):
    return [clock.guided(s, schedule) for s in sigmas]


def test_step_clock_counts_sampler_steps_not_model_calls():
    sched = [8.0, 4.0, 2.0, 1.0, 0.0]
    heun = [8.0, 4.0, 4.0, 2.0, 2.0, 1.0, 1.0]  # each step at sigma_i and sigma_(i+1); the last step once
    dpm2 = [8.0, 5.6, 4.0, 2.8, 2.0, 1.4, 1.0]  # midpoints inside the step
    clock = StepClock(2)
    clock.start(sched, corrector_at_next=True)
    assert _pattern(clock, heun) == [True, True, False, False, True, True, False]
    clock.start(None, corrector_at_next=True)  # without the schedule too
    assert _pattern(clock, heun) == [True, True, False, False, True, True, False]
    assert _pattern(StepClock(2), dpm2, sched) == [True, True, False, False, True, True, False]
    assert _pattern(StepClock(2), heun, sched) == [True, False, False, True, True, False, False], \
        "an unknown sampler's corrector at the next sigma counts with the next step"
    clock = StepClock(3)  # no schedule: each new sigma is a step; a higher sigma starts a new run
    assert _pattern(clock, [8.0, 4.0, 2.0, 1.0]) == [True, False, False, True]
    assert _pattern(clock, [8.0, 4.0, 2.0, 1.0]) == [True, False, False, True]
    assert _pattern(StepClock(1), dpm2, sched) == [True] * 7


def test_mixed_target_ends_are_the_unit_sources():
    c, s = torch.randn(1, 16) * 3, torch.randn(1, 16) * 0.5
    assert torch.allclose(mixed_target(c, s, 0.0), c / c.norm())
    assert torch.allclose(mixed_target(c, s, 1.0), s / s.norm())
    assert mixed_target(c, s, 0.5).norm().item() == pytest.approx(1.0, abs=1e-5)


def _toy_step_inputs():
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode(False):  # model weights are made outside inference mode, as the node's copies are
        weights = torch.randn(8, 4 * 6 * 6, generator=g)
    x = torch.randn(2, 4, 6, 6, generator=g)
    return (lambda s: s.reshape(s.shape[0], -1) @ weights.T), x, torch.tensor([1.5, 1.5]), torch.randn(1, 8, generator=g)


def test_guided_step_runs_on_plain_callables_and_lowers_the_loss():
    """The step is pure torch: a linear 'decoder + CLIP' suffices. A small step lowers the loss at the guided
    blend; scale 0 changes nothing; the exact gradient with x0 moving one-for-one with x is the fast one."""
    embed, x, sigma, target = _toy_step_inputs()
    denoised = x * 0.5
    assert torch.equal(guided_denoised(denoised, x, sigma, target, 0.0, embed, cond_denoised=denoised), denoised)
    stepped = guided_denoised(denoised, x, sigma, target, 1e-3, embed, cond_denoised=denoised)

    def loss(d):
        return guidance_loss(embed(guided_blend(d, x, sigma)), target, 1.0).item()
    assert loss(stepped) < loss(denoised)
    exact = guided_denoised(x, x, sigma, target, 100.0, embed, predict_x0=lambda x_k: x_k)
    fast = guided_denoised(x, x, sigma, target, 100.0, embed, cond_denoised=x)
    assert torch.allclose(exact, fast, atol=1e-5)


# ---------------------------------------------------------------------------------------------- nodes

@pytest.fixture(scope="module")
def setup(comfy, tiny_models):
    model, clip, vae = tiny_models
    cv = comfy.tiny.tiny_clip_vision(3)
    g = torch.Generator().manual_seed(0)
    content, style = torch.rand(1, 64, 64, 3, generator=g), torch.rand(1, 64, 64, 3, generator=g)
    pos, neg = comfy.tiny.encode_prompt(clip, "a cat"), comfy.tiny.encode_prompt(clip, "")
    latent = {"samples": torch.randn(1, 4, 8, 8, generator=g) * 3}
    return dict(model=model, vae=vae, cv=cv, content=content, style=style, pos=pos, neg=neg, latent=latent)


def _target(comfy, s, t=0.8):
    return comfy.node("BlendspaceSlerpClipImageEmbeds").mix(t, clip_vision=s["cv"], content_image=s["content"],
                                                        style_image=s["style"])[0]


def _guided(comfy, s, target, scale, gradient=FAST, seed=1, steps=5, model=None, **extra):
    args = dict(vae=s["vae"], clip_vision=s["cv"], target=target, clip_guidance_scale=scale, gradient=gradient,
                use_cutouts=False, num_cutouts=4, start_percent=0.0, end_percent=1.0, every_n_steps=1)
    args.update(extra)
    return comfy.node("ClipImageGuidanceSampler").sample(model or s["model"], seed, steps, 5.0, "euler", "normal",
                                                         s["pos"], s["neg"], s["latent"], 0.6, **args)[0]["samples"]


def _cos(s, latent, target):
    e = s["cv"].encode_image(s["vae"].decode(latent))["image_embeds"]
    return torch.nn.functional.cosine_similarity(e.float(), target["embeds"]).item()


def test_target_is_the_slerp_of_unit_embeddings(comfy, setup):
    s = setup
    target = _target(comfy, s, 0.3)
    c = torch.nn.functional.normalize(s["cv"].encode_image(s["content"])["image_embeds"].float(), dim=-1)
    st = torch.nn.functional.normalize(s["cv"].encode_image(s["style"])["image_embeds"].float(), dim=-1)
    assert torch.allclose(target["embeds"], slerp(c, st, 0.3, per="tensor"), atol=1e-6)
    assert target["embeds"].norm().item() == pytest.approx(1.0, abs=1e-3)


def test_scale_zero_is_bit_identical_to_ksampler(comfy, setup):
    s = setup
    out = _guided(comfy, s, _target(comfy, s), 0.0, strength_mode="comfyui denoise")
    ref = comfy.node("KSampler").sample(s["model"], 1, 5, 5.0, "euler", "normal", s["pos"], s["neg"], s["latent"],
                                        0.6)[0]["samples"]
    assert torch.equal(out, ref)
    source = _guided(comfy, s, _target(comfy, s), 0.0)  # noise_strength 0.6 of 5 steps: the last 3 run
    adv = comfy.node("KSamplerAdvanced").sample(s["model"], "enable", 1, 5, 5.0, "euler", "normal", s["pos"], s["neg"],
                                                s["latent"], 2, 5, "disable")[0]["samples"]
    assert torch.equal(source, adv)


def _close(a, b, tol=1e-5):
    return (a - b).abs().max().item() <= tol * max(1.0, b.abs().max().item())


@pytest.mark.parametrize("mode", ["diffusers (source)", "comfyui denoise"])
def test_start_latent_is_the_slerp_of_separately_noised_latents(comfy, setup, mode):
    s = setup
    g = torch.Generator().manual_seed(9)
    style = {"samples": torch.randn(1, 4, 8, 8, generator=g) * 3}
    target = _target(comfy, s)

    def plain(latent, seed):
        if mode == "comfyui denoise":
            return comfy.node("KSampler").sample(s["model"], seed, 5, 5.0, "euler", "normal", s["pos"], s["neg"],
                                                 latent, 0.6)[0]["samples"]
        return comfy.node("KSamplerAdvanced").sample(s["model"], "enable", seed, 5, 5.0, "euler", "normal", s["pos"],
                                                     s["neg"], latent, 2, 5, "disable")[0]["samples"]

    at0 = _guided(comfy, s, target, 0.0, strength_mode=mode, latent_style=style, slerp_latent_style_strength=0.0)
    at1 = _guided(comfy, s, target, 0.0, strength_mode=mode, latent_style=style, slerp_latent_style_strength=1.0)
    assert _close(at0, plain(s["latent"], 1)), "t = 0: the content latent with the seed's own noise"
    assert _close(at1, plain(style, 2)), "t = 1: the style latent with its own noise (seed + 1)"
    mid = _guided(comfy, s, target, 0.0, strength_mode=mode, latent_style=style, slerp_latent_style_strength=0.5)
    assert not _close(mid, at0, 1e-3) and not _close(mid, at1, 1e-3)


@pytest.mark.parametrize("gradient", [EXACT, FAST])
def test_guidance_pulls_the_image_toward_the_target(comfy, setup, gradient):
    s = setup
    target = _target(comfy, s)
    for seed in (1, 2, 3):
        plain = _cos(s, _guided(comfy, s, target, 0.0, gradient, seed), target)
        guided = _cos(s, _guided(comfy, s, target, 1000.0, gradient, seed), target)
        assert guided > plain + 0.005, (seed, plain, guided)


def test_patch_node_composes_with_stock_ksampler_and_leaves_model_alone(comfy, setup):
    s = setup
    target = _target(comfy, s)
    before = dict(s["model"].model_options)
    patched = comfy.node("BlendspaceClipImageGuidance").patch(
        s["model"], vae=s["vae"], clip_vision=s["cv"], target=target, clip_guidance_scale=500.0, gradient=FAST,
        use_cutouts=True, num_cutouts=2, start_percent=0.0, end_percent=0.5, every_n_steps=2)[0]
    assert s["model"].model_options.keys() == before.keys()
    assert "sampler_post_cfg_function" not in s["model"].model_options
    ks = comfy.node("KSampler")
    out = ks.sample(patched, 1, 5, 5.0, "euler", "normal", s["pos"], s["neg"], s["latent"], 0.6)[0]["samples"]
    ref = ks.sample(s["model"], 1, 5, 5.0, "euler", "normal", s["pos"], s["neg"], s["latent"], 0.6)[0]["samples"]
    assert torch.isfinite(out).all() and not torch.equal(out, ref)


def test_grad_copies_are_released_and_cancel_stops(comfy, setup, monkeypatch):
    import comfy.model_management as mm
    s = setup
    guidance_mod = comfy.pack.nodes.runtime.guidance_hooks
    refs = []
    original = guidance_mod.ClipGuidance._frozen_copy

    def tracking(self, module, device):
        copy = original(self, module, device)
        refs.append(weakref.ref(copy))
        return copy

    monkeypatch.setattr(guidance_mod.ClipGuidance, "_frozen_copy", tracking)
    _guided(comfy, s, _target(comfy, s), 100.0, EXACT)
    gc.collect()
    assert len(refs) == 3 and all(r() is None for r in refs), "VAE, CLIP and U-Net copies must be freed"

    calls = {"n": 0}

    def interrupt():
        calls["n"] += 1
        if calls["n"] >= 2:
            raise mm.InterruptProcessingException()

    monkeypatch.setattr(mm, "throw_exception_if_processing_interrupted", interrupt)
    refs.clear()
    with pytest.raises(mm.InterruptProcessingException):
        _guided(comfy, s, _target(comfy, s), 100.0, FAST, steps=20)
    assert calls["n"] == 2
    gc.collect()
    assert all(r() is None for r in refs)


@pytest.mark.parametrize("sampler", ["heun", "euler"])
def test_every_n_steps_counts_steps_of_a_two_evaluation_sampler(comfy, setup, monkeypatch, sampler):
    s = setup
    module = comfy.pack.nodes.runtime.guidance_hooks
    seen = []
    original = module.StepClock.guided

    def recording(self, sigma, schedule=None):
        seen.append((round(float(sigma), 4), original(self, sigma, schedule)))
        return seen[-1][1]

    monkeypatch.setattr(module.StepClock, "guided", recording)
    monkeypatch.setattr(module, "guided_denoised", lambda denoised, *a, **k: denoised)
    comfy.node("ClipImageGuidanceSampler").sample(
        s["model"], 1, 4, 5.0, sampler, "normal", s["pos"], s["neg"], s["latent"], 1.0, strength_mode="comfyui denoise",
        vae=s["vae"], clip_vision=s["cv"], target=_target(comfy, s), clip_guidance_scale=100.0, gradient=FAST,
        use_cutouts=False, num_cutouts=4, start_percent=0.0, end_percent=1.0, every_n_steps=2)
    flags = [g for _, g in seen]
    if sampler == "heun":  # steps 0 and 2 guided, each at both of its evaluations; the last step evaluates once
        assert flags == [True, True, False, False, True, True, False], seen
        assert seen[1][0] == seen[2][0], "the corrector of step 0 and step 1 share a sigma, not a decision"
    else:
        assert flags == [True, False, True, False], seen


def test_mismatched_target_is_refused(comfy, setup):
    s = setup
    bad = {"embeds": torch.randn(1, 16), "dim": 16}
    with pytest.raises(ValueError, match="same model"):
        _guided(comfy, s, bad, 100.0)


def test_guidance_on_v_prediction_models_and_batches(comfy, setup):
    from comfy.model_base import BaseModel, ModelType
    from comfy.model_patcher import ModelPatcher
    from comfy.supported_models import SD15
    s = setup
    with torch.no_grad():
        base = BaseModel(SD15(dict(comfy.tiny.SD15_UNET)), model_type=ModelType.V_PREDICTION)
        comfy.tiny.randomize(base.diffusion_model, 0)
    vpred = ModelPatcher(base, load_device=torch.device("cpu"), offload_device=torch.device("cpu"))
    from comfy.model_sampling import V_PREDICTION
    assert isinstance(vpred.model.model_sampling, V_PREDICTION)
    assert not isinstance(s["model"].model.model_sampling, V_PREDICTION)
    batch = {"samples": torch.cat([s["latent"]["samples"], s["latent"]["samples"].flip(-1)])}
    target = _target(comfy, s)
    for model in (vpred, s["model"]):
        s2 = dict(s, latent=batch)
        plain = _guided(comfy, s2, target, 0.0, EXACT, model=model, strength_mode="comfyui denoise")
        ref = comfy.node("KSampler").sample(model, 1, 5, 5.0, "euler", "normal", s["pos"], s["neg"], batch,
                                            0.6)[0]["samples"]
        assert torch.equal(plain, ref)
        for gradient in (EXACT, FAST):
            guided = _guided(comfy, s2, target, 1000.0, gradient, model=model, strength_mode="comfyui denoise")
            assert guided.shape == batch["samples"].shape and torch.isfinite(guided).all()
            assert not torch.allclose(guided, plain)


def test_grad_pass_attention_is_the_same_math_and_keeps_other_patches(comfy, setup):
    compat = comfy.pack.nodes.runtime.cross_attention
    base = setup["model"].model
    unet = base.diffusion_model
    blocks = compat.transformer_blocks(unet)
    assert blocks and ("middle", 0) in blocks

    def other(q, k, v, extra):
        return q

    own = (blocks[0][0], blocks[0][1], 0)
    options = {"transformer_options": {"patches_replace": {"attn2": {own: other}}}}
    new = compat.with_sdpa_attention(options, blocks)
    replace = new["transformer_options"]["patches_replace"]
    assert replace["attn2"][own] is other and blocks[0] not in replace["attn2"], "a block's own patch is kept"
    assert all(replace["attn1"][b] is compat.sdpa_attention for b in blocks)
    assert all(replace["attn2"][b] is compat.sdpa_attention for b in blocks[1:])
    assert options == {"transformer_options": {"patches_replace": {"attn2": {own: other}}}}, "input not changed"
    g = torch.Generator().manual_seed(0)
    x, ctx, t = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 77, 32, generator=g), torch.tensor([3.0, 7.0])
    plain = base.apply_model(x, t, c_crossattn=ctx, transformer_options={})
    sdpa = base.apply_model(x, t, c_crossattn=ctx,
                            transformer_options=compat.with_sdpa_attention({}, blocks)["transformer_options"])
    assert torch.allclose(plain, sdpa, atol=1e-4) and not torch.equal(plain, base.apply_model(
        x, t, c_crossattn=ctx, transformer_options=new["transformer_options"]))


def _unet_batch_items(model):
    """Count the samples every diffusion-model forward sees (the hook is carried into the grad-capable copy)."""
    seen = []
    handle = model.model.diffusion_model.register_forward_pre_hook(lambda m, a: seen.append(int(a[0].shape[0])))
    return seen, handle


def test_exact_gradient_reuses_the_samplers_conditional_pass(comfy, setup):
    """Current ComfyUI: the exact gradient differentiates the sampler's own conditional pass, so a guided step
    costs the U-Net 2 samples (cond with gradients, uncond) instead of 3 (both, then the source's extra cond
    pass); the result is the extra pass's. A node that already took the cond pass keeps it (extra pass)."""
    if not comfy.is_current:
        pytest.skip("the 2024 ComfyUI has no sampler_calc_cond_batch_function: the exact gradient makes the "
                    "source's extra pass there (covered by the guidance tests)")
    samplers = importlib.import_module("comfy.samplers")
    s = setup
    target = _target(comfy, s)
    taken = s["model"].clone()
    taken.set_model_sampler_calc_cond_batch_function(
        lambda a: samplers.calc_cond_batch(a["model"], a["conds"], a["input"], a["sigma"], a["model_options"]))
    runs = {}
    for name, model in (("reuse", s["model"]), ("extra pass", taken)):
        seen, handle = _unet_batch_items(model)
        try:
            runs[name] = (_guided(comfy, s, target, 1000.0, EXACT, model=model, steps=4,
                                  strength_mode="comfyui denoise"), list(seen))
        finally:
            handle.remove()
    (reuse, seen_reuse), (extra, seen_extra) = runs["reuse"], runs["extra pass"]
    assert sum(seen_reuse) == 2 * 4 and sum(seen_extra) == 3 * 4, (seen_reuse, seen_extra)
    plain = _guided(comfy, s, target, 0.0, EXACT, steps=4, strength_mode="comfyui denoise")
    assert not _close(extra, plain, 1e-3), "the guidance must act for the comparison to mean anything"
    assert _close(reuse, extra, 1e-4), (reuse - extra).abs().max()


def test_exact_gradient_reuse_keeps_every_n_steps(comfy, setup):
    """With the conditional pass taken, unguided steps cost what a plain step costs (no grad pass)."""
    if not comfy.is_current:
        pytest.skip("the 2024 ComfyUI has no sampler_calc_cond_batch_function")
    s = setup
    seen, handle = _unet_batch_items(s["model"])
    try:
        _guided(comfy, s, _target(comfy, s), 1000.0, EXACT, steps=4, strength_mode="comfyui denoise",
                every_n_steps=2)
    finally:
        handle.remove()
    assert seen == [1, 1, 2, 1, 1, 2], seen


def test_grad_capable_copies_share_the_models_weights(comfy, setup):
    """The U-Net, VAE and CLIP 'copies' the gradients run through cost no weight memory: every parameter is a
    normal tensor on the same memory as the loaded model's inference-tensor weight, and guiding writes none."""
    s = setup
    mixing = comfy.pack.nodes.nodes_image_mixing
    guidance = mixing._make_guidance(s["model"], s["vae"], _target(comfy, s), 100.0, EXACT, False, 4, 0.0, 1.0, 1,
                                     clip_vision=s["cv"])
    base = s["model"].model
    cache = guidance._copies(base, torch.device("cpu"))
    before = {k: v.clone() for k, v in base.state_dict().items()}
    for name, original in (("unet", base), ("decoder", s["vae"].first_stage_model), ("clip", s["cv"].model)):
        pairs = list(zip(original.parameters(), cache[name].parameters(), strict=True))
        assert pairs and all(p.data_ptr() == q.data_ptr() for p, q in pairs), name
        assert not any(q.is_inference() or q.requires_grad for _, q in pairs), name
        assert cache[name] is not original
    with torch.inference_mode(False), torch.enable_grad():
        x = torch.randn(1, 4, 8, 8, requires_grad=True)
        cache["decoder"].decode(x).square().sum().backward()  # the U-Net's backward: the guidance tests
    assert x.grad is not None and x.grad.abs().sum() > 0
    _guided(comfy, s, _target(comfy, s), 1000.0, EXACT, steps=2)
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items()), "the model's weights are untouched"
