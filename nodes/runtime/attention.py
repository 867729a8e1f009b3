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
from dataclasses import dataclass

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
# Generic pieces for handlers that act on one attention call (the reference dial; the joint-attention prompt blend
# has the same pieces under the same names, to be one module when both are in): the call's arguments by name, the
# rest of the chain run on them, and a handler that adds a (batch, 1, keys) bias to every call it is asked to.


def _kernel_signature(q, k, v, heads, mask=None, attn_precision=None, skip_reshape=False, skip_output_reshape=False,
                      **kwargs):
    """The parameters every ComfyUI attention kernel takes, in order (``comfy/ldm/modules/attention.py``;
    ``attention_sub_quad`` names the first three ``query, key, value``, which no model passes by keyword)."""


@dataclass
class AttentionCall:
    """One attention call as the model made it: ``q``/``k``/``v``, the kernel's options (``attn_precision``,
    ``skip_reshape``, ``skip_output_reshape``) and every other keyword (``transformer_options``, ComfyUI's
    ``_inside_attn_wrapper``) kept as received; ``call_next`` is the rest of the dispatcher's chain."""

    call_next: Callable
    q: object
    k: object
    v: object
    heads: int
    mask: object
    options: dict
    rest: dict

    @property
    def seq_dim(self) -> int:
        """Where the tokens are in q/k/v: ``(B, H, L, D)`` with ``skip_reshape``, else ``(B, L, H·D)``."""
        return 2 if self.options.get("skip_reshape") else 1

    @property
    def key_count(self) -> int:
        """Number of keys (tokens of ``k``)."""
        return int(self.k.shape[self.seq_dim])

    @property
    def transformer_options(self) -> dict:
        return self.rest.get("transformer_options") or {}

    def attend(self, q, k, v, mask):
        """The rest of the attention chain (ComfyUI's kernel) on these tensors, with this call's options."""
        return self.call_next(q, k, v, self.heads, mask=mask, **self.options, **self.rest)

    def run_as_received(self):
        return self.attend(self.q, self.k, self.v, self.mask)


def bind_attention_call(call_next: Callable, args: tuple, kwargs: dict) -> AttentionCall:
    """Normalise one call received by a handler (``handler(call_next, *args, **kwargs)``): heads, the mask and
    ``skip_reshape`` come positionally in some families and by keyword in others."""
    import inspect
    bound = inspect.signature(_kernel_signature).bind(*args, **kwargs)
    bound.apply_defaults()
    a = bound.arguments
    options = {name: a[name] for name in ("attn_precision", "skip_reshape", "skip_output_reshape")}
    return AttentionCall(call_next, a["q"], a["k"], a["v"], a["heads"], a["mask"], options, dict(a["kwargs"]))


def merge_key_bias(mask, bias):
    """``mask`` (None, a bool keep-mask or an additive float mask of 2, 3 or 4 dims) plus an additive per-key
    ``bias`` of shape ``(batch, 1, keys)``, as one additive float mask every kernel broadcasts over queries and
    heads (a 4-D mask gets the bias as ``(batch, 1, 1, keys)``)."""
    import torch
    if mask is None:
        return bias
    if mask.dtype == torch.bool:
        mask = torch.zeros(mask.shape, dtype=bias.dtype, device=bias.device).masked_fill(~mask, float("-inf"))
    if mask.dim() == 4:
        bias = bias.unsqueeze(1)
    return mask.to(bias.dtype) + bias


def attend_with_key_bias(call: AttentionCall, bias):
    """The call with an additive per-key bias ``(B, 1, L)`` added to its own mask (broadcast over queries and
    heads, which every kernel takes without a dense mask), in q's dtype."""
    return call.attend(call.q, call.k, call.v, merge_key_bias(call.mask, bias.to(call.q.dtype)))


def key_bias_handler(bias_for: Callable[[AttentionCall], object]) -> Handler:
    """A dispatcher handler that adds ``bias_for(call)`` (a ``(batch, 1, keys)`` tensor, or None to leave the call
    as it came) to each attention call's mask."""
    def handler(call_next, *args, **kwargs):
        call = bind_attention_call(call_next, args, kwargs)
        bias = bias_for(call)
        if bias is None:
            return call_next(*args, **kwargs)
        return attend_with_key_bias(call, bias)
    return handler
