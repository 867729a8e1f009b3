"""Two prompts inside joint attention, as ComfyUI runs it (docs/techniques.md, "Two prompts in joint attention"):

- :func:`blend_prompt_b_joint`: CrossAttnInterpolate on Flux, Chroma, SD3/3.5, HiDream, Qwen-Image and Lumina 2.
  Prompt B's tokens are appended to the sampled prompt's in every model forward of the step window
  (``APPLY_MODEL`` wrapper), each joint attention call runs the two-stream attention of
  ``blendspace/joint_attention.py`` (one handler of the attention dispatcher), blocks are told by chained
  ``patches_replace["dit"]`` patches or counted; a mask that is B everywhere hands the sampler B's own
  conditioning instead (``CALC_COND_BATCH`` wrapper), so that end is core's own result;
- :func:`prompt_mix_patch`: the model patch behind Slerp Conditioning's "attention weight" mode on the families
  that read no attention bias from the conditioning.

Every hook is ComfyUI's own and attaches to a clone; the 2024 ComfyUI, which has none of them, is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ...blendspace.cross_attention import positive_rows
from ...blendspace.errors import BlendspaceInputError
from ...blendspace.joint_attention import (
    JointLayout,
    blend_weights,
    mean_weight,
    mix_global,
    parse_blocks,
    prompt_bias_attention,
    separate_prompts_attention,
    two_prompt_attention,
    weights_mode,
)
from ...blendspace.prompt_bias import MARKER
from .attention import add_attention_handler, supports_attention_override
from .attention_calls import (
    AttentionCall,
    ForwardState,
    add_cond_batch_wrapper,
    add_forward_wrapper,
    bind_attention_call,
    forward_state,
    track_blocks,
)
from .joint_families import COVERED, JointFamily, TextSplit, family_for
from .model_facts import diffusion_model, family_id, family_name, percent_sigmas

BLEND_KEY = "blendspace_joint_blend"
MIX_KEY = "blendspace_prompt_mix_patch"
MIX_MARKERS = "blendspace_prompt_mix_markers"
POOLED_CHOICES = ("from A (sampled prompt)", "from B", "mask average")
GLOBAL_KEYS = ("y", "guidance")
"""Model inputs of a prompt that are not per token: the pooled vector, Flux's and Chroma's guidance value."""


def joint_family(model) -> JointFamily | None:
    """The joint-attention family of ``model`` this module serves, or None."""
    return family_for(family_id(model))


def require_joint_family(model, what: str) -> JointFamily:
    """The model's family, or a clear refusal (before any sampling) naming it, or naming the ComfyUI needed when the
    family is covered but this ComfyUI has no attention override (an older one)."""
    family = joint_family(model)
    if family is None:
        raise BlendspaceInputError(f"{what} does not support this model ({family_name(model)}): it works on the "
                                   f"joint-attention families {COVERED}, on a current ComfyUI.")
    if not supports_attention_override():
        raise BlendspaceInputError(f"{what} needs a current ComfyUI for {family.name} (one whose attention calls take "
                                   "the optimized_attention_override hook, as 0.3.64 does): this ComfyUI has none. "
                                   "Update ComfyUI.")
    return family


def _sigma_of(timestep) -> float | None:
    return None if timestep is None else float(torch.as_tensor(timestep).reshape(-1)[0])


def _raw(conds: dict) -> dict:
    return {k: v.cond for k, v in conds.items() if hasattr(v, "cond")}


def model_conds_of(base_model, conditioning, x: torch.Tensor) -> dict:
    """The model inputs a conditioning gives (``BaseModel.extra_conds``, as the sampler builds them), for a
    latent shaped like ``x``."""
    tokens, extra = conditioning[0][0], conditioning[0][1]
    params = {**extra, "cross_attn": tokens, "device": x.device, "noise": x[:1], "width": int(x.shape[-1]) * 8,
              "height": int(x.shape[-2]) * 8, "prompt_type": "positive"}
    try:
        return base_model.extra_conds(**params)
    except (KeyError, AttributeError, TypeError) as err:
        raise BlendspaceInputError(f"conditioning_b lacks what this model reads from a prompt ({err!r}): encode prompt "
                                   "B with the text encoder that goes with the model (CLIP Text Encode).") from err


@dataclass
class BlendForward:
    """One blended forward: the joint layout, the rows that blend, the chosen blocks."""

    family: JointFamily
    diffusion_model: object
    layout: JointLayout
    text_layout: JointLayout | None
    split: TextSplit
    rows: torch.Tensor
    chosen: frozenset
    grid: tuple[int, int]
    batch: int

    def splits(self) -> list[tuple[torch.Tensor, TextSplit]]:
        return [(torch.arange(self.batch, device=self.rows.device), self.split)]


class JointBlend:
    """CrossAttnInterpolate's state on one patched model (what the hooks below share)."""

    def __init__(self, family: JointFamily, dm, conditioning_b, mask_a_at: Callable, strength: float,
                 window: tuple[float, float], chosen: list, all_blocks: bool, pooled_from: str):
        self.family, self.dm, self.conditioning_b = family, dm, conditioning_b
        self.mask_a_at, self.strength = mask_a_at, float(strength)
        self.sigma_start, self.sigma_end = window
        self.chosen, self.all_blocks, self.pooled_from = frozenset(chosen), all_blocks, pooled_from
        self._b_cache: dict = {}

    def active(self, sigma: float | None) -> bool:
        return sigma is None or self.sigma_end <= sigma <= self.sigma_start

    def weights(self, grids: list[tuple[int, int]], device) -> list[torch.Tensor]:
        """A's weight on every shared token (image grid first, then each reference's grid)."""
        return [blend_weights(self.mask_a_at(h, w, device), self.strength) for h, w in grids]

    def b_conds(self, base_model, x: torch.Tensor) -> dict:
        key = (tuple(x.shape[1:]), str(x.device))
        if key not in self._b_cache:
            self._b_cache = {key: model_conds_of(base_model, self.conditioning_b, x)}
        return self._b_cache[key]

    def mode(self, x: torch.Tensor, kwargs: dict) -> str:
        return weights_mode(torch.cat(self.weights(self.family.grids(x, kwargs), "cpu")))

    # -- CALC_COND_BATCH: the whole-B end and the global inputs, on the sampler's own conditionings
    def cond_batch(self, executor, model, conds, x_in, timestep, model_options):
        positive = conds[0] if conds else None
        if positive and self.active(_sigma_of(timestep)):
            conds = [[self._entry(model, e, x_in) for e in positive], *conds[1:]]
        return executor(model, conds, x_in, timestep, model_options)

    def _entry(self, base_model, entry: dict, x: torch.Tensor) -> dict:
        if MARKER in entry:
            raise BlendspaceInputError("the sampled prompt is a mix by attention weight (Slerp Conditioning): "
                                       "CrossAttnInterpolate blends two plain prompts; connect prompt A itself.")
        own = dict(entry["model_conds"])
        refs = own.get("ref_latents")
        weights = torch.cat(self.weights(self.family.grids(x, {"ref_latents": refs.cond if refs else None}), "cpu"))
        b = self.b_conds(base_model, x)
        if weights_mode(weights) == "b" and self.all_blocks:
            for key in self.family.text_keys:
                own.pop(key, None)
                own.update({key: b[key]} if key in b else {})
        self._globals(own, b, mean_weight(weights))
        return {**entry, "model_conds": own}

    def _globals(self, own: dict, b: dict, weight_a: float) -> None:
        """The pooled vector and guidance value: A's, B's or their mix by the mask's mean (``pooled_from``)."""
        if self.pooled_from == POOLED_CHOICES[0]:
            return
        for key in GLOBAL_KEYS:
            if key not in b or key not in own:
                continue
            if self.pooled_from == POOLED_CHOICES[1]:
                own[key] = b[key]
            else:
                a = own[key].cond
                own[key] = own[key]._copy_with(mix_global(a, b[key].cond.to(a.device, a.dtype), weight_a))

    # -- APPLY_MODEL: prompt B's tokens in the forward, and the forward's layout for the attention calls
    def make_state(self, base_model, x, c_crossattn, kwargs, options):
        if c_crossattn is None or not self.active(_sigma_of(options.get("sigmas"))):
            return None
        grids = self.family.grids(x, kwargs)
        weights = self.weights(grids, "cpu")
        mode = weights_mode(torch.cat(weights))
        if mode == "a" or (mode == "b" and self.all_blocks):
            return None  # the model runs unpatched (A), or on B's own conditioning (cond_batch)
        rows = positive_rows(options.get("cond_or_uncond") or [0], x.shape[0])
        if not rows:
            return None
        c, kwargs, split = self.family.extend(c_crossattn, kwargs, _raw(self.b_conds(base_model, x)))
        forward = BlendForward(self.family, self.dm, self.family.layout(split, weights),
                               self.family.text_layout(split), split, torch.tensor(rows, device=x.device),
                               self.chosen, grids[0], x.shape[0])
        return c, kwargs, ForwardState(forward)

    # -- the attention handler: every attention call of a blended forward
    def handler(self, call_next, *args, **kwargs):
        state = forward_state(kwargs.get("transformer_options"), BLEND_KEY)
        if state is None:
            return call_next(*args, **kwargs)
        call = bind_attention_call(call_next, args, kwargs)
        data: BlendForward = state.data
        kind, block = data.family.classify(state, call.length, data.layout.length, data.diffusion_model)
        if kind == "text" and data.text_layout is not None and call.length == data.text_layout.length:
            return separate_prompts_attention(call.q, call.k, call.v, call.mask, data.text_layout, data.rows,
                                              call.attend, call.seq_dim, call.out_seq_dim)
        if kind != "joint":
            return call_next(*args, **kwargs)
        q, k = data.family.fix_joint_call(state, call.q, call.k, call.seq_dim)
        return two_prompt_attention(q, k, call.v, call.mask, data.layout, data.rows, call.attend, call.seq_dim,
                                    call.out_seq_dim, blend=block in data.chosen)


