"""Mix Two References and the Reference Sweep on tiny random edit models (current ComfyUI): a Kontext-style Flux
with every reference method core offers, Qwen-Image(-Edit), and OmniGen2 where the tiny build allows.

The ends, the strengths 0 and the w = 0.5 point equal core's own sampling of core's own conditionings bit for bit;
the dial is continuous and moves away from A while B comes in, towards B while A leaves; the references' moved
positions are the models' own layouts; bad input is refused before sampling; the 2024 ComfyUI is refused."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import pytest
import torch

DIAL = "attention dial"
SLERP = "latent slerp"


@dataclass(frozen=True)
class Edit:
    """A tiny edit model, its conditioning maker, the family's latent and reference shapes and a layout method."""
    family: str
    config_class: str
    builder: str
    conditioning: str
    latent_shape: tuple
    ref_prefix: tuple
    method: str | None


EDITS = {
    "kontext-offset": Edit("flux", "Flux", "tiny_flux_kontext", "kontext_conditioning", (1, 16, 8, 8), (1, 16), None),
    "kontext-index": Edit("flux", "Flux", "tiny_flux_kontext", "kontext_conditioning", (1, 16, 8, 8), (1, 16), "index"),
    "kontext-uxo": Edit("flux", "Flux", "tiny_flux_kontext", "kontext_conditioning", (1, 16, 8, 8), (1, 16), "uxo"),
    "qwen-index": Edit("qwen", "QwenImage", "tiny_qwen_image", "qwen_image_conditioning", (1, 16, 1, 8, 8),
                       (1, 16, 1), None),
    "qwen-offset": Edit("qwen", "QwenImage", "tiny_qwen_image", "qwen_image_conditioning", (1, 16, 1, 8, 8),
                        (1, 16, 1), "offset"),
}
SIZES = [(8, 12), (10, 6), (8, 8)]  # reference latents of different sizes, so layouts differ by method


class Setup:
    """One edit family: its model, references A, B (and C), a prompt and a negative, and core's own samples."""

    def __init__(self, comfy, edit: Edit):
        comfy.tiny.current_comfyui_only(edit.config_class)
        self.comfy, self.edit = comfy, edit
        self.model = getattr(comfy.tiny, edit.builder)(0)
        make = getattr(comfy.tiny, edit.conditioning)
        self.prompt, self.negative = make(1), make(2)
        self.refs = [comfy.tiny.random_latent((*edit.ref_prefix, h, w), 5 + i) for i, (h, w) in enumerate(SIZES)]
        self.node = comfy.node("BlendspaceReferenceMix")

    def cond(self, refs, base=None):
        return self.comfy.tiny.with_reference_latents(base or self.prompt, refs, self.edit.method)

    def sample(self, model, positive, negative=None, steps=2, cfg=2.0):
        import comfy.sample as core
        latent = core.fix_empty_latent_channels(model, torch.zeros(self.edit.latent_shape))
        noise = core.prepare_noise(latent, 3)
        return core.sample(model, noise, steps, cfg, "euler", "simple", positive, negative or self.negative, latent,
                           seed=3, disable_pbar=True)

    def core(self, refs, negative=None):
        """Core's sampling with the prompt carrying ``refs``."""
        return self.sample(self.model, self.cond(refs), negative)

    def mix(self, weight, strength_a=1.0, strength_b=1.0, refs=None, negative=None, mode=DIAL, window=(0.0, 1.0),
            **optional):
        conditioning = self.cond(refs if refs is not None else self.refs[:2])
        return self.node.mix(self.model, conditioning, negative or self.negative, weight, strength_a, strength_b, mode,
                             window[0], window[1], **optional)

    def mixed(self, *args, **kwargs):
        model, positive, negative = self.mix(*args, **kwargs)
        return self.sample(model, positive, negative)


@pytest.fixture(scope="module", params=list(EDITS))
def edit(comfy, request):
    return Setup(comfy, EDITS[request.param])


