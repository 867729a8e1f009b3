"""Every node, called with consistent tiny inputs, then with one bad input at a time (issue #15).

A bad input must give a ``ValueError`` that names the input, before any work; a good call never changes
its inputs; finite inputs at the extremes of every float widget never give NaN or infinity.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

from blendspace.grid_search import best_index
from blendspace.validation import check_image, finite_float

FAST = "fast (decoder only)"
SKIPPED = {"BlendspaceOpenClipLoader"}  # combo inputs only (a file name), tested in test_open_clip.py


@pytest.fixture(scope="module")
def kit(comfy, tiny_models):
    """The good inputs every call starts from (built in inference mode, as the executor runs nodes)."""
    with torch.inference_mode():
        return _kit(comfy, *tiny_models)


def _kit(comfy, model, clip, vae) -> dict:
    g = torch.Generator().manual_seed(0)
    enc = comfy.tiny.encode_prompt
    kit = dict(comfy=comfy, model=model, clip=clip, vae=vae, cv=comfy.tiny.tiny_clip_vision(3),
               pos=enc(clip, "a cat"), pos_b=enc(clip, "a dog"), neg=enc(clip, ""),
               latent={"samples": torch.randn(1, 4, 8, 8, generator=g)},
               image=torch.rand(1, 64, 64, 3, generator=g), image_b=torch.rand(1, 64, 64, 3, generator=g),
               mask=torch.rand(1, 64, 64, generator=g))
    kit["coca"] = comfy.node("BlendspaceTest_TinyOpenClip").load(6, True)[0]
    kit["target"] = comfy.node("BlendspaceSlerpClipImageEmbeds").mix(0.5, clip_vision=kit["cv"],
                                                                     content_image=kit["image"],
                                                                     style_image=kit["image_b"])[0]
    kit["cycle"] = comfy.node("BlendspaceCycleDiffusionInvert").invert(model, kit["pos"], kit["latent"], 1, 3, 1,
                                                                       0.1, 1.0)[0]
    return kit


def _sampler(k, seed="seed", steps=2, **extra) -> dict:
    return {"model": k["model"], seed: 1, "steps": steps, "cfg": 5.0, "sampler_name": "euler",
            "scheduler": "normal", **extra}


def _guidance(k) -> dict:
    return dict(vae=k["vae"], clip_vision=k["cv"], target=k["target"], clip_guidance_scale=100.0, gradient=FAST,
                use_cutouts=False, num_cutouts=2, start_percent=0.0, end_percent=1.0, every_n_steps=1)


def _mask_args(sharpness=20.0) -> dict:
    return dict(direction="left-right", shape="sigmoid", center=0.5, sharpness=sharpness, transition_width=1.0)


FLEX = dict(linear_start=0.0, linear_end=0.5, clustered=0.25, threshold_mult=0.25, threshold_floor=0.75,
            max_guidance=0.35, header_max=0.0, mapping_priority="Best Fit", reuse_tokens=True,
            token_alignment="corrected", image_normalization="corrected ([0,1] pixels)", mode="tween prompt")

GOOD = {
    "SlerpLatents": lambda k: dict(latent_a=k["latent"], latent_b={"samples": k["latent"]["samples"].flip(-1)}, t=0.5,
                                   frames=1, method="slerp", scope="per sample", size_mismatch="error"),
    "SlerpConditioning": lambda k: dict(conditioning_a=k["pos"], conditioning_b=k["pos_b"], t=0.5),
    "BlendspaceCocaCaption": lambda k: dict(open_clip=k["coca"], image=k["image"], prompt="", num_beams=2,
                                            num_beam_groups=1, min_seq_len=1, seq_len=3, repetition_penalty=1.0),
    "BlendspaceSlerpClipImageEmbeds": lambda k: dict(slerp_clip_image_style_strength=0.5, clip_vision=k["cv"],
                                                     content_image=k["image"], style_image=k["image_b"]),
    "BlendspaceClipImageGuidance": lambda k: dict(model=k["model"], **_guidance(k)),
    "ClipImageGuidanceSampler": lambda k: dict(**_sampler(k), positive=k["pos"], negative=k["neg"],
                                               latent_image=k["latent"], denoise=0.6, strength_mode="diffusers (source)",
                                               **_guidance(k), latent_style=k["latent"],
                                               slerp_latent_style_strength=0.8),
    "BlendspaceMixGridSearch": lambda k: dict(**_sampler(k), content_positive=k["pos"], style_positive=k["pos_b"],
                                              negative=k["neg"], content_image=k["image"], style_image=k["image_b"],
                                              vae=k["vae"], clip_guidance_scale=100.0, gradient=FAST,
                                              noise_strength="0.5", slerp_latent_style_strength="0.5",
                                              slerp_prompt_style_strength="0.5", slerp_clip_image_style_strength="0.5",
                                              columns=1, clip_vision=k["cv"]),
    "ImageEmbedToPromptMapper": lambda k: dict(conditioning=k["pos"], **FLEX, clip_vision=k["cv"], image=k["image"]),
    "BlendspaceDualStyleMask": lambda k: dict(width=32, height=16, **_mask_args(), image=k["image"]),
    "DualStyleEpsilonMix": lambda k: dict(positive_a=k["pos"], positive_b=k["pos_b"], width=64, height=64,
                                          **_mask_args(), latent=k["latent"], mask=k["mask"]),
    "CrossAttnInterpolate": lambda k: dict(model=k["model"], conditioning_b=k["pos_b"], **_mask_args(30.0), strength=1.0,
                                           start_percent=0.0, end_percent=1.0, blocks="all", mask=k["mask"]),
    "BlendspaceCycleDiffusionInvert": lambda k: dict(model=k["model"], positive=k["pos"], latent=k["latent"], seed=1,
                                                     steps=3, skip_steps=1, eta=0.1, cfg=1.0, negative=k["neg"]),
    "BlendspaceCycleDiffusionSampler": lambda k: dict(model=k["model"], positive=k["pos_b"], negative=k["neg"],
                                                      cycle=k["cycle"], cfg=5.0),
    "BlendspaceStrengthSweep": lambda k: dict(**_sampler(k), positive=k["pos"], negative=k["neg"], latent=k["latent"],
                                              strength_mode="comfyui denoise", start=0.5, stop=0.9, step=0.5,
                                              strength_list=""),
    "BlendspaceSaveAnimatedGIF": lambda k: dict(images=torch.cat([k["image"], k["image_b"]]),
                                                filename_prefix="bstest/bad_inputs", frame_duration_ms=100, loop=0,
                                                ping_pong=False),
    "BlendspaceLatentWalk": lambda k: dict(**_sampler(k, seed="seed_a", steps=1), positive_a=k["pos"],
                                           positive_b=k["pos_b"], negative=k["neg"],
                                           latent={"samples": torch.zeros(1, 4, 8, 8)}, seed_b=2, frames=2,
                                           noise_interpolation="slerp", prompt_interpolation="lerp", max_batch=2),
    "BlendspaceDenoisingReplay": lambda k: dict(**_sampler(k), positive=k["pos"], negative=k["neg"],
                                                latent_image=k["latent"], denoise=1.0),
    "BlendspaceGuidanceScale": lambda k: dict(model=k["model"], guidance_scale=7.5, guidance_rescale=0.0),
    "BlendspaceClipScore": lambda k: dict(image=k["image"], split="left/right", clip_vision=k["cv"],
                                          reference_a=k["image"], reference_b=k["image_b"]),
}


def _classes(comfy) -> dict:
    pack = comfy.pack.nodes
    return {cls.NODE_ID: cls for module in pack.NODE_MODULES for cls in module.NODES if cls.NODE_ID not in SKIPPED}


def _types(cls) -> dict[str, tuple[str, dict]]:
    spec = cls.INPUT_TYPES()
    return {name: (decl[0], decl[1] if len(decl) > 1 else {}) for part in ("required", "optional")
            for name, decl in spec.get(part, {}).items() if isinstance(decl[0], str)}


def _call(k, node_id: str, args: dict):
    node = k["comfy"].node(node_id)
    return getattr(node, type(node).FUNCTION)(**args)


def _nan_like(x: torch.Tensor) -> torch.Tensor:
    y = x.clone()
    y.view(-1)[0] = float("nan")
    return y


def _bad_values(k, kind: str, value, has_model: bool, conds: int) -> list[tuple[str, object]]:
    """(what, bad value) to put in place of a good ``value`` of socket type ``kind``."""
    if kind == "FLOAT":
        return [("NaN", float("nan")), ("inf", float("inf")), ("-inf", float("-inf"))]
    if kind == "INT":
        return [("NaN", float("nan"))]
    if kind == "LATENT":
        s = value["samples"]
        bad = [("NaN", {**value, "samples": _nan_like(s)}), ("5-D", {"samples": s.unsqueeze(2)}),
               ("empty batch", {"samples": s[:0]}), ("3-D", {"samples": s[0]})]
        if has_model:
            bad.append(("16 channels", {"samples": torch.randn(1, 16, 8, 8)}))
        return bad
    if kind == "CONDITIONING":
        tokens, extra = value[0]
        bad = [("NaN", [[_nan_like(tokens), extra]]), ("empty", []), ("2-D", [[tokens[0], extra]]),
               ("empty batch", [[tokens[:0], extra]])]
        if isinstance(extra.get("pooled_output"), torch.Tensor):
            bad.append(("NaN pooled", [[tokens, {**extra, "pooled_output": _nan_like(extra["pooled_output"])}]]))
        if has_model or conds > 1:
            bad.append(("width 48", [[torch.randn(1, 77, 48), dict(extra)]]))
        return bad
    if kind == "IMAGE":
        return [("NaN", _nan_like(value)), ("inf", value * float("inf")), ("empty batch", value[:0]),
                ("2 channels", value[..., :2]), ("3-D", value[0])]
    if kind == "MASK":
        return [("NaN", _nan_like(value)), ("empty", value[:0]), ("4-D", value[None])]
    return []


def _cases():
    return sorted(GOOD)


@pytest.mark.parametrize("node_id", _cases())
def test_every_bad_input_is_a_clear_error(kit, node_id):
    cls = _classes(kit["comfy"])[node_id]
    good = GOOD[node_id](kit)
    types = _types(cls)
    has_model = any(types[n][0] == "MODEL" for n in good if n in types)
    conds = sum(types[n][0] == "CONDITIONING" for n in good if n in types)
    checked = 0
    for name, value in good.items():
        if name not in types:
            continue
        for what, bad in _bad_values(kit, types[name][0], value, has_model, conds):
            with pytest.raises(ValueError) as err:
                _call(kit, node_id, {**good, name: bad})
            assert name in str(err.value), f"{node_id}: {name} = {what}: the message does not name it: {err.value}"
            checked += 1
    assert checked > 0


def _finite(out, where: str) -> None:
    if isinstance(out, torch.Tensor):
        if out.is_floating_point():
            assert bool(torch.isfinite(out).all()), f"{where}: NaN or inf in the output"
    elif isinstance(out, dict):
        for key, v in out.items():
            _finite(v, f"{where}[{key!r}]")
    elif isinstance(out, (list, tuple)):
        for i, v in enumerate(out):
            _finite(v, f"{where}[{i}]")
    elif isinstance(out, float):
        assert math.isfinite(out), f"{where}: {out}"


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b) if not a.isnan().any() \
            else torch.equal(a.isnan(), b.isnan())
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[x], b[x]) for x in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return True


def _sampled(k, out) -> list:
    """Model outputs are sampled for one step with core KSampler, so their patches run."""
    results = []
    for item in out if isinstance(out, (tuple, list)) else []:
        if hasattr(item, "model_options"):
            results.append(k["comfy"].node("KSampler").sample(item, 1, 1, 5.0, "euler", "normal", k["pos"], k["neg"],
                                                              k["latent"], 1.0))
    return results


@pytest.mark.parametrize("node_id", _cases())
def test_good_call_never_changes_its_inputs_and_is_finite(kit, node_id):
    good = GOOD[node_id](kit)
    tensors = {n: v for n, v in good.items() if isinstance(v, (torch.Tensor, dict, list))}
    before = copy.deepcopy(tensors)
    out = _call(kit, node_id, good)
    for name, value in tensors.items():
        assert _same(before[name], value), f"{node_id} changed its input {name}"
    _finite(out if not isinstance(out, dict) else out.get("result", ()), node_id)
    _finite(_sampled(kit, out), f"{node_id} sampled")


EXTRA_LIMITS = {"SlerpLatents": [{"frames": 4096}], "BlendspaceGuidanceScale": [{"guidance_scale": 0.0}]}
"""Limits tried besides 'every float widget at its min' and 'every float widget at its max'."""


def _limits(cls, good: dict, node_id: str) -> list[dict]:
    """Every float widget at its min in one call, at its max in another, then the extra limits of the node."""
    types = _types(cls)
    floats = {n: o for n, (kind, o) in types.items() if kind == "FLOAT" and n in good}
    trials = [{n: o[end] for n, o in floats.items() if end in o} for end in ("min", "max")]
    return [t for t in trials if t] + EXTRA_LIMITS.get(node_id, [])


@pytest.mark.parametrize("node_id", _cases())
def test_widgets_at_their_limits_give_finite_outputs(kit, node_id):
    cls = _classes(kit["comfy"])[node_id]
    good = GOOD[node_id](kit)
    for limits in _limits(cls, good, node_id):
        try:
            out = _call(kit, node_id, {**good, **limits})
        except ValueError as err:  # a refused combination is fine; it must not crash or give NaN
            assert type(err).__name__ == "BlendspaceInputError", f"{node_id} {limits}: {err!r}"
            continue
        _finite(out if not isinstance(out, dict) else out.get("result", ()), f"{node_id} {limits}")
        _finite(_sampled(kit, out), f"{node_id} {limits} sampled")


def test_rgba_and_gray_images_are_taken_as_rgb(kit):
    node = kit["comfy"].node("BlendspaceSlerpClipImageEmbeds")
    rgb, gray = kit["image"], kit["image"][..., :1]
    rgba = torch.cat([rgb, torch.rand_like(gray)], dim=-1)
    kept = rgba.clone()

    def target(content):
        return node.mix(0.5, clip_vision=kit["cv"], content_image=content, style_image=kit["image_b"])[0]["embeds"]
    assert torch.equal(target(rgba), target(rgb)), "RGBA: the alpha channel is dropped"
    assert torch.equal(target(gray), target(gray.repeat(1, 1, 1, 3))), "gray: repeated to RGB"
    assert torch.equal(rgba, kept)


# ------------------------------------------------------------------------------------------ pure checks

def test_pure_checks_name_the_input_and_convert_images():
    with pytest.raises(ValueError, match="cfg is nan"):
        finite_float(float("nan"), "cfg")
    rgba = torch.rand(1, 4, 4, 4)
    rgb = check_image(rgba, "image")
    assert rgb.shape == (1, 4, 4, 3) and torch.equal(rgb, rgba[..., :3]) and rgb.data_ptr() != rgba.data_ptr()
    gray = torch.rand(1, 4, 4, 1)
    assert torch.equal(check_image(gray, "image"), gray.expand(1, 4, 4, 3))
    with pytest.raises(ValueError, match="image has 2 channels"):
        check_image(torch.rand(1, 4, 4, 2), "image")


def test_grid_best_of_nan_scores_is_defined():
    assert best_index(torch.tensor([float("nan"), 0.2, 0.5])) == 2
    assert best_index(torch.tensor([float("nan"), float("nan")])) == 0, "all NaN: the first cell, not an IndexError"


def test_model_facts_on_this_comfyui(comfy, tiny_models):
    compat = comfy.pack.nodes.runtime.model_facts
    sdxl = comfy.tiny.tiny_sdxl_unet(0)
    assert compat.latent_channels(tiny_models[0]) == 4 and compat.latent_channels(sdxl) == 4
    assert compat.context_width(tiny_models[0]) == comfy.tiny.CONTEXT_DIM == compat.context_width(sdxl)
    assert "SD1.x" in compat.model_family(tiny_models[0]) and "SDXL" in compat.model_family(sdxl)