def _install(model, key: str, family: JointFamily, technique, what: str):
    """A clone of ``model`` with ``technique``'s attention handler, forward wrapper (``make_state``), cond-batch
    wrapper and block tracking (where the family has a per-block hook), all under ``key``.

    The hooks are plain functions calling the technique's methods: ``ModelPatcher.clone()`` deep-copies the
    model options, and a deep copy keeps a function as it is but would copy a bound method's object."""
    def handler(call_next, *args, **kwargs):
        return technique.handler(call_next, *args, **kwargs)

    def make_state(*args):
        return technique.make_state(*args)

    def cond_batch(executor, *args):
        return technique.cond_batch(executor, *args)

    m = model.clone()
    dm = diffusion_model(m)
    add_attention_handler(m, key, handler, what)
    add_forward_wrapper(m, key, make_state)
    add_cond_batch_wrapper(m, key, cond_batch)
    if not family.counted:
        track_blocks(m, key, family.blocks(dm), lambda state, name, args: family.fix_block(dm, state, args))
    return m


def blend_prompt_b_joint(model, conditioning_b, mask_a_at: Callable, strength: float, start_percent: float,
                         end_percent: float, blocks: str, pooled_from: str = POOLED_CHOICES[0]):
    """A clone of ``model`` (a joint-attention DiT) whose sampled prompt A is blended with ``conditioning_b``
    per image token by ``mask_a_at(h, w, device)`` (A's weight on an ``h×w`` token grid), ``strength`` scaling
    B's share, on the ``blocks`` named (:func:`blendspace.joint_attention.parse_blocks`: ``all``, ``double``,
    ``single 0-9``...) and within the step window; the pooled vector and guidance value ``pooled_from`` A, B or
    their mix by the mask's mean."""
    what = "Cross-Attention Interpolate"
    family = require_joint_family(model, what)
    if pooled_from not in POOLED_CHOICES:
        raise BlendspaceInputError(f"pooled_and_guidance must be one of {POOLED_CHOICES}, got {pooled_from!r}.")
    dm = diffusion_model(model)
    available = list(family.blocks(dm).values())
    chosen = parse_blocks(blocks, available, family.name)
    blend = JointBlend(family, dm, conditioning_b, mask_a_at, strength, percent_sigmas(model, start_percent, end_percent),
                       chosen, set(chosen) == set(available), pooled_from)
    return _install(model, BLEND_KEY, family, blend, what)


