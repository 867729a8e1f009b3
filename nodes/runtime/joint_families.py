"""What each joint-attention family looks like from inside its attention calls: where prompt A's and prompt B's
text and the image sit in the joint sequence, how its blocks are named and found, how a second prompt's tokens
are appended to its inputs, and the position fixes that keep each prompt where it would be alone
(docs/techniques.md, "Two prompts in joint attention").

Below, "first" and "second" are the two prompts' text in sequence order. CrossAttnInterpolate puts B first (prompt
A's call then reads one contiguous run of tokens, a view instead of a copy), except on HiDream; a prompt mixed by
attention weight is A then B, as Slerp Conditioning concatenated it.

- Flux dev / schnell / Kontext: ``[first, second, image, references]``; double 0-18 and single 0-37 blocks, found
  by ``patches_replace``; text ids are all 0, so no position fix.
- Chroma: ``[first, second, image]``; double and single blocks (``patches_replace``); no fix.
- SD3 / SD3.5: ``[first, second, image]``; joint blocks (``patches_replace``); no text positions, no fix.
- Qwen-Image: ``[first, second, image, references]``; joint 0-59 (``patches_replace``); text ids are absolute, so
  the second prompt's are rebuilt to start where the first's do.
- HiDream: ``[image, T5 A, T5 B, Llama A, Llama B, Llama_i A, Llama_i B]`` (A first always); double 0-15 and
  single 0-31 (counted); no fix (text ids are 0).
- Lumina 2: ``[first prompt, second prompt, image]``; joint layers 0-25 (counted after the refiners); the first
  prompt's queries and keys are rotated by the second's length (its distance to the image as when alone).

HiDream and Lumina 2 offer no per-block hook: their attention calls are counted in every forward (the counter is
reset by the model-level wrapper), in the order the model makes them: HiDream's double-stream blocks then its
single-stream blocks; Lumina 2's caption-refiner calls (text only: each prompt refined alone), its image-refiner
calls (image only, untouched), then its joint layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...blendspace.joint_attention import PROMPT_A, PROMPT_B, SHARED, JointLayout

Segments = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class TextSplit:
    """The text of a forward that carries two prompts: ``(group, tokens)`` segments in sequence order, and for
    HiDream the same for its Llama states."""

    text: Segments
    llama: Segments = ()

    @staticmethod
    def a_then_b(la: int, lb: int, llama: tuple[int, int] | None = None) -> TextSplit:
        return TextSplit(((PROMPT_A, la), (PROMPT_B, lb)), ((PROMPT_A, llama[0]), (PROMPT_B, llama[1])) if llama else ())


def _grid(shape) -> tuple[int, int]:
    """Image tokens (rows, columns) of a latent for a patch size of 2 (the model pads odd sizes)."""
    return (int(shape[-2]) + 1) // 2, (int(shape[-1]) + 1) // 2


class JointFamily:
    """Flux dev / schnell / Kontext (the default behaviour: ``[A, B, image, references]``, ids 0)."""

    name = "Flux"
    ids: tuple[str, ...] = ("Flux", "FluxSchnell")
    text_keys: tuple[str, ...] = ("c_crossattn", "attention_mask")
    reads_references = True
    counted = False
    b_first = True

    def blocks(self, dm) -> dict[tuple[str, int], tuple[str, int]]:
        """ComfyUI's replace key → the block's name, for every block that runs."""
        out = {("double_block", i): ("double", i) for i in range(len(dm.double_blocks))}
        out.update({("single_block", i): ("single", i) for i in range(len(dm.single_blocks))})
        return out

    def grids(self, x: torch.Tensor, kwargs: dict) -> list[tuple[int, int]]:
        """Token grids of the shared tokens in sequence order: the image, then each reference."""
        refs = kwargs.get("ref_latents") if self.reads_references else None
        return [_grid(x.shape)] + [_grid(r.shape) for r in (refs or [])]

    def layout(self, split: TextSplit, shared: list[torch.Tensor]) -> JointLayout:
        return JointLayout.from_segments([*split.text, *((SHARED, w) for w in shared)])

    def text_layout(self, split: TextSplit) -> JointLayout | None:
        return None

    def classify(self, state, length: int, layout_length: int, dm) -> tuple[str, tuple | None]:
        """``("joint", block)`` for a joint call of a block, ``("text", None)`` for a text-only call of two
        prompts, ``("pass", None)`` for any other call."""
        if state.block is None or length != layout_length:
            return "pass", None
        return "joint", state.block

    def extend(self, c: torch.Tensor, kwargs: dict, b: dict) -> tuple[torch.Tensor, dict, TextSplit]:
        """Prompt B's tokens put beside A's in every row (other rows never read them): before A's where the
        order is free (``b_first``: A's call then reads one contiguous run of tokens, no copy), else after."""
        bt = b["c_crossattn"].to(c.device, c.dtype)
        bt = bt.expand(c.shape[0], -1, -1) if bt.shape[0] == 1 else bt
        if self.b_first:
            return torch.cat([bt, c], dim=1), dict(kwargs), TextSplit(((PROMPT_B, bt.shape[1]), (PROMPT_A, c.shape[1])))
        return torch.cat([c, bt], dim=1), dict(kwargs), TextSplit.a_then_b(c.shape[1], bt.shape[1])

    def fix_block(self, dm, forward, args: dict) -> dict:
        return args

    def fix_joint_call(self, forward, q: torch.Tensor, k: torch.Tensor, seq_dim: int) -> tuple:
        return q, k


class ChromaFamily(JointFamily):
    name = "Chroma"
    ids = ("Chroma",)
    reads_references = False

    def blocks(self, dm) -> dict:
        out = super().blocks(dm)
        skipped = {("double_block", i) for i in getattr(dm, "skip_mmdit", [])}
        skipped |= {("single_block", i) for i in getattr(dm, "skip_dit", [])}
        return {k: v for k, v in out.items() if k not in skipped}


class SD3Family(JointFamily):
    name = "SD3 / SD3.5"
    ids = ("SD3",)
    text_keys = ("c_crossattn",)
    reads_references = False

    def blocks(self, dm) -> dict:
        return {("double_block", i): ("joint", i) for i in range(len(dm.joint_blocks))}

    def layout(self, split: TextSplit, shared: list[torch.Tensor]) -> JointLayout:
        return JointLayout.from_segments([*split.text, (SHARED, shared[0])])


class QwenImageFamily(JointFamily):
    """Qwen-Image(-Edit): text ids are absolute (``txt_start + i``, tied to the image grid), so the second prompt's
    ids are rebuilt to start where the first's do (each prompt at the place it has alone)."""

    name = "Qwen-Image"
    ids = ("QwenImage",)
    text_keys = ("c_crossattn",)

    def blocks(self, dm) -> dict:
        return {("double_block", i): ("joint", i) for i in range(len(dm.transformer_blocks))}

    def fix_block(self, dm, forward, args: dict) -> dict:
        cache = forward.cache
        if "pe" not in cache:
            cache["pe"] = self._pe(dm, forward, args["pe"])
        return {**args, "pe": cache["pe"]}

    @staticmethod
    def _pe(dm, forward, pe: torch.Tensor) -> torch.Tensor:
        """``pe`` with the rows of every group's second text segment recomputed for ids ``txt_start + j``."""
        pe = pe.clone()
        for rows, split in forward.data.splits():
            (_, n1), (_, n2) = split.text
            h, w = forward.data.grid
            start = round(max(w // 2, h // 2))
            ids = (start + torch.arange(n2, device=pe.device, dtype=torch.float32)).reshape(1, -1, 1).repeat(1, 1, 3)
            fresh = dm.pe_embedder(ids).squeeze(1).unsqueeze(2).to(pe.dtype)
            part = pe.index_select(0, rows)
            part[:, n1:n1 + n2] = fresh
            pe.index_copy_(0, rows, part)
        return pe


class HiDreamFamily(JointFamily):
    """HiDream: image first, then the T5 tokens, the last Llama layer and block i's Llama layer, each of the
    two prompts side by side; no per-block hook (calls are counted)."""

    name = "HiDream"
    ids = ("HiDream",)
    text_keys = ("c_crossattn", "encoder_hidden_states_llama3")
    reads_references = False
    counted = True
    b_first = False

    def blocks(self, dm) -> dict:
        out = {("double", i): ("double", i) for i in range(len(dm.double_stream_blocks))}
        out.update({("single", i): ("single", i) for i in range(len(dm.single_stream_blocks))})
        return out

    def classify(self, state, length: int, layout_length: int, dm) -> tuple[str, tuple | None]:
        index, doubles = state.next_call(), len(dm.double_stream_blocks)
        if length != layout_length or index >= doubles + len(dm.single_stream_blocks):
            return "pass", None
        return "joint", ("double", index) if index < doubles else ("single", index - doubles)

    def layout(self, split: TextSplit, shared: list[torch.Tensor]) -> JointLayout:
        return JointLayout.from_segments([(SHARED, shared[0]), *split.text, *split.llama, *split.llama])

    def extend(self, c: torch.Tensor, kwargs: dict, b: dict) -> tuple[torch.Tensor, dict, TextSplit]:
        c, kwargs, split = super().extend(c, kwargs, b)
        la = kwargs["encoder_hidden_states_llama3"]
        lb = b["encoder_hidden_states_llama3"].to(la.device, la.dtype)
        lb = lb.expand(la.shape[0], -1, -1, -1) if lb.shape[0] == 1 else lb
        kwargs["encoder_hidden_states_llama3"] = torch.cat([la, lb], dim=2)
        return c, kwargs, TextSplit(split.text, ((PROMPT_A, la.shape[2]), (PROMPT_B, lb.shape[2])))


class Lumina2Family(JointFamily):
    """Lumina 2: one stream ``[caption, image]`` whose image positions start at the caption's length, so the
    prompt placed last keeps its distance to the image and the first is rotated by the second's length; the
    caption refiner sees each prompt alone. Prompt B goes first when the node appends it, so prompt A (and the
    negative in a batch with it) keeps its geometry."""

    name = "Lumina 2"
    ids = ("Lumina2",)
    text_keys = ("c_crossattn", "num_tokens", "attention_mask")
    reads_references = False
    counted = True

    def blocks(self, dm) -> dict:
        return {("joint", i): ("joint", i) for i in range(len(dm.layers))}

    def classify(self, state, length: int, layout_length: int, dm) -> tuple[str, tuple | None]:
        index = state.next_call()
        refine_text, refine_image = len(dm.context_refiner), len(dm.noise_refiner)
        if index < refine_text:
            return "text", None
        layer = index - refine_text - refine_image
        if layer < 0 or layer >= len(dm.layers) or length != layout_length:
            return "pass", None
        return "joint", ("joint", layer)

    def layout(self, split: TextSplit, shared: list[torch.Tensor]) -> JointLayout:
        return JointLayout.from_segments([*split.text, (SHARED, shared[0])])

    def text_layout(self, split: TextSplit) -> JointLayout | None:
        return JointLayout.from_segments(split.text)

    def extend(self, c: torch.Tensor, kwargs: dict, b: dict) -> tuple[torch.Tensor, dict, TextSplit]:
        n, nb = int(kwargs["num_tokens"]), int(b["num_tokens"])
        bt = b["c_crossattn"][:, :nb].to(c.device, c.dtype)
        bt = bt.expand(c.shape[0], -1, -1) if bt.shape[0] == 1 else bt
        kwargs = {k: v for k, v in kwargs.items() if k != "attention_mask"}
        kwargs["num_tokens"] = n + nb
        return torch.cat([bt, c[:, :n]], dim=1), kwargs, TextSplit(((PROMPT_B, nb), (PROMPT_A, n)))

    def fix_joint_call(self, forward, q: torch.Tensor, k: torch.Tensor, seq_dim: int) -> tuple:
        """Rotate every group's first text segment by the second's length on the caption axis."""
        dm = forward.data.diffusion_model
        q, k = q.clone(), k.clone()
        for rows, split in forward.data.splits():
            (_, n1), (_, n2) = split.text
            key = ("rotation", n2, str(q.device), q.dtype)
            if key not in forward.cache:
                ids = torch.tensor([[[n2, 0, 0]]], device=q.device)
                forward.cache[key] = dm.rope_embedder(ids).movedim(1, 2).to(q.dtype).reshape(-1, 2, 2)
            first = torch.arange(n1, device=q.device)
            for x in (q, k):
                part = x.index_select(0, rows)
                part.index_copy_(seq_dim, first, rotate(part.index_select(seq_dim, first), forward.cache[key]))
                x.index_copy_(0, rows, part)
        return q, k


def rotate(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """RoPE as Lumina 2 applies it (pairs of the last axis times 2x2 rotations ``freqs (D/2, 2, 2)``)."""
    pairs = x.reshape(*x.shape[:-1], -1, 1, 2)
    out = freqs[..., 0] * pairs[..., 0] + freqs[..., 1] * pairs[..., 1]
    return out.reshape(x.shape).to(x.dtype)


FAMILIES: tuple[JointFamily, ...] = (JointFamily(), ChromaFamily(), SD3Family(), QwenImageFamily(), HiDreamFamily(),
                                     Lumina2Family())
COVERED = "Flux (dev, schnell, Kontext), Chroma, SD3 / SD3.5, HiDream, Qwen-Image and Lumina 2"


def family_for(family_id: str) -> JointFamily | None:
    return next((f for f in FAMILIES if family_id in f.ids), None)
