"""Type aliases of the public signatures (for editors and type checkers only)."""
from __future__ import annotations

import datetime
from fractions import Fraction
from typing import TypeAlias

import numpy as np
import pandas as pd

__all__ = ["DurationLike"]

#: what ``timeseries.durations.to_fraction`` accepts: a timedelta of any kind, a
#: timedelta string (``"3s"``) or exact seconds as a ``Fraction`` (plain numbers are
#: refused as ambiguous)
DurationLike: TypeAlias = np.timedelta64 | pd.Timedelta | datetime.timedelta | str | Fraction
