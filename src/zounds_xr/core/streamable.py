"""How a transform streams: declarations that the document pipeline reads.

A feature of a :class:`~zounds_xr.Document` is computed chunk by chunk while a source
is processed (``zounds_xr.documents.streaming``). How a function may be cut into
chunks is a property of the function, so the function declares it, with one of:

``frame_local``
    output frame ``i`` depends on input frame ``i`` only (``fft`` of windows,
    ``np.abs``, a gain): applied to each chunk as it comes. Undeclared functions are
    taken to be frame-local (and checked: a chunk's output must have as many frames as
    its input).
``framing(scheme="wscheme", default=...)``
    frames its input like ``sliding_window``: frame ``k`` covers input frames
    ``[k*hop, k*hop + window)`` with hop and window from the ``SampleRate`` passed as
    parameter ``scheme``; ``default(time_index)`` gives the scheme when the parameter is
    left out (e.g. ``stft``: the input rate's ``half_lapped()``). ``when(first_chunk)``
    may say that for this input the function is frame-local instead (a mel spectrogram
    of a spectrum, rather than of audio).
``stateful(factory)``
    ``factory(**params)`` returns an object with ``push(chunk)`` (or ``process``) and
    ``flush()``, each returning a chunk or ``None``, carrying state across chunks (the
    resampler's filter).

>>> import zounds_xr as zx
>>> @zx.framing("wscheme", default=lambda index: index.samplerate.half_lapped())
... def my_frames(x, wscheme=None):
...     ...
>>> zx.streaming_of(my_frames).kind
'framing'

This module is at the bottom of the package: it imports nothing of zounds_xr, so
any transform can declare itself.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

__all__ = ["Streaming", "frame_local", "framing", "stateful", "streaming_of"]

_ATTR = "__zounds_streaming__"
KINDS = ("frame_local", "framing", "stateful")


@dataclasses.dataclass(frozen=True)
class Streaming:
    """A function's streaming declaration (see the module docs).

    Attributes
    ----------
    kind : {"frame_local", "framing", "stateful"}
    scheme : str or None
        For ``framing``: the parameter that holds the ``SampleRate`` (window scheme).
    default : callable or None
        For ``framing``: ``default(time_index) -> SampleRate`` when ``scheme`` is not
        given.
    when : callable or None
        For ``framing``: ``when(first_chunk) -> bool``; false means frame-local for this
        input.
    factory : callable or None
        For ``stateful``: ``factory(**params)`` -> an object with ``push``/``flush``.
    channelwise : bool
        The function treats a ``channel`` dim independently, channel by channel (as
        on mono input): same-length clips may then be stacked along ``channel`` and
        computed in one call.
    """

    kind: str
    scheme: str | None = None
    default: Callable | None = None
    when: Callable | None = None
    factory: Callable | None = None
    channelwise: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")


def _declare(func, spec: Streaming):
    try:
        setattr(func, _ATTR, spec)
    except (AttributeError, TypeError):
        raise TypeError(f"cannot declare how {func!r} streams (it takes no attributes); "
                        f"wrap it in a Python function") from None
    return func


def frame_local(func=None, *, channelwise: bool = False):
    """Declare ``func`` frame-local (a decorator, with or without arguments).

    Parameters
    ----------
    func : callable, optional
        The function (``@frame_local``); ``None`` when called with arguments
        (``@frame_local(channelwise=True)``).
    channelwise : bool
        The function handles one channel at a time (the graph splits channels).

    Returns
    -------
    callable
        ``func`` with its declaration, or the decorator that declares it.
    """
    def decorate(f):
        return _declare(f, Streaming("frame_local", channelwise=channelwise))

    return decorate if func is None else decorate(func)


def framing(scheme: str = "wscheme", default: Callable | None = None,
            when: Callable | None = None, *, channelwise: bool = False):
    """Declare that the decorated function frames its input with a ``SampleRate``.

    Parameters
    ----------
    scheme : str
        The name of the parameter that gives the ``SampleRate`` (hop and window).
    default : callable, optional
        ``default(time_index)`` gives the scheme when the parameter is left out.
    when : callable, optional
        ``when(params)`` says whether the call frames at all (else it is frame-local).
    channelwise : bool
        The function handles one channel at a time.

    Returns
    -------
    callable
        The decorator.

    Raises
    ------
    TypeError
        When ``scheme`` is not a parameter name.
    """
    if not isinstance(scheme, str) or not scheme:
        raise TypeError(f"scheme must name a parameter, got {scheme!r}")

    def decorate(func):
        return _declare(func, Streaming("framing", scheme=scheme, default=default,
                                        when=when, channelwise=channelwise))

    return decorate


def stateful(factory: Callable, *, channelwise: bool = False):
    """Declare the stateful streaming counterpart of the decorated function.

    Parameters
    ----------
    factory : callable
        Builds the object that processes a stream chunk by chunk, carrying its state.
    channelwise : bool
        The function handles one channel at a time.

    Returns
    -------
    callable
        The decorator.

    Raises
    ------
    TypeError
        When ``factory`` is not callable.
    """
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {factory!r}")

    def decorate(func):
        return _declare(func, Streaming("stateful", factory=factory,
                                        channelwise=channelwise))

    return decorate


def streaming_of(func) -> Streaming | None:
    """Return the streaming declaration of ``func``.

    Parameters
    ----------
    func : callable
        A transform.

    Returns
    -------
    Streaming or None
        What it declared with :func:`frame_local`, :func:`framing` or
        :func:`stateful`; ``None`` when it declares nothing.
    """
    spec = getattr(func, _ATTR, None)
    return spec if isinstance(spec, Streaming) else None
