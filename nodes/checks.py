"""The entry check every node runs before any work: each input checked by its declared socket type (finite
numbers, whole integers, latents and conditionings that fit the connected model, RGB images, finite tensors),
with a clear error naming the input, what was expected and what came. Imports no ComfyUI: the model facts come
from ``runtime.model_facts``, the checks themselves from ``blendspace/validation.py``."""

from __future__ import annotations

import functools
import inspect

import torch

from ..blendspace import validation
from ..blendspace.errors import BlendspaceInputError
from .runtime.model_facts import context_width, latent_channels, model_family


def declared_types(cls) -> dict[str, str]:
    """``{input name: socket type}`` of a node class (combo inputs, declared as lists, are left out)."""
    spec = cls.INPUT_TYPES()
    return {name: decl[0] for part in ("required", "optional") for name, decl in spec.get(part, {}).items()
            if isinstance(decl, (tuple, list)) and decl and isinstance(decl[0], str)}


def _check_extras(value, name: str, kind: str) -> None:
    """Finite tensors inside CLIP_VISION_OUTPUT and CLIP target inputs; a MODEL input that is a model."""
    if kind == "MODEL" and not hasattr(value, "model"):
        raise BlendspaceInputError(f"{name}: expected a MODEL, got {type(value).__name__}: connect a checkpoint "
                                   "loader's MODEL output.")
    items = value.items() if isinstance(value, dict) else vars(value).items() if hasattr(value, "__dict__") else ()
    if kind in ("CLIP_VISION_OUTPUT", "BLENDSPACE_CLIP_TARGET"):
        for key, tensor in items:
            if isinstance(tensor, torch.Tensor):
                validation.finite_tensor(tensor, f"{name}'s {key}")


def check_inputs(types: dict[str, str], values: dict) -> dict:
    """Check every value of a node call by its declared socket type; returns the values to call the node with
    (IMAGE inputs as RGB, new tensors, never the caller's changed). Latents and conditionings are checked
    against the connected MODEL (its latent channels, its token width) and conditionings against each other."""
    out = dict(values)
    model = next((v for n, v in values.items() if types.get(n) == "MODEL" and v is not None), None)
    family = model_family(model) if model is not None else "the model"
    channels = latent_channels(model) if model is not None else None
    widths = {}
    for name, value in values.items():
        kind = types.get(name)
        if value is None or kind is None:
            continue
        if kind == "FLOAT":
            validation.finite_float(value, name)
        elif kind == "INT":
            validation.whole_number(value, name)
        elif kind == "LATENT":
            validation.check_latent(value, name, channels, family)
        elif kind == "CONDITIONING":
            widths[name] = validation.check_conditioning(value, name)
        elif kind == "IMAGE":
            out[name] = validation.check_image(value, name)
        elif kind == "MASK":
            validation.check_mask(value, name)
        else:
            _check_extras(value, name, kind)
    context = context_width(model) if model is not None and widths else None
    validation.same_width(widths, context, family)
    return out


def checked(cls):
    """Wrap ``cls``'s FUNCTION so that every call first passes :func:`check_inputs` (same signature, same
    inputs and outputs); applied once to every node class when the pack is loaded."""
    fn = inspect.getattr_static(cls, cls.FUNCTION)
    if not inspect.isfunction(fn) or getattr(fn, "__blendspace_checked__", False):
        return cls
    signature = inspect.signature(fn)
    var_kw = next((p.name for p in signature.parameters.values() if p.kind is p.VAR_KEYWORD), None)
    types: dict[str, str] = {}

    @functools.wraps(fn)
    def entry(self, *args, **kwargs):
        if not types:
            types.update(declared_types(cls))
        bound = signature.bind(self, *args, **kwargs)
        extra = bound.arguments.get(var_kw, {}) if var_kw else {}
        given = {k: v for k, v in {**bound.arguments, **extra}.items() if k in types}
        for name, value in check_inputs(types, given).items():
            (extra if name in extra else bound.arguments)[name] = value
        return fn(*bound.args, **bound.kwargs)

    entry.__blendspace_checked__ = True
    setattr(cls, cls.FUNCTION, entry)
    return cls
