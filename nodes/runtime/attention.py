"""Attention as the techniques call it: ComfyUI's kernel, PyTorch's SDPA for passes that are differentiated, the
one dispatcher that owns ``transformer_options["optimized_attention_override"]``, and chained block replacement.

``optimized_attention_override`` (current ComfyUI, ``comfy/ldm/modules/attention.py``: ``wrap_attn``) is a
single slot that sees every attention call of a model (U-Net and DiT alike, HiDream and Lumina 2 included), with
no block index. Two techniques (the joint-attention prompt blend, the reference dial) and other packs may want
it at once, so Blendspace never writes the slot directly: :func:`add_attention_handler` installs one
:class:`AttentionDispatcher` that calls the named handlers in the order they were added, then an override
another pack had put there before, then ComfyUI's kernel. The 2024 ComfyUI has no such slot.
"""

from __future__ import annotations

from collections.abc import Callable

from ...blendspace.errors import BlendspaceInputError

OVERRIDE = "optimized_attention_override"
Handler = Callable[..., object]
"""``handler(call_next, q, k, v, heads, **kwargs)``: the attention call's own arguments (``mask``,
``skip_reshape``, ``transformer_options`` ... as the model passes them), and ``call_next(q, k, v, heads,
**kwargs)``, the rest of the chain. A handler that does not act on a call returns ``call_next(...)`` as it came."""


def attention(q, k, v, heads):
    """ComfyUI's attention kernel for ``(batch, tokens, heads·dim)`` inputs (same call in both versions)."""
    from comfy.ldm.modules.attention import optimized_attention
    return optimized_attention(q, k, v, heads)


