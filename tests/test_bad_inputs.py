"""Every node, called with consistent tiny inputs, then with one bad input at a time (issue #15).

A bad input must give a ``ValueError`` that names the input, before any work; a good call never changes
its inputs; finite inputs at the extremes of every float widget never give NaN or infinity.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import random
import signal

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from blendspace.grid_search import PARAMETERS, best_index, grid_cells, parse_values
from blendspace.open_clip_models import AUTO as OPEN_CLIP_AUTO
from blendspace.strength_sweep import parse_strengths
from blendspace.validation import boolean, check_image, check_latent, check_mask, choice, finite_float, number, text

FAST = "fast (decoder only)"
SKIPPED = {"BlendspaceOpenClipLoader"}
"""Left out of the socket-type tests (its inputs are combos only: a file name and two choices); fuzzed below."""


@pytest.fixture(scope="module")
def kit(comfy, tiny_models, tmp_path_factory):
    """The good inputs every call starts from (built in inference mode, as the executor runs nodes), with a tiny
    open_clip model in a registered models/open_clip folder for the loader."""
    import folder_paths
    comfy.pack.nodes.runtime.files.register_open_clip_folder()
    root = str(tmp_path_factory.mktemp("open_clip"))
    comfy.tiny.write_tiny_open_clip(root, 5)
    folder_paths.add_model_folder_path("open_clip", root)
    with torch.inference_mode():
        yield _kit(comfy, *tiny_models)
    folder_paths.folder_names_and_paths["open_clip"][0].remove(root)


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
    kit["vae16"] = comfy.tiny.tiny_vae16(2)
    kit["cv_out"], kit["cv_out_b"] = (kit["cv"].encode_image(img) for img in (kit["image"], kit["image_b"]))
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
    "BlendspaceSlerpClipVisionOutput": lambda k: dict(clip_vision_output_a=k["cv_out"], clip_vision_output_b=k["cv_out_b"],
                                                      weight=0.5, mode="whole tensor (source)", method="slerp"),
    "BlendspaceLatentVariations": lambda k: dict(**_sampler(k, steps=1), positive=k["pos"], negative=k["neg"],
                                                 latent={"samples": torch.zeros(1, 4, 8, 8)}, strength=0.25, count=2,
                                                 variation_seed=1),
    "BlendspaceOpenClipLoader": lambda k: dict(clip_name="tiny_clip_5.safetensors", architecture=OPEN_CLIP_AUTO,
                                               precision="fp32"),
    "BlendspaceGuidanceGrid": lambda k: {**{n: v for n, v in _sampler(k).items() if n not in ("steps", "cfg")},
                                         "positive": k["pos"], "negative": k["neg"],
                                         "latent": {"samples": torch.zeros(1, 4, 8, 8)}, "vae": k["vae"],
                                         "steps_list": "1", "guidance_scales": "0, 5", "guidance_rescale": 0.7},
    "BlendspacePromptMixAttentionPatch": lambda k: dict(model=k["model"]),
    "BlendspaceReferenceMix": lambda k: dict(model=k["model"], conditioning=k["pos"], negative=k["neg"], weight=0.3,
                                             **_dial()),
    "BlendspaceReferenceSweep": lambda k: dict(**_sampler(k, steps=1), conditioning=k["pos"], negative=k["neg"],
                                               latent=k["latent"], frames=2, **_dial()),
}
DIT_NODES = {"BlendspacePromptMixAttentionPatch", "BlendspaceReferenceMix", "BlendspaceReferenceSweep"}
"""Nodes for joint-attention and edit models: called on a tiny Flux Kontext whose prompt carries two reference
latents (:func:`_kit_for`), on the current ComfyUI only."""


def _dial(strength_b: float = 0.8) -> dict:
    return dict(strength_a=1.0, strength_b=strength_b, mode="attention dial", start_percent=0.0, end_percent=1.0)


def _kit_for(k: dict, node_id: str) -> dict:
    """The kit a node is called with: the SD1.x one, or for :data:`DIT_NODES` the same with a tiny Flux Kontext,
    a prompt with two references, a Flux negative and a 16-channel latent in place of the U-Net's (built once)."""
    if node_id not in DIT_NODES:
        return k
    tiny = k["comfy"].tiny
    tiny.current_comfyui_only("Flux")
    if "kontext" not in k:
        with torch.inference_mode():
            refs = [tiny.random_latent((1, 16, h, w), 5 + i) for i, (h, w) in enumerate(((8, 12), (10, 6)))]
            k["kontext"] = dict(model=tiny.tiny_flux_kontext(0), pos=tiny.with_reference_latents(
                tiny.kontext_conditioning(1, tokens=16), refs), neg=tiny.kontext_conditioning(2, tokens=16),
                latent={"samples": torch.zeros(1, 16, 8, 8)})
    return {**k, **k["kontext"]}


