"""CoCa captions as prompts, generated and cleaned as the images-mixing pipeline does (docs/techniques.md, "CoCa captions").

The source captions a missing prompt with open_clip's ``coca_ViT-L-14`` (``laion2B-s13B-b90k``)::

    x = image_transform(visual.image_size, is_train=False, mean, std)(img)[None]
    ids = coca.generate(x)                       # open_clip defaults, below
    s = tokenizer.decode(ids[0]).split("<end_of_text>")[0].replace("<start_of_text>", "")
    prompt = s.rstrip(" .,")

``generate`` defaults: beam search, 6 beams in 3 groups, ``min_seq_len`` 5, ``seq_len`` 30,
repetition penalty 1. open_clip runs the search with transformers' ``BeamSearchScorer``, which
transformers 4.56 removed, so :func:`group_beam_search` re-implements that search here, step for
step, so captions work with any transformers:

* every beam's score is the running sum of the decoder's *raw* next-token logits (open_clip adds
  logits, not log-probabilities: a quirk kept for identical captions); while the sequence (with
  its start token) is shorter than ``min_seq_len`` the end token's logit is -inf;
* beams are split into ``num_beam_groups`` groups of ``g = num_beams / num_beam_groups``; at the
  first step only the first beam of each group is live (the others start at -1e9). No diversity
  penalty is applied, so the groups search alike; each keeps its ``g`` best continuations among its
  top ``2g`` candidates. A candidate ending in the end token, if it ranks among the top ``g``,
  becomes a finished hypothesis with score ``sum / (length + 1)`` (length penalty 1);
* a group is done once it holds ``g`` hypotheses and its worst one scores at least the best live
  candidate's ``sum / (length + 1)``; the search stops when all groups are done or the sequence
  reaches ``seq_len`` tokens, when the live beams join the hypotheses with ``sum / length``;
* the caption is the best-scoring hypothesis over all groups (the later one on a tie).

Pure torch: the decoder step is passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

SOT_TOKEN = 49406
EOT_TOKEN = 49407


def clean_caption(text: str) -> str:
    """The source's clean-up of a decoded caption: cut at the end token, drop the start token, strip
    trailing spaces, dots and commas."""
    return text.split("<end_of_text>")[0].replace("<start_of_text>", "").rstrip(" .,")


@dataclass
class _Hypotheses:
    """The ``size`` best finished sequences of one group (transformers' ``BeamHypotheses``)."""

    size: int
    beams: list = field(default_factory=list)
    worst: float = 1e9

    def add(self, tokens: list[int], score_sum: float, length: int) -> None:
        score = score_sum / length
        if len(self.beams) < self.size or score > self.worst:
            self.beams.append((score, tokens))
            if len(self.beams) > self.size:
                ranked = sorted((s, i) for i, (s, _) in enumerate(self.beams))
                del self.beams[ranked[0][1]]
                self.worst = ranked[1][0]
            else:
                self.worst = min(score, self.worst)

    def done(self, best_sum: float, length: int) -> bool:
        return len(self.beams) >= self.size and self.worst >= best_sum / length


def _repetition_penalty(ids: torch.Tensor, scores: torch.Tensor, penalty: float) -> torch.Tensor:
    """transformers' ``RepetitionPenaltyLogitsProcessor``: logits of tokens already in the sequence are
    divided by ``penalty`` when positive and multiplied by it when negative (1.0 leaves them alone)."""
    seen = torch.gather(scores, 1, ids)
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return scores.scatter(1, ids, seen)


def group_beam_search(next_logits: Callable[[torch.Tensor], torch.Tensor], batch_size: int, *, num_beams: int = 6,
                      num_beam_groups: int = 3, min_seq_len: int = 5, seq_len: int = 30,
                      repetition_penalty: float = 1.0, sot: int = SOT_TOKEN, eot: int = EOT_TOKEN,
                      pad: int = 0, device: torch.device | str = "cpu") -> list[list[int]]:
    """open_clip's CoCa beam search (module docstring). ``next_logits(ids)`` maps the token ids of all
    ``batch_size·num_beams`` beams (beam-major per batch item) to the next token's logits. Returns,
    per batch item, the best sequence from the start token up to (without) the end token."""
    if num_beams < 2 or num_beam_groups < 1 or num_beams % num_beam_groups:
        raise ValueError(f"num_beams ({num_beams}) must be at least 2 and a multiple of num_beam_groups "
                         f"({num_beam_groups}).")
    if seq_len <= min_seq_len:
        raise ValueError(f"seq_len ({seq_len}) must be larger than min_seq_len ({min_seq_len}).")
    g = num_beams // num_beam_groups
    hyps = [_Hypotheses(g) for _ in range(batch_size * num_beam_groups)]
    done = [False] * len(hyps)
    ids = torch.full((batch_size * num_beams, 1), sot, dtype=torch.long, device=device)
    scores = torch.full((batch_size, num_beams), -1e9, dtype=torch.float, device=device)
    scores[:, ::g] = 0
    scores = scores.view(-1)
    while True:
        logits_all = next_logits(ids)
        current = torch.zeros(batch_size * num_beams, dtype=torch.long, device=device)
        for group in range(num_beam_groups):
            rows = [b * num_beams + i for b in range(batch_size) for i in range(group * g, group * g + g)]
            group_ids = ids[rows]
            logits = logits_all[rows].clone()
            if group_ids.shape[-1] < min_seq_len:
                logits[:, eot] = -float("inf")
            logits = _repetition_penalty(group_ids, logits, repetition_penalty)
            vocab = logits.shape[-1]
            cand = (logits + scores[rows].unsqueeze(-1)).view(batch_size, g * vocab)
            cand_scores, cand_tokens = torch.topk(cand, 2 * g, dim=1, largest=True, sorted=True)
            cand_beams = torch.div(cand_tokens, vocab, rounding_mode="floor")
            cand_tokens = cand_tokens % vocab
            length = group_ids.shape[-1] + 1
            new_scores = torch.zeros(batch_size, g, dtype=cand_scores.dtype, device=device)
            new_tokens = torch.zeros(batch_size, g, dtype=torch.long, device=device)
            new_from = torch.zeros(batch_size, g, dtype=torch.long, device=device)
            picked = (new_scores, new_tokens, new_from)
            for b in range(batch_size):
                h = b * num_beam_groups + group
                if done[h]:
                    new_tokens[b, :] = pad
                    continue
                _pick_beams(hyps[h], group_ids, b, g, eot, length, (cand_tokens[b], cand_scores[b], cand_beams[b]),
                            picked)
                done[h] = done[h] or hyps[h].done(float(cand_scores[b].max()), length)
            scores[rows] = new_scores.view(-1)
            ids[rows] = group_ids[new_from.view(-1)]
            current[rows] = new_tokens.view(-1)
        ids = torch.cat([ids, current.unsqueeze(-1)], dim=-1)
        if all(done) or ids.shape[-1] >= seq_len:
            break
    return _best_sequences(hyps, done, ids, scores, batch_size, num_beams, num_beam_groups)


def _pick_beams(hyp: _Hypotheses, group_ids: torch.Tensor, b: int, g: int, eot: int, length: int,
                candidates: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                picked: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
    """For batch item ``b`` of one group: walk its ``2g`` best candidates in order, file those that end (and rank
    among the first ``g``) as finished hypotheses, and keep the first ``g`` that go on in ``picked``
    (scores, tokens, source rows)."""
    tokens, scores, beams = candidates
    new_scores, new_tokens, new_from = picked
    kept = 0
    for rank, (tok, sc, beam) in enumerate(zip(tokens.tolist(), scores.tolist(), beams.tolist(), strict=True)):
        src = b * g + beam
        if tok == eot:
            if rank < g:
                hyp.add(group_ids[src].tolist(), sc, length)
        else:
            new_scores[b, kept], new_tokens[b, kept], new_from[b, kept] = scores[rank], tok, src
            kept += 1
        if kept == g:
            break


def _best_sequences(hyps: list[_Hypotheses], done: list[bool], ids: torch.Tensor, scores: torch.Tensor,
                    batch_size: int, num_beams: int, num_beam_groups: int) -> list[list[int]]:
    """Close the unfinished groups with their live beams at full length, then take per batch item the
    highest-scoring hypothesis over all its groups."""
    g = num_beams // num_beam_groups
    for h in range(len(hyps)):
        if done[h]:
            continue
        b, group = divmod(h, num_beam_groups)
        for i in range(g):
            row = b * num_beams + group * g + i
            hyps[h].add(ids[row].tolist(), float(scores[row]), ids.shape[-1])
    best = []
    for b in range(batch_size):
        cands = [beam for h in hyps[b * num_beam_groups:(b + 1) * num_beam_groups] for beam in h.beams]
        best.append(sorted(cands, key=lambda x: x[0])[-1][1])
    return best
