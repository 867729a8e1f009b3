"""Two prompts inside one joint attention (docs/techniques.md, "Two prompts in joint attention").

Joint-attention DiTs (Flux, Chroma, SD3/3.5, HiDream, Qwen-Image, Lumina 2) have no text cross-attention:
every block runs ONE attention over the text tokens and the image tokens together, and the text tokens are
updated block by block. Two prompts A (the sampled one) and B are carried as two text streams in the same
sequence, ``[text_A, text_B, image]`` (each family has its own order), and every joint attention call is
computed per token group:

- prompt A's text queries attend to ``[text_A, shared]`` and prompt B's to ``[text_B, shared]``, so each
  text stream evolves exactly as it would with its prompt alone (the two prompts never see each other);
- a shared query (an image token; a reference token of an edit model) at a position with weight ``m`` of A:

      out = m·Attn(q, K_[A, shared], V_[A, shared]) + (1 − m)·Attn(q, K_[B, shared], V_[B, shared])

  dual-style-image-gen's cross-attention interpolation (``blendspace/cross_attention.py``) carried over to
  joint attention: the two attention OUTPUTS are blended per position before the output projection. At
  ``m = 1`` this is the first term exactly, the model's own call with prompt A; at ``m = 0`` the second.

Every call is a plain, unmasked attention over a gathered subset of the tokens (two kernel calls, no dense
mask, so fast kernels stay usable). :func:`two_prompt_attention` is that computation; in blocks outside the
chosen ones (``blend=False``) only prompt B's text queries run the second call, so B's stream stays current.

Prompt mixing by attention weight (Slerp Conditioning's "attention weight" mode): both prompts are
concatenated, each text stream again attends to itself and the shared tokens only, and a shared query
attends to every key with a per-key bias, ``log(1 − t)`` on A's keys and ``log t`` on B's
(:func:`prompt_bias_attention`): its softmax gives A's keys the weight ``(1 − t)·e^{s}`` and B's ``t·e^{s}``.

Pure torch: the attention kernel arrives as ``attend(q, k, v, mask)``, the layout from the runtime.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from .errors import BlendspaceInputError

SHARED, PROMPT_A, PROMPT_B = 0, 1, 2
"""Token groups of a joint sequence: image (and reference) tokens, prompt A's text, prompt B's text."""

Attend = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]
"""``attend(q, k, v, mask) -> out``: the model's own attention kernel on (a subset of) the call's tokens."""


@dataclass(frozen=True)
class JointLayout:
    """Which token of a joint sequence belongs to which group, and A's weight on every shared token.

    ``groups`` (L,) long: SHARED / PROMPT_A / PROMPT_B per token; ``weights`` (L,) float: the weight of A
    for shared tokens (1 on A's text, 0 on B's, unused there)."""

    groups: torch.Tensor
    weights: torch.Tensor
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    @staticmethod
    def from_segments(segments: Sequence[tuple[int, int | torch.Tensor]]) -> JointLayout:
        """A layout from ``(group, n)`` text segments and ``(SHARED, weights)`` shared segments, in sequence
        order (a shared segment given as a count has weight 1)."""
        groups, weights = [], []
        for group, part in segments:
            w = part.reshape(-1).float().cpu() if torch.is_tensor(part) else torch.full((int(part),), 1.0)
            if group == PROMPT_B:
                w = torch.zeros_like(w)
            groups.append(torch.full((w.numel(),), group, dtype=torch.long))
            weights.append(w)
        return JointLayout(torch.cat(groups), torch.cat(weights))

    @property
    def length(self) -> int:
        return int(self.groups.numel())

    def positions(self, *groups: int, device=None) -> torch.Tensor:
        """Sequence positions of the tokens in ``groups``, in order (found once on the CPU, then kept per device:
        no device synchronisation in the attention calls)."""
        key = (groups, str(device))
        if key not in self._cache:
            keep = torch.zeros_like(self.groups, dtype=torch.bool)
            for g in groups:
                keep |= self.groups == g
            self._cache[key] = keep.nonzero().reshape(-1).to(device)
        return self._cache[key]

    def span(self, *groups: int) -> tuple[int, int] | None:
        """``(start, length)`` when the tokens of ``groups`` are one contiguous run, else None."""
        pos = self.positions(*groups, device="cpu")
        if pos.numel() == 0 or int(pos[-1]) - int(pos[0]) + 1 != pos.numel():
            return None
        return int(pos[0]), int(pos.numel())


def blend_weights(mask_a: torch.Tensor, strength: float) -> torch.Tensor:
    """Weight of A per token, ``1 − strength·(1 − m)``, from a mask ``m`` of A (1 = A) on the token grid."""
    m = mask_a.reshape(-1).float().clamp(0.0, 1.0)
    return 1.0 - float(strength) * (1.0 - m)


def weights_mode(weights: torch.Tensor) -> str:
    """``"a"`` when every weight is 1 (prompt A alone), ``"b"`` when every weight is 0, else ``"blend"``."""
    if bool((weights == 1.0).all()):
        return "a"
    if bool((weights == 0.0).all()):
        return "b"
    return "blend"


def select(x: torch.Tensor, positions: torch.Tensor, dim: int) -> torch.Tensor:
    return x.index_select(dim, positions)


def take(x: torch.Tensor, layout: JointLayout, groups: tuple[int, ...], dim: int) -> torch.Tensor:
    """The tokens of ``groups`` along ``dim``: a view when they are contiguous, else a gathered copy."""
    span = layout.span(*groups)
    if span is not None:
        return x.narrow(dim, span[0], span[1])
    return x.index_select(dim, layout.positions(*groups, device=x.device))


def mask_part(mask: torch.Tensor | None, rows: torch.Tensor | None, q_pos: torch.Tensor,
              k_pos: torch.Tensor) -> torch.Tensor | None:
    """The part of an additive attention ``mask`` over the full sequence, ``(B or 1, Lq or 1, L)`` (a dense bias
    or a per-key one), for query tokens ``q_pos`` and key tokens ``k_pos`` of batch ``rows``."""
    if mask is None:
        return None
    if rows is not None and mask.shape[0] > 1:
        mask = mask.index_select(0, rows)
    part = mask.index_select(-1, k_pos)
    return part if part.shape[-2] == 1 else part.index_select(-2, q_pos)


def full_size_mask(mask: torch.Tensor | None, layout: JointLayout) -> torch.Tensor | None:
    """An additive mask over the whole joint sequence: as given when it spans it, or a mask made for prompt A's
    sequence alone (``[text_A, shared]``, as the conditioning's own bias on Flux and Chroma is) placed on those
    tokens, zero bias elsewhere (B's tokens are kept apart by the calls themselves)."""
    if mask is None:
        return None
    if mask.dim() == 2:
        mask = mask.unsqueeze(1)
    if mask.shape[-1] == layout.length:
        return mask
    own = layout.positions(SHARED, PROMPT_A, device=mask.device)
    if mask.shape[-1] != own.numel() or mask.shape[-2] not in (1, own.numel()):
        raise BlendspaceInputError(f"an attention mask of shape {tuple(mask.shape)} fits neither the blended sequence "
                                   f"({layout.length} tokens) nor prompt A's ({own.numel()} tokens).")
    if mask.shape[-2] == 1:
        full = mask.new_zeros(mask.shape[0], 1, layout.length)
        full[:, :, own] = mask
        return full
    full = mask.new_zeros(mask.shape[0], layout.length, layout.length)
    full[:, own.unsqueeze(1), own.unsqueeze(0)] = mask
    return full


def _scatter(out: torch.Tensor, dim: int, positions: torch.Tensor, part: torch.Tensor) -> None:
    out.index_copy_(dim, positions, part)


def _empty_output(part: torch.Tensor, dim: int, length: int) -> torch.Tensor:
    shape = list(part.shape)
    shape[dim] = length
    return part.new_zeros(shape)


def _within(outer: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """Indices into ``outer`` (sorted positions) of the positions ``inner`` (a subset)."""
    return torch.searchsorted(outer, inner)


def _mix_shared(sub: torch.Tensor, out_b: torch.Tensor, layout: JointLayout, q_b: torch.Tensor, dim: int) -> None:
    """Shared tokens of ``sub`` (prompt A's outputs): ``m·out_A + (1 − m)·out_B``, exact at m = 0 and 1."""
    shared = layout.positions(SHARED, device=sub.device)
    if shared.numel() == 0:
        return
    w_shape = [1] * sub.dim()
    w_shape[dim] = shared.numel()
    w = layout.weights.to(sub.device).index_select(0, shared).to(sub.dtype).reshape(w_shape)
    a = sub.index_select(dim, shared)
    b = out_b.index_select(dim, _within(q_b, shared))
    _scatter(sub, dim, shared, w * a + (1.0 - w) * b)


def two_prompt_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                         layout: JointLayout, blend_rows: torch.Tensor, attend: Attend, seq_dim: int,
                         out_seq_dim: int, blend: bool = True) -> torch.Tensor:
    """One joint attention call with two text streams (module docstring).

    ``q``/``k``/``v`` hold the whole sequence on ``seq_dim``; the output has it on ``out_seq_dim``. Every row
    runs prompt A's call over ``[text_A, shared]``; the ``blend_rows`` (the sampled prompt's batch rows) also run
    B's, whose queries are ``[text_B, shared]`` when ``blend`` and B's text alone when not (a block outside the
    chosen ones: B's stream stays current, the image keeps A's output). Other rows give B's text zeros."""
    own = layout.positions(SHARED, PROMPT_A, device=q.device)
    full = full_size_mask(mask, layout)
    a_groups = (SHARED, PROMPT_A)
    out_a = attend(take(q, layout, a_groups, seq_dim), take(k, layout, a_groups, seq_dim),
                   take(v, layout, a_groups, seq_dim), mask_part(full, None, own, own))
    out = _empty_output(out_a, out_seq_dim, layout.length)
    _scatter(out, out_seq_dim, own, out_a)
    if blend_rows.numel() == 0:
        return out
    b_groups = (SHARED, PROMPT_B)
    q_groups = b_groups if blend else (PROMPT_B,)
    keys_b, text_b = layout.positions(*b_groups, device=q.device), layout.positions(PROMPT_B, device=q.device)
    q_b = layout.positions(*q_groups, device=q.device)
    every = blend_rows.numel() == q.shape[0]
    rows = blend_rows.to(q.device)
    qr, kr, vr = (x if every else x.index_select(0, rows) for x in (q, k, v))
    out_b = attend(take(qr, layout, q_groups, seq_dim), take(kr, layout, b_groups, seq_dim),
                   take(vr, layout, b_groups, seq_dim), mask_part(full, None if every else rows, q_b, keys_b))
    sub = out if every else out.index_select(0, rows)
    _scatter(sub, out_seq_dim, text_b, out_b.index_select(out_seq_dim, _within(q_b, text_b)))
    if blend:
        _mix_shared(sub, out_b, layout, q_b, out_seq_dim)
    if not every:
        out.index_copy_(0, rows, sub)
    return out


def separate_prompts_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                               layout: JointLayout, rows_b: torch.Tensor, attend: Attend, seq_dim: int,
                               out_seq_dim: int) -> torch.Tensor:
    """A text-only call (Lumina 2's caption refiner) over two prompts: each attends to itself alone."""
    return two_prompt_attention(q, k, v, mask, layout, rows_b, attend, seq_dim, out_seq_dim, blend=False)


def key_bias(layout: JointLayout, bias: dict[int, torch.Tensor], rows: int, device, dtype) -> torch.Tensor:
    """A per-key additive bias ``(rows, 1, L)``: ``bias[group]`` (a ``(rows,)`` tensor) on every key of that
    group, 0 on groups not named. Broadcast over queries and heads, it is the one bias every attention kernel
    takes without a dense mask."""
    out = torch.zeros(rows, 1, layout.length, device=device, dtype=torch.float32)
    for group, value in bias.items():
        where = layout.positions(group, device=device)
        out[:, :, where] = value.to(device, torch.float32).reshape(rows, 1, 1)
    return out.to(dtype)


def prompt_weight_bias(t: torch.Tensor) -> dict[int, torch.Tensor]:
    """The attention-weight mix's key biases per row: ``log(1 − t)`` on A's keys, ``log t`` on B's (``-inf`` at
    the ends, where a prompt gets no weight)."""
    t = t.float()
    return {PROMPT_A: torch.log1p(-t), PROMPT_B: torch.log(t)}


def prompt_bias_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                          layout: JointLayout, t: torch.Tensor, attend: Attend, seq_dim: int,
                          out_seq_dim: int) -> torch.Tensor:
    """One joint attention call over two concatenated prompts mixed by attention weight ``t`` (per row, 0 = A):
    A's text queries attend to ``[text_A, shared]``, B's to ``[text_B, shared]``, shared queries to every key
    with :func:`prompt_weight_bias` added (module docstring). Three kernel calls, none with a dense mask."""
    full = full_size_mask(mask, layout)
    everything = torch.arange(layout.length, device=q.device)
    shared = layout.positions(SHARED, device=q.device)
    calls = [(layout.positions(PROMPT_A, device=q.device), layout.positions(SHARED, PROMPT_A, device=q.device), None),
             (layout.positions(PROMPT_B, device=q.device), layout.positions(SHARED, PROMPT_B, device=q.device), None)]
    if shared.numel():
        bias = key_bias(layout, prompt_weight_bias(t), q.shape[0], q.device, q.dtype)
        extra = mask_part(full, None, shared, everything)
        calls.append((shared, everything, bias if extra is None else bias + extra.to(bias.dtype)))
    out = None
    for q_pos, k_pos, bias in calls:
        part = attend(select(q, q_pos, seq_dim), select(k, k_pos, seq_dim), select(v, k_pos, seq_dim),
                      bias if bias is not None else mask_part(full, None, q_pos, k_pos))
        out = _empty_output(part, out_seq_dim, layout.length) if out is None else out
        _scatter(out, out_seq_dim, q_pos, part)
    return out


