"""The entry check every node runs before any work, driven by the node's own ``INPUT_TYPES``: each input checked
by its declared socket type and limits, with a clear error naming the input, what was expected and what came.

- INT and FLOAT: a finite number (a whole one for INT) within the declared ``min``/``max``; NaN is refused
  (ComfyUI's own min/max check lets it through, and API prompts or other packs' nodes skip that check).
- Combos (a declared list of choices, computed lists such as the sampler names included, re-read on every
  call): one of the choices. Inputs a node lists in ``FILE_INPUTS`` choose a file in a model folder; their
  list changes as files come and go, so only the type is checked here and the node says which folders it
  searched when the file is not there.
- BOOLEAN and STRING: a bool, a text. A required input may not be ``None``.
- IMAGE, MASK, LATENT, CONDITIONING: shape, dtype, range and finiteness (``blendspace/validation.py``);
  8-bit and fp16 images are converted to float32 0-1, RGBA and gray to RGB; latents and conditionings must fit
  the connected MODEL (latent channels, token width, the pooled vector's width where the model reads it as
  it is), a VAE must make the MODEL's latents. Latents are 4-D image latents, except the inputs a node lists
  in ``VIDEO_LATENTS``, which may also be 5-D when the MODEL reads video-format latents (Qwen-Image).
- Models and the pack's own objects (MODEL, VAE, CLIP, CLIP_VISION, CLIP_VISION_OUTPUT, open_clip models, CLIP
  targets, CycleDiffusion noises): the kind of object the socket carries, so a CLIP vision model wired where a
  VAE is expected is refused by name instead of failing deep inside.

Converted values are new objects: the caller's are never changed. Imports no ComfyUI: the model facts come from
``runtime.model_facts``.
"""

from __future__ import annotations

import functools
import inspect
from typing import NamedTuple

import torch

from ..blendspace import validation
from ..blendspace.cycle_diffusion import CycleNoises
from ..blendspace.errors import BlendspaceInputError
from .inputs import OPEN_CLIP_TYPE
from .runtime.model_facts import context_width, latent_channels, latent_dimensions, model_family, pooled_width


class Declared(NamedTuple):
    """One declared input: its socket type (or the tuple of choices of a combo), its options, whether required."""

    kind: str | tuple
    options: dict
    required: bool


def declared_inputs(cls) -> dict[str, Declared]:
    """``{input name: Declared}`` of a node class, from its ``INPUT_TYPES`` (called afresh: file lists change)."""
    spec = cls.INPUT_TYPES()
    out = {}
    for part in ("required", "optional"):
        for name, decl in spec.get(part, {}).items():
            if not isinstance(decl, (tuple, list)) or not decl:
                continue
            kind = decl[0] if isinstance(decl[0], str) else tuple(decl[0])
            options = decl[1] if len(decl) > 1 and isinstance(decl[1], dict) else {}
            out[name] = Declared(kind, options, part == "required")
    return out


OBJECT_KINDS = {
    "MODEL": (("model", "clone", "model_options"), "a MODEL (connect a checkpoint loader's MODEL output)"),
    "VAE": (("encode", "decode", "first_stage_model"), "a VAE (connect Load VAE or a checkpoint loader's VAE output)"),
    "CLIP": (("tokenize", "encode_from_tokens"), "a CLIP text model (connect a checkpoint loader's CLIP output)"),
    "CLIP_VISION": (("encode_image", "model"), "a CLIP vision model (connect Load CLIP Vision)"),
    OPEN_CLIP_TYPE: (("model", "image_features", "encode_texts"), "an open_clip model (connect Load open_clip Model)"),
}
"""Socket type → (attributes an object of that kind has, what to connect)."""


def _kind_error(name: str, expected: str, value) -> BlendspaceInputError:
    return BlendspaceInputError(f"{name}: expected {expected}, got {type(value).__name__}.")


def _check_tensors(fields: dict, name: str) -> None:
    for key, tensor in fields.items():
        if isinstance(tensor, torch.Tensor):
            validation.finite_tensor(tensor, f"{name}'s {key}")


def _vision_output(value, name: str) -> None:
    """A CLIP_VISION_OUTPUT (core CLIP Vision Encode): an object or dict of finite tensors, among them
    ``image_embeds`` (batch, width) or ``last_hidden_state``."""
    fields = value if isinstance(value, dict) else vars(value) if hasattr(value, "__dict__") else None
    tensors = {k: v for k, v in (fields or {}).items() if isinstance(v, torch.Tensor)}
    if not {"image_embeds", "last_hidden_state"} & set(tensors):
        raise _kind_error(name, "a CLIP_VISION_OUTPUT (connect CLIP Vision Encode)", value)
    _check_tensors(tensors, name)
    embeds = tensors.get("image_embeds")
    if embeds is not None and (embeds.dim() != 2 or embeds.numel() == 0):
        raise BlendspaceInputError(f"{name}'s image_embeds has shape {tuple(embeds.shape)}: expected (batch, width), "
                                   "as CLIP Vision Encode makes it.")


def _clip_target(value, name: str) -> None:
    """A Slerp CLIP Image Embeds target: ``{"embeds": (batch, dim) finite, "dim": dim}``."""
    embeds = value.get("embeds") if isinstance(value, dict) else None
    if not isinstance(embeds, torch.Tensor) or embeds.dim() != 2 or embeds.numel() == 0:
        raise _kind_error(name, "a CLIP target (connect Slerp CLIP Image Embeds)", value)
    validation.finite_tensor(embeds, f"{name}'s embeds")
    if value.get("dim") != embeds.shape[-1]:
        raise BlendspaceInputError(f"{name} says it is {value.get('dim')}-d but holds {embeds.shape[-1]}-d embeddings: "
                                   "connect Slerp CLIP Image Embeds' output as it is.")