@pytest.fixture(scope="module")
def kontext(comfy):
    return Setup(comfy, EDITS["kontext-offset"])


@pytest.fixture(scope="module")
def qwen(comfy):
    return Setup(comfy, EDITS["qwen-index"])


def _refused(match: str):
    """The pack's BlendspaceInputError (a ValueError, of the pack's own copy of ``blendspace``) with ``match``."""
    return pytest.raises(ValueError, match=match)


def _dist(a, b) -> float:
    return float((a - b).norm())


# ---------------------------------------------------------------------------------------------- exact points

def test_ends_and_middle_are_cores_own_sampling_exactly(edit):
    a, b = edit.refs[:2]
    for weight, refs in ((0.0, [a]), (1.0, [b]), (0.5, [a, b])):
        model, positive, _ = edit.mix(weight)
        assert model is edit.model, "where the result is core's own, the model is not patched"
        assert torch.equal(edit.sample(model, positive), edit.core(refs)), f"w = {weight}"


def test_strength_zero_is_that_reference_absent_and_one_is_the_dial_alone(edit):
    a, b = edit.refs[:2]
    assert torch.equal(edit.mixed(0.5, strength_a=0.0), edit.core([b]))
    assert torch.equal(edit.mixed(0.5, strength_b=0.0), edit.core([a]))
    assert torch.equal(edit.mixed(0.2, strength_b=0.0), edit.core([a]))
    assert torch.equal(edit.mixed(0.75, strength_a=0.0), edit.core([b]))
    tamed = edit.mixed(0.0, strength_a=0.5)
    assert not torch.allclose(tamed, edit.core([a]), atol=1e-4), "a strength below 1 tames the reference"


def test_the_dial_is_continuous_and_moves_from_a_to_b(edit):
    """Distance to the A-only result grows while B comes in (w ≤ ½), distance to the B-only result shrinks while A
    leaves (w ≥ ½), and the balance between them grows over the whole dial. (Both distances cannot be monotone over
    the whole dial: w = ½ is core's two-reference result, which can lie farther from B than A does.)"""
    a, b = edit.refs[:2]
    ra, rb = edit.core([a]), edit.core([b])
    ws = [i / 6 for i in range(7)]
    out = {w: edit.mixed(w) for w in ws}
    da, db = [_dist(out[w], ra) for w in ws], [_dist(out[w], rb) for w in ws]
    assert all(x < y for x, y in pairwise(da[:4])), da
    assert all(x > y for x, y in pairwise(db[3:])), db
    balance = [x - y for x, y in zip(da, db, strict=True)]
    assert all(x < y for x, y in pairwise(balance)), balance
    scale = _dist(ra, rb)
    assert _dist(edit.mixed(1e-4), ra) < 1e-2 * scale and _dist(edit.mixed(1 - 1e-4), rb) < 1e-2 * scale


def test_bias_and_moved_positions_reproduce_the_reference_removed(edit, comfy):
    """The mechanism itself, without the short-circuit: A kept with a −inf key bias and B at the place it has
    alone gives core's B-only result to float rounding."""
    import comfy.conds as conds
    state = comfy.pack.nodes.runtime.reference_state
    runtime = comfy.pack.nodes.runtime.reference_mix
    tagged = edit.cond(edit.refs[:2])
    tag = state.DialTag(edit.edit.family, ((0, 0.0),))
    tagged = [[tagged[0][0], dict(tagged[0][1], model_conds={state.TAG_KEY: conds.CONDConstant(tag)})]]
    out = edit.sample(runtime.patched_model(edit.model, edit.edit.family), tagged)
    assert (out - edit.core(edit.refs[1:2])).abs().max() < 1e-4


