"""zounds_xr: organizing machine-learning experiments with sound, on xarray, dask and zarr.

Everything public lives in this flat namespace (``import zounds_xr as zx``); names are
imported on first use, so ``import zounds_xr`` is cheap and never imports torch,
matplotlib or distributed. Importing the package registers the ``.zx`` accessor on
``xarray.DataArray`` and ``xarray.Dataset``.

Time and rates
    Hours, Minutes, Seconds, Milliseconds, Microseconds, Nanoseconds, Picoseconds,
    SampleRate, AudioSampleRate, SR8000 ... SR96000, audio_sample_rate, HalfLapped,
    TimeSlice, TimeDimension, TimeIndex
Frequency
    Hertz, FrequencyBand, LinearScale, GeometricScale, MelScale, BarkScale, ChromaScale,
    ExplicitScale, FrequencyDimension, ExplicitFrequencyDimension, FrequencyIndex
Arrays and audio
    ArrayWithUnits, IdentityDimension, AudioSamples, load, stream, open_audio, resample
Transforms
    sliding_window, fft, stft, dct, dctiv, mdct, mel_spectrogram, mfcc, chroma, ...,
    fingerprint
Documents and batch
    Document, Feature, FeatureStore, open_store, zarr_settings, simple_in_memory_settings, ingest,
    Directory, CompositeDataset, FreeSoundSearch, InternetArchive, PhatDrumLoops
Notebooks
    play, specshow, seconds, explore
Learning (needs the ``[learn]`` extra)
    PreprocessingPipeline and its steps, ShuffledSamples, trainers, SimHash, HammingIndex,
    FilterBank, SincLayer, PerceptualLoss, Learned (a trained model as a document feature)
"""
import importlib
from typing import Any

from . import accessor  # noqa: F401  (registers .zx; the accessor loads on first use)
from ._version import __version__
from .core.errors import (
    AudioDecodeError,
    AudioFileNotFoundError,
    DocumentNotFoundError,
    NonFiniteSamplesWarning,
    NotFittedError,
    NotInvertibleError,
    ParameterError,
    SampleRateError,
    SelectionError,
    StoreError,
    ZoundsError,
)

# public name -> module that defines it (relative to this package); __init__.pyi gives
# type checkers the same names, imported from the same modules
_EXPORTS: dict[str, str] = {
    # time
    **dict.fromkeys(
        ["Hours", "Minutes", "Seconds", "Milliseconds", "Microseconds", "Nanoseconds",
         "Picoseconds"], ".timeseries.durations"),
    **dict.fromkeys(
        ["SampleRate", "AudioSampleRate", "SR8000", "SR11025", "SR16000", "SR22050",
         "SR44100", "SR48000", "SR96000", "audio_sample_rate", "HalfLapped"],
        ".timeseries.samplerate"),
    "TimeSlice": ".timeseries.timeslice",
    "TimeIndex": ".timeseries.index",
    "TimeDimension": ".timeseries.dimension",
    # frequency
    "Hertz": ".frequency.band",
    "FrequencyBand": ".frequency.band",
    **dict.fromkeys(
        ["FrequencyScale", "LinearScale", "GeometricScale", "MelScale", "BarkScale",
         "ChromaScale", "ExplicitScale"], ".frequency.scales"),
    "FrequencyIndex": ".frequency.index",
    "frequency_coords": ".frequency.index",
    "time_coords": ".timeseries.index",
    "FrequencyDimension": ".frequency.dimension",
    "ExplicitFrequencyDimension": ".frequency.dimension",
    # arrays and audio
    "Dimension": ".dimensions.lookup",
    "IdentityDimension": ".dimensions.lookup",
    "ArrayWithUnits": ".dimensions.arrays",
    "AudioSamples": ".audio.samples",
    **dict.fromkeys(
        ["WindowingFunc", "HanningWindowingFunc", "OggVorbisWindowingFunc",
         "IdentityWindowingFunc"], ".spectral.windowing"),
    # I/O
    "AudioMetaData": ".io.metadata",
    "ChunkSizeBytes": ".io.metadata",
    "load": ".io.decode",
    "stream": ".io.decode",
    "open_audio": ".io.decode",
    "encode": ".io.encode",
    "save": ".io.encode",
    "resample": ".audio.resampling",
    "Resampler": ".audio.resampling",
    # synthesis
    **dict.fromkeys(
        ["SineSynthesizer", "NoiseSynthesizer", "TickSynthesizer", "SilenceSynthesizer"],
        ".synthesize.simple"),
    **dict.fromkeys(
        ["FFTSynthesizer", "DCTSynthesizer", "DCTIVSynthesizer", "MDCTSynthesizer",
         "FrequencyAdaptiveDCTSynthesizer", "FrequencyAdaptiveFFTSynthesizer"],
        ".synthesize.inverse"),
    # spectral
    "sliding_window": ".spectral.sliding",
    **dict.fromkeys(["fft", "stft", "dct", "dctiv", "mdct"], ".spectral.transforms"),
    "materialize": ".spectral.kernels",
    **dict.fromkeys(["fft_backend", "set_fft_backend"], ".spectral.fft_backend"),
    **dict.fromkeys(["frequency_adaptive", "square", "FrequencyAdaptive"],
                    ".spectral.adaptive"),
    **dict.fromkeys(
        ["bark_bands", "chroma", "mel_spectrogram", "mfcc", "spectral_centroid",
         "spectral_flatness"], ".spectral.features"),
    **dict.fromkeys(["AWeighting", "FrequencyWeighting", "weight"], ".spectral.weighting"),
    "morlet_filter_bank": ".spectral.filters",
    "fingerprint": ".spectral.fingerprint",
    **dict.fromkeys(["play", "specshow", "seconds"], ".viz"),
    # learning (torch is imported only when one of these is used)
    **dict.fromkeys(
        ["PreprocessingPipeline", "Preprocessor", "PreprocessResult", "MeanStdNormalization",
         "UnitNorm", "Log", "Multiply", "Slicer", "Reshape", "InstanceScaling", "KMeans",
         "SklearnModel", "PyTorchNetwork", "Binarize", "ShuffledSamples", "SupervisedTrainer",
         "TripletEmbeddingTrainer", "WassersteinGanTrainer", "SimHash", "HammingIndex",
         "FilterBank", "SincLayer", "PerceptualLoss", "FeatureWindows", "RandomWindows",
         "Learned"],
        ".learn"),
    # documents and batch
    **dict.fromkeys(["Document", "Feature", "AudioFeature"], ".documents.document"),
    "FeatureStore": ".documents.store",
    "open_store": ".documents.store",
    **dict.fromkeys(["frame_local", "framing", "stateful", "streaming_of"], ".core.streamable"),
    **dict.fromkeys(["zarr_settings", "simple_in_memory_settings"], ".documents.settings"),
    **dict.fromkeys(["ingest", "IngestReport"], ".documents.batch"),
    # the explorer (needs the [explore] extra when called)
    "explore": ".explorer.notebook",
    **dict.fromkeys(
        ["Directory", "CompositeDataset", "FreeSoundSearch", "InternetArchive",
         "PhatDrumLoops", "DatasetError"], ".datasets"),
}

