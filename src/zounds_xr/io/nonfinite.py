"""What decoding does with NaN and infinity in float files (``on_nonfinite``).

Non-finite samples
    Float files can hold NaN and infinity. ``on_nonfinite`` chooses what decoding does
    with them: ``"warn"`` (default) keeps them and warns with their count and the first
    frame (:class:`~zounds_xr.core.errors.NonFiniteSamplesWarning`); ``"raise"`` refuses
    the file (``AudioDecodeError``); ``"zero"`` replaces them with 0; ``"keep"``
    passes them silently.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..core.errors import AudioDecodeError, NonFiniteSamplesWarning, ParameterError

__all__ = ["NONFINITE_POLICIES", "NonFiniteScreen", "nonfinite_policy"]

#: what decoding does with NaN and infinity (see the module docstring)
NONFINITE_POLICIES = ("warn", "raise", "zero", "keep")


def nonfinite_policy(value) -> str:
    """``value`` when it is one of :data:`NONFINITE_POLICIES`, else a ``ParameterError``."""
    if value not in NONFINITE_POLICIES:
        raise ParameterError(f"on_nonfinite must be one of {NONFINITE_POLICIES}, got {value!r}")
    return value


class NonFiniteScreen:
    """Applies one source's non-finite policy to its decoded frames and counts them."""

    def __init__(self, policy: str, name: str):
        self.policy, self.name = policy, name
        self.count = 0
        self.first: int | None = None

    def screen(self, block: np.ndarray, first_frame: int) -> None:
        """Apply the policy to decoded frames (in place) and count them."""
        if self.policy == "keep":
            return
        bad = ~np.isfinite(block)
        if not bad.any():
            return
        rows = np.flatnonzero(bad.any(axis=1))
        if self.first is None:
            self.first = first_frame + int(rows[0])
        self.count += int(bad.sum())
        if self.policy == "raise":
            raise AudioDecodeError(
                f"cannot decode {self.name}: non-finite samples (NaN or infinity), the first "
                f"at frame {self.first}; pass on_nonfinite='zero' to replace them "
                f"or 'keep' to accept them")
        if self.policy == "zero":
            block[bad] = 0.0

    def warn(self, what: str = "") -> None:
        """Return the ``"warn"`` policy's one warning for what was read (nothing when clean)."""
        if self.policy == "warn" and self.count:
            warnings.warn(
                f"{self.name}{what}: {self.count} non-finite samples (NaN or infinity) "
                f"decoded and kept, the first at frame {self.first} (pass "
                f"on_nonfinite='zero' to replace them, 'raise' to refuse the file)",
                NonFiniteSamplesWarning, stacklevel=4)
