"""The reference dial through ComfyUI's own hooks (docs/techniques.md, "Reference mixing on edit models").

What the node hands back:

- conditionings where a reference whose multiplier is 0 is left out of ``reference_latents`` (exactly what core
  samples without it), entries that need the dial tagged with a :class:`~.reference_state.DialTag` in their
  ``model_conds`` (ComfyUI passes it to the model as an extra input, per batch of rows), and the sigma window as
  ``start_percent`` / ``end_percent`` (core's ConditioningSetTimestepRange): the dialled entries inside, the
  given ones outside;
- a model clone with an ``APPLY_MODEL`` wrapper that turns the tag into the call's
  :class:`~.reference_state.DialForward`, the per-key bias handler in the attention dispatcher and, where the
  references move, Flux's ``post_input`` patch (added per call) or Qwen-Image's dit block replacement.

When no entry needs the dial (the ends, strengths 0 or 1) the model comes back unpatched and the conditionings
are core's own: the result is core's, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...blendspace.errors import BlendspaceInputError
from ...blendspace.reference_mix import (
    MODES,
    PROMPTS,
    presence,
    prompt_weights,
    reference_multipliers,
    slerp_multiplier,
    slerp_prompt_weights,
    slerp_references,
)
from .attention import add_attention_handler, chain_block_replace
from .attention_calls import AttentionCall, key_bias_handler
from .model_facts import family_id, family_name, latent_channels, latent_dimensions
from .reference_state import STATE_KEY, TAG_KEY, DialForward, DialTag

WHAT = "Mix Two References"
FAMILIES = {"Flux": "flux", "FluxSchnell": "flux", "FluxInpaint": "flux", "QwenImage": "qwen", "Omnigen2": "omnigen2"}
"""``supported_models`` classes whose models read ``reference_latents`` → the dial's family kind."""
REFUSED = {
    "Chroma": "Chroma never reads reference latents (its model drops them)",
    "ChromaRadiance": "Chroma Radiance never reads reference latents (its model drops them)",
    "WAN21_T2V": "Wan reads only the last reference latent, and only with a reference convolution",
    "WAN22_T2V": "Wan reads only the last reference latent, and only with a reference convolution",
    "WAN21_I2V": "Wan reads only the last reference latent, and only with a reference convolution",
}
ONLY_INPUTS = {"conditioning": ("conditioning_a_only", "conditioning_b_only"),
               "negative": ("negative_a_only", "negative_b_only")}


@dataclass(frozen=True)
class Dial:
    """The node's settings: mode, weight w, the two strengths, the pair (0-based reference indices) and the
    window (fractions of the schedule)."""
    mode: str
    weight: float
    strength_a: float
    strength_b: float
    pair: tuple[int, int] = (0, 1)
    window: tuple[float, float] = (0.0, 1.0)


def supports_reference_mix() -> bool:
    """Whether this ComfyUI has the hooks the dial uses (wrappers, the attention override, constant conds)."""
    import importlib.util

    import comfy.ldm.modules.attention as attention
    return importlib.util.find_spec("comfy.patcher_extension") is not None and hasattr(attention, "wrap_attn")


def dial_family(model) -> str:
    """The dial's kind of ``model`` ("flux", "qwen", "omnigen2"), or a clear error naming its family."""
    if not supports_reference_mix():
        raise BlendspaceInputError(f"{WHAT} needs a current ComfyUI (its model wrappers and the attention "
                                   "override hook, added in September 2025; 0.3.64 has them): this ComfyUI lacks "
                                   "them. Update ComfyUI.")
    fid = family_id(model)
    if fid in REFUSED:
        raise BlendspaceInputError(f"model: {family_name(model)} is not supported by {WHAT}: {REFUSED[fid]}. Use Flux "
                                   "Kontext or Qwen-Image-Edit.")
    if fid not in FAMILIES:
        raise BlendspaceInputError(f"model: {family_name(model)} has no reference-image input. {WHAT} works with edit "
                                   "models that read reference latents: Flux Kontext, Qwen-Image-Edit (and OmniGen2).")
    return FAMILIES[fid]


def _refs(entry) -> list:
    return list(entry[1].get("reference_latents") or [])