def _classes(comfy) -> dict:
    pack = comfy.pack.nodes
    return {cls.NODE_ID: cls for module in pack.NODE_MODULES for cls in module.NODES}


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


def _other_channels(samples: torch.Tensor) -> int:
    """A channel count that is not the good latent's (the U-Net's 4, or Flux's 16)."""
    return 4 if samples.shape[1] == 16 else 16


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
            other = _other_channels(s)
            bad.append((f"{other} channels", {"samples": torch.randn(1, other, 8, 8)}))
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
    if kind == "MODEL":
        return [("a VAE", k["vae"]), ("a file name", "model.safetensors")]
    return []


def _cases():
    return sorted(n for n in GOOD if n not in SKIPPED)


@pytest.mark.parametrize("node_id", _cases())
def test_every_bad_input_is_a_clear_error(kit, node_id):
    kit = _kit_for(kit, node_id)
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
    kit = _kit_for(kit, node_id)
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
    kit = _kit_for(kit, node_id)
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


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(finite, finite, st.floats(min_value=1e-3, max_value=1e6), st.sampled_from(["below", "above", "inside"]))
def test_numbers_outside_their_declared_range_are_refused_with_the_range(a, b, gap, where):
    lo, hi = min(a, b), max(a, b)
    value = {"below": lo - gap, "above": hi + gap, "inside": (lo + hi) / 2}[where]
    if where == "inside":
        assert number(value, "cfg", "FLOAT", lo, hi) == value
        return
    with pytest.raises(ValueError, match=r"^cfg is .* outside its range: enter a number from .* to ") as err:
        number(value, "cfg", "FLOAT", lo, hi)
    assert type(err.value).__name__ == "BlendspaceInputError"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 2.5, True, "3", None, [1]])
def test_an_int_input_takes_whole_numbers_only(value):
    with pytest.raises(ValueError, match="seed"):
        number(value, "seed", "INT", 0, 2 ** 64 - 1)
    assert number(2.0, "seed", "INT", 0, 10) == 2 and isinstance(number(2.0, "seed", "INT", 0, 10), int)
    with pytest.raises(ValueError, match="seed is 18446744073709551616, outside its range: enter a number from 0 to "
                                         "18446744073709551615"):
        number(2 ** 64, "seed", "INT", 0, 2 ** 64 - 1)


def test_choices_texts_and_booleans():
    assert choice("lerp", "method", ("slerp", "lerp")) == "lerp"
    with pytest.raises(ValueError, match=r"method is 'nearest', not one of its choices: choose one of 'slerp', 'lerp'"):
        choice("nearest", "method", ("slerp", "lerp"))
    with pytest.raises(ValueError, match=r"and 88 more"):
        choice("x", "sampler_name", tuple(f"s{i}" for i in range(100)))
    with pytest.raises(ValueError, match="method is 0"):
        choice(0, "method", ("slerp", "lerp"))
    assert boolean(1, "ping_pong") is True and boolean(False, "ping_pong") is False
    for bad in ("yes", 2, None):
        with pytest.raises(ValueError, match="ping_pong: expected true or false"):
            boolean(bad, "ping_pong")
    with pytest.raises(ValueError, match="prompt: expected text, got int"):
        text(5, "prompt")


