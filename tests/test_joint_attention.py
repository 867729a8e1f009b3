"""Two prompts inside joint attention on tiny random models of every covered family (current ComfyUI):
CrossAttnInterpolate's ends, its left-to-right blend, its passes per step, blocks and step window; Slerp
Conditioning's "attention weight" mode with and without Prompt Mix Attention Patch (refused when sampled on a family
that needs the patch and lacks it); refusals of the other families and of a ComfyUI without the attention override,
before any sampling (the 2024 ComfyUI has none of the covered families: there the U-Net test runs)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import pytest
import torch

XATTN = "CrossAttnInterpolate"
MIX_MODE = "attention weight (joint attention)"
TEXT_KEYS = ("attention_mask", "conditioning_llama3")


@dataclass(frozen=True)
class Case:
    """A covered family: its ``supported_models`` class, builder, conditioning maker, latent shape, prompt B's
    extra arguments and whether both prompts carry reference latents (the edit models)."""

    config_class: str
    build: str
    conditioning: str
    latent: tuple
    b_args: dict = field(default_factory=dict)
    a_args: dict = field(default_factory=dict)
    references: bool = False


CASES = {
    "Flux dev": Case("Flux", "tiny_flux_kontext", "flux_conditioning", (1, 16, 8, 16), {"tokens": 300}),
    "Flux schnell": Case("FluxSchnell", "tiny_flux_schnell", "schnell_conditioning", (1, 16, 8, 16)),
    "Flux Kontext": Case("Flux", "tiny_flux_kontext", "kontext_conditioning", (1, 16, 8, 16), references=True),
    "Chroma": Case("Chroma", "tiny_chroma", "chroma_conditioning", (1, 16, 8, 16), {"tokens": 17}),
    "SD3.5 Medium": Case("SD3", "tiny_sd35_medium", "sd3_conditioning", (1, 16, 8, 16), {"tokens": 231}),
    "SD3.5 Large": Case("SD3", "tiny_sd35_large", "sd3_conditioning", (1, 16, 8, 16)),
    "HiDream": Case("HiDream", "tiny_hidream", "hidream_conditioning", (1, 16, 8, 16),
                    {"tokens": 20, "llama_tokens": 30}),
    "Qwen-Image": Case("QwenImage", "tiny_qwen_image", "qwen_image_conditioning", (1, 16, 1, 8, 16), {"tokens": 17}),
    "Qwen-Image-Edit": Case("QwenImage", "tiny_qwen_image", "qwen_image_conditioning", (1, 16, 1, 8, 16),
                            {"tokens": 31}, references=True),
    "Lumina 2": Case("Lumina2", "tiny_lumina2", "lumina2_conditioning", (1, 16, 8, 16), {"tokens": 17},
                     {"tokens": 20, "padding": 4}),
}
BIASED_BY_THE_CONDITIONING = {"Flux dev", "Flux schnell", "Chroma"}


@pytest.fixture(scope="module")
def kit(comfy):
    """Per family (built once): the model and prompts A, B and the negative."""
    cache = {}

    def get(name):
        case = CASES[name]
        comfy.tiny.current_comfyui_only(case.config_class)
        if name not in cache:
            make = getattr(comfy.tiny, case.conditioning)
            a, b, neg = make(1, **case.a_args), make(2, **case.b_args), make(3)
            if case.references:
                refs = [comfy.tiny.random_latent((*case.latent[:-2], 8, 12), 5)]
                a, b = (comfy.tiny.with_reference_latents(c, refs) for c in (a, b))
            cache[name] = dict(model=getattr(comfy.tiny, case.build)(0), a=a, b=b, neg=neg, case=case, plain={})
        return cache[name]
    return get


def _plain(k, which: str):
    """The unpatched model's one-step result with prompt A, prompt B or B's text (cached per family)."""
    if which not in k["plain"]:
        k["plain"][which] = _sample(k, k["model"], {"a": k["a"], "b": k["b"], "b text": _b_text(k)}[which])
    return k["plain"][which]


def _sample(k, model, positive, steps=1, cfg=2.0, negative=None):
    return _sample_on(model, positive, negative or k["neg"], torch.zeros(k["case"].latent), steps, cfg)


def _sample_on(model, positive, negative, latent, steps=1, cfg=2.0):
    import comfy.sample as sample
    noise = sample.prepare_noise(latent, 3)
    return sample.sample(model, noise, steps, cfg, "euler", "simple", positive, negative, latent, seed=3,
                         disable_pbar=True)


def _mask(k, value=None):
    h, w = k["case"].latent[-2:]
    return None if value is None else torch.full((1, 8 * h, 8 * w), float(value))


def _blend(comfy, k, mask=None, blocks="all", start=0.0, end=1.0, pooled="from A (sampled prompt)", strength=1.0):
    return comfy.node(XATTN).patch(k["model"], k["b"], "left-right", "sigmoid", 0.5, 30.0, 1.0, strength, start, end,
                                   blocks, mask=mask, pooled_and_guidance=pooled)[0]


def _b_text(k):
    """Prompt B's text (its tokens, token mask, Llama states) with every other key of prompt A."""
    a_extra, b_extra = k["a"][0][1], k["b"][0][1]
    extra = {**{key: v for key, v in a_extra.items() if key not in TEXT_KEYS},
             **{key: v for key, v in b_extra.items() if key in TEXT_KEYS}}
    return [[k["b"][0][0], extra]]