def test_the_key_bias_handler_reads_every_call_form_and_counts_a_block_m_times(comfy):
    """The generic handler (``runtime/attention_calls.py``) on ComfyUI's SDPA kernel: however heads, the mask and
    ``skip_reshape`` are passed, a −inf bias on the last keys equals the call without them, a bias log 2 equals
    those keys given twice, and a bool mask already on the call is kept."""
    if not comfy.is_current:
        pytest.skip("handlers run in the attention override, which only a current ComfyUI has")
    from comfy.ldm.modules import attention as kernels
    attention = comfy.pack.nodes.runtime.attention_calls
    kernel = getattr(kernels.attention_pytorch, "__wrapped__", kernels.attention_pytorch)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 6, 4, generator=g) for _ in range(3))
    bias = torch.zeros(2, 1, 6)
    bias[..., 4:] = float("-inf")
    handler = attention.key_bias_handler(lambda call: bias if call.key_count == 6 else None)
    without = kernel(q, k[:, :, :4], v[:, :, :4], 2, skip_reshape=True)
    assert torch.allclose(handler(kernel, q, k, v, 2, skip_reshape=True), without, atol=1e-6)
    assert torch.allclose(handler(kernel, q, k, v, 2, None, None, True), without, atol=1e-6), "mask positional"
    flat = [t.transpose(1, 2).reshape(2, 6, 8) for t in (q, k, v)]
    assert torch.allclose(handler(kernel, *flat, heads=2), without, atol=1e-6), "(batch, tokens, heads·dim) inputs"
    twice = attention.key_bias_handler(
        lambda call: torch.cat([torch.zeros(2, 1, 4), torch.full((2, 1, 2), 0.6931472)], -1))
    doubled = kernel(q, torch.cat([k, k[:, :, 4:]], 2), torch.cat([v, v[:, :, 4:]], 2), 2, skip_reshape=True)
    assert torch.allclose(twice(kernel, q, k, v, 2, skip_reshape=True), doubled, atol=1e-5)
    keep = torch.ones(2, 1, 6, dtype=torch.bool)
    keep[..., 0] = False
    dropped = kernel(q, k[:, :, 1:4], v[:, :, 1:4], 2, skip_reshape=True)
    assert torch.allclose(handler(kernel, q, k, v, 2, mask=keep, skip_reshape=True), dropped, atol=1e-6)
    untouched = attention.key_bias_handler(lambda call: None)
    assert torch.equal(untouched(kernel, q, k, v, 2, skip_reshape=True), kernel(q, k, v, 2, skip_reshape=True))


# ---------------------------------------------------------------------------------------------- positions

def _capture_flux_ids(setup, refs):
    seen = []

    def probe(args):
        seen.append(args["img_ids"].clone())
        return args
    model = setup.model.clone()
    model.set_model_post_input_patch(probe)
    setup.sample(model, setup.cond(refs), steps=1, cfg=1.0)
    return seen[0][0]


@pytest.mark.parametrize("method", ["offset", "index", "uxo"])
def test_flux_position_rules_are_the_models_own(comfy, method):
    from blendspace import reference_mix as math
    setup = Setup(comfy, EDITS[f"kontext-{method}"])
    ids = _capture_flux_ids(setup, setup.refs)
    layout = math.flux_placements(SIZES, method, (4, 4))
    ours = torch.cat([math.token_ids(s, p) for s, p in zip(SIZES, layout, strict=True)])
    assert torch.equal(ids[16:], ours.to(ids.dtype))
    state = comfy.pack.nodes.runtime.reference_state
    moved = state.DialForward(state.DialTag("flux", ((0, 0.0),)), (1, 16, 8, 8), 256, [(1, 16, *s) for s in SIZES],
                               method).flux_post_input({"img_ids": ids.unsqueeze(0)})["img_ids"][0]
    alone = _capture_flux_ids(setup, setup.refs[1:])
    assert torch.equal(moved[16:16 + 24], ids[16:16 + 24]) and torch.equal(moved[16 + 24:], alone[16:])