def test_images_are_converted_or_refused_by_their_dtype_and_range():
    pixels = torch.tensor([[[[0, 128, 255]]]], dtype=torch.uint8)
    assert torch.equal(check_image(pixels, "image"), pixels.float() / 255.0)
    half = torch.rand(1, 4, 4, 3).half()
    out = check_image(half, "image")
    assert out.dtype == torch.float32 and torch.equal(out, half.float()) and half.dtype == torch.float16
    assert torch.equal(check_image(torch.ones(1, 2, 2, 3, dtype=torch.bool), "image"), torch.ones(1, 2, 2, 3))
    with pytest.raises(ValueError, match="image has pixel values from 0 to 255, but an IMAGE holds 0 to 1: divide"):
        check_image(torch.linspace(0, 255, 12).view(1, 2, 2, 3), "image")
    with pytest.raises(ValueError, match=r"image has pixel values from -1 to 1.*\(x \+ 1\) / 2"):
        check_image(torch.linspace(-1, 1, 12).view(1, 2, 2, 3), "image")
    with pytest.raises(ValueError, match="image is a int32 tensor with values from 0 to 65535"):
        check_image(torch.tensor([0, 65535, 7], dtype=torch.int32).view(1, 1, 1, 3), "image")
    assert check_image(torch.full((1, 2, 2, 3), 1.2), "image").max() == pytest.approx(1.2), "overshoot is kept"
    mask = check_mask(torch.tensor([[0, 255]], dtype=torch.uint8), "mask")
    assert mask.dtype == torch.float32 and torch.equal(mask, torch.tensor([[0.0, 1.0]]))


def test_latent_batch_index_noise_mask_and_size():
    s = torch.randn(2, 4, 8, 8)
    assert check_latent({"samples": s, "batch_index": [3, 4]}, "latent")["batch_index"] == [3, 4]
    for index, msg in (([0], "batch_index has 1 entries but its batch has 2 samples"),
                       ([0, 10 ** 9], "batch_index runs from 0 to 1000000000"), ([-1, 0], "batch_index runs from -1"),
                       ("01", "batch_index is '01': expected a list of whole numbers")):
        with pytest.raises(ValueError, match=f"latent's {msg}"):
            check_latent({"samples": s, "batch_index": index}, "latent")
    with pytest.raises(ValueError, match="latent's noise_mask has 1 dimensions"):
        check_latent({"samples": s, "noise_mask": torch.ones(8)}, "latent")
    given = {"samples": s, "noise_mask": torch.ones(1, 8, 8, dtype=torch.bool)}
    out = check_latent(given, "latent")
    assert out["noise_mask"].dtype == torch.float32 and given["noise_mask"].dtype == torch.bool
    with pytest.raises(ValueError, match="latent is 1x1 .*at least 2x2"):
        check_latent({"samples": s[..., :1, :1]}, "latent")
    with pytest.raises(ValueError, match="latent's samples are torch.int64"):
        check_latent({"samples": s.long()}, "latent")


def test_value_lists_are_bounded_before_they_are_expanded():
    import time
    started = time.monotonic()
    with pytest.raises(ValueError, match=r"steps_list: the range '0:1:1e-09' gives 10{8}\d values; give at most 64"):
        parse_values("0:1:1e-09", "steps_list", 0, 1, 64)
    with pytest.raises(ValueError, match="noise_strength: 1000000 values; give at most 256"):
        parse_values(", ".join(["0.5"] * 1_000_000), "noise_strength")
    with pytest.raises(ValueError, match="strength_list has 2000 values: give at most 1000"):
        parse_strengths(" ".join(["0.5"] * 2000))
    with pytest.raises(ValueError, match=r"noise_strength: \[nan\] outside"):
        parse_values("nan", "noise_strength")
    with pytest.raises(ValueError, match=r"the grid has 65536 cells \(16 \(noise_strength\) × 16"):
        grid_cells({p: [0.5] * 16 for p in PARAMETERS})
    assert time.monotonic() - started < 5.0


def test_grid_best_of_nan_scores_is_defined():
    assert best_index(torch.tensor([float("nan"), 0.2, 0.5])) == 2
    assert best_index(torch.tensor([float("nan"), float("nan")])) == 0, "all NaN: the first cell, not an IndexError"


