"""Generic pieces for techniques that act inside the attention calls of a DiT, on the current ComfyUI's hooks
(``optimized_attention_override`` through ``attention.add_attention_handler``, ``patches_replace["dit"]``,
``comfy.patcher_extension`` wrappers). Shared by the joint-attention prompt blend and meant for any other
technique of the kind (a reference-image dial biases reference keys the same way):

- :func:`bind_attention_call`: the arguments of one attention call, normalised (the families pass heads, the mask
  and ``skip_reshape`` positionally or by keyword), with :meth:`AttentionCall.attend` to run the model's own kernel
  on any subset of the tokens, and :func:`attend_with_key_bias`, the call with a per-key bias added to whatever
  mask the model passed (:func:`merge_key_bias`);
- :class:`ForwardState`, :func:`add_forward_wrapper`, :func:`forward_state`: per-forward data put into
  ``transformer_options`` by a model-level (``APPLY_MODEL``) wrapper, so every attention call of that forward sees
  it, with a call counter that starts at 0 in every forward (how blocks are counted where a family has no
  per-block hook);
- :func:`track_blocks`: chained ``patches_replace["dit"]`` patches that record which block is running.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .attention import chain_block_replace


def _kernel_signature(q, k, v, heads, mask=None, attn_precision=None, skip_reshape=False, skip_output_reshape=False,
                      **kwargs):
    """The parameters every ComfyUI attention kernel takes, in order (``attention_sub_quad`` names the first three
    ``query, key, value``; no model passes them by keyword)."""


KERNEL = inspect.signature(_kernel_signature)


@dataclass
class AttentionCall:
    """One attention call as the model made it: ``q``/``k``/``v`` (sequence on :attr:`seq_dim`), the kernel's
    options, every other keyword (``transformer_options``, ComfyUI's ``_inside_attn_wrapper``) kept as received."""

    call_next: Callable
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    heads: int
    mask: torch.Tensor | None
    options: dict
    rest: dict

    @property
    def seq_dim(self) -> int:
        """Where the tokens are in q/k/v: ``(B, H, L, D)`` with ``skip_reshape``, else ``(B, L, H·D)``."""
        return 2 if self.options.get("skip_reshape") else 1

    @property
    def out_seq_dim(self) -> int:
        return 2 if self.options.get("skip_output_reshape") else 1

    @property
    def length(self) -> int:
        """Number of queries (tokens of ``q``)."""
        return int(self.q.shape[self.seq_dim])

    @property
    def key_count(self) -> int:
        """Number of keys (tokens of ``k``)."""
        return int(self.k.shape[self.seq_dim])

    @property
    def transformer_options(self) -> dict:
        return self.rest.get("transformer_options") or {}

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The rest of the attention chain (ComfyUI's kernel) on these tensors, with this call's options."""
        return self.call_next(q, k, v, self.heads, mask=mask, **self.options, **self.rest)

    def run_as_received(self) -> torch.Tensor:
        return self.attend(self.q, self.k, self.v, self.mask)


def bind_attention_call(call_next: Callable, args: tuple, kwargs: dict) -> AttentionCall:
    """Normalise one call received by an attention handler (``handler(call_next, *args, **kwargs)``)."""
    bound = KERNEL.bind(*args, **kwargs)
    bound.apply_defaults()
    a = bound.arguments
    options = {"attn_precision": a["attn_precision"], "skip_reshape": a["skip_reshape"],
               "skip_output_reshape": a["skip_output_reshape"]}
    return AttentionCall(call_next, a["q"], a["k"], a["v"], a["heads"], a["mask"], options, dict(a["kwargs"]))


def merge_key_bias(mask: torch.Tensor | None, bias: torch.Tensor) -> torch.Tensor:
    """``mask`` (None; a bool keep-mask, True = attend; or an additive float mask) plus an additive per-key ``bias``
    ``(B, 1, Lk)``, as one additive float mask in ``bias``'s dtype. Masks come in the forms ComfyUI's kernels take:
    ``(Lq, Lk)`` (every row), ``(B, Lq, Lk)`` or ``(B, H, Lq, Lk)``; a 4-D mask gets the bias as ``(B, 1, 1, Lk)``, so a
    row's bias never lands on another row or head."""
    if mask is None:
        return bias
    if mask.dtype == torch.bool:
        mask = torch.zeros(mask.shape, dtype=bias.dtype, device=bias.device).masked_fill(~mask, float("-inf"))
    if mask.dim() == 4:
        bias = bias.unsqueeze(1)
    return mask.to(bias.dtype) + bias


def attend_with_key_bias(call: AttentionCall, bias: torch.Tensor) -> torch.Tensor:
    """The call with an additive per-key bias ``(B, 1, L)`` added to its own mask (:func:`merge_key_bias`;
    broadcast over queries and heads, which every kernel takes without a dense mask), in q's dtype."""
    return call.attend(call.q, call.k, call.v, merge_key_bias(call.mask, bias.to(call.q.dtype)))


def key_bias_handler(bias_for: Callable[[AttentionCall], torch.Tensor | None]) -> Callable:
    """A dispatcher handler (``attention.add_attention_handler``) that adds ``bias_for(call)``, a ``(batch, 1, keys)``
    tensor, to each attention call's mask; where it gives None the call runs as it came."""
    def handler(call_next, *args, **kwargs):
        call = bind_attention_call(call_next, args, kwargs)
        bias = bias_for(call)
        if bias is None:
            return call_next(*args, **kwargs)
        return attend_with_key_bias(call, bias)
    return handler


@dataclass
class ForwardState:
    """What a technique needs in every attention call of one model forward: its ``data``, the block running now
    (set by :func:`track_blocks`) and the number of attention calls seen so far in this forward."""

    data: object
    block: tuple[str, int] | None = None
    calls: int = 0
    cache: dict = field(default_factory=dict)

    def next_call(self) -> int:
        """This call's index in the forward (0, 1, ...): how blocks are counted without a per-block hook."""
        index = self.calls
        self.calls += 1
        return index


def forward_state(transformer_options: dict | None, key: str) -> ForwardState | None:
    return (transformer_options or {}).get(key)


MakeState = Callable[..., "tuple[torch.Tensor, dict, ForwardState] | None"]


def add_forward_wrapper(model, key: str, make_state: MakeState) -> None:
    """Add an ``APPLY_MODEL`` wrapper to ``model`` (a clone the caller owns) that, before every model forward,
    calls ``make_state(base_model, x, c_crossattn, kwargs, transformer_options)``. It returns None (the forward
    runs unchanged) or ``(c_crossattn, kwargs, state)``: the forward then runs with those inputs and with
    ``state`` under ``key`` in a copy of its ``transformer_options``. A wrapper already under ``key`` is replaced
    (a node applied twice)."""
    from comfy.patcher_extension import WrappersMP

    def wrapper(executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options=None, **kwargs):
        options = transformer_options if transformer_options is not None else {}
        made = make_state(executor.class_obj, x, c_crossattn, kwargs, options)
        if made is None:
            return executor(x, t, c_concat, c_crossattn, control, options, **kwargs)
        c_crossattn, kwargs, state = made
        return executor(x, t, c_concat, c_crossattn, control, {**options, key: state}, **kwargs)

    model.remove_wrappers_with_key(WrappersMP.APPLY_MODEL, key)
    model.add_wrapper_with_key(WrappersMP.APPLY_MODEL, key, wrapper)


def add_cond_batch_wrapper(model, key: str, wrapper: Callable) -> None:
    """Add ``wrapper(executor, model, conds, x_in, timestep, model_options)`` as the ``CALC_COND_BATCH`` wrapper
    under ``key`` (replacing one already there): it sees the sampler's processed conditionings of every step."""
    from comfy.patcher_extension import WrappersMP
    model.remove_wrappers_with_key(WrappersMP.CALC_COND_BATCH, key)
    model.add_wrapper_with_key(WrappersMP.CALC_COND_BATCH, key, wrapper)


OnBlock = Callable[[ForwardState, tuple[str, int], dict], dict]


def track_blocks(model, key: str, blocks: dict[tuple[str, int], tuple[str, int]], on_block: OnBlock | None = None) \
        -> None:
    """Replace patches on every DiT block ``blocks`` names (``{("double_block", 3): ("double", 3)}``, ComfyUI's
    key → the technique's name) that set ``state.block`` while the block runs, in forwards that carry a
    :class:`ForwardState` under ``key``; ``on_block(state, name, args)`` may return changed block arguments.
    A patch already on a block is chained."""

    def make(name: tuple[str, int]):
        def chained(previous):
            def replace(args, extra):
                state = forward_state(args.get("transformer_options"), key)
                if state is not None:
                    state.block = name
                    args = on_block(state, name, args) if on_block is not None else args
                try:
                    return previous(args, extra) if previous is not None else extra["original_block"](args)
                finally:
                    if state is not None:
                        state.block = None
            return replace
        return chained

    for comfy_key, name in blocks.items():
        chain_block_replace(model, "dit", [comfy_key], make(name))
