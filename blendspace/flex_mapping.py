"""FlexDiffuse: CLIP image embeddings mapped onto the prompt's token embeddings (FlexDiffuse by tim-speed;
docs/techniques.md, "FlexDiffuse").

Inputs: the prompt's 77 text tokens T (CLIP text ``last_hidden_state``, unprojected) and the guide's
tokens A: all 257 tokens of a CLIP ViT after ``post_layernorm`` AND ``visual_projection`` (CLS + 16×16
patches, joint space), or another prompt's 77 tokens (text-to-text tweening). Both are just vectors
of one width.

Mapping ``map_tokens(A, T, reuse, order)`` → per slot k (0…76) an (alt index, score):

    S_i = softmax_j(100·cos(A_i, T_j)), j = 0…76          (per guide token i, over ALL text tokens)
    slot k (0…75) ↔ text token k+1, score S_i[k+1]       (the header column dropped after the softmax)
    Best Fit ('align'): candidates sorted by (-score, slot, i); Text Order: by (slot, -score, i);
    greedy: a slot takes its first candidate; without reuse an alt token serves one slot only.
    Direct: slot k ↔ alt token k.  Slot 76 stays (0, 0).

Weights over the 77 positions:

    w = linspace(linear_start, linear_end, 77)
    clustered ≠ 0: peaks = slots ≥ mean score that are local maxima (1…75); triangles of height 1 on
        each peak falling to 0 at the midpoints between peaks and at 0 and 76, × clustered; w = blend(w, ·)
    threshold_mult ≠ 0: th_k = mult if score_k ≥ floor else 0; w = blend(w, th)
    blend(a, b) = max(a, b) if both maxima ≥ 0;  a + b if only b's is < 0;  min(a, b) if a's is < 0
    header: w_0 = min(w_0, cap) (or max(w_0, -cap) when negative)

Per position k with (i, s): iw = min(w_k, max_guidance) (an upper cap only);
iw = 0 → T_k;  |iw| ≥ 1 - s → A_i;  else T_k + iw·(A_i - T_k).

The source's off-by-one (``token_alignment``): its tweener applies row k to text token k, so token k
is blended with the match of token k+1, the header gets token 1's match and token 76 is pulled toward
the CLS token with score 0. ``faithful`` keeps that; ``corrected`` shifts the rows by one, so token j
uses its own match (the header has none: score 0). Concept mapping (a second prompt) already uses
the correct +1 in the source:

    CM = map(A, C, reuse=False, Text Order);  CT = map(C, T, reuse=True, Best Fit)
    for slot j with CT_j = (c, s): if c ≥ 1 and s > 0.9: out[j+1] = A[CM[c-1].alt]   (after the tween)

Precision: the source computes S in the embeddings' own float32, where near-certain scores round to
exactly 1.0 (which changes tie-breaks, peaks and thresholds); ``faithful`` alignment does the same,
``corrected`` computes in float64. In the source, concept mapping happens only with a guide IMAGE; the
node's faithful alignment keeps that restriction, the corrected one also maps concepts for a guide prompt.

Direct image guidance: out = A[:77] with out_0 = 0.15·A_0 + 0.85·header (header = the text BOS token).
Pure torch; no ComfyUI import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import BlendspaceInputError

TOKENS = 77
ORDERS = ("Best Fit", "Text Order", "Direct")
ALIGNMENTS = ("corrected", "faithful (shifted, source)")


@dataclass
class FlexSettings:
    linear_start: float = 0.0
    linear_end: float = 0.5
    clustered: float = 0.25
    threshold_mult: float = 0.25
    threshold_floor: float = 0.75
    max_guidance: float = 0.35
    header_max: float = 0.0
    order: str = "Best Fit"
    reuse: bool = True
    alignment: str = "corrected"

    @property
    def dtype(self) -> torch.dtype:
        """The similarities' precision: the source's float32 when faithful, float64 when corrected."""
        return torch.float32 if self.alignment == ALIGNMENTS[1] else torch.float64


def similarity(alt: torch.Tensor, txt: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``S[i, j] = softmax_j(100·cos(alt_i, txt_j))`` computed in ``dtype`` (float64, or the source's float32):
    (N_alt, 77), returned as float64 (exact for float32 values)."""
    a = alt.to(dtype)
    t = txt.to(dtype)
    a = a / a.norm(dim=-1, keepdim=True)
    t = t / t.norm(dim=-1, keepdim=True)
    return torch.softmax(100.0 * a @ t.T, dim=1).double()


