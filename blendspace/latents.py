"""Operations on ComfyUI LATENT dicts that the mixing nodes share (pure torch, no ComfyUI import).

A LATENT is ``{"samples": Tensor(B, C, H, W), "noise_mask"?: Tensor, "batch_index"?: list[int], ...}``.
These helpers check two latents against each other with errors that say what to do, broadcast a
batch of 1 against a batch of N, and build output dicts that carry every other key of the first
latent without mutating it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from .errors import BlendspaceInputError
from .slerp import slerp

LATENT_KINDS = {
    4: "SD1.x / SD2.x / SDXL",
    16: "SD3 / Flux",
    128: "LTX-Video",
}
SIZE_MODES = ("error", "resize b to a")


def _kind(channels: int) -> str:
    return LATENT_KINDS.get(channels, "an unknown model family")


def samples_of(latent: dict, name: str) -> torch.Tensor:
    if not isinstance(latent, dict) or "samples" not in latent:
        raise BlendspaceInputError(f"{name} is not a LATENT (no 'samples' tensor): connect a LATENT output.")
    s = latent["samples"]
    if s.dim() < 4:
        raise BlendspaceInputError(f"{name} has samples of shape {tuple(s.shape)}; expected (batch, channels, height, width).")
    return s


def match_pair(a: torch.Tensor, b: torch.Tensor, size_mode: str = "error",
               names: tuple[str, str] = ("latent_a", "latent_b")) -> tuple[torch.Tensor, torch.Tensor]:
    """Make ``b`` compatible with ``a``: same channels (else an error naming the model families),
    same spatial size (error, or bilinear resize when ``size_mode == "resize b to a"``), and the same
    batch size (a batch of 1 broadcasts; other mismatches are an error)."""
    na, nb = names
    if a.dim() != b.dim():
        raise BlendspaceInputError(f"{na} has shape {tuple(a.shape)} but {nb} has {tuple(b.shape)}: "
                                   "mix latents of the same kind (image with image, video with video).")
    if a.shape[1] != b.shape[1]:
        raise BlendspaceInputError(
            f"{na} has {a.shape[1]} channels ({_kind(a.shape[1])}) but {nb} has {b.shape[1]} "
            f"({_kind(b.shape[1])}): encode both images with the same model's VAE.")
    if a.shape[2:] != b.shape[2:]:
        if size_mode == "resize b to a":
            if b.dim() != 4:
                raise BlendspaceInputError(
                    f"size_mode 'resize b to a' works on image latents only; {nb} has shape {tuple(b.shape)}.")
            b = F.interpolate(b.to(torch.float32), size=tuple(a.shape[2:]), mode="bilinear",
                              align_corners=False).to(b.dtype)
        elif size_mode == "error":
            ha, wa = a.shape[-2] * 8, a.shape[-1] * 8
            hb, wb = b.shape[-2] * 8, b.shape[-1] * 8
            raise BlendspaceInputError(
                f"{na} is {wa}x{ha} px but {nb} is {wb}x{hb} px: resize one image (or latent) to the "
                "other's size, or set size_mismatch to 'resize b to a'.")
        else:
            raise BlendspaceInputError(f"size_mismatch must be one of {SIZE_MODES}, got {size_mode!r}.")
    if a.shape[0] != b.shape[0]:
        if b.shape[0] == 1:
            b = b.expand(a.shape[0], *b.shape[1:])
        elif a.shape[0] == 1:
            a = a.expand(b.shape[0], *a.shape[1:])
        else:
            raise BlendspaceInputError(
                f"{na} has a batch of {a.shape[0]} but {nb} has {b.shape[0]}: use batches of the same size, "
                "or a batch of 1 on one side (it is repeated).")
    return a, b


def _repeat_batch_key(value, times: int, batch: int):
    """Repeat a per-sample tensor (noise_mask) ``times`` along the batch, as RepeatLatentBatch does."""
    if isinstance(value, torch.Tensor) and value.dim() >= 3 and value.shape[0] > 1:
        if value.shape[0] < batch:
            value = value.repeat((batch // value.shape[0] + 1,) + (1,) * (value.dim() - 1))[:batch]
        return value.repeat((times,) + (1,) * (value.dim() - 1))
    return value


def output_latent(template: dict, samples: torch.Tensor, frames: int = 1, batch: int | None = None) -> dict:
    """A new LATENT dict with ``samples`` and every other key of ``template`` carried.

    ``frames`` > 1 means ``samples`` holds ``frames`` copies of a batch of ``batch``, frame-major;
    then ``noise_mask`` is repeated and ``batch_index`` extended with offsets, as core
    ``RepeatLatentBatch`` does, so per-image noise stays distinct.
    """
    out = {k: v for k, v in template.items()}
    out["samples"] = samples
    if frames > 1:
        batch = batch if batch is not None else samples.shape[0] // frames
        if "noise_mask" in out:
            out["noise_mask"] = _repeat_batch_key(out["noise_mask"], frames, batch)
        if "batch_index" in out:
            idx = list(out["batch_index"])
            if len(idx) != batch:
                idx = [idx[0] + i for i in range(batch)]
            offset = max(idx) - min(idx) + 1
            out["batch_index"] = [x + f * offset for f in range(frames) for x in idx]
    elif batch is not None and "batch_index" in out and len(out["batch_index"]) != batch:
        first = out["batch_index"][0]
        out["batch_index"] = [first + i for i in range(batch)]
    return out


def slerp_latents(latent_a: dict, latent_b: dict, ts: Sequence[float], per: str = "sample",
                  size_mode: str = "error",
                  mix: Callable[[torch.Tensor, torch.Tensor, float, str], torch.Tensor] | None = None) -> dict:
    """Slerp two LATENT dicts at every weight in ``ts``; one weight gives a batch like the inputs',
    several give ``len(ts)`` frames concatenated frame-major along the batch."""
    a = samples_of(latent_a, "latent_a")
    b = samples_of(latent_b, "latent_b")
    a2, b2 = match_pair(a, b, size_mode)
    b2 = b2.to(device=a2.device)
    fn = mix or slerp
    frames = [fn(a2.contiguous(), b2.contiguous(), float(t), per) for t in ts]
    samples = torch.cat(frames, dim=0) if len(frames) > 1 else frames[0]
    return output_latent(latent_a, samples, frames=len(ts), batch=a2.shape[0])


def perturbed_latents(base: torch.Tensor, noise: torch.Tensor, strength: float) -> torch.Tensor:
    """StableFused's walk around one latent (``modify_latent``): ``z' = (1 - s)·z + s·n`` for each of the fresh
    noises ``n`` (N, C, H, W) against the one base latent ``z`` (1 or N, C, H, W), then standardised with ONE
    mean and standard deviation over the whole batch tensor, as the source does. Returns float32 (N, C, H, W)."""
    if not 0.0 <= strength <= 1.0:
        raise BlendspaceInputError(f"strength {strength} is outside [0, 1] (0 = the base latent, 1 = new noise).")
    mixed = (1.0 - strength) * base.float() + strength * noise.float()
    return (mixed - mixed.mean()) / mixed.std().clamp_min(1e-12)