# ------------------------------------------------------------------------- prompt mixing by attention weight

@dataclass
class MixGroup:
    """Batch rows that carry the same mixed prompt: their text split, layouts and weight of B."""

    rows: torch.Tensor
    split: TextSplit
    layout: JointLayout
    text_layout: JointLayout | None
    t: torch.Tensor


@dataclass
class MixForward:
    family: JointFamily
    diffusion_model: object
    groups: list[MixGroup]
    plain: torch.Tensor
    grid: tuple[int, int]

    def splits(self) -> list[tuple[torch.Tensor, TextSplit]]:
        return [(g.rows, g.split) for g in self.groups]


def _uses_patch(family: JointFamily, marker: dict) -> bool:
    """Whether the patch applies a mixed prompt's weights: not where the conditioning's own bias already does
    (Flux and Chroma read it)."""
    return not (marker.get("dense_bias") and family.name in ("Flux", "Chroma"))


class PromptMix:
    """The model patch of Slerp Conditioning's "attention weight" mode (module docstring)."""

    def __init__(self, family: JointFamily, dm):
        self.family, self.dm = family, dm

    def cond_batch(self, executor, model, conds, x_in, timestep, model_options):
        """Hand each marked conditioning's split and weight to the forwards that run it (by the uuid the sampler
        gives every conditioning entry)."""
        markers = {e["uuid"]: e[MARKER] for entries in conds if entries for e in entries
                   if MARKER in e and "uuid" in e and _uses_patch(self.family, e[MARKER])}
        if markers:
            options = dict(model_options.get("transformer_options", {}), **{MIX_MARKERS: markers})
            model_options = {**model_options, "transformer_options": options}
        return executor(model, conds, x_in, timestep, model_options)

    def make_state(self, base_model, x, c_crossattn, kwargs, options):
        markers, uuids = options.get(MIX_MARKERS), options.get("uuids")
        if not markers or not uuids or c_crossattn is None:
            return None
        per = x.shape[0] // len(uuids)
        by_split: dict = {}
        for i, uuid in enumerate(uuids):
            marker = markers.get(uuid)
            if marker is not None:
                self._check(marker, c_crossattn, kwargs)
                key = (tuple(marker["tokens"]), tuple(marker["llama"] or ()))
                by_split.setdefault(key, []).extend((i * per + j, marker["t"]) for j in range(per))
        if not by_split:
            return None
        grids = self.family.grids(x, kwargs)
        shared = [torch.ones(h * w) for h, w in grids]
        groups = [self._group(key, rows_t, shared, x.device) for key, rows_t in by_split.items()]
        mixed = {r for g in groups for r in g.rows.tolist()}
        plain = torch.tensor([r for r in range(x.shape[0]) if r not in mixed], dtype=torch.long, device=x.device)
        return c_crossattn, kwargs, ForwardState(MixForward(self.family, self.dm, groups, plain, grids[0]))

    def _group(self, key, rows_t: list, shared: list, device) -> MixGroup:
        (la, lb), llama = key
        split = TextSplit.a_then_b(la, lb, llama or None)
        rows = torch.tensor([r for r, _ in rows_t], dtype=torch.long, device=device)
        t = torch.tensor([t for _, t in rows_t], dtype=torch.float32, device=device)
        return MixGroup(rows, split, self.family.layout(split, shared), self.family.text_layout(split), t)

    def _check(self, marker: dict, c: torch.Tensor, kwargs: dict) -> None:
        la, lb = marker["tokens"]
        n = int(kwargs["num_tokens"]) if "num_tokens" in kwargs else c.shape[1]
        if n != la + lb:
            raise BlendspaceInputError(f"a prompt mixed by attention weight has {n} tokens where Slerp Conditioning made "
                                       f"{la} + {lb}: connect its output to the sampler without changing its tokens.")

    def handler(self, call_next, *args, **kwargs):
        state = forward_state(kwargs.get("transformer_options"), MIX_KEY)
        if state is None:
            return call_next(*args, **kwargs)
        call = bind_attention_call(call_next, args, kwargs)
        data: MixForward = state.data
        first = data.groups[0]
        kind, _ = data.family.classify(state, call.length, first.layout.length, data.diffusion_model)
        text = kind == "text" and first.text_layout is not None and call.length == first.text_layout.length
        if not text and kind != "joint":
            return call_next(*args, **kwargs)
        q, k = (call.q, call.k) if text else data.family.fix_joint_call(state, call.q, call.k, call.seq_dim)
        return _by_rows(call, q, k, data, text)