# ----------------------------------------------------------------------------------- CrossAttnInterpolate


@pytest.mark.parametrize("name", list(CASES))
def test_all_a_is_prompt_a_and_all_b_is_prompt_b_s_text_exactly(comfy, kit, name):
    k = kit(name)
    before = copy.deepcopy({key: v for key, v in k["model"].model_options.items() if key != "transformer_options"})
    plain_a, b_text = _plain(k, "a"), _plain(k, "b text")
    assert torch.equal(_sample(k, _blend(comfy, k, _mask(k, 1.0)), k["a"]), plain_a)
    assert torch.equal(_sample(k, _blend(comfy, k, _mask(k, 0.5), strength=0.0), k["a"]), plain_a)
    assert torch.equal(_sample(k, _blend(comfy, k, _mask(k, 0.0)), k["a"]), b_text)
    plain_b = _plain(k, "b")
    assert torch.equal(_sample(k, _blend(comfy, k, _mask(k, 0.0), pooled="from B"), k["a"]), plain_b)
    assert torch.equal(_sample(k, _blend(comfy, k, _mask(k, 0.0), pooled="mask average"), k["a"]), plain_b)
    assert torch.equal(_sample(k, _blend(comfy, k, _mask(k, 1.0), pooled="mask average"), k["a"]), plain_a)
    scale = (plain_a - b_text).abs().max().item()
    assert scale > 0.1, "the two prompts give different images"
    near_a = _sample(k, _blend(comfy, k, _mask(k, 1 - 1e-6)), k["a"])
    near_b = _sample(k, _blend(comfy, k, _mask(k, 1e-6)), k["a"])
    assert 0 < (near_a - plain_a).abs().max().item() < 1e-4 * scale, "the blend approaches A continuously"
    assert 0 < (near_b - b_text).abs().max().item() < 1e-4 * scale, "and B (each prompt at its own positions)"
    assert copy.deepcopy({key: v for key, v in k["model"].model_options.items() if key != "transformer_options"}) \
        == before and "optimized_attention_override" not in k["model"].model_options.get("transformer_options", {})


def _column_distance(out, ref):
    return (out - ref).abs().mean(dim=tuple(range(out.dim() - 1)))