@pytest.mark.parametrize("method", ["index", "offset"])
def test_qwen_rotary_rows_are_the_models_own(comfy, method):
    """The rotary embedding the dial splices in for B (at its place alone) equals the rows the model computes in a
    B-only call; A's, the image's and the text's rows are untouched."""
    setup = Setup(comfy, EDITS[f"qwen-{method}"])
    state = comfy.pack.nodes.runtime.reference_state

    def capture(refs):
        seen = []

        def patch(args, extra):
            seen.append(args["pe"].clone())
            return extra["original_block"](args)
        model = setup.model.clone()
        model.set_model_patch_replace(patch, "dit", "double_block", 0)
        setup.sample(model, setup.cond(refs), steps=1, cfg=1.0)
        return seen[0]
    pair, alone = capture(setup.refs[:2]), capture(setup.refs[1:2])
    text = setup.prompt[0][0].shape[1]
    forward = state.DialForward(state.DialTag("qwen", ((0, 0.0),)), (1, 16, 1, 8, 8), text,
                                 [(1, 16, 1, *s) for s in SIZES[:2]], method)
    spliced = forward.qwen_pe(pair, setup.model.model.diffusion_model.pe_embedder)
    head = text + 16 + 24
    assert torch.equal(spliced[:, :head], pair[:, :head]) and torch.equal(spliced[:, head:], alone[:, text + 16:])


# ---------------------------------------------------------------------------------------------- what passes where

def test_negative_with_the_same_references_is_dialled_too(kontext):
    """A negative carrying the pair (Qwen-Image-Edit's usual one) gets the dial, so each end is the one-image
    workflow (both prompts with one image); a negative without references passes unchanged."""
    a, b = kontext.refs[:2]
    negative = kontext.cond([a, b], base=kontext.negative)
    model, positive, neg = kontext.mix(0.0, negative=negative)
    assert torch.equal(kontext.sample(model, positive, neg),
                       kontext.sample(kontext.model, kontext.cond([a]), kontext.cond([a], base=kontext.negative)))
    _, _, untouched = kontext.mix(0.3)
    assert untouched[0][0] is kontext.negative[0][0] and set(untouched[0][1]) == set(kontext.negative[0][1])


def test_more_references_pass_through_and_an_input_chooses_the_pair(kontext):
    a, b, c = kontext.refs
    assert torch.equal(kontext.mixed(0.0, refs=[a, b, c]), kontext.core([a, c]))
    assert torch.equal(kontext.mixed(1.0, refs=[a, b, c]), kontext.core([b, c]))
    assert torch.equal(kontext.mixed(1.0, refs=[a, b, c], reference_a=1, reference_b=3), kontext.core([b, c]))
    assert torch.equal(kontext.mixed(0.0, refs=[a, b, c], reference_a=2, reference_b=3), kontext.core([a, b]))
    middle = kontext.mixed(0.3, refs=[a, b, c], reference_a=2, reference_b=3)
    assert torch.isfinite(middle).all() and not torch.allclose(middle, kontext.core([a, b, c]), atol=1e-4)


def test_the_window_is_cores_timestep_range(comfy, kontext):
    """The dial acting on the first half only equals core's ConditioningSetTimestepRange: the A-only conditioning
    for the first half combined with the two-reference one for the rest."""
    nodes = comfy.nodes.NODE_CLASS_MAPPINGS
    a, b = kontext.refs[:2]

    def ranged(cond, start, end):
        return nodes["ConditioningSetTimestepRange"]().set_range(cond, start, end)[0]
    core = nodes["ConditioningCombine"]().combine(ranged(kontext.cond([a]), 0.0, 0.5),
                                                  ranged(kontext.cond([a, b]), 0.5, 1.0))[0]
    expected = kontext.sample(kontext.model, core, steps=4)
    model, positive, negative = kontext.mix(0.0, window=(0.0, 0.5))
    assert torch.equal(kontext.sample(model, positive, negative, steps=4), expected)
    assert not torch.equal(expected, kontext.sample(kontext.model, kontext.cond([a]), steps=4))