def _rows_of(x: torch.Tensor | None, rows: torch.Tensor) -> torch.Tensor | None:
    if x is None or x.shape[0] == 1:
        return x
    return x.index_select(0, rows)


def _by_rows(call: AttentionCall, q: torch.Tensor, k: torch.Tensor, data: MixForward, text: bool) -> torch.Tensor:
    """Each group of rows mixed by its own weights (its text prompts kept apart in a text-only call), the other
    rows as the model made them; reassembled in batch order."""
    out = None
    parts = [(g.rows, g) for g in data.groups] + ([(data.plain, None)] if data.plain.numel() else [])
    for rows, group in parts:
        qr, kr, vr, mask = q.index_select(0, rows), k.index_select(0, rows), call.v.index_select(0, rows), \
            _rows_of(call.mask, rows)
        if group is None:
            part = call.attend(qr, kr, vr, mask)
        elif text:
            every = torch.arange(rows.numel(), device=q.device)
            part = separate_prompts_attention(qr, kr, vr, mask, group.text_layout, every, call.attend, call.seq_dim,
                                              call.out_seq_dim)
        else:
            part = prompt_bias_attention(qr, kr, vr, mask, group.layout, group.t, call.attend, call.seq_dim,
                                         call.out_seq_dim)
        if out is None:
            out = part.new_zeros((q.shape[0], *part.shape[1:]))
        out.index_copy_(0, rows, part)
    return out


