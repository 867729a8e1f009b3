"""CycleDiffusion (dual-style-image-gen's backbone): schedule, exact reconstruction, replay with dual-style blends."""

from __future__ import annotations

import pytest
import torch

from blendspace.cycle_diffusion import ddim_schedule


def _alphas():
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0)


def test_schedule_is_the_ldm_uniform_ddim_with_skip():
    ac = _alphas()
    s = ddim_schedule(ac, 99, 10, 0.1)
    assert s.timesteps[:3] == [1, 11, 21] and s.timesteps[-1] == 981 and len(s.timesteps) == 99
    assert s.start == 88 and s.timesteps[s.start] == 881
    assert float(s.alphas_prev[0]) == float(ac[0]) and float(s.alphas_prev[5]) == float(ac[41])
    i = 40
    a, ap = float(ac[s.timesteps[i]]), float(ac[s.timesteps[i - 1]])
    expected = 0.1 * ((1 - ap) / (1 - a) * (1 - a / ap)) ** 0.5
    assert float(s.etas_sigma[i]) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="eta must be > 0"):
        ddim_schedule(ac, 99, 10, 0.0)
    with pytest.raises(ValueError, match="skip_steps"):
        ddim_schedule(ac, 20, 20, 0.1)


def _photo_latent(seed=5, size=(16, 16)):
    g = torch.Generator().manual_seed(seed)
    return {"samples": torch.randn(1, 4, *size, generator=g) * 5.0}


def _invert(comfy, model, prompt, latent, steps=20, skip=4, seed=42):
    return comfy.node("BlendspaceCycleDiffusionInvert").invert(model, prompt, latent, seed, steps, skip, 0.1, 1.0)[0]


def _replay(comfy, model, pos, neg, cycle, cfg):
    return comfy.node("BlendspaceCycleDiffusionSampler").sample(model, pos, neg, cycle, cfg)[0]["samples"]


def test_replay_with_the_encoder_prompt_reconstructs_the_photo(comfy, tiny_models):
    model, clip, _ = tiny_models
    enc = comfy.tiny.encode_prompt(clip, "a picture of a bear")
    latent = _photo_latent()
    cycle = _invert(comfy, model, enc, latent)
    assert len(cycle.noises) == cycle.schedule.start + 2
    out = _replay(comfy, model, enc, enc, cycle, 1.0)
    scale = latent["samples"].abs().max().item()
    assert (out - latent["samples"]).abs().max().item() <= 1e-4 * scale
    styled = _replay(comfy, model, comfy.tiny.encode_prompt(clip, "a van gogh bear"), comfy.tiny.encode_prompt(clip, ""),
                     cycle, 15.0)
    assert (styled - latent["samples"]).abs().max().item() > 1e-2 * scale


def test_inversion_is_seeded_and_checks_cfg(comfy, tiny_models):
    model, clip, _ = tiny_models
    enc = comfy.tiny.encode_prompt(clip, "a picture of a bear")
    latent = _photo_latent()
    c1, c2 = _invert(comfy, model, enc, latent, seed=1), _invert(comfy, model, enc, latent, seed=1)
    c3 = _invert(comfy, model, enc, latent, seed=2)
    assert all(torch.equal(a, b) for a, b in zip(c1.noises, c2.noises, strict=True))
    assert not torch.equal(c1.noises[0], c3.noises[0])
    with pytest.raises(ValueError, match="needs a negative"):
        comfy.node("BlendspaceCycleDiffusionInvert").invert(model, enc, latent, 42, 20, 4, 0.1, 7.0)


def test_source_default_schedule_runs_89_steps_from_t881(comfy, tiny_models):
    model, clip, _ = tiny_models
    enc = comfy.tiny.encode_prompt(clip, "a picture of a bear")
    calls = []

    def wrapper(apply_model, args):
        calls.append(float(args["timestep"][0]))
        return apply_model(args["input"], args["timestep"], **args["c"])

    counted = model.clone()
    counted.set_model_unet_function_wrapper(wrapper)
    cycle = comfy.node("BlendspaceCycleDiffusionInvert").invert(counted, enc, _photo_latent(size=(8, 8)), 42, 99, 10,
                                                                0.1, 1.0)[0]
    assert len(calls) == 89 and len(cycle.noises) == 90
    ms = comfy.pack.nodes.runtime.model_facts.model_sampling(model)
    assert int(ms.timestep(torch.tensor(calls[0]))) == 881 and int(ms.timestep(torch.tensor(calls[-1]))) == 1


def test_replay_composes_with_the_dual_style_epsilon_mix(comfy, tiny_models):
    model, clip, _ = tiny_models
    enc = comfy.tiny.encode_prompt(clip, "a picture of a bear")
    a, b, neg = (comfy.tiny.encode_prompt(clip, t) for t in ("minecraft bear", "van gogh bear", ""))
    cycle = _invert(comfy, model, enc, _photo_latent())
    all_a = comfy.node("DualStyleEpsilonMix").mix(a, b, 128, 128, "left-right", "sigmoid", 0.5, 20.0, 1.0,
                                                  mask=torch.ones(1, 16, 16))[0]
    ref = _replay(comfy, model, a, neg, cycle, 20.0)
    out = _replay(comfy, model, all_a, neg, cycle, 20.0)
    assert (out - ref).abs().max().item() <= 1e-4 * max(1.0, ref.abs().max().item())