def sdpa_attention(q, k, v, extra_options):
    """An attn1/attn2 replace patch computing plain attention with PyTorch's SDPA kernel."""
    import torch.nn.functional as F
    heads = extra_options["n_heads"]
    b, _, inner = q.shape
    q, k, v = (t.reshape(b, -1, heads, inner // heads).transpose(1, 2) for t in (q, k, v))
    return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, -1, inner)


class AttentionDispatcher:
    """The function in ``optimized_attention_override``: ``handlers`` (``(name, handler)``, outermost first), then
    ``foreign`` (an override that was in the slot before Blendspace's, kept innermost), then ComfyUI's kernel.
    Immutable: :meth:`with_handler` returns a new dispatcher, so a cloned model never changes its source's."""

    def __init__(self, handlers: tuple[tuple[str, Handler], ...] = (), foreign: Callable | None = None):
        self.handlers = tuple(handlers)
        self.foreign = foreign

    def names(self) -> list[str]:
        return [name for name, _ in self.handlers]

    def with_handler(self, name: str, handler: Handler) -> AttentionDispatcher:
        """A dispatcher with ``handler`` under ``name``: in its old place when the name is taken (a node applied
        twice replaces its own handler), else last (innermost of Blendspace's)."""
        handlers = [(n, handler if n == name else h) for n, h in self.handlers]
        if name not in self.names():
            handlers.append((name, handler))
        return AttentionDispatcher(tuple(handlers), self.foreign)

    def __call__(self, func, *args, **kwargs):
        return self._call(0, func, args, kwargs)

    def _call(self, index: int, func, args: tuple, kwargs: dict):
        if index == len(self.handlers):
            if self.foreign is not None:
                return self.foreign(func, *args, **kwargs)
            return func(*args, **kwargs)
        _, handler = self.handlers[index]
        return handler(lambda *a, **k: self._call(index + 1, func, a, k), *args, **kwargs)

    def __deepcopy__(self, memo):  # ModelPatcher.clone() deep-copies model_options; this object never changes
        return self


def supports_attention_override() -> bool:
    """Whether this ComfyUI passes attention calls through ``optimized_attention_override`` (current ComfyUI)."""
    import comfy.ldm.modules.attention as attention
    return hasattr(attention, "wrap_attn")


def add_attention_handler(model, name: str, handler: Handler, what: str) -> None:
    """Add ``handler`` under ``name`` to the dispatcher of ``model`` (a clone the caller owns), installing the
    dispatcher on first use and keeping any override another pack had put in the slot. ``what`` names the
    technique in the error raised on a ComfyUI without the slot."""
    if not supports_attention_override():
        raise BlendspaceInputError(f"{what} needs a current ComfyUI (0.3.50 or newer): this ComfyUI has no "
                                   "attention override hook. Update ComfyUI.")
    options = model.model_options.setdefault("transformer_options", {})
    current = options.get(OVERRIDE)
    dispatcher = current if isinstance(current, AttentionDispatcher) else AttentionDispatcher(foreign=current)
    options[OVERRIDE] = dispatcher.with_handler(name, handler)


def chain_block_replace(model, kind: str, keys: list[tuple], make_replace: Callable[[Callable | None], Callable]) -> None:
    """Register ``make_replace(previous)`` as the ``patches_replace[kind]`` patch of every block key (e.g. kind
    ``"dit"``, key ``("double_block", 3)``), wrapping the patch already there instead of overwriting it."""
    existing = dict(model.model_options.get("transformer_options", {}).get("patches_replace", {}).get(kind, {}))
    for key in keys:
        model.set_model_patch_replace(make_replace(existing.get(key)), kind, key[0], key[1])


# ---------------------------------------------------------------------------------------------- per-key biases
# Generic pieces for handlers that bias attention per key (the reference dial; a two-prompt blend in joint
# attention can share them): the call's arguments by name, and a handler that adds a (batch, 1, keys) bias.

ATTENTION_ALIASES = {"query": "q", "key": "k", "value": "v"}
"""Keyword names some kernels give q, k and v (``attention_sub_quad``)."""


def _attention_call(q, k, v, heads, mask=None, attn_precision=None, skip_reshape=False, skip_output_reshape=False,
                    **kwargs):
    """The parameter order every ComfyUI attention kernel shares (``comfy/ldm/modules/attention.py``)."""


def bind_attention_args(args: tuple, kwargs: dict) -> dict:
    """One attention call's arguments by name (``q k v heads mask attn_precision skip_reshape
    skip_output_reshape`` and every other keyword, ``transformer_options`` included), however the model passed
    them: heads and mask are positional in some families and keywords in others."""
    import inspect
    kwargs = {ATTENTION_ALIASES.get(name, name): value for name, value in kwargs.items()}
    bound = inspect.signature(_attention_call).bind(*args, **kwargs)
    bound.apply_defaults()
    named = dict(bound.arguments)
    return {**named, **named.pop("kwargs")}


def attention_key_count(call: dict) -> int:
    """Number of keys of a bound call: ``k`` is ``(batch, heads, keys, dim)`` with ``skip_reshape``, else
    ``(batch, keys, heads·dim)``."""
    k = call["k"]
    return int(k.shape[-2] if call["skip_reshape"] else k.shape[1])


def merge_key_bias(mask, bias):
    """``mask`` (None, a bool keep-mask or an additive float mask of 2, 3 or 4 dims) plus a per-key additive
    ``bias`` of shape ``(batch, 1, keys)``, as one additive float mask every kernel broadcasts over queries and
    heads."""
    import torch
    if mask is None:
        return bias
    if mask.dtype == torch.bool:
        mask = torch.zeros(mask.shape, dtype=bias.dtype, device=bias.device).masked_fill(~mask, float("-inf"))
    if mask.dim() == 4:
        bias = bias.unsqueeze(1)
    return mask.to(bias.dtype) + bias


def key_bias_handler(bias_for: Callable[[dict], object]) -> Handler:
    """A dispatcher handler that adds ``bias_for(call)`` (a ``(batch, 1, keys)`` tensor in q's dtype, or None to
    leave the call alone) to the attention mask of each call; ``call`` is :func:`bind_attention_args`'s dict."""
    def handler(call_next, *args, **kwargs):
        call = bind_attention_args(args, kwargs)
        bias = bias_for(call)
        if bias is None:
            return call_next(*args, **kwargs)
        call["mask"] = merge_key_bias(call["mask"], bias)
        q, k, v, heads = (call.pop(name) for name in ("q", "k", "v", "heads"))
        return call_next(q, k, v, heads, **call)
    return handler
