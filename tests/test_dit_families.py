"""The tiny DiT families of the current ComfyUI (Flux dev / schnell / Kontext, Chroma, SD3 / SD3.5, HiDream,
Qwen-Image(-Edit), Lumina 2, Omnigen2, Wan 2.2): each builds, ComfyUI's own model detection names it, KSampler's
path (``comfy.sample.sample``) gives finite, deterministic latents that depend on every part of the
conditioning, and the edit families read their reference latents. The 2024 ComfyUI has none of these
families: every test skips there, naming the missing family."""

from __future__ import annotations

import pytest
import torch

# Each tiny family and the ``comfy.supported_models`` class that ComfyUI must detect from its weights.
EXPECTED_CLASS = {"Flux dev": "Flux", "Flux schnell": "FluxSchnell", "Flux Kontext": "Flux", "Chroma": "Chroma",
                  "SD3": "SD3", "SD3.5 Medium": "SD3", "SD3.5 Large": "SD3", "HiDream": "HiDream",
                  "Qwen-Image": "QwenImage", "Lumina 2": "Lumina2", "Omnigen2": "Omnigen2", "Wan 2.2": "WAN22_T2V"}
EDIT_FAMILIES = ["Flux Kontext", "Qwen-Image", "Omnigen2"]
# Conditioning entries each family reads besides its text tokens (a change must change the image).
EXTRA_KEYS = [("Flux dev", "pooled_output"), ("Flux dev", "guidance"), ("Flux schnell", "pooled_output"),
              ("Flux Kontext", "guidance"), ("SD3.5 Medium", "pooled_output"), ("SD3.5 Large", "pooled_output"),
              ("HiDream", "pooled_output"), ("HiDream", "conditioning_llama3")]


def _family(comfy, name):
    comfy.tiny.current_comfyui_only(EXPECTED_CLASS[name])
    return comfy.tiny.DIT_FAMILIES[name]


def _sample(family, model, positive, negative=None, steps=1, cfg=1.0, seed=3):
    """KSampler's path, on a start latent of the family's own shape (KSampler's empty-latent fix applied)."""
    import comfy.sample as sample
    latent = torch.zeros(family.latent_shape)
    noise = sample.prepare_noise(latent, seed)
    return sample.sample(model, noise, steps, cfg, "euler", "simple", positive, negative or positive, latent,
                               seed=seed, disable_pbar=True)


