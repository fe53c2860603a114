"""Optional dependencies, imported only when a feature needs them."""
import importlib

__all__ = ["optional_import"]

_EXTRA_OF = {
    "torch": "learn",
    "matplotlib": "viz",
    "IPython": "viz",
    "distributed": "distributed",
    "sklearn": "learn",
    "faiss": "search",
}


def optional_import(name: str, extra: str | None = None):
    """Import an optional dependency or raise ``ImportError`` with an install hint.

    Parameters
    ----------
    name : str
        Module name, e.g. ``"torch"`` or ``"matplotlib.pyplot"``.
    extra : str, optional
        The zounds_xr extra that provides it (guessed from the top-level name).
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        top = name.split(".")[0]
        extra = extra or _EXTRA_OF.get(top, "all")
        raise ImportError(
            f"{top} is required for this feature of zounds_xr; install it with "
            f'`python -m pip install "zounds_xr[{extra}]"`'
        ) from exc
