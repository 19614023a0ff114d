"""nurture: a code-first marketing-automation nurture engine.

``__version__`` is read from the installed package's metadata when first
asked for, not on import: `importlib.metadata` costs every command start-up
a few tens of milliseconds, and only ``nurture --version`` needs it.
"""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    if name != "__version__":
        raise AttributeError(f"module 'nurture' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("nurture")
    except PackageNotFoundError:  # running from a source tree that was never installed
        found = "0.0.0"
    globals()["__version__"] = found
    return found