def _check_pair(cond, name: str, pair: tuple[int, int], latent: tuple[int | None, int]) -> None:
    """Every entry of ``cond`` that carries references carries the pair, both latents of the model's kind:
    ``latent`` is its (channels, dimensions), e.g. (16, 4) for Flux's ``(B, C, H, W)``, (16, 5) for Qwen-Image's
    ``(B, C, 1, H, W)``."""
    need = max(pair) + 1
    counts = [len(_refs(e)) for e in cond]
    if not any(counts):
        raise BlendspaceInputError(f"{name} carries no reference latents: chain two ReferenceLatent nodes (Flux "
                                   "Kontext) or give TextEncodeQwenImageEditPlus image1 and image2.")
    for i, (entry, count) in enumerate(zip(cond, counts, strict=True)):
        where = name if len(cond) == 1 else f"{name} (entry {i})"
        if 0 < count < need:
            raise BlendspaceInputError(
                f"{where} carries {count} reference latent{'s' if count > 1 else ''} but reference_a/reference_b "
                f"ask for reference {need}: the dial mixes two references; add the second one (another "
                "ReferenceLatent, or image2 of TextEncodeQwenImageEditPlus).")
        if count:
            _check_latents(where, *(_refs(entry)[j] for j in pair), latent)


def _check_latents(where: str, a, b, latent: tuple[int | None, int]) -> None:
    channels, dims = latent
    if a.shape[1] != b.shape[1]:
        raise BlendspaceInputError(f"{where}: reference A has {a.shape[1]} channels and reference B "
                                   f"{b.shape[1]}: encode both images with the same VAE (this model's).")
    if channels is not None and a.shape[1] != channels:
        raise BlendspaceInputError(f"{where}: the references have {a.shape[1]} channels but the model works "
                                   f"on {channels}-channel latents: encode them with this model's VAE.")
    axes = "batch, channels, frames, height, width" if dims == 5 else "batch, channels, height, width"
    for letter, ref in (("A", a), ("B", b)):
        if ref.dim() != dims:
            raise BlendspaceInputError(f"{where}: reference {letter} is a latent of shape {tuple(ref.shape)} but the "
                                       f"model reads {dims}-D latents ({axes}): encode it with this model's VAE.")


def _check_only(cond, only, name: str, pair: tuple[int, int], dropped: int) -> None:
    """``only`` is ``cond`` encoded without the reference ``pair[dropped]``: same entries, one reference fewer."""
    if len(only) != len(cond):
        raise BlendspaceInputError(f"{name} has {len(only)} entries but the conditioning it goes with has "
                                   f"{len(cond)}: encode the same prompt with one image fewer.")
    for i, (entry, other) in enumerate(zip(cond, only, strict=True)):
        refs = _refs(entry)
        expected = [tuple(r.shape) for j, r in enumerate(refs) if j != pair[dropped]]
        if refs and [tuple(r.shape) for r in _refs(other)] != expected:
            letter = "AB"[1 - dropped]
            raise BlendspaceInputError(
                f"{name} (entry {i}) carries reference latents of shapes {[tuple(r.shape) for r in _refs(other)]}; "
                f"expected {expected}: the same prompt encoded with only image {letter}.")


def _check_not_dialled(conds: dict) -> None:
    """No input has been through the dial already: a second dial would replace the first one's biases."""
    for name, cond in conds.items():
        if any(TAG_KEY in entry[1].get("model_conds", {}) for entry in cond or []):
            raise BlendspaceInputError(f"{name} comes from Mix Two References already: connect the conditioning from "
                                       "before that node (one dial per pair of references).")


def check_inputs(model, conds: dict, dial: Dial) -> str:
    """Every check before any work; returns the family kind. ``conds`` maps input names to conditionings
    (``conditioning`` and ``negative`` required, the ``*_only`` ones may be None)."""
    family = dial_family(model)
    if dial.mode not in MODES:
        raise BlendspaceInputError(f"mode must be one of {MODES}, got {dial.mode!r}")
    if dial.pair[0] == dial.pair[1]:
        raise BlendspaceInputError(f"reference_a and reference_b are both {dial.pair[0] + 1}: choose two different "
                                   "references.")
    if not dial.window[0] < dial.window[1]:
        raise BlendspaceInputError(f"start_percent ({dial.window[0]}) must be below end_percent ({dial.window[1]}).")
    reference_multipliers(dial.weight, dial.strength_a, dial.strength_b)
    _check_not_dialled(conds)
    _check_pair(conds["conditioning"], "conditioning", dial.pair, (latent_channels(model), 2 + latent_dimensions(model)))
    for main, (a_name, b_name) in ONLY_INPUTS.items():
        for name, dropped in ((a_name, 1), (b_name, 0)):  # A-only lacks the pair's B (index 1), B-only its A
            if conds.get(name) is None:
                continue
            if family == "omnigen2":
                raise BlendspaceInputError(f"{name}: on {family_name(model)} the prompt's length sets every "
                                           f"position, so the dial cannot blend two encodings; leave {name} "
                                           "unconnected.")
            _check_only(conds[main], conds[name], name, dial.pair, dropped)
    return family


