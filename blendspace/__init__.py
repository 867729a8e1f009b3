"""Blendspace's technique math and shared pure helpers; no module here imports ComfyUI.

Each technique, its source and where the pack departs from it: ``docs/techniques.md``.

Technique math:

- ``slerp``: spherical (and linear) interpolation of tensors, walk weights ("Slerp").
- ``clip_guidance``: CLIP-guided sampling toward a mixed image embedding ("CLIP-guided image mixing").
- ``coca_caption`` / ``open_clip_models``: CoCa captions and open_clip models from local files ("CoCa captions").
- ``grid_search``: the find-the-best-mix grid and its objectives ("Finding the best mix").
- ``flex_mapping``: FlexDiffuse's image-to-prompt token mapping ("FlexDiffuse").
- ``dual_style_mask`` / ``epsilon_mix`` / ``cross_attention``: dual-style blending ("Dual-style blending").
- ``cycle_diffusion``: stochastic DDIM inversion and noise replay ("CycleDiffusion").
- ``clip_scores`` / ``evaluation``: CLIP scores, seam smoothness and dual-style-image-gen's
  metrics ("Evaluation and CLIP scores").
- ``strength_sweep`` / ``animation``: img2img strength rules and GIF writing ("img2img strength sweeps and morph GIFs").
- ``guidance``: classifier-free guidance at any scale, with rescale ("StableFused: any-scale guidance, latent walks,
  denoising replay").

Shared pure helpers:

- ``latents`` / ``conditioning``: checked, non-mutating plumbing for LATENT dicts and CONDITIONING lists.
- ``clip_preprocess``: CLIP pixel preprocessing on tensors (differentiable).
- ``contact_sheet``: labelled image sheets for grids, sweeps and score reports.
- ``errors``: ``BlendspaceInputError``, the pack's one error type for bad graph input.

``__main__.py`` only forwards ``python -m blendspace`` to the tooling package ``blendspace_tools``. The
ComfyUI node classes live in the pack's ``nodes/`` folder and are thin adapters over these modules.
"""

__version__ = "0.1.0"