def test_model_facts_on_this_comfyui(comfy, tiny_models):
    compat = comfy.pack.nodes.runtime.model_facts
    sdxl = comfy.tiny.tiny_sdxl_unet(0)
    assert compat.latent_channels(tiny_models[0]) == 4 and compat.latent_channels(sdxl) == 4
    assert compat.context_width(tiny_models[0]) == comfy.tiny.CONTEXT_DIM == compat.context_width(sdxl)
    assert "SD1.x" in compat.model_family(tiny_models[0]) and "SDXL" in compat.model_family(sdxl)


# ------------------------------------------------------------------------------------------ fuzz by declarations
# Every node is fed bad values one input at a time, derived from its own INPUT_TYPES: numbers outside the declared
# min/max (NaN and infinity included), choices not in the list, objects of the wrong kind, tensors of the wrong
# dtype, range, size, channel count or batch, malformed LATENT and CONDITIONING values and huge lists. Each call
# must either run (finite outputs) or raise the pack's BlendspaceInputError naming the input; never another
# exception from inside torch, PIL or ComfyUI, never NaN, never a hang (each call is bounded by a timer).

REFUSED, RUNS, EITHER = "refused", "runs", "runs or refused"
CALL_SECONDS = 60.0
FUZZ_SEED = 8
FUZZ_PER_NODE = 6
"""Cases tried per node in a normal run (a fixed, seeded sample, plus every case the issue named);
``BLENDSPACE_FUZZ=all`` runs every case."""


class Hang(BaseException):
    """A call ran past its time limit (a BaseException, so no ``except Exception`` in a node swallows it)."""


@contextlib.contextmanager
def _time_limit(seconds: float):
    def alarm(signum, frame):
        raise Hang(f"no answer after {seconds:g} s")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _number_cases(kind: str, opts: dict) -> list[tuple]:
    lo, hi = opts.get("min"), opts.get("max")
    span = (hi - lo) if lo is not None and hi is not None else 1
    delta = 1 if kind == "INT" else max(abs(span) * 0.01, 1e-3)
    cases = [("NaN", math.nan, REFUSED), ("inf", math.inf, REFUSED), ("text", "1", REFUSED),
             ("a list", [1], REFUSED)]
    if lo is not None:
        cases.append(("below its min", lo - delta, REFUSED))
    if hi is not None:
        cases.append(("above its max", hi + delta, REFUSED))
    if kind == "INT":
        cases += [("a fraction", (lo or 0) + 1.5, REFUSED), ("True", True, REFUSED)]
    else:
        cases.append(("-inf", -math.inf, REFUSED))
    return cases


LIST_TEXTS = [("a million values", ", ".join(["0.5"] * 1_000_000), EITHER),
              ("a billion-value range", "0:1:0.000000001", EITHER), ("huge numbers", "1e308, -1e308", EITHER),
              ("nan and inf", "nan, inf", EITHER), ("a megabyte of text", "a cat, " * 150_000, EITHER),
              ("a range with step 0", "0:1:0", EITHER), ("a reversed range", "1:0:0.1", EITHER)]


def _image_cases(v: torch.Tensor) -> list[tuple]:
    g = torch.Generator().manual_seed(1)
    return [("uint8 0-255", (v * 255).round().to(torch.uint8), RUNS), ("int32 0-255", (v * 255).round().int(), RUNS),
            ("float16", v.half(), RUNS), ("bfloat16", v.bfloat16(), RUNS), ("float64", v.double(), RUNS),
            ("bool", v > 0.5, RUNS), ("float 0-255", v * 255, REFUSED), ("float -1..1", v * 2 - 1, REFUSED),
            ("NaN", _nan_like(v), REFUSED), ("inf", v * math.inf, REFUSED), ("1x1", v[:, :1, :1], EITHER),
            ("one pixel wide", v[:, :, :1], EITHER), ("2 channels", v[..., :2], REFUSED),
            ("5 channels", torch.cat([v, v[..., :2]], -1), REFUSED), ("channels first", v.movedim(-1, 1), REFUSED),
            ("3-D", v[0], REFUSED), ("5-D", v[None], REFUSED), ("empty batch", v[:0], REFUSED),
            ("batch of 3", torch.rand(3, *v.shape[1:], generator=g), EITHER), ("63x65", torch.rand(1, 63, 65, 3), EITHER),
            ("a numpy array", v.numpy(), REFUSED), ("a file name", "image.png", REFUSED)]


