"""Stub: every attribute access raises (see the package docstring)."""


def __getattr__(name):
    raise RuntimeError(f"torchvision stub: torchvision.transforms.{name} is unavailable in the test environment")