# ---------------------------------------------------------------------------------------------- conditionings

class EntryMixer:
    """Mixes the entries of one conditioning (and its optional A-only / B-only encodings) for one dial."""

    def __init__(self, dial: Dial, family: str, model, a_only, b_only):
        self.dial, self.family, self.model = dial, family, model
        self.a_only, self.b_only = a_only, b_only

    def __call__(self, index: int, entry) -> tuple[list, bool] | None:
        """The mixed entry and whether it carries a tag; None for an entry without the pair (left as it is)."""
        refs = _refs(entry)
        if len(refs) <= max(self.dial.pair):
            return None
        others = {"a_only": self.a_only[index] if self.a_only else None,
                  "b_only": self.b_only[index] if self.b_only else None}
        if self.dial.mode == MODES[1]:
            return self._slerp(entry, refs, others)
        m_a, m_b = reference_multipliers(self.dial.weight, self.dial.strength_a, self.dial.strength_b)
        weights = prompt_weights(presence(m_a), presence(m_b), others["a_only"] is not None,
                                 others["b_only"] is not None)
        return self._build(entry, refs, {self.dial.pair[0]: m_a, self.dial.pair[1]: m_b}, weights, others)

    def _slerp(self, entry, refs: list, others: dict) -> tuple[list, bool]:
        """Latent-slerp mode: A's slot holds slerp(A, B, w) (A at 0; at 1, B in its own slot), B's is dropped."""
        ia, ib = self.dial.pair
        w = self.dial.weight
        m = slerp_multiplier(w, self.dial.strength_a, self.dial.strength_b)
        weights = slerp_prompt_weights(w, others["a_only"] is not None, others["b_only"] is not None)
        if w == 1.0:
            return self._build(entry, refs, {ia: 0.0, ib: m}, weights, others)
        if w > 0.0:
            base = self.model.model
            mixed = slerp_references(base.process_latent_in(refs[ia]), base.process_latent_in(refs[ib]), w)
            refs = list(refs)
            refs[ia] = base.process_latent_out(mixed).to(refs[ia].dtype)
        return self._build(entry, refs, {ia: m, ib: 0.0}, weights, others)

    def _build(self, entry, refs: list, multipliers: dict[int, float], weights: dict, others: dict):
        """The entry with the references at multiplier 0 left out, the prompt encodings of nonzero weight, and a
        tag where a reference or an encoding needs a bias; a one-image encoding alone, unbiased, is returned as
        connected (core's own)."""
        keep = [i for i in range(len(refs)) if multipliers.get(i, 1.0) != 0.0]
        dialled = tuple((keep.index(i), float(m)) for i, m in sorted(multipliers.items()) if i in keep and m != 1.0)
        names = [n for n in PROMPTS if weights[n] > 0.0]
        if not dialled and names in (["a_only"], ["b_only"]):
            return [others[names[0]][0], dict(others[names[0]][1])], False
        encodings = [(others[n] if n != "both" else entry, weights[n]) for n in names]
        prompts = [(e[0], w) for e, w in encodings]
        tokens = prompts[0][0] if len(prompts) == 1 else torch.cat([t for t, _ in prompts], dim=1)
        options = dict(_mixed_options(entry[1], encodings), reference_latents=[refs[i] for i in keep])
        segments = tuple((int(t.shape[1]), float(w)) for t, w in prompts) if len(prompts) > 1 else ()
        if not dialled and not segments:
            return [tokens, options], False
        tag = DialTag(self.family, dialled, segments)
        options["model_conds"] = {**options.get("model_conds", {}), TAG_KEY: _constant(tag)}
        return [tokens, options], True


MIXED_OPTIONS = ("pooled_output", "guidance")
"""Per-prompt values of an encoding that the model reads beside its tokens (Flux's pooled CLIP vector and
guidance): mixed with the encodings' weights, so they move with the prompt."""


def _mixed_options(options: dict, encodings: list) -> dict:
    """``options`` with each of :data:`MIXED_OPTIONS` the encodings all carry (tensors of one shape, or numbers)
    replaced by their weighted sum; one encoding alone gives its own options."""
    if len(encodings) == 1:
        return dict(encodings[0][0][1])
    out = dict(options)
    for key in MIXED_OPTIONS:
        values = [e[1].get(key) for e, _ in encodings]
        if any(v is None or isinstance(v, bool) for v in values):
            continue
        if all(isinstance(v, (int, float)) for v in values) or (
                all(torch.is_tensor(v) for v in values) and len({tuple(v.shape) for v in values}) == 1):
            out[key] = sum(w * v for v, (_, w) in zip(values, encodings, strict=True))
    return out


