"""Audio samples: ``AudioSamples`` (``samples``) and sample-rate conversion (``resampling``).

``zounds_xr.audio.AudioSamples`` keeps the path it had as one module.
"""
from .resampling import Resampler, resample
from .samples import AudioSamples

__all__ = ["AudioSamples", "Resampler", "resample"]