def parse_blocks(spec: str, available: Sequence[tuple[str, int]], family: str) -> list[tuple[str, int]]:
    """Blocks named by ``spec``: ``all``, or a comma list of kinds (``double``), single blocks (``double 3``) and
    ranges (``single 0-9``), checked against the model's ``available`` ``(kind, index)`` blocks."""
    text = (spec or "").strip().lower()
    if text in ("", "all"):
        return list(available)
    kinds = sorted({k for k, _ in available})
    chosen: list[tuple[str, int]] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        words = part.replace(":", " ").split()
        if words[0] not in kinds or len(words) > 2:
            raise BlendspaceInputError(f"blocks: cannot read '{part}' for this {family} model. Use 'all', or "
                                       f"{' / '.join(repr(k) for k in kinds)} with an optional number or range, "
                                       f"e.g. '{kinds[0]} 0-3'.")
        keys = _block_keys(words, part, available, family)
        chosen.extend(k for k in keys if k not in chosen)
    return chosen


def _block_keys(words: list[str], part: str, available: Sequence[tuple[str, int]], family: str) -> list:
    kind = words[0]
    have = [i for k, i in available if k == kind]
    if len(words) == 1:
        return [(kind, i) for i in have]
    try:
        lo, _, hi = words[1].partition("-")
        first, last = int(lo), int(hi) if hi else int(lo)
    except ValueError as err:
        raise BlendspaceInputError(f"blocks: '{part}' needs a number or a range, e.g. '{kind} 3' or '{kind} 0-9'.") \
            from err
    wanted = list(range(first, last + 1))
    missing = [i for i in wanted if i not in have]
    if missing or not wanted:
        raise BlendspaceInputError(f"blocks: this {family} model has no '{kind} {missing[0] if missing else words[1]}'"
                                   f"; its {kind} blocks are {kind} 0-{max(have)}.")
    return [(kind, i) for i in wanted]


def mean_weight(weights: torch.Tensor) -> float:
    """The mask's average weight of A over the image (what a global input such as the pooled vector gets)."""
    return float(weights.float().mean()) if weights.numel() else 1.0


def mix_global(a: torch.Tensor, b: torch.Tensor, weight_a: float) -> torch.Tensor:
    """``w·a + (1 − w)·b`` for a global conditioning input (pooled vector, guidance), exact at w = 0 and 1."""
    return weight_a * a + (1.0 - weight_a) * b