def _constant(value):
    import comfy.conds
    return comfy.conds.CONDConstant(value)


def _with_range(entry, start: float, end: float):
    """``entry`` limited to the fraction ``[start, end]`` of the schedule (within its own range); None if empty."""
    s = max(float(entry[1].get("start_percent", 0.0)), start)
    e = min(float(entry[1].get("end_percent", 1.0)), end)
    if s >= e:
        return None
    return [entry[0], dict(entry[1], start_percent=s, end_percent=e)]


def windowed(original: list, mixed: list, window: tuple[float, float]) -> list:
    """Each mixed entry inside the window and its original outside it, as core's ConditioningSetTimestepRange would
    give them (``mixed[i]`` None: entry ``i`` is left as it is); the mixed entries alone for the whole schedule."""
    start, end = window
    whole = start <= 0.0 and end >= 1.0
    out = []
    for entry, new in zip(original, mixed, strict=True):
        if new is None or whole:
            out.append(entry if new is None else new)
            continue
        parts = (_with_range(new, start, end), _with_range(entry, 0.0, start), _with_range(entry, end, 1.0))
        out += [p for p in parts if p is not None]
    return out


def mix_conditioning(cond, a_only, b_only, dial: Dial, family: str, model) -> tuple[list, bool]:
    """``cond`` with the dial applied to every entry that carries the pair; whether any entry is tagged."""
    mixer = EntryMixer(dial, family, model, a_only, b_only)
    mixed = [mixer(i, entry) for i, entry in enumerate(cond)]
    tagged = any(m is not None and m[1] for m in mixed)
    return windowed(list(cond), [m if m is None else m[0] for m in mixed], dial.window), tagged


# ---------------------------------------------------------------------------------------------- the model

def _apply_model_wrapper(executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs):
    """``APPLY_MODEL`` wrapper: a tagged call gets its :class:`DialForward` in ``transformer_options`` (and, on
    Flux, the ``post_input`` patch that moves the references' ids)."""
    tag = kwargs.pop(TAG_KEY, None)
    if tag is None:
        return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
    refs = kwargs.get("ref_latents") or []
    state = DialForward(tag, tuple(x.shape), int(c_crossattn.shape[1]), [tuple(r.shape) for r in refs],
                         kwargs.get("ref_latents_method"))
    options = dict(transformer_options)
    options[STATE_KEY] = state
    if tag.family == "flux" and state.ref_ids is not None:
        patches = dict(options.get("patches", {}))
        patches["post_input"] = [*patches.get("post_input", []), state.flux_post_input]
        options["patches"] = patches
    return executor(x, t, c_concat, c_crossattn, control, options, **kwargs)


def _bias_for(call: AttentionCall):
    state = call.transformer_options.get(STATE_KEY)
    if state is None:
        return None
    return state.bias(call.key_count, int(call.q.shape[0]), call.q.dtype, call.q.device)


def _qwen_block_patch(embedder):
    def make(previous):
        def patch(args, extra):
            state = args["transformer_options"].get(STATE_KEY)
            if state is not None and state.moves_positions:
                args = dict(args, pe=state.qwen_pe(args["pe"], embedder))
            return previous(args, extra) if previous is not None else extra["original_block"](args)
        return patch
    return make


def patched_model(model, family: str):
    """A clone of ``model`` with the dial's wrapper, bias handler and (Qwen-Image) block patches."""
    import comfy.patcher_extension
    out = model.clone()
    out.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, TAG_KEY, _apply_model_wrapper)
    add_attention_handler(out, "reference_mix", key_bias_handler(_bias_for), WHAT)
    if family == "qwen":
        net = out.model.diffusion_model
        keys = [("double_block", i) for i in range(len(net.transformer_blocks))]
        chain_block_replace(out, "dit", keys, _qwen_block_patch(net.pe_embedder))
    return out


def mix_references(model, conds: dict, dial: Dial) -> tuple:
    """The node's work: ``(model, conditioning, negative)`` with the dial applied (inputs checked first).
    ``conds`` holds ``conditioning``, ``negative`` and the optional ``*_only`` encodings (None when absent)."""
    family = check_inputs(model, conds, dial)
    out, any_tag = [], False
    for main, (a_name, b_name) in ONLY_INPUTS.items():
        mixed, tagged = mix_conditioning(conds[main], conds.get(a_name), conds.get(b_name), dial, family, model)
        out.append(mixed)
        any_tag = any_tag or tagged
    return (patched_model(model, family) if any_tag else model, out[0], out[1])