def _latent_cases(value: dict, has_model: bool) -> list[tuple]:
    s = value["samples"]
    two = torch.cat([s, s.flip(-1)])
    return [("the bare tensor", s, REFUSED), ("no samples", {"noise_mask": torch.ones(1, 8, 8)}, REFUSED),
            ("samples a string", {"samples": "latent"}, REFUSED), ("NaN", {**value, "samples": _nan_like(s)}, REFUSED),
            ("5-D", {"samples": s.unsqueeze(2)}, REFUSED), ("3-D", {"samples": s[0]}, REFUSED),
            ("empty batch", {"samples": s[:0]}, REFUSED),
            (f"{_other_channels(s)} channels", {"samples": torch.randn(1, _other_channels(s), *s.shape[2:])},
             REFUSED if has_model else EITHER),
            ("float16", {"samples": s.half()}, EITHER), ("int64", {"samples": s.long()}, EITHER),
            ("batch_index shorter than the batch", {"samples": two, "batch_index": [0]}, REFUSED),
            ("batch_index of a billion", {"samples": s, "batch_index": [10 ** 9]}, REFUSED),
            ("batch_index negative", {"samples": s, "batch_index": [-1]}, REFUSED),
            ("batch_index text", {"samples": s, "batch_index": "0"}, REFUSED),
            ("noise_mask 1-D", {"samples": s, "noise_mask": torch.ones(8)}, REFUSED),
            ("noise_mask NaN", {"samples": s, "noise_mask": _nan_like(torch.ones(1, 8, 8))}, REFUSED),
            ("noise_mask text", {"samples": s, "noise_mask": "mask"}, REFUSED),
            ("1x1", {"samples": s[..., :1, :1]}, EITHER), ("batch of 3", {"samples": torch.cat([s, s, s])}, EITHER)]


def _mask_cases(v: torch.Tensor) -> list[tuple]:
    return [("uint8 0-255", (v * 255).round().to(torch.uint8), RUNS), ("bool", v > 0.5, RUNS),
            ("float16", v.half(), RUNS), ("NaN", _nan_like(v), REFUSED), ("4-D", v[None], REFUSED),
            ("1-D", v[0, 0], REFUSED), ("empty", v[:0], REFUSED), ("1x1", v[:, :1, :1], EITHER),
            ("batch of 3", v.repeat(3, 1, 1), EITHER), ("a list", v.tolist(), REFUSED)]


def _conditioning_cases(value: list, width_matters: bool) -> list[tuple]:
    tokens, extra = value[0]
    pooled = extra.get("pooled_output")
    cases = [("text", "a cat", REFUSED), ("empty", [], REFUSED), ("an entry without its dict", [tokens], REFUSED),
             ("a dict that is text", [[tokens, "x"]], REFUSED), ("tokens text", [["a cat", dict(extra)]], REFUSED),
             ("NaN", [[_nan_like(tokens), extra]], REFUSED), ("2-D", [[tokens[0], extra]], REFUSED),
             ("no tokens", [[tokens[:, :0], extra]], REFUSED), ("empty batch", [[tokens[:0], extra]], REFUSED),
             ("width 48", [[torch.randn(1, tokens.shape[1], 48), dict(extra)]], REFUSED if width_matters else EITHER),
             ("float16", [[tokens.half(), dict(extra)]], EITHER), ("5 tokens", [[tokens[:, :5], extra]], EITHER),
             ("batch of 2", [[tokens.repeat(2, 1, 1), extra]], EITHER)]
    if isinstance(pooled, torch.Tensor):
        cases += [("NaN pooled", [[tokens, {**extra, "pooled_output": _nan_like(pooled)}]], REFUSED),
                  ("pooled text", [[tokens, {**extra, "pooled_output": "x"}]], EITHER),
                  ("pooled 7 wide", [[tokens, {**extra, "pooled_output": torch.randn(1, 7)}]], EITHER)]
    return cases