def map_tokens(alt: torch.Tensor, txt: torch.Tensor, reuse: bool = True, order: str = "Best Fit",
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """FlexDiffuse's ``_map_emb``: (77, 2) rows of (alt index, score), slot k ↔ text token k+1; the scores
    computed in ``dtype``."""
    if txt.shape[0] != TOKENS:
        raise BlendspaceInputError(f"expected {TOKENS} text tokens, got {txt.shape[0]}")
    scores = similarity(alt, txt, dtype)[:, 1:TOKENS]          # (N, 76): column k = slot k = text token k+1
    n = scores.shape[0]
    m = torch.zeros(TOKENS, 2, dtype=torch.float64)
    if order == "Direct":
        k = min(n, TOKENS - 1)
        idx = torch.arange(k)
        m[:k, 0] = idx.double()
        m[:k, 1] = scores[idx, idx]
        return m
    if order not in ORDERS:
        raise BlendspaceInputError(f"mapping priority must be one of {ORDERS}, got {order!r}")
    if reuse:
        best, arg = scores.max(dim=0)  # first index among equal scores, as the stable sort of the source
        m[:TOKENS - 1, 0] = arg.double()
        m[:TOKENS - 1, 1] = best
        return m
    rows = scores.tolist()
    candidates = [(s, k, i) for i, row in enumerate(rows) for k, s in enumerate(row)]
    if order == "Best Fit":
        candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    else:
        candidates.sort(key=lambda c: (c[1], -c[0], c[2]))
    used: set[int] = set()
    filled = 0
    for s, k, i in candidates:
        if m[k, 1] > 0 or i in used:
            continue
        m[k, 0], m[k, 1] = i, s
        used.add(i)
        filled += 1
        if filled == TOKENS - 1 or len(used) == n:
            break
    return m


def blend(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if float(a.max()) >= 0 and float(b.max()) >= 0:
        return torch.maximum(a, b)
    if float(a.max()) >= 0:
        return a + b
    return torch.minimum(a, b)


def clustered_weights(scores: torch.Tensor, threshold: float, guidance: float) -> torch.Tensor | None:
    """Triangles of height 1 on every peak slot (score ≥ threshold, local max), × ``guidance``."""
    s = [float(x) for x in scores]
    peaks = [k for k in range(1, TOKENS - 1) if s[k] >= threshold and s[k - 1] <= s[k] >= s[k + 1]]
    if not peaks:
        return None
    valleys = [0] + [p1 + math.ceil((p2 - p1) / 2) for p1, p2 in zip(peaks, peaks[1:], strict=False)] + [TOKENS - 1]
    w = torch.ones(TOKENS, dtype=torch.float64)
    w[0] -= 1
    bi = 0
    for a in peaks:
        b = valleys[bi]
        if b < a:
            for j in range(1, a - b):
                w[a - j] -= j / (a - b)
            bi += 1
        if bi >= len(valleys):
            break
        b = valleys[bi]
        for j in range(1, b - a + 1):
            w[a + j] -= j / (b - a)
    return w * guidance


def token_weights(m: torch.Tensor, cfg: FlexSettings) -> torch.Tensor:
    """The per-position weights w (77,) from the mapping rows (already aligned to positions)."""
    scores = m[:, 1]
    avg = float(scores.mean())
    w = torch.linspace(cfg.linear_start, cfg.linear_end, TOKENS, dtype=torch.float64)
    if cfg.clustered != 0:
        c = clustered_weights(scores, avg, cfg.clustered)
        if c is not None:
            w = blend(w, c)
    if cfg.threshold_mult != 0:
        th = torch.where(scores >= cfg.threshold_floor, torch.tensor(float(cfg.threshold_mult), dtype=torch.float64),
                         torch.tensor(0.0, dtype=torch.float64))
        w = blend(w, th)
    if cfg.header_max < 1.0:
        w[0] = min(float(w[0]), cfg.header_max) if w[0] >= 0 else max(float(w[0]), -cfg.header_max)
    return w


def align_rows(m: torch.Tensor, alignment: str) -> torch.Tensor:
    """Rows per text position: faithful = the source's rows as they are (row k → token k); corrected =
    shifted down one (token j ← slot j-1; the header gets no match)."""
    if alignment == ALIGNMENTS[1]:
        return m
    if alignment != ALIGNMENTS[0]:
        raise BlendspaceInputError(f"token alignment must be one of {ALIGNMENTS}, got {alignment!r}")
    out = torch.zeros_like(m)
    out[1:] = m[:-1]
    return out


@dataclass
class FlexResult:
    tokens: torch.Tensor          # (77, C) the blended prompt tokens
    rows: torch.Tensor            # (77, 2) (alt index, score) per position
    weights: torch.Tensor         # (77,) w
    applied: torch.Tensor         # (77,) iw actually applied (NaN where replaced by the guide token)


def tween(txt: torch.Tensor, alt: torch.Tensor, cfg: FlexSettings) -> FlexResult:
    """Blend one 77-token prompt ``txt`` (77, C) toward the guide tokens ``alt`` (N, C)."""
    if txt.shape[-1] != alt.shape[-1]:
        raise BlendspaceInputError(f"prompt tokens are {txt.shape[-1]}-d but guide tokens are {alt.shape[-1]}-d")
    rows = align_rows(map_tokens(alt, txt, cfg.reuse, cfg.order, cfg.dtype), cfg.alignment)
    w = token_weights(rows, cfg)
    out = txt.clone()
    applied = torch.zeros(TOKENS, dtype=torch.float64)
    for k in range(TOKENS):
        i, s = int(rows[k, 0]), float(rows[k, 1])
        iw = min(float(w[k]), cfg.max_guidance)
        if iw == 0:
            continue
        if abs(iw) >= 1 - s:
            out[k] = alt[i].to(out.dtype)
            applied[k] = float("nan")
        else:
            out[k] = (txt[k] + iw * (alt[i].to(txt.dtype) - txt[k])).to(out.dtype)
            applied[k] = iw
    return FlexResult(out, rows, w, applied)


def concept_map(out: torch.Tensor, txt: torch.Tensor, alt: torch.Tensor, concept: torch.Tensor,
                threshold: float = 0.9, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, list[int]]:
    """Replace prompt tokens that match a concept token (score > 0.9) by that concept's image token."""
    cm = map_tokens(alt, concept, reuse=False, order="Text Order", dtype=dtype)
    ct = map_tokens(concept, txt, reuse=True, order="Best Fit", dtype=dtype)
    result = out.clone()
    replaced = []
    for j in range(TOKENS - 1):
        c, s = int(ct[j, 0]), float(ct[j, 1])
        if c - 1 < 0 or s <= threshold:
            continue
        result[j + 1] = alt[int(cm[c - 1, 0])].to(result.dtype)
        replaced.append(j + 1)
    return result, replaced


def direct_guidance(txt: torch.Tensor, alt: torch.Tensor, header_pull: float = 0.85) -> torch.Tensor:
    """The prompt replaced by the first 77 guide tokens, the first moved 85 % toward the text header."""
    if alt.shape[0] < TOKENS:
        raise BlendspaceInputError(f"direct image guidance needs at least {TOKENS} guide tokens, got {alt.shape[0]}")
    out = alt[:TOKENS].to(txt.dtype).clone()
    out[0] = out[0] + header_pull * (txt[0] - out[0])
    return out


VISION_HINT = ("SD1.x needs a ViT-L/14 CLIP vision model (768-d, e.g. clip-vit-large-patch14), SD2.x a ViT-H/14 "
               "(1024-d), SDXL a ViT-L/14 for its CLIP-L half or a ViT-bigG/14 (1280-d) for its bigG half "
               "(chain two mappers to guide both)")


def channel_slice(text_width: int, guide_width: int, guide_name: str = "the CLIP vision model",
                  text_name: str = "conditioning") -> slice:
    """Which channels of the prompt tokens the guide tokens map onto: all of them when the widths match;
    for SDXL's 2048-d tokens (CLIP-L 768 + bigG 1280) the matching half."""
    if text_width == guide_width:
        return slice(0, text_width)
    if text_width == 2048 and guide_width == 768:
        return slice(0, 768)
    if text_width == 2048 and guide_width == 1280:
        return slice(768, 2048)
    if text_width == 4096:
        raise BlendspaceInputError(f"{text_name} has 4096-d T5 tokens (Flux, SD3 / SD3.5): FlexDiffuse maps CLIP image "
                                   "tokens onto CLIP text tokens (SD1.x, SD2.x, SDXL), and T5 tokens do not pair with "
                                   "them. To mix an image into a Flux prompt use Slerp CLIP Vision Output into Apply "
                                   "Style Model (Flux Redux).")
    raise BlendspaceInputError(f"{text_name}'s tokens are {text_width}-d but {guide_name} gives {guide_width}-d "
                               f"embeddings, which do not pair: {VISION_HINT}.")