@pytest.mark.parametrize("name", list(CASES))
def test_left_half_follows_a_and_right_half_follows_b(comfy, kit, name):
    k = kit(name)
    out = _sample(k, _blend(comfy, k), k["a"])
    to_a, to_b = _column_distance(out, _plain(k, "a")), _column_distance(out, _plain(k, "b text"))
    half = out.shape[-1] // 2
    assert (to_a[:half] < 0.5 * to_b[:half]).all(), (to_a, to_b)
    assert (to_b[half:] < 0.5 * to_a[half:]).all(), (to_a, to_b)


class _Count:
    """Model forwards (one per batch of chunks) and attention kernel calls in each."""

    def __init__(self, comfy, model):
        self.forwards, self.kernels = [], []
        self.model = model.clone()
        self.model.set_model_unet_function_wrapper(self.forward)
        comfy.pack.nodes.runtime.attention.add_attention_handler(self.model, "test count", self.kernel, "test")

    def forward(self, apply_model, args):
        self.forwards.append(tuple(args["cond_or_uncond"]))
        self.kernels.append(0)
        return apply_model(args["input"], args["timestep"], **args["c"])

    def kernel(self, call_next, *args, **kwargs):
        self.kernels[-1] += 1
        return call_next(*args, **kwargs)


def _image_only_calls(name: str, dm) -> int:
    """Attention calls per forward that see the image alone (SD3.5 Medium's second self-attention, Lumina 2's image
    refiner): the blend leaves them as they are."""
    if name == "SD3.5 Medium":
        return sum(bool(block.x_block.x_block_self_attn) for block in dm.joint_blocks)
    return len(dm.noise_refiner) if name == "Lumina 2" else 0


@pytest.mark.parametrize("name", ["Flux dev", "Chroma", "SD3.5 Medium", "HiDream", "Qwen-Image", "Lumina 2"])
def test_model_passes_per_step_are_plain_sampling_s_and_each_joint_call_runs_two_kernels(comfy, kit, name):
    """The docs: a blended step runs the model exactly as often as plain sampling with prompt A (B's tokens ride
    in the same forward); in it every joint attention call becomes two kernel calls (caption-refiner calls too)."""
    k = kit(name)
    plain, blended = _Count(comfy, k["model"]), _Count(comfy, _blend(comfy, k))
    _sample(k, plain.model, k["a"], steps=3)
    _sample(k, blended.model, k["a"], steps=3)
    assert blended.forwards == plain.forwards and len(plain.forwards) >= 3
    assert sum(0 in chunks for chunks in plain.forwards) == 3, "one forward per step carries the positive"
    single_stream = _image_only_calls(name, k["model"].model.diffusion_model)
    for p, b, chunks in zip(plain.kernels, blended.kernels, plain.forwards, strict=True):
        assert b == (2 * (p - single_stream) + single_stream if 0 in chunks else p), (name, chunks, p, b)



@pytest.mark.parametrize("name", ["Flux Kontext", "SD3.5 Medium", "HiDream", "Qwen-Image", "Lumina 2"])
def test_the_mix_patch_runs_the_model_as_the_mixed_prompt_does_and_each_joint_call_runs_three_kernels(comfy, kit,
                                                                                                      name):
    """The docs: Prompt Mix Attention Patch costs the model calls of sampling the mixed prompt itself (here without
    its sampling check, so the unpatched model reads it side by side); in the positive's forwards every joint call
    becomes three kernel calls (A's text, B's text, the image), a caption-refiner call two, image-only calls one."""
    k = kit(name)
    mixed = _mix(comfy, k, 0.5)
    unchecked = [[tokens, {key: v for key, v in extra.items() if key != "hooks"}] for tokens, extra in mixed]
    plain = _Count(comfy, k["model"])
    patched = _Count(comfy, comfy.node("BlendspacePromptMixAttentionPatch").patch(k["model"])[0])
    _sample(k, plain.model, unchecked, steps=3)
    _sample(k, patched.model, mixed, steps=3)
    assert patched.forwards == plain.forwards and sum(0 in chunks for chunks in plain.forwards) == 3
    dm = k["model"].model.diffusion_model
    image_only = _image_only_calls(name, dm)
    text_only = len(dm.context_refiner) if name == "Lumina 2" else 0
    for p, b, chunks in zip(plain.kernels, patched.kernels, plain.forwards, strict=True):
        joint = p - image_only - text_only
        assert b == (3 * joint + 2 * text_only + image_only if 0 in chunks else p), (name, chunks, p, b)