OBJECT_KINDS = {"MODEL": "model", "VAE": "vae", "CLIP_VISION": "cv", "BLENDSPACE_OPEN_CLIP": "coca",
                "BLENDSPACE_CLIP_TARGET": "target", "BLENDSPACE_CYCLE": "cycle", "CLIP_VISION_OUTPUT": "cv_out",
                "CLIP": "clip"}


def _object_cases(k, kind: str, has_model: bool) -> list[tuple]:
    cases = [("text", "model.safetensors", REFUSED), ("a number", 3, REFUSED), ("an empty dict", {}, REFUSED)]
    cases += [(f"a {other}", k[key], REFUSED) for other, key in OBJECT_KINDS.items() if other != kind]
    if kind == "VAE":
        cases.append(("a 16-channel VAE", k["vae16"], REFUSED if has_model else EITHER))
    if kind == "CLIP_VISION_OUTPUT":
        wide = {"image_embeds": torch.randn(1, 48), "last_hidden_state": torch.randn(1, 50, 48)}
        cases += [("no last_hidden_state", {"image_embeds": k["cv_out"]["image_embeds"]}, EITHER),
                  ("another model's width", wide, EITHER),
                  ("NaN", {"image_embeds": _nan_like(k["cv_out"]["image_embeds"])}, REFUSED)]
    if kind == "BLENDSPACE_CLIP_TARGET":
        cases += [("another width", {"embeds": torch.randn(1, 48), "dim": 48}, EITHER),
                  ("NaN", {"embeds": _nan_like(k["target"]["embeds"]), "dim": k["target"]["dim"]}, REFUSED)]
    return cases


def _fuzz_cases(k, kind: str, opts: dict, value, context: dict) -> list[tuple]:
    """(what, bad value, expected outcome) for one input of socket type ``kind`` (a list or tuple for a combo)."""
    if isinstance(kind, (list, tuple)):
        return [("not a choice", "no such choice", REFUSED), ("a number", 0, REFUSED)]
    if kind in ("INT", "FLOAT"):
        return _number_cases(kind, opts)
    if kind == "BOOLEAN":
        return [("text", "yes", REFUSED), ("the number 2", 2, REFUSED)]
    if kind == "STRING":
        return [("a number", 5, REFUSED)] + LIST_TEXTS
    if kind == "IMAGE":
        return _image_cases(value if isinstance(value, torch.Tensor) else k["image"])
    if kind == "LATENT":
        return _latent_cases(value if isinstance(value, dict) else k["latent"], context["has_model"])
    if kind == "MASK":
        return _mask_cases(value if isinstance(value, torch.Tensor) else k["mask"])
    if kind == "CONDITIONING":
        return _conditioning_cases(value if isinstance(value, list) else k["pos"], context["width_matters"])
    return _object_cases(k, kind, context["has_model"])


def _declared(cls) -> dict[str, tuple]:
    spec = cls.INPUT_TYPES()
    return {name: (decl[0], decl[1] if len(decl) > 1 else {}, part == "required")
            for part in ("required", "optional") for name, decl in spec.get(part, {}).items()}


def _node_cases(k, node_id: str) -> list[tuple]:
    """Every (input, what, bad value, expected) case of a node, from its declarations and its good call."""
    cls = _classes(k["comfy"])[node_id]
    good = GOOD[node_id](k)
    declared = _declared(cls)
    kinds = [declared[n][0] for n in good if n in declared]
    context = {"has_model": "MODEL" in kinds, "width_matters": "MODEL" in kinds or kinds.count("CONDITIONING") > 1}
    cases = []
    for name, (kind, opts, required) in declared.items():
        for what, bad, expected in _fuzz_cases(k, kind, opts, good.get(name), context):
            cases.append((name, what, bad, expected))
        if required:
            cases.append((name, "None", None, REFUSED))
    return cases


