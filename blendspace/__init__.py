"""Blendspace's pure-torch math: one module per technique, none of them imports ComfyUI.

- ``slerp``: spherical interpolation of latents, embeddings and conditionings (seed 000, §1.3).
- ``latents`` / ``conditioning``: checked, non-mutating plumbing for LATENT dicts and
  CONDITIONING lists shared by the nodes.

The ComfyUI node classes live in the pack's ``nodes/`` folder and are thin adapters over these.
"""

__version__ = "0.1.0"
