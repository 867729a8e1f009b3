"""The runtime layer: the only code under ``nodes/`` that imports ComfyUI.

Node modules (``nodes/nodes_*.py``) declare inputs and make thin calls; whatever talks to ComfyUI while a
node runs lives here, one module per concern, each working on the 2024 and on the current ComfyUI:

- ``model_facts``: what a MODEL is (family, prediction type, latent format, context width, sampling schedule);
- ``sampling``: the shared sampler run (KSampler's own path), schedules, noise, progress and Cancel;
- ``guidance_hooks``: the CLIP-guided sampler's hooks into ComfyUI's sampling and the state they share;
- ``cycle_driver``: the CycleDiffusion sampler, run as a ComfyUI KSAMPLER;
- ``attention``: attention kernels and the one dispatcher for ``optimized_attention_override``;
- ``cross_attention``: the U-Net cross-attention (``attn2``) patches;
- ``twins``: grad-capable twins of loaded models and the tiny (TAESD) decoders;
- ``clip_vision``: the CLIP image towers (core CLIP vision, open_clip) as the techniques call them;
- ``files``: ComfyUI's model and output folders.

ComfyUI's modules are imported inside the functions, so importing the pack has no side effects. The hooks
used are ComfyUI's own: ``model_options`` (post-CFG, CFG and calc-cond-batch functions), ``transformer_options``
(``patches_replace``, ``optimized_attention_override``) and core's sampling functions; no ComfyUI class is
monkeypatched.
"""
