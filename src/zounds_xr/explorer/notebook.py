"""``zx.explore(store)``: the explorer inline in a notebook.

The page is an iframe to a background server thread.
"""
from __future__ import annotations

from ..core.optional import optional_import
from .server import BackgroundServer, open_explorer

__all__ = ["ExplorerView", "explore"]


class ExplorerView:
    """A running explorer: displays as an iframe in a notebook; ``.stop()`` ends it.

    Attributes
    ----------
    url : str
        The page's address (``http://127.0.0.1:<port>/``).
    server : BackgroundServer
    """

    def __init__(self, server: BackgroundServer, height: int = 720):
        self.server = server
        self.url = server.url
        self.height = int(height)

    def _repr_html_(self) -> str:
        return (f'<iframe src="{self.url}" width="100%" height="{self.height}" '
                f'style="border:1px solid #ddd" title="zounds-xr explorer"></iframe>'
                f'<div><a href="{self.url}" target="_blank">open {self.url} in a new tab</a>'
                f'</div>')

    def __repr__(self) -> str:
        return f"ExplorerView({self.url!r})"

    def stop(self) -> None:
        """Stop the server thread."""
        self.server.stop()


def explore(store, *, host: str = "127.0.0.1", port: int = 0, height: int = 720,
            storage_options: dict | None = None, writable: bool = False) -> ExplorerView:
    """Open the explorer over ``store`` in a background thread and show it inline.

    Parameters
    ----------
    store : str or store object
        A store URL (opened with ``zx.open_store``) or an opened store.
    host : str
        Interface to bind (default: this machine only).
    port : int
        TCP port; 0 picks a free one.
    height : int
        Height of the iframe in pixels.
    storage_options : dict, optional
        fsspec options for a URL.
    writable : bool, default False
        Allow label edits from the page (see ``zounds-xr serve --writable``).

    Returns
    -------
    ExplorerView
        Displays as the app in Jupyter; ``.url`` is the address; ``.stop()`` ends it.

    Examples
    --------
    >>> view = zx.explore("demo-output/features.zarr")   # doctest: +SKIP
    >>> view                                              # doctest: +SKIP
    """
    optional_import("tornado", extra="explore")
    explorer = open_explorer(store, storage_options, writable=writable)
    server = BackgroundServer(explorer, host, port).start()
    return ExplorerView(server, height)