def _check_object(value, name: str, kind: str) -> None:
    """Models and the pack's own objects: the kind the socket carries, with finite tensors."""
    if kind in OBJECT_KINDS:
        attributes, expected = OBJECT_KINDS[kind]
        if not all(hasattr(value, a) for a in attributes):
            raise _kind_error(name, expected, value)
    elif kind == "CLIP_VISION_OUTPUT":
        _vision_output(value, name)
    elif kind == "BLENDSPACE_CLIP_TARGET":
        _clip_target(value, name)
    elif kind == "BLENDSPACE_CYCLE":
        if not isinstance(value, CycleNoises) or not value.noises:
            raise _kind_error(name, "CycleDiffusion noises (connect CycleDiffusion Invert)", value)
        _check_tensors(dict(enumerate(value.noises)), name)


def _check_value(name: str, value, decl: Declared, file_input: bool):
    """One non-None input value checked by its declaration; returns the value to call the node with."""
    kind = decl.kind
    if isinstance(kind, tuple):
        return validation.text(value, name) if file_input else validation.choice(value, name, kind)
    if kind in ("INT", "FLOAT"):
        return validation.number(value, name, kind, decl.options.get("min"), decl.options.get("max"))
    if kind == "BOOLEAN":
        return validation.boolean(value, name)
    if kind == "STRING":
        return validation.text(value, name)
    if kind == "IMAGE":
        return validation.check_image(value, name)
    if kind == "MASK":
        return validation.check_mask(value, name)
    _check_object(value, name, kind)
    return value


class _Model(NamedTuple):
    model: object
    family: str
    channels: int | None
    video: bool
    """The model reads video-format (5-D) latents."""


def _check_fit(types: dict[str, str], values: dict, model: _Model, out: dict, video_inputs: tuple[str, ...] = ()) -> None:
    """Latents, conditionings and VAEs against the connected MODEL (and conditionings against each other)."""
    widths = {}
    for name, value in values.items():
        kind = types.get(name)
        if value is None:
            continue
        if kind == "LATENT":
            out[name] = validation.check_latent(value, name, model.channels, model.family,
                                                video=model.video and name in video_inputs)
        elif kind == "CONDITIONING":
            widths[name] = validation.check_conditioning(value, name)
        elif kind == "VAE" and model.channels is not None:
            made = getattr(value, "latent_channels", None)
            if isinstance(made, int) and made != model.channels:
                raise BlendspaceInputError(
                    f"{name} makes {made}-channel latents but {model.family} works on {model.channels}-channel "
                    "latents: connect the VAE of this model's checkpoint (or its family's VAE).")
    context = context_width(model.model) if model.model is not None and widths else None
    validation.same_width(widths, context, model.family)
    pooled = pooled_width(model.model) if model.model is not None and widths else None
    for name in widths if pooled is not None else ():
        validation.pooled_fits(out[name], name, pooled, model.family)


def check_inputs(declared: dict[str, Declared], values: dict, file_inputs: tuple[str, ...] = (),
                 video_inputs: tuple[str, ...] = ()) -> dict:
    """Check every value of a node call by its declaration; returns the values to call the node with (numbers as
    int/float, IMAGE inputs as float32 RGB, new tensors and dicts where converted, never the caller's changed).
    Latents, conditionings and VAEs are checked against the connected MODEL (its latent channels, its token
    width), and conditionings against each other. ``video_inputs``: LATENT inputs that may be 5-D when the
    MODEL reads video-format latents (the node handles them)."""
    out = dict(values)
    for name, value in values.items():
        decl = declared.get(name)
        if decl is None:
            continue
        if value is None:
            if decl.required:
                raise BlendspaceInputError(f"{name} is missing (None): connect it or give it a value.")
            continue
        out[name] = _check_value(name, value, decl, name in file_inputs)
    types = {n: d.kind for n, d in declared.items() if isinstance(d.kind, str)}
    found = next((v for n, v in values.items() if types.get(n) == "MODEL" and v is not None), None)
    model = _Model(found, model_family(found) if found is not None else "the model",
                   latent_channels(found) if found is not None else None,
                   found is not None and latent_dimensions(found) == 3)
    _check_fit(types, out, model, out, video_inputs)
    return out


def checked(cls):
    """Wrap ``cls``'s FUNCTION so that every call first passes :func:`check_inputs` (same signature, same
    inputs and outputs); applied once to every node class when the pack is loaded."""
    fn = inspect.getattr_static(cls, cls.FUNCTION)
    if not inspect.isfunction(fn) or getattr(fn, "__blendspace_checked__", False):
        return cls
    signature = inspect.signature(fn)
    var_kw = next((p.name for p in signature.parameters.values() if p.kind is p.VAR_KEYWORD), None)

    @functools.wraps(fn)
    def entry(self, *args, **kwargs):
        declared = declared_inputs(cls)
        bound = signature.bind(self, *args, **kwargs)
        extra = bound.arguments.get(var_kw, {}) if var_kw else {}
        given = {k: v for k, v in {**bound.arguments, **extra}.items() if k in declared}
        for name, value in check_inputs(declared, given, tuple(getattr(cls, "FILE_INPUTS", ())),
                                        tuple(getattr(cls, "VIDEO_LATENTS", ()))).items():
            (extra if name in extra else bound.arguments)[name] = value
        return fn(*bound.args, **bound.kwargs)

    entry.__blendspace_checked__ = True
    setattr(cls, cls.FUNCTION, entry)
    return cls
