"""The one error type of the pack: bad input from the graph.

Every check of a node input raises :class:`BlendspaceInputError`, a ``ValueError`` whose message
names the input and says what to connect or change instead. It lives in its own module so that the
math modules, the node adapters and the tooling can all raise it without depending on each other.
"""

from __future__ import annotations


class BlendspaceInputError(ValueError):
    """Bad input from the graph; the message names the input and says what the user should change."""
