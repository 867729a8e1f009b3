"""Input declarations several node modules share: sampler settings as KSampler declares them, step windows, the
two ways to connect a CLIP image model, and the socket types Blendspace defines.

Node modules (``nodes_*.py``) never import each other; what two of them need lives here, in ``checks``
(the entry checks) or in ``runtime/`` (everything that talks to ComfyUI)."""

from __future__ import annotations

from .runtime.sampling import sampler_names, scheduler_names

OPEN_CLIP_TYPE = "BLENDSPACE_OPEN_CLIP"
MAX_SEED = 0xFFFFFFFFFFFFFFFF


def sampler_inputs(steps: int, cfg: float, seed_name: str = "seed", seed_default: int = 0,
                   seed_tip: str = "Seed of the starting noise (one fixed seed for every frame).",
                   steps_tip: str = "Number of sampling steps (of the full schedule).",
                   cfg_tip: str = "Classifier-free guidance scale (CFG), as in KSampler.") -> dict:
    """seed, steps, cfg, sampler_name and scheduler, as KSampler declares them, with the given defaults."""
    return {
        seed_name: ("INT", {"default": seed_default, "min": 0, "max": MAX_SEED, "tooltip": seed_tip}),
        "steps": ("INT", {"default": steps, "min": 1, "max": 10000, "tooltip": steps_tip}),
        "cfg": ("FLOAT", {"default": cfg, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01, "tooltip": cfg_tip}),
        "sampler_name": (sampler_names(), {"default": "euler", "tooltip": "Sampling algorithm, as in KSampler."}),
        "scheduler": (scheduler_names(), {"default": "normal", "tooltip": "Noise schedule, as in KSampler."}),
    }


def percent_inputs(what: str, step: float = 0.01, source: bool = False) -> dict:
    """start_percent / end_percent: the window of the schedule (0 = first step, 1 = last) where ``what`` acts."""
    note = (" Source: 0 (every step).", " Source: 1.") if source else ("", "")
    return {
        "start_percent": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": step,
                                    "tooltip": f"First step (as a fraction of the schedule) where {what}.{note[0]}"}),
        "end_percent": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": step,
                                  "tooltip": f"Last step (fraction of the schedule) where {what}.{note[1]}"}),
    }


def tower_inputs(role: str) -> dict:
    """The two ways to connect a CLIP image model (exactly one is used): core CLIP vision or open_clip."""
    return {
        "clip_vision": ("CLIP_VISION", {"tooltip": f"The CLIP vision model that {role} (Load CLIP Vision); or connect "
                                                   "open_clip instead."}),
        "open_clip": (OPEN_CLIP_TYPE, {"tooltip": f"The open_clip model that {role} (the images-mixing pipeline's LAION "
                                                  f"ViT-B-32); or "
                                                  "connect clip_vision instead."}),
    }


def model_input(role: str = "The model to sample with.") -> dict:
    return {"model": ("MODEL", {"tooltip": role})}
