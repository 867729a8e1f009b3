"""open_clip models from local files: the images-mixing pipeline's guidance CLIP (LAION ViT-B-32) and CoCa
captioner.

The diffusers images-mixing pipeline guides with ``laion/CLIP-ViT-B-32-laion2B-s34B-b79K`` and captions with open_clip's
``coca_ViT-L-14`` (``laion2B-s13B-b90k``); see docs/techniques.md, "CoCa captions" and
"CLIP-guided image mixing". Nothing is downloaded: the architecture is either one of open_clip's
built-in configs or read from a config beside the weights, the file layout of a Hugging Face
open_clip repo (``open_clip_config.json`` with ``model_cfg`` and ``preprocess_cfg``) or
``<weights name>.json`` (a ``model_cfg`` alone or the same two keys).
Weights load from safetensors, or from a pickle with ``torch.load(weights_only=True)``; open_clip
training checkpoints (``{"state_dict": …}``, ``module.`` prefixes) are accepted.

Image preprocessing is the source's: resize the shorter side to the model's size (bicubic), centre
crop, normalise with the model's mean and std (open_clip's ``image_transform`` for captions and
embeddings; a differentiable tensor version is ``clip_preprocess.shortest_side_pixels``).
Imports open_clip lazily and nothing from ComfyUI.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .clip_preprocess import OPENAI_MEAN, OPENAI_STD
from .coca_caption import EOT_TOKEN, SOT_TOKEN, clean_caption, group_beam_search
from .errors import BlendspaceInputError

AUTO = "auto (config .json beside the file)"
PRECISIONS = ("fp32", "fp16", "bf16")


def architectures() -> list[str]:
    """The loader's architecture choices: the config beside the file, then open_clip's built-ins."""
    try:
        import open_clip
    except ImportError:
        return [AUTO]
    return [AUTO, *open_clip.list_models()]


def config_beside(path: Path) -> tuple[dict, dict] | None:
    """``(model_cfg, preprocess_cfg)`` from ``<weights>.json`` or ``open_clip_config.json`` beside the file."""
    for cand in (path.with_suffix(".json"), path.parent / "open_clip_config.json"):
        if cand.is_file():
            data = json.loads(cand.read_text(encoding="utf-8"))
            if "model_cfg" in data:
                return dict(data["model_cfg"]), dict(data.get("preprocess_cfg", {}))
            if "vision_cfg" in data:
                return data, {}
            raise BlendspaceInputError(f"{cand} is not an open_clip config: it has neither 'model_cfg' nor 'vision_cfg'.")
    return None


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Weights from safetensors or a weights-only pickle, unwrapped from training checkpoints."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        sd = load_file(str(path))
    else:
        try:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - pickles with code objects are refused by weights_only
            raise BlendspaceInputError(f"{path.name} could not be read as plain weights ({e}); convert it to "
                                       "safetensors.") from e
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not sd:
        raise BlendspaceInputError(f"{path.name} holds no state dict.")
    if next(iter(sd)).startswith("module."):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    sd.pop("text.transformer.embeddings.position_ids", None)
    return sd


def build_model(model_cfg: dict) -> torch.nn.Module:
    """The open_clip module for a ``model_cfg``, chosen as open_clip's factory chooses it."""
    import open_clip
    cfg = dict(model_cfg)
    custom = cfg.pop("custom_text", False) or "hf_model_name" in cfg.get("text_cfg", {})
    if "hf_model_name" in cfg.get("text_cfg", {}) or "timm_model_name" in cfg.get("vision_cfg", {}):
        raise BlendspaceInputError("this architecture builds its towers from Hugging Face / timm models, which would "
                                   "be downloaded; pick a plain open_clip ViT or CoCa architecture.")
    if "multimodal_cfg" in cfg:
        return open_clip.CoCa(**cfg)
    return (open_clip.CustomTextCLIP if custom else open_clip.CLIP)(**cfg)


