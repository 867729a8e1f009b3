"""Test-only stand-in for torchvision, used when no working torchvision is installed.

ComfyUI imports torchvision at module level for model families the tests never build (Cosmos,
Stable Cascade). There is no CPU build of torchvision for the CPU torch the tests use, so the
harness puts this stub on sys.path; any real use raises.
"""

__version__ = "0.0.0-blendspace-stub"
from . import models, transforms  # noqa: E402,F401