def test_blocks_and_the_step_window_limit_the_blend(comfy, kit):
    k = kit("Flux dev")
    plain_a, b_text = _plain(k, "a"), _plain(k, "b text")
    three_steps = _sample(k, k["model"], k["a"], steps=3)
    assert torch.equal(_sample(k, _blend(comfy, k, start=1.0, end=1.0), k["a"], steps=3), three_steps)
    early = _sample(k, _blend(comfy, k, _mask(k, 0.0), start=0.0, end=0.4), k["a"], steps=3)
    assert not torch.allclose(early, three_steps, atol=1e-3)
    some = _sample(k, _blend(comfy, k, _mask(k, 0.0), blocks="double"), k["a"])
    d_a, d_b = (some - plain_a).abs().mean().item(), (some - b_text).abs().mean().item()
    assert d_a > 1e-3 and d_b > 1e-3, "B everywhere on some blocks is neither prompt"
    with pytest.raises(ValueError, match="this Flux model has no 'single 99'"):
        _blend(comfy, k, blocks="single 99")
    with pytest.raises(ValueError, match="'joint'"):
        _blend(comfy, kit("SD3.5 Large"), blocks="double 0")


def test_outside_the_chosen_blocks_only_prompt_b_s_text_queries_run_a_second_call(comfy, kit):
    k = kit("Flux dev")
    sizes = []

    def spy(call_next, q, k_, v, heads, **kwargs):
        sizes.append(q.shape[2])
        return call_next(q, k_, v, heads, **kwargs)
    model = _blend(comfy, k, blocks="double 0")
    comfy.pack.nodes.runtime.attention.add_attention_handler(model, "test spy", spy, "test")
    _sample(k, model, k["a"], steps=1, cfg=1.0)
    la, lb, n = 256, 300, 4 * 8
    assert sizes[:2] == [la + n, lb + n], "double 0: A's call, then B's over [B, image]"
    assert sizes[2:] == [la + n, lb] * (len(sizes) // 2 - 1), "the other blocks: B's text queries only"


def test_a_mix_by_attention_weight_is_not_a_prompt_a(comfy, kit):
    k = kit("Flux dev")
    mixed = comfy.node("SlerpConditioning").mix(k["a"], k["b"], 0.5, mode=MIX_MODE)[0]
    with pytest.raises(ValueError, match="plain prompts"):
        _sample(k, _blend(comfy, k), mixed)


# ------------------------------------------------------------------------- prompt mixing by attention weight


def _mix(comfy, k, t):
    return comfy.node("SlerpConditioning").mix(k["a"], k["b"], t, mode=MIX_MODE, method="lerp")[0]


@pytest.mark.parametrize("name", list(CASES))
def test_attention_weight_mix_ends_are_exact_and_it_approaches_them(comfy, kit, name):
    k = kit(name)
    patched = comfy.node("BlendspacePromptMixAttentionPatch").patch(k["model"])[0]
    plain_a, plain_b = _plain(k, "a"), _plain(k, "b")
    assert torch.equal(_sample(k, patched, _mix(comfy, k, 0.0)), plain_a)
    assert torch.equal(_sample(k, patched, _mix(comfy, k, 1.0)), plain_b)
    assert torch.equal(_sample(k, patched, k["a"]), plain_a), "unmixed prompts run unchanged"
    scale = (plain_a - plain_b).abs().max().item()
    for end, ts in ((plain_a, (1e-2, 1e-3)), (plain_b, (1 - 1e-2, 1 - 1e-3))):
        far, near = ((_sample(k, patched, _mix(comfy, k, t)) - end).abs().max().item() for t in ts)
        assert near < far / 4 and far < 0.1 * scale, (name, far, near, scale)
    middle = _sample(k, patched, _mix(comfy, k, 0.5))
    if name in BIASED_BY_THE_CONDITIONING:
        alone = _sample(k, k["model"], _mix(comfy, k, 0.5))
        assert torch.equal(alone, middle), "Flux and Chroma read the weights from the conditioning"
    else:
        which = {"Flux Kontext": "Flux with reference latents", "SD3.5 Medium": "SD3 / SD3.5",
                 "SD3.5 Large": "SD3 / SD3.5", "Qwen-Image-Edit": "Qwen-Image"}.get(name, name)
        _refused_before_the_model_runs(k, k["model"], _mix(comfy, k, 0.5), f"{which} reads no attention weights.*"
                                       "Prompt Mix Attention Patch")


def _refused_before_the_model_runs(k, model, positive, match, latent=None):
    """Sampling ``positive`` stops with an error matching ``match`` and the model never ran."""
    calls = []
    counted = model.clone()
    counted.set_model_unet_function_wrapper(lambda apply_model, args: calls.append(1) or apply_model(
        args["input"], args["timestep"], **args["c"]))
    with pytest.raises(ValueError, match=match):
        _sample(k, counted, positive) if latent is None else _sample_on(counted, positive, positive, latent)
    assert calls == [], "refused before the first model call"


# ---------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("name,config_class", [("Wan 2.2", "WAN22_T2V"), ("Omnigen2", "Omnigen2")])
def test_other_families_are_refused_by_name_before_any_sampling(comfy, name, config_class):
    comfy.tiny.current_comfyui_only(config_class)
    family = comfy.tiny.DIT_FAMILIES[name]
    model, b = family.build(0), family.conditioning(2)
    label = {"Wan 2.2": "Wan 2.2", "Omnigen2": "OmniGen2"}[name]
    with pytest.raises(ValueError, match=f"\\({label}\\).*Flux .*Lumina 2.*DualStyleEpsilonMix"):
        comfy.node(XATTN).patch(model, b, "left-right", "sigmoid", 0.5, 30.0, 1.0, 1.0, 0.0, 1.0, "all")
    with pytest.raises(ValueError, match=f"does not support this model \\({label}\\)"):
        comfy.node("BlendspacePromptMixAttentionPatch").patch(model)
    mixed = comfy.node("SlerpConditioning").mix(family.conditioning(1), b, 0.5, mode=MIX_MODE)[0]
    _refused_before_the_model_runs(None, model, mixed, f"attention weight.*does not support this model \\({label}\\)",
                                   torch.zeros(family.latent_shape))


def test_an_older_comfyui_without_the_attention_override_is_refused_naming_the_version(comfy, kit, monkeypatch):
    k = kit("Flux dev")
    monkeypatch.setattr(comfy.pack.nodes.runtime.joint_attention, "supports_attention_override", lambda: False)
    with pytest.raises(ValueError, match="Cross-Attention Interpolate needs a current ComfyUI for Flux"):
        _blend(comfy, k)
    with pytest.raises(ValueError, match="Prompt Mix Attention Patch needs a current ComfyUI for Flux"):
        comfy.node("BlendspacePromptMixAttentionPatch").patch(k["model"])


def test_u_net_models_keep_their_path_and_refuse_what_is_joint_only(comfy, tiny_models):
    model = tiny_models[0]
    b = comfy.tiny.encode_prompt(tiny_models[1], "a van gogh bear")
    with pytest.raises(ValueError, match="pooled_and_guidance.*joint-attention"):
        comfy.node(XATTN).patch(model, b, "left-right", "sigmoid", 0.5, 30.0, 1.0, 1.0, 0.0, 1.0, "all",
                                pooled_and_guidance="from B")
    with pytest.raises(ValueError, match="does not support this model \\(SD1.x\\).*on a current ComfyUI"):
        comfy.node("BlendspacePromptMixAttentionPatch").patch(model)


def test_the_generic_key_bias_call_hides_keys_as_if_they_were_not_there(comfy, kit):
    """``attention_calls.attend_with_key_bias`` (for any technique that biases keys): -inf on five tokens appended to
    prompt A gives prompt A's own result."""
    k = kit("Flux dev")
    calls = comfy.pack.nodes.runtime.attention_calls
    extra = [[torch.cat([k["a"][0][0], k["b"][0][0][:, :5]], dim=1), dict(k["a"][0][1])]]
    la = k["a"][0][0].shape[1]

    def hide(call_next, *args, **kwargs):
        call = calls.bind_attention_call(call_next, args, kwargs)
        bias = torch.zeros(call.q.shape[0], 1, call.length, dtype=call.q.dtype)
        bias[:, :, la:la + 5] = float("-inf")
        return calls.attend_with_key_bias(call, bias)
    model = k["model"].clone()
    comfy.pack.nodes.runtime.attention.add_attention_handler(model, "test hide", hide, "test")
    hidden = _sample(k, model, extra, cfg=1.0)
    plain = _sample(k, k["model"], k["a"], cfg=1.0)
    assert (hidden - plain).abs().max().item() < 1e-5 * plain.abs().max().item()
    assert not torch.allclose(_sample(k, k["model"], extra, cfg=1.0), plain, atol=1e-3)


@pytest.mark.parametrize("form", ["none", "bool (B, Lq, Lk)", "float (Lq, Lk)", "float (B, H, Lq, Lk)"])
def test_a_key_bias_joins_every_mask_form_row_by_row(comfy, form):
    """``attention_calls.attend_with_key_bias`` on each mask form ComfyUI's kernels take: a ``-inf`` bias on two keys
    of batch row 0 only gives row 0 as if those keys were not there, and row 1 the call as it came."""
    import torch.nn.functional as F
    calls = comfy.pack.nodes.runtime.attention_calls
    g = torch.Generator().manual_seed(0)
    b, h, lq, lk = 2, 3, 5, 7
    q, k, v = (torch.randn(b, h, n, 4, generator=g) for n in (lq, lk, lk))
    masks = {"none": None, "bool (B, Lq, Lk)": torch.rand(b, lq, lk, generator=g) > 0.3,
             "float (Lq, Lk)": torch.randn(lq, lk, generator=g), "float (B, H, Lq, Lk)": torch.randn(b, h, lq, lk, generator=g)}
    mask = masks[form]
    if mask is not None and mask.dtype == torch.bool:
        mask[..., 0] = True  # every query keeps a key

    def kernel(q, k, v, heads, mask=None, **kwargs):
        assert mask.dtype == q.dtype and heads == h
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask.unsqueeze(1) if mask.dim() == 3 else mask)
    bias = torch.zeros(b, 1, lk)
    bias[0, :, -2:] = float("-inf")
    out = calls.attend_with_key_bias(calls.bind_attention_call(kernel, (q, k, v, h), {"mask": mask, "skip_reshape": True}),
                                     bias)
    if mask is None:
        full = torch.zeros(b, h, lq, lk)
    elif mask.dtype == torch.bool:
        full = torch.zeros(b, 1, lq, lk).masked_fill(~mask.unsqueeze(1), float("-inf")).expand(b, h, lq, lk)
    else:
        full = mask.expand(b, h, lq, lk)
    row0 = F.scaled_dot_product_attention(q[:1], k[:1, :, :-2], v[:1, :, :-2], attn_mask=full[:1, :, :, :-2])
    row1 = F.scaled_dot_product_attention(q[1:], k[1:], v[1:], attn_mask=full[1:])
    assert torch.allclose(out[:1], row0, atol=1e-6) and torch.allclose(out[1:], row1, atol=1e-6)
