"""The command line's own error: a usage mistake (a missing file, options that do not go together).

``cli.main`` turns it, like every error a user can cause (a bad workflow, a missing ComfyUI, bad
input to the math), into one line on standard error and exit status 1, never a traceback.
"""

from __future__ import annotations


class UsageError(ValueError):
    """A command given something it cannot use; the message names the option and what to give instead."""