def test_latent_slerp_mode_mixes_the_latents_into_one_reference(edit):
    a, b = edit.refs[:2]
    assert torch.equal(edit.mixed(0.0, mode=SLERP), edit.core([a]))
    assert torch.equal(edit.mixed(1.0, mode=SLERP), edit.core([b]))
    _, positive, _ = edit.mix(0.4, mode=SLERP)
    refs = positive[0][1]["reference_latents"]
    assert len(refs) == 1 and refs[0].shape == a.shape
    out = edit.sample(edit.model, positive)
    assert torch.isfinite(out).all() and not torch.allclose(out, edit.mixed(0.4), atol=1e-4)


def _encoding(setup, seed: int, tokens: int, refs):
    return setup.comfy.tiny.with_reference_latents(setup.comfy.tiny.qwen_image_conditioning(seed, tokens=tokens), refs,
                                                   setup.edit.method)


def test_qwen_one_image_encodings_make_the_ends_exact_and_keep_them_continuous(qwen):
    """With the prompt encoded with only A and only B (stand-ins of other lengths here), the ends are exactly core's
    sampling of those encodings; next to the ends the dial is close to them (the encodings are blended in
    attention, each at its own text positions)."""
    a, b = qwen.refs[:2]
    a_only, b_only = _encoding(qwen, 11, 20, [a]), _encoding(qwen, 12, 28, [b])
    extra = {"conditioning_a_only": a_only, "conditioning_b_only": b_only}
    ra, rb = qwen.sample(qwen.model, a_only), qwen.sample(qwen.model, b_only)
    assert torch.equal(qwen.mixed(0.0, **extra), ra) and torch.equal(qwen.mixed(1.0, **extra), rb)
    assert torch.equal(qwen.mixed(0.5, **extra), qwen.core([a, b]))
    assert torch.equal(qwen.mixed(0.5, 0.0, **extra), rb), "A absent: the B-only encoding, pictures included"
    _, tamed, _ = qwen.mix(0.0, 0.5, **extra)
    assert torch.equal(tamed[0][0], a_only[0][0]), "B absent: no picture of B in the text, however A is tamed"
    scale = _dist(ra, rb)
    assert _dist(qwen.mixed(1e-4, **extra), ra) < 1e-2 * scale and _dist(qwen.mixed(1 - 1e-4, **extra), rb) < 1e-2 * scale
    without = qwen.mixed(0.0)
    assert torch.equal(without, qwen.core([a])) and not torch.allclose(without, ra, atol=1e-4), \
        "without them the A end is the prompt as given with A's latent only"


def test_kontext_takes_a_prompt_of_its_own_for_each_end(kontext):
    """On Flux Kontext the one-image encodings are optional: given (here other prompts, each with its one
    reference), each end is exactly core's sampling of it, and next to the ends the dial is close to it."""
    a, b = kontext.refs[:2]
    make = kontext.comfy.tiny.kontext_conditioning
    a_only, b_only = kontext.cond([a], base=make(11)), kontext.cond([b], base=make(12))
    extra = {"conditioning_a_only": a_only, "conditioning_b_only": b_only}
    ra, rb = kontext.sample(kontext.model, a_only), kontext.sample(kontext.model, b_only)
    assert torch.equal(kontext.mixed(0.0, **extra), ra) and torch.equal(kontext.mixed(1.0, **extra), rb)
    assert torch.equal(kontext.mixed(0.5, **extra), kontext.core([a, b]))
    scale = _dist(ra, rb)
    assert _dist(kontext.mixed(1e-4, **extra), ra) < 1e-2 * scale
    assert _dist(kontext.mixed(1 - 1e-4, **extra), rb) < 1e-2 * scale


def test_references_not_encoded_for_the_model_are_refused(qwen):
    """A Flux VAE's 4-D latent on Qwen-Image (which reads 5-D video-format latents) would fail mid-sampling."""
    a, b = qwen.refs[:2]
    with _refused(r"reference B is a latent of shape \(1, 16, 10, 6\) but the model reads 5-D latents"):
        qwen.mix(0.3, refs=[a, b[:, :, 0]])