def prompt_mix_patch(model):
    """A clone of ``model`` that applies the weights of prompts mixed by Slerp Conditioning's "attention weight"
    mode (the per-key bias through the attention override, with each family's position fixes), on every
    family of :data:`COVERED`; other families are refused by name."""
    what = "Prompt Mix Attention Patch"
    family = require_joint_family(model, what)
    mix = PromptMix(family, diffusion_model(model))
    return _install(model, MIX_KEY, family, mix, what)


MIX_MODE_NAME = "Slerp Conditioning's mode 'attention weight (joint attention)'"
CHECK_KEY = "blendspace_prompt_mix_check"
_CHECK_HOOK: list = []
"""The one hook group :func:`with_sampling_check` attaches (one object, so two checked conditionings still batch)."""


def with_sampling_check(conditioning: list) -> list:
    """``conditioning`` (Slerp Conditioning's attention-weight mix) with a ComfyUI hook (``comfy.hooks``, the way core's
    hook nodes put LoRAs and wrappers on a prompt) on its mixed entries: its ``CALC_COND_BATCH`` wrapper,
    :func:`check_mix_applied`, stops the sampler before the model first runs when the model would read the mixed
    prompt without its weights. Returned as it is where nothing is mixed (t = 0 or 1) and on a ComfyUI without
    hooks (the 2024 one, which has none of the joint-attention families)."""
    try:
        import comfy.hooks as hooks
        from comfy.patcher_extension import WrappersMP
    except ImportError:
        return conditioning
    if not any(MARKER in entry[1] for entry in conditioning):
        return conditioning
    if not _CHECK_HOOK:
        group = hooks.HookGroup()
        group.add(hooks.TransformerOptionsHook({"wrappers": {WrappersMP.CALC_COND_BATCH: {CHECK_KEY: [check_mix_applied]}}}))
        _CHECK_HOOK.append(group)
    return hooks.set_hooks_for_conditioning(conditioning, _CHECK_HOOK[0])


def check_mix_applied(executor, base_model, conds, x_in, timestep, model_options):
    """The sampling-time check of a mixed prompt (``CALC_COND_BATCH`` wrapper): refuses, naming the family, a model
    outside :data:`COVERED`, and a model whose family reads no weights from the conditioning (SD3 / SD3.5, HiDream,
    Qwen-Image, Lumina 2; Flux Kontext with reference latents) when Prompt Mix Attention Patch is not on it."""
    markers = [e[MARKER] for entries in conds if entries for e in entries if MARKER in e]
    if markers:
        from comfy.patcher_extension import WrappersMP
        family = joint_family(base_model)
        if family is None:
            raise BlendspaceInputError(f"{MIX_MODE_NAME} does not support this model ({family_name(base_model)}): it "
                                       f"mixes prompts in the joint attention of {COVERED}. Use mode 'whole tensor "
                                       "(source)' or 'per token'.")
        wrappers = model_options.get("transformer_options", {}).get("wrappers", {})
        if MIX_KEY not in wrappers.get(WrappersMP.CALC_COND_BATCH, {}) and any(_uses_patch(family, m) for m in markers):
            which = "Flux with reference latents" if family.name == "Flux" else family.name
            raise BlendspaceInputError(f"{MIX_MODE_NAME}: {which} reads no attention weights from the conditioning, so "
                                       "the model needs Prompt Mix Attention Patch: put it between the model loader and "
                                       "the sampler (without it the prompts would be read side by side, t ignored).")
    return executor(base_model, conds, x_in, timestep, model_options)


def two_prompt_route(model, what: str) -> str:
    """Where ``what`` blends two prompts in ``model``: ``"joint"`` (a joint-attention family of :data:`COVERED`),
    ``"unet"`` (U-Net cross-attention: SD1.x, SD2.x, SDXL), or a refusal naming the family."""
    from .cross_attention import transformer_blocks
    if joint_family(model) is not None:
        return "joint"
    if transformer_blocks(diffusion_model(model)):
        return "unet"
    raise BlendspaceInputError(f"{what} does not support this model ({family_name(model)}): it blends two prompts in "
                               f"U-Net cross-attention (SD1.x, SD2.x, SDXL) or in joint attention ({COVERED}). Use "
                               "DualStyleEpsilonMix instead.")
