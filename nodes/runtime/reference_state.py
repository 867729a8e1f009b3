"""The reference dial inside one model call: what a tagged conditioning asks for (:class:`DialTag`), and what it
means for the call at hand (:class:`DialForward`): the per-key bias of the joint attention and the moved
position ids of the references (Flux through its ``post_input`` patch, Qwen-Image through its ``pe`` in the dit
block replacement). The math is ``blendspace/reference_mix.py``; see
docs/techniques.md, "Reference mixing on edit models"."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...blendspace.reference_mix import (
    blended_reference_ids,
    flux_placements,
    key_bias,
    log_multiplier,
    presence,
    qwen_placements,
    token_ids,
    tokens_of,
)

TAG_KEY = "blendspace_reference_mix"
"""The extra model input (a ``CONDConstant`` in the conditioning's ``model_conds``) that carries the tag."""
STATE_KEY = "blendspace_reference_mix"
"""The ``transformer_options`` key of the current call's :class:`DialForward`."""
DEFAULT_METHODS = {"flux": "offset", "qwen": "index", "omnigen2": "none"}
"""The reference layout each family uses when the conditioning names none."""


@dataclass(frozen=True)
class DialTag:
    """What one conditioning entry asks of the model: its ``family`` ("flux", "qwen", "omnigen2"), the key
    multipliers of the dialled references as ``((reference index, multiplier), ...)`` (indices into the references
    the entry carries) and, for a Qwen-Image-Edit prompt made of several encodings, ``((tokens, weight), ...)`` of
    each encoding in order. Equal tags batch together (ComfyUI's ``CONDConstant`` compares them)."""
    family: str
    dialled: tuple[tuple[int, float], ...]
    segments: tuple[tuple[int, float], ...] = ()


class DialForward:
    """The dial for one model call: the image's and references' token counts, the per-key bias and the moved
    position ids (None where nothing moves)."""

    def __init__(self, tag: DialTag, x_shape: tuple, text_tokens: int, ref_shapes: list[tuple], method: str | None):
        self.tag = tag
        hw = tokens_of(tuple(x_shape[-2:]))
        self.image_tokens = hw[0] * hw[1]
        self.text_tokens = int(text_tokens)
        shapes = [tuple(s[-2:]) for s in ref_shapes]
        self.ref_counts = [math.prod(tokens_of(s)) for s in shapes]
        self.joint_keys = self.text_tokens + self.image_tokens + sum(self.ref_counts)
        self.biases = {self.joint_keys: key_bias(self.joint_keys, self._blocks(self._ref_start()))}
        if tag.family == "omnigen2" and sum(self.ref_counts) not in (self.text_tokens, self.image_tokens):
            self.biases.setdefault(sum(self.ref_counts), key_bias(sum(self.ref_counts), self._blocks(0, text=False)))
        self.ref_ids = self._moved_ids(shapes, method or DEFAULT_METHODS[tag.family], hw)
        self.text_ids = self._segment_ids(hw) if tag.family == "qwen" and len(tag.segments) > 1 else None
        self._pe: dict = {}

    def _ref_start(self) -> int:
        """Where the references' keys start: after text and image (Flux, Qwen), after the text (Omnigen2)."""
        return self.text_tokens + (0 if self.tag.family == "omnigen2" else self.image_tokens)

    def _blocks(self, ref_start: int, text: bool = True) -> list[tuple[int, int, float]]:
        starts = [ref_start + sum(self.ref_counts[:i]) for i in range(len(self.ref_counts))]
        blocks = [(starts[i], self.ref_counts[i], log_multiplier(m)) for i, m in self.tag.dialled]
        if text:
            at = 0
            for count, weight in self.tag.segments:
                blocks.append((at, count, log_multiplier(weight)))
                at += count
        return blocks

    def _moved_ids(self, shapes, method: str, hw) -> torch.Tensor | None:
        """The references' position ids with the partly present ones' followers moved (None: nothing moves)."""
        presences = {i: presence(m) for i, m in self.tag.dialled if presence(m) < 1.0}
        if not presences or self.tag.family not in ("flux", "qwen"):
            return None
        rule = flux_placements if self.tag.family == "flux" else qwen_placements

        def layout(s):
            return rule(s, method, hw)
        centred = self.tag.family == "qwen"
        moved = blended_reference_ids(shapes, layout, presences, centred=centred)
        plain = [token_ids(s, p, centred=centred) for s, p in zip(shapes, layout(shapes), strict=True)]
        if all(torch.equal(a, b) for a, b in zip(moved, plain, strict=True)):
            return None
        return torch.cat(moved)

    def _segment_ids(self, hw) -> torch.Tensor:
        """Qwen-Image's text ids with each encoding at the place it has alone (``arange`` from the image's
        centre, ``comfy/ldm/qwen_image/model.py``)."""
        start = round(max(hw[1] // 2, hw[0] // 2))
        ids = [torch.arange(start, start + count, dtype=torch.float32) for count, _ in self.tag.segments]
        return torch.cat(ids).unsqueeze(1).repeat(1, 3)

    def bias(self, keys: int, batch: int, dtype, device) -> torch.Tensor | None:
        """The ``(batch, 1, keys)`` bias for an attention call over ``keys`` keys (None: not a call the dial
        biases)."""
        vector = self.biases.get(keys)
        if vector is None or not bool((vector != 0).any()):
            return None
        return vector.to(device=device, dtype=dtype).view(1, 1, keys).expand(batch, 1, keys)

    def flux_post_input(self, args: dict) -> dict:
        """Flux's ``post_input`` patch: the references' ids (the last tokens of ``img_ids``) moved."""
        ids = args["img_ids"]
        moved = ids.clone()
        moved[:, ids.shape[1] - self.ref_ids.shape[0]:] = self.ref_ids.to(device=ids.device, dtype=ids.dtype)
        return {**args, "img_ids": moved}

    def qwen_pe(self, pe: torch.Tensor, embedder) -> torch.Tensor:
        """Qwen-Image's rotary embedding ``pe`` (batch, tokens, 1, ...) with the rows of moved ids recomputed
        by the model's own ``pe_embedder`` (each row depends on its token's ids alone)."""
        key = (pe.shape, pe.dtype, pe.device)
        if key not in self._pe:
            out = pe.clone()
            if self.text_ids is not None:
                out[:, :self.text_ids.shape[0]] = _pe_rows(embedder, self.text_ids, pe)
            if self.ref_ids is not None:
                out[:, pe.shape[1] - self.ref_ids.shape[0]:] = _pe_rows(embedder, self.ref_ids, pe)
            self._pe[key] = out
        return self._pe[key]

    @property
    def moves_positions(self) -> bool:
        return self.ref_ids is not None or self.text_ids is not None


def _pe_rows(embedder, ids: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return embedder(ids.to(like.device).unsqueeze(0)).squeeze(1).unsqueeze(2).to(like.dtype)