def test_sweep_renders_the_dial_from_one_seed(comfy, kontext):
    a, b = kontext.refs[:2]
    sweep = comfy.node("BlendspaceReferenceSweep")
    latents, weights = sweep.sweep(kontext.model, kontext.cond([a, b]), kontext.negative, {"samples": torch.zeros(1, 16, 8, 8)},
                                   3, 2, 2.0, "euler", "simple", 3, 1.0, 1.0, DIAL, 0.0, 1.0)
    frames = latents["samples"]
    assert weights == "0, 0.5, 1" and frames.shape == (3, 16, 8, 8)
    assert torch.equal(frames[0:1], kontext.core([a])) and torch.equal(frames[1:2], kontext.core([a, b]))
    assert torch.equal(frames[2:3], kontext.core([b]))


def test_sweep_takes_qwen_image_edits_video_format_latent(comfy, qwen):
    """Qwen-Image-Edit's VAE Encode gives 5-D latents (batch, channels, frames, height, width): the sweep takes
    them (other nodes refuse 5-D latents by name) and its ends are core's one-reference results."""
    a, b = qwen.refs[:2]
    sweep = comfy.node("BlendspaceReferenceSweep")
    latent = {"samples": torch.zeros(qwen.edit.latent_shape)}
    latents, _ = sweep.sweep(qwen.model, qwen.cond([a, b]), qwen.negative, latent, 3, 2, 2.0, "euler", "simple", 2,
                             1.0, 1.0, DIAL, 0.0, 1.0)
    frames = latents["samples"]
    assert frames.shape == (2, *qwen.edit.latent_shape[1:]) and latent["samples"].shape == qwen.edit.latent_shape
    assert torch.equal(frames[0:1], qwen.core([a])) and torch.equal(frames[1:2], qwen.core([b]))
    with _refused(r"latent is a 5-D \(video\) latent"):
        comfy.node("BlendspaceStrengthSweep").sweep(qwen.model, qwen.cond([a]), qwen.negative, latent, 3, 1, 2.0,
                                                    "euler", "simple", "comfyui denoise", 0.5, 0.9, 0.5, "")


def test_omnigen2_ends_are_exact_where_no_hook_reaches_its_positions(comfy):
    """OmniGen2 exposes no position ids: the ends and strengths 0 are core's own conditionings exactly; in between
    the bias acts (the references' and the image's positions cannot move, see docs/techniques.md)."""
    comfy.tiny.current_comfyui_only("Omnigen2")
    setup = Setup(comfy, Edit("omnigen2", "Omnigen2", "tiny_omnigen2", "omnigen2_conditioning", (1, 16, 8, 8), (1, 16),
                              None))
    a, b = setup.refs[:2]
    assert torch.equal(setup.mixed(0.0), setup.core([a])) and torch.equal(setup.mixed(1.0), setup.core([b]))
    assert torch.equal(setup.mixed(0.5), setup.core([a, b])) and torch.equal(setup.mixed(0.5, 0.0), setup.core([b]))
    middle = setup.mixed(0.25)
    assert torch.isfinite(middle).all() and not torch.allclose(middle, setup.core([a, b]), atol=1e-4)
    with _refused("cannot blend two encodings"):
        setup.mix(0.3, conditioning_a_only=setup.cond([a]))


# ---------------------------------------------------------------------------------------------- refusals

