"""Grad-capable twins of loaded models, and ComfyUI's tiny (TAESD) decoders made for autograd.

ComfyUI loads models and runs nodes under ``torch.inference_mode()``: their weights are inference tensors,
which autograd refuses to save for a backward pass. CLIP guidance differentiates through the VAE decoder, the
CLIP image tower and (exact gradient) the diffusion model, so it runs them through twins whose weights alias
the loaded ones."""

from __future__ import annotations

import copy

from ...blendspace.errors import BlendspaceInputError
from .model_facts import family_name


def _alias(t):
    """A normal (non-inference) tensor on the same memory as ``t`` (a DLPack round trip, outside inference
    mode); a clone where DLPack cannot carry ``t`` (some tensor subclasses and quantised kinds)."""
    import torch
    t = t.detach()
    try:
        return torch.utils.dlpack.from_dlpack(torch.utils.dlpack.to_dlpack(t))
    except (BufferError, RuntimeError, TypeError, ValueError):
        return t.clone()


def grad_capable_twin(module, device):
    """A frozen twin of ``module`` that autograd can differentiate through (gradients for inputs, none for
    weights), on ``device``.

    ComfyUI loads models and runs nodes under ``torch.inference_mode()``: their weights are inference tensors,
    which autograd refuses to save for a backward pass. The twin's parameters and buffers are not copies: each
    is a normal tensor on the same memory as the original's, so the twin costs no weight memory on the
    module's own device (a twin on another device is a copy there). Everything else is deep-copied, so the
    twin's structure can be used apart from the original's; its weights must not be written to."""
    import torch
    with torch.inference_mode(False):
        memo = {id(p): torch.nn.Parameter(_alias(p), requires_grad=False) for p in module.parameters()}
        memo.update({id(b): _alias(b) for b in module.buffers()})
        twin = copy.deepcopy(module, memo).to(device)
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin


TINY_DECODER_FAMILIES = {"taesd_decoder": "SD1.x / SD2.x", "taesdxl_decoder": "SDXL", "taesd3_decoder": "SD3",
                         "taef1_decoder": "Flux"}
"""The tiny decoder files ComfyUI's latent formats name (``taesd_decoder_name``) and the families they decode."""


def tiny_decoder_path(model) -> str:
    """The file in ``models/vae_approx`` holding the tiny autoencoder decoder (TAESD, TAESDXL, TAESD3, TAEF1) for
    ``model``'s latent format (a ``BaseModel``), found as ComfyUI's previews find it; else a clear error naming
    the folders searched and the file expected."""
    import folder_paths
    name = getattr(getattr(model, "latent_format", None), "taesd_decoder_name", None)
    if name is None:
        raise BlendspaceInputError(f"there is no tiny autoencoder (TAESD) decoder for this model's latents "
                                   f"({family_name(model)}): choose the fast or exact gradient.")
    for filename in folder_paths.get_filename_list("vae_approx"):
        if filename.startswith(name):
            return folder_paths.get_full_path("vae_approx", filename)
    folders = ", ".join(folder_paths.get_folder_paths("vae_approx")) or "(none registered)"
    raise BlendspaceInputError(f"the taesd gradient needs the tiny decoder for {family_name(model)} latents: "
                               f"{name}.safetensors (or .pth) in models/vae_approx. Searched: {folders}. It is "
                               "the file ComfyUI's TAESD previews use (github.com/madebyollin/taesd); or choose the "
                               "fast gradient.")


def tiny_decoder(model, device):
    """ComfyUI's own ``TAESD`` class with ``model``'s tiny decoder loaded (no encoder), made outside inference
    mode with frozen weights so that autograd can run through it. Its ``decode`` takes the sampler's
    (``process_latent_in``) latents and returns images in [-1, 1]."""
    import inspect

    import torch
    from comfy.taesd.taesd import TAESD
    path = tiny_decoder_path(model)
    channels = int(getattr(model.latent_format, "latent_channels", 4))
    kwargs = {"latent_channels": channels} if "latent_channels" in inspect.signature(TAESD.__init__).parameters else {}
    try:
        with torch.inference_mode(False):
            taesd = TAESD(None, path, **kwargs).to(device)
    except RuntimeError as err:  # a decoder for other latents (channel count) does not load
        raise BlendspaceInputError(f"{path} is not a tiny decoder for {family_name(model)} latents ({channels} "
                                   f"channels): {str(err).splitlines()[0]}") from err
    for p in taesd.parameters():
        p.requires_grad_(False)
    return taesd