# spelled out (not computed) so that editors, type checkers and linters read it; kept equal
# to _EXPORTS plus the errors by tests/test_package.py
__all__ = [
    "AWeighting",
    "ArrayWithUnits",
    "AudioDecodeError",
    "AudioFeature",
    "AudioFileNotFoundError",
    "AudioMetaData",
    "AudioSampleRate",
    "AudioSamples",
    "BarkScale",
    "Binarize",
    "ChromaScale",
    "ChunkSizeBytes",
    "CompositeDataset",
    "DCTIVSynthesizer",
    "DCTSynthesizer",
    "DatasetError",
    "Dimension",
    "Directory",
    "Document",
    "DocumentNotFoundError",
    "ExplicitFrequencyDimension",
    "ExplicitScale",
    "FFTSynthesizer",
    "Feature",
    "FeatureStore",
    "FeatureWindows",
    "FilterBank",
    "FreeSoundSearch",
    "FrequencyAdaptive",
    "FrequencyAdaptiveDCTSynthesizer",
    "FrequencyAdaptiveFFTSynthesizer",
    "FrequencyBand",
    "FrequencyDimension",
    "FrequencyIndex",
    "FrequencyScale",
    "FrequencyWeighting",
    "GeometricScale",
    "HalfLapped",
    "HammingIndex",
    "HanningWindowingFunc",
    "Hertz",
    "Hours",
    "IdentityDimension",
    "IdentityWindowingFunc",
    "IngestReport",
    "InstanceScaling",
    "InternetArchive",
    "KMeans",
    "Learned",
    "LinearScale",
    "Log",
    "MDCTSynthesizer",
    "MeanStdNormalization",
    "MelScale",
    "Microseconds",
    "Milliseconds",
    "Minutes",
    "Multiply",
    "Nanoseconds",
    "NoiseSynthesizer",
    "NonFiniteSamplesWarning",
    "NotFittedError",
    "NotInvertibleError",
    "OggVorbisWindowingFunc",
    "ParameterError",
    "PerceptualLoss",
    "PhatDrumLoops",
    "Picoseconds",
    "PreprocessResult",
    "PreprocessingPipeline",
    "Preprocessor",
    "PyTorchNetwork",
    "RandomWindows",
    "Resampler",
    "Reshape",
    "SR11025",
    "SR16000",
    "SR22050",
    "SR44100",
    "SR48000",
    "SR8000",
    "SR96000",
    "SampleRate",
    "SampleRateError",
    "Seconds",
    "SelectionError",
    "ShuffledSamples",
    "SilenceSynthesizer",
    "SimHash",
    "SincLayer",
    "SineSynthesizer",
    "SklearnModel",
    "Slicer",
    "StoreError",
    "SupervisedTrainer",
    "TickSynthesizer",
    "TimeDimension",
    "TimeIndex",
    "TimeSlice",
    "TripletEmbeddingTrainer",
    "UnitNorm",
    "WassersteinGanTrainer",
    "WindowingFunc",
    "ZoundsError",
    "__version__",
    "audio_sample_rate",
    "bark_bands",
    "chroma",
    "dct",
    "dctiv",
    "encode",
    "explore",
    "fft",
    "fft_backend",
    "fingerprint",
    "frame_local",
    "framing",
    "frequency_adaptive",
    "frequency_coords",
    "ingest",
    "load",
    "materialize",
    "mdct",
    "mel_spectrogram",
    "mfcc",
    "morlet_filter_bank",
    "open_audio",
    "open_store",
    "play",
    "resample",
    "save",
    "seconds",
    "set_fft_backend",
    "simple_in_memory_settings",
    "sliding_window",
    "specshow",
    "spectral_centroid",
    "spectral_flatness",
    "square",
    "stateful",
    "stft",
    "stream",
    "streaming_of",
    "time_coords",
    "weight",
    "zarr_settings",
]


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'zounds_xr' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # resolve once
    return value


def __dir__() -> list[str]:
    return __all__