NAMED_IN_ISSUE = {("BlendspaceClipScore", "image", "uint8 0-255"),
                  ("BlendspaceSlerpClipImageEmbeds", "content_image", "uint8 0-255"),
                  ("BlendspaceMixGridSearch", "content_image", "uint8 0-255"),
                  ("BlendspaceSlerpClipImageEmbeds", "style_image", "float16"),
                  ("BlendspaceClipScore", "image", "1x1"),
                  ("BlendspaceMixGridSearch", "vae", "a 16-channel VAE"),
                  ("BlendspaceDenoisingReplay", "seed", "above its max"),
                  ("BlendspaceCocaCaption", "num_beam_groups", "below its min"),
                  ("BlendspaceGuidanceGrid", "steps_list", "a million values"),
                  ("BlendspaceSaveAnimatedGIF", "loop", "above its max"),
                  ("ImageEmbedToPromptMapper", "clip_vision_output", "no last_hidden_state"),
                  ("ImageEmbedToPromptMapper", "clip_vision_output", "another model's width"),
                  ("BlendspaceDenoisingReplay", "latent_image", "batch_index shorter than the batch"),
                  ("BlendspaceStrengthSweep", "latent", "batch_index shorter than the batch"),
                  ("BlendspaceGuidanceGrid", "vae", "a CLIP_VISION")}
"""The examples issue 25 lists: always tried."""


def _chosen(node_id: str, cases: list[tuple]) -> list[tuple]:
    if os.environ.get("BLENDSPACE_FUZZ") == "all":
        return cases
    named = [c for c in cases if (node_id, c[0], c[1]) in NAMED_IN_ISSUE]
    rest = [c for c in cases if (node_id, c[0], c[1]) not in NAMED_IN_ISSUE]
    rng = random.Random(f"{FUZZ_SEED}:{node_id}")
    return named + rng.sample(rest, min(FUZZ_PER_NODE, len(rest)))


def _outcome(k, node_id: str, args: dict, name: str, expected: str) -> str | None:
    """None when the call behaved, else what went wrong."""
    try:
        with _time_limit(CALL_SECONDS):
            out = _call(k, node_id, args)
            result = out if not isinstance(out, dict) else out.get("result", ())
            _finite(result, node_id)
            _finite(_sampled(k, result), f"{node_id} sampled")
    except Hang as err:
        return f"hangs ({err})"
    except AssertionError as err:
        return f"gives non-finite output: {err}"
    except Exception as err:  # noqa: BLE001 (the point: which exceptions escape)
        if type(err).__name__ != "BlendspaceInputError":
            return f"raises {type(err).__name__}: {str(err)[:300]}"
        if name not in str(err):
            return f"refuses it without naming {name}: {str(err)[:300]}"
        return f"is refused, but should run: {str(err)[:300]}" if expected == RUNS else None
    return "is accepted silently" if expected == REFUSED else None


def test_every_registered_node_is_fuzzed(comfy):
    registered = {cls.NODE_ID for module in comfy.pack.nodes.NODE_MODULES for cls in module.NODES}
    assert registered == set(GOOD), f"give each new node a good call in GOOD: {sorted(registered ^ set(GOOD))}"


@pytest.mark.parametrize("node_id", sorted(GOOD))
def test_fuzzed_bad_inputs_run_or_are_refused_by_name(kit, node_id):
    kit = _kit_for(kit, node_id)
    good = GOOD[node_id](kit)
    failures = []
    for name, what, bad, expected in _chosen(node_id, _node_cases(kit, node_id)):
        problem = _outcome(kit, node_id, {**good, name: bad}, name, expected)
        if problem is not None:
            failures.append(f"{name} = {what}: {problem}")
    assert not failures, f"{node_id}:\n" + "\n".join(failures)


def test_a_pooled_vector_of_another_width_is_refused_before_sampling(kit):
    """Flux reads the pooled CLIP vector as it is (its vec_in_dim): another width is refused by name, not a
    matrix-shape error from inside the model at the first step."""
    k = _kit_for(kit, "BlendspaceReferenceSweep")
    tokens, extra = k["pos"][0]
    wide = [[tokens, {**extra, "pooled_output": torch.randn(1, 7)}]]
    wanted = r"^conditioning's pooled_output is 7 wide but the connected Flux model reads a 768-wide"
    with pytest.raises(ValueError, match=wanted) as err:
        _call(k, "BlendspaceReferenceSweep", {**GOOD["BlendspaceReferenceSweep"](k), "conditioning": wide})
    assert type(err.value).__name__ == "BlendspaceInputError"
