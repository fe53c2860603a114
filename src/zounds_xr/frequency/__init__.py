"""The frequency axis: bands, mel/Bark units, scales, the ``FrequencyIndex``, dimensions."""
from .band import FrequencyBand, Hertz, Hz
from .dimension import ExplicitFrequencyDimension, FrequencyDimension
from .index import FrequencyIndex, frequency_coords
from .perceptual import bark_to_hz, hz_to_bark, hz_to_mel, mel_to_hz
from .scales import (
    PITCH_CLASSES,
    BarkScale,
    ChromaScale,
    ExplicitScale,
    FrequencyScale,
    GeometricScale,
    LinearScale,
    MelScale,
)

__all__ = [
    "Hertz",
    "Hz",
    "FrequencyBand",
    "FrequencyScale",
    "LinearScale",
    "GeometricScale",
    "MelScale",
    "BarkScale",
    "ChromaScale",
    "ExplicitScale",
    "PITCH_CLASSES",
    "hz_to_mel",
    "mel_to_hz",
    "hz_to_bark",
    "bark_to_hz",
    "FrequencyIndex",
    "frequency_coords",
    "FrequencyDimension",
    "ExplicitFrequencyDimension",
]