@dataclass
class OpenClipModel:
    """A loaded open_clip model with what using it needs (the ``BLENDSPACE_OPEN_CLIP`` value)."""

    model: torch.nn.Module
    name: str
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    context_length: int
    embed_dim: int

    @property
    def is_coca(self) -> bool:
        return hasattr(self.model, "text_decoder")

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """IMAGE (B, H, W, C) in [0, 1] → (B, 3, S, S) with open_clip's own eval transform on PIL images."""
        import open_clip
        from PIL import Image
        tf = open_clip.image_transform(self.image_size, is_train=False, mean=self.mean, std=self.std)
        arr = (images[..., :3].clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
        return torch.stack([tf(Image.fromarray(a)) for a in arr])

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Projected, unnormalised image embeddings of preprocessed pixels (differentiable)."""
        return self.model.encode_image(pixels.to(self.device, self.dtype), normalize=False).float()

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.image_features(self.preprocess(images)).cpu()

    @functools.cached_property
    def tokenizer(self):
        """open_clip's BPE tokenizer at the model's context length (built once: it reads the vocabulary file)."""
        import open_clip
        return open_clip.SimpleTokenizer(context_length=self.context_length)

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        return self.tokenizer(texts)

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        with torch.no_grad():
            return self.model.encode_text(self.tokenize(texts).to(self.device), normalize=False).float().cpu()

    def caption(self, images: torch.Tensor, *, num_beams: int = 6, num_beam_groups: int = 3, min_seq_len: int = 5,
                seq_len: int = 30, repetition_penalty: float = 1.0) -> list[str]:
        """The source's CoCa captions (``coca_caption``), one per image."""
        if not self.is_coca:
            raise BlendspaceInputError(f"{self.name} is not a CoCa model: load a coca_* architecture (the seed used "
                                       "coca_ViT-L-14, laion2B-s13B-b90k) to caption images.")
        pixels = self.preprocess(images).to(self.device, self.dtype)
        pixels = pixels.repeat_interleave(num_beams, 0)
        with torch.no_grad():
            latent, embs = self.model._encode_image(pixels)

            def step(ids):
                return self.model(pixels, ids, image_latent=latent, image_embs=embs, output_labels=False)["logits"][:, -1]

            seqs = group_beam_search(step, images.shape[0], num_beams=num_beams, num_beam_groups=num_beam_groups,
                                     min_seq_len=min_seq_len, seq_len=seq_len, repetition_penalty=repetition_penalty,
                                     sot=SOT_TOKEN, eot=EOT_TOKEN, pad=getattr(self.model, "pad_id", 0),
                                     device=self.device)
        return [clean_caption(self.tokenizer.decode(s + [EOT_TOKEN])) for s in seqs]


def load_open_clip(path: str | Path, architecture: str = AUTO, precision: str = "fp32") -> OpenClipModel:
    """Build the architecture (named, or from the config beside ``path``) and load ``path``'s weights."""
    import open_clip
    path = Path(path)
    if precision not in PRECISIONS:
        raise BlendspaceInputError(f"precision must be one of {PRECISIONS}")
    beside = config_beside(path)
    if architecture == AUTO:
        if beside is None:
            raise BlendspaceInputError(f"no config for {path.name}: put open_clip_config.json (from the model's "
                                       f"repository) or {path.with_suffix('.json').name} beside it, or pick the "
                                       "architecture in the list (e.g. ViT-B-32 for the images-mixing pipeline's LAION CLIP).")
        model_cfg, pre = beside
        name = path.stem
    else:
        model_cfg = open_clip.get_model_config(architecture)
        if model_cfg is None:
            raise BlendspaceInputError(f"open_clip has no architecture {architecture!r}.")
        pre = beside[1] if beside else {}
        name = architecture
    model = build_model(model_cfg)
    sd = read_state_dict(path)
    if "logit_scale" in sd and sd["logit_scale"].ndim != model.logit_scale.ndim:
        sd["logit_scale"] = sd["logit_scale"].reshape(model.logit_scale.shape)
    own = model.state_dict()
    missing = [k for k in own if k not in sd and k != "logit_bias"]
    unexpected = [k for k in sd if k not in own]
    reshaped = [k for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or reshaped:
        raise BlendspaceInputError(
            f"{path.name} does not fit the {name} architecture ({len(missing)} missing weights, e.g. {missing[:2]}; "
            f"{len(unexpected)} unexpected, e.g. {unexpected[:2]}; {len(reshaped)} of another shape, e.g. "
            f"{reshaped[:2]}): pick the architecture the file was trained as, or auto with its config beside it.")
    model.load_state_dict(sd, strict=False)
    model = model.eval().requires_grad_(False).to({"fp32": torch.float32, "fp16": torch.float16,
                                                   "bf16": torch.bfloat16}[precision])
    vision = model_cfg.get("vision_cfg", {})
    size = pre.get("size", vision.get("image_size", 224))
    size = int(size[0] if isinstance(size, list | tuple) else size)
    return OpenClipModel(model=model, name=name, image_size=size, mean=tuple(pre.get("mean", OPENAI_MEAN)),
                         std=tuple(pre.get("std", OPENAI_STD)),
                         context_length=int(model_cfg.get("text_cfg", {}).get("context_length", 77)),
                         embed_dim=int(model_cfg["embed_dim"]))
