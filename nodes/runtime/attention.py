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
        raise BlendspaceInputError(f"{what} needs a current ComfyUI (one with the attention override hook, "
                                   "added in September 2025; 0.3.64 has it): this ComfyUI has none. Update ComfyUI.")
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