@pytest.fixture(scope="module")
def built(comfy):
    """Each family's model, built once per module (on first use)."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = _family(comfy, name).build(0)
        return cache[name]
    return get


@pytest.mark.parametrize("name", list(EXPECTED_CLASS))
def test_family_builds_tiny_and_comfyui_detects_it(comfy, name):
    import comfy.model_detection as detection  # (bound as `detection`: `comfy` is the harness fixture here)
    family = _family(comfy, name)
    model = family.build(0)
    weights = model.model.diffusion_model.state_dict()
    detected = detection.model_config_from_unet(weights, "")
    assert type(detected).__name__ == EXPECTED_CLASS[name], "ComfyUI names a checkpoint with these weights so"
    assert type(detection.model_config_from_unet_config(model.model.model_config.unet_config)).__name__ \
        == EXPECTED_CLASS[name]
    assert sum(p.numel() for p in weights.values()) < 2_000_000
    again, other = family.build(0).model.diffusion_model.state_dict(), family.build(1).model.diffusion_model.state_dict()
    assert all(torch.equal(weights[k], again[k]) for k in weights), "the same seed gives the same weights"
    assert any(not torch.equal(weights[k], other[k]) for k in weights)


@pytest.mark.parametrize("name", list(EXPECTED_CLASS))
def test_sampling_is_finite_shaped_deterministic_and_follows_the_prompt(comfy, built, name):
    family, model = _family(comfy, name), built(name)
    pos, neg = family.conditioning(1), family.conditioning(2)
    out = _sample(family, model, pos, neg, steps=2, cfg=2.0)
    assert out.shape == family.latent_shape and torch.isfinite(out).all()
    assert torch.equal(_sample(family, model, pos, neg, steps=2, cfg=2.0), out)
    assert not torch.allclose(_sample(family, model, family.conditioning(4), neg, steps=2, cfg=2.0), out, atol=1e-3)


@pytest.mark.parametrize("name,key", EXTRA_KEYS)
def test_the_conditioning_helpers_extra_entries_reach_the_model(comfy, built, name, key):
    family, model = _family(comfy, name), built(name)
    cond = family.conditioning(1)
    value = cond[0][1][key]
    changed = value * 0.5 + 1.0 if torch.is_tensor(value) else value + 2.0
    moved = [[cond[0][0], dict(cond[0][1], **{key: changed})]]
    assert not torch.allclose(_sample(family, model, moved), _sample(family, model, cond), atol=1e-4)


def test_lumina2_padding_masked_by_attention_mask_is_ignored_exactly(comfy, built):
    family, model = _family(comfy, "Lumina 2"), built("Lumina 2")
    padded = family.conditioning(1, tokens=20, padding=4)
    assert padded[0][0].shape[1] == 24
    assert torch.equal(_sample(family, model, padded), _sample(family, model, family.conditioning(1, tokens=20)))


def _references(comfy, family, count):
    sizes = [(8, 12), (10, 6), (8, 8)][:count]
    extra = family.reference_shape[:-2]
    return [comfy.tiny.random_latent((*extra, h, w), 5 + i) for i, (h, w) in enumerate(sizes)]


@pytest.mark.parametrize("name", EDIT_FAMILIES)
def test_reference_latents_change_the_result(comfy, built, name):
    family, model = _family(comfy, name), built(name)
    refs, cond = _references(comfy, family, 2), family.conditioning(1)
    plain = _sample(family, model, cond)
    one = _sample(family, model, comfy.tiny.with_reference_latents(cond, refs[:1]))
    two = _sample(family, model, comfy.tiny.with_reference_latents(cond, refs))
    assert one.shape == plain.shape and torch.isfinite(one).all() and torch.isfinite(two).all()
    assert not torch.allclose(one, plain, atol=1e-4) and not torch.allclose(two, one, atol=1e-4)


def test_kontext_accepts_core_reference_nodes_and_every_method(comfy, built):
    """Core ReferenceLatent (chained) and FluxKontextMultiReferenceLatentMethod: with two references of different
    sizes, offset / index / uxo place the second one differently, and offset is the default."""
    family, model = _family(comfy, "Flux Kontext"), built("Flux Kontext")
    nodes = comfy.nodes.NODE_CLASS_MAPPINGS
    cond = family.conditioning(1)
    for ref in _references(comfy, family, 2):
        cond = nodes["ReferenceLatent"].execute(cond, {"samples": ref}).result[0]
    helper = comfy.tiny.with_reference_latents(family.conditioning(1), _references(comfy, family, 2))
    assert set(cond[0][1]) == set(helper[0][1]) and len(cond[0][1]["reference_latents"]) == 2
    pairs = zip(cond[0][1]["reference_latents"], helper[0][1]["reference_latents"], strict=True)
    assert all(torch.equal(a, b) for a, b in pairs), "with_reference_latents leaves what core ReferenceLatent does"
    results = {}
    for label in ("offset", "index", "uxo/uno"):
        with_method = nodes["FluxKontextMultiReferenceLatentMethod"].execute(cond, label).result[0]
        results[label] = _sample(family, model, with_method)
        assert torch.isfinite(results[label]).all()
    values = list(results.values())
    assert all(not torch.allclose(a, b, atol=1e-4) for i, a in enumerate(values) for b in values[i + 1:])
    assert torch.equal(_sample(family, model, cond), results["offset"])


def test_qwen_image_reads_the_reference_method_index_by_default(comfy, built):
    family, model = _family(comfy, "Qwen-Image"), built("Qwen-Image")
    cond = comfy.tiny.with_reference_latents(family.conditioning(1), _references(comfy, family, 2))
    default = _sample(family, model, cond)
    by = {m: _sample(family, model, comfy.tiny.with_reference_latents(cond, [], m)) for m in ("index", "offset")}
    assert torch.equal(default, by["index"]) and not torch.allclose(by["offset"], default, atol=1e-4)


@pytest.mark.parametrize("name", ["Chroma", "Wan 2.2"])
def test_chroma_and_wan_t2v_ignore_reference_latents(comfy, built, name):
    """What the reference dial relies on to refuse them by name: their conditioning may carry references, the
    model never reads them (Chroma drops ``ref_latents``; Wan reads only the last one, and only with a
    reference convolution, which its text-to-video models lack)."""
    family, model = _family(comfy, name), built(name)
    shape = family.latent_shape[:-2] + (8, 12)
    refs = [comfy.tiny.random_latent(shape, 5), comfy.tiny.random_latent(shape, 6)]
    cond = family.conditioning(1)
    assert torch.equal(_sample(family, model, comfy.tiny.with_reference_latents(cond, refs)),
                       _sample(family, model, cond))


BUILDERS = {"tiny_flux_schnell": "FluxSchnell", "tiny_flux_kontext": "Flux", "tiny_chroma": "Chroma",
            "tiny_sd35_medium": "SD3", "tiny_sd35_large": "SD3", "tiny_hidream": "HiDream",
            "tiny_qwen_image": "QwenImage", "tiny_lumina2": "Lumina2", "tiny_omnigen2": "Omnigen2",
            "tiny_wan22": "WAN22_T2V"}


def test_builders_build_where_the_family_exists_and_skip_cleanly_where_it_does_not(comfy):
    """On the 2024 ComfyUI (no DiT family) every builder raises pytest's skip, naming the family."""
    import comfy.model_patcher as patcher
    import comfy.supported_models as supported
    for builder, family in BUILDERS.items():
        if hasattr(supported, family):
            assert isinstance(getattr(comfy.tiny, builder)(0), patcher.ModelPatcher), builder
        else:
            with pytest.raises(pytest.skip.Exception, match=f"{family} needs a current ComfyUI"):
                getattr(comfy.tiny, builder)(0)