def test_bad_input_is_refused_before_sampling(comfy, kontext):
    a, b = kontext.refs[:2]
    node = kontext.node
    cases = [
        (dict(conditioning=kontext.cond([a])), "carries 1 reference latent"),
        (dict(conditioning=kontext.prompt), "carries no reference latents"),
        (dict(conditioning=kontext.cond([a, b[:, :4]])), "reference A has 16 channels and reference B 4"),
        (dict(conditioning=kontext.cond([a[:, :4], b[:, :4]])), "the model works on 16-channel latents"),
        (dict(reference_b=1), "both 1"),
        (dict(conditioning_a_only=kontext.cond([b])), "conditioning_a_only.*only image A"),
        (dict(start_percent=0.6, end_percent=0.4), "must be below end_percent"),
        (dict(conditioning=kontext.mix(0.3)[1]), "comes from Mix Two References already"),
    ]
    for changes, message in cases:
        args = dict(model=kontext.model, conditioning=kontext.cond([a, b]), negative=kontext.negative, weight=0.3,
                    strength_a=1.0, strength_b=1.0, mode=DIAL, start_percent=0.0, end_percent=1.0)
        args.update(changes)
        with _refused(match=message):
            node.mix(**args)


@pytest.mark.parametrize("builder,family,message", [
    ("tiny_unet", "SD15", "SD1.x has no reference-image input"),
    ("tiny_chroma", "Chroma", "Chroma never reads reference latents"),
    ("tiny_wan22", "WAN22_T2V", "Wan reads only the last reference latent"),
])
def test_models_without_reference_support_are_refused_by_name(comfy, kontext, builder, family, message):
    comfy.tiny.current_comfyui_only(family)
    model = getattr(comfy.tiny, builder)(0)
    with _refused(match=message):
        kontext.node.mix(model, kontext.cond(kontext.refs[:2]), kontext.negative, 0.3, 1.0, 1.0, DIAL, 0.0, 1.0)


def test_qwen_one_image_encodings_must_match_the_references(qwen):
    a, b = qwen.refs[:2]
    with _refused(match="conditioning_a_only.*only image A"):
        qwen.mix(0.3, conditioning_a_only=_encoding(qwen, 11, 20, [b]))
    with _refused(match="negative_b_only has 2 entries"):
        qwen.mix(0.3, negative_b_only=_encoding(qwen, 12, 20, [b]) * 2)


def test_the_2024_comfyui_is_refused_clearly(comfy):
    """On a ComfyUI without edit models (the 2024 one) the node says to update, before anything else."""
    if comfy.is_current:
        pytest.skip("this ComfyUI has the hooks; the refusal is for the 2024 ComfyUI")
    model = comfy.tiny.tiny_unet(0)
    cond = [[torch.zeros(1, 77, comfy.tiny.CONTEXT_DIM), {"reference_latents": [torch.zeros(1, 4, 8, 8)] * 2}]]
    with _refused(match="needs a current ComfyUI"):
        comfy.node("BlendspaceReferenceMix").mix(model, cond, cond, 0.3, 1.0, 1.0, DIAL, 0.0, 1.0)


@pytest.mark.bench
def test_the_benchmark_reports_the_dials_cost_beside_its_limit(comfy):
    """benchmarks/bench_reference_mix.py still runs (one repeat) and reports its ratios; no timing is asserted."""
    import json
    import math
    import os
    import subprocess
    import sys

    from comfy_harness import REPO
    if not comfy.is_current:
        pytest.skip("the benchmark needs a current ComfyUI (edit models with reference latents)")
    env = dict(os.environ, BLENDSPACE_BENCH_REPEATS="1", COMFYUI_PATH=str(comfy.root))
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_reference_mix.py")], capture_output=True,
                         text=True, env=env, cwd=str(REPO), timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    reports = [json.loads(line) for line in res.stdout.strip().splitlines()]
    assert [r["benchmark"] for r in reports] == ["reference_mix_flux_small", "reference_mix_qwen_small"]
    keys = ("dial_w025_over_core_two_refs", "dial_w075_over_core_two_refs", "flop_limit", "attention_bias_over_plain")
    for report in reports:
        assert all(isinstance(report[k], float) and math.isfinite(report[k]) and report[k] > 0 for k in keys), report
        assert 1.0 < report["flop_limit"] < 1.01, "the bias adds one addition per score, no token"
    assert reports[1]["prompts_flop_limit"] > reports[1]["flop_limit"], "a second prompt encoding adds tokens"
