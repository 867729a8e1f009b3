"""Stub: every attribute access raises (see the package docstring)."""


def __getattr__(name):
    raise RuntimeError(f"torchvision stub: torchvision.models.{name} is unavailable in the test environment")
