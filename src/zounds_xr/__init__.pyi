"""Type stub of the lazy namespace: the names of ``_EXPORTS``, from the modules that
define them, so that editors and type checkers see ``zx.<name>`` while
``import zounds_xr`` stays cheap. tests/test_package.py keeps it equal to ``__all__``."""

from ._version import __version__ as __version__
from .core.errors import (
    AudioDecodeError as AudioDecodeError,
    AudioFileNotFoundError as AudioFileNotFoundError,
    DocumentNotFoundError as DocumentNotFoundError,
    NonFiniteSamplesWarning as NonFiniteSamplesWarning,
    NotFittedError as NotFittedError,
    NotInvertibleError as NotInvertibleError,
    ParameterError as ParameterError,
    SampleRateError as SampleRateError,
    SelectionError as SelectionError,
    StoreError as StoreError,
    ZoundsError as ZoundsError,
)
from .dimensions.arrays import (
    ArrayWithUnits as ArrayWithUnits,
)
from .audio.samples import (
    AudioSamples as AudioSamples,
)
from .documents.batch import (
    IngestReport as IngestReport,
    ingest as ingest,
)
from .datasets import (
    CompositeDataset as CompositeDataset,
    DatasetError as DatasetError,
    Directory as Directory,
    FreeSoundSearch as FreeSoundSearch,
    InternetArchive as InternetArchive,
    PhatDrumLoops as PhatDrumLoops,
)
from .dimensions.lookup import (
    Dimension as Dimension,
    IdentityDimension as IdentityDimension,
)
from .documents.document import (
    AudioFeature as AudioFeature,
    Document as Document,
    Feature as Feature,
)
from .documents.settings import (
    simple_in_memory_settings as simple_in_memory_settings,
    zarr_settings as zarr_settings,
)
from .documents.store import (
    FeatureStore as FeatureStore,
    open_store as open_store,
)
from .frequency.band import (
    FrequencyBand as FrequencyBand,
    Hertz as Hertz,
)
from .frequency.dimension import (
    ExplicitFrequencyDimension as ExplicitFrequencyDimension,
    FrequencyDimension as FrequencyDimension,
)
from .frequency.index import (
    FrequencyIndex as FrequencyIndex,
    frequency_coords as frequency_coords,
)
from .frequency.scales import (
    BarkScale as BarkScale,
    ChromaScale as ChromaScale,
    ExplicitScale as ExplicitScale,
    FrequencyScale as FrequencyScale,
    GeometricScale as GeometricScale,
    LinearScale as LinearScale,
    MelScale as MelScale,
)
from .io.decode import (
    load as load,
    open_audio as open_audio,
    stream as stream,
)
from .io.encode import (
    encode as encode,
    save as save,
)
from .io.metadata import (
    AudioMetaData as AudioMetaData,
    ChunkSizeBytes as ChunkSizeBytes,
)
from .learn import (
    Binarize as Binarize,
    FeatureWindows as FeatureWindows,
    FilterBank as FilterBank,
    HammingIndex as HammingIndex,
    InstanceScaling as InstanceScaling,
    KMeans as KMeans,
    Learned as Learned,
    Log as Log,
    MeanStdNormalization as MeanStdNormalization,
    Multiply as Multiply,
    PerceptualLoss as PerceptualLoss,
    PreprocessResult as PreprocessResult,
    PreprocessingPipeline as PreprocessingPipeline,
    Preprocessor as Preprocessor,
    PyTorchNetwork as PyTorchNetwork,
    RandomWindows as RandomWindows,
    Reshape as Reshape,
    ShuffledSamples as ShuffledSamples,
    SimHash as SimHash,
    SincLayer as SincLayer,
    SklearnModel as SklearnModel,
    Slicer as Slicer,
    SupervisedTrainer as SupervisedTrainer,
    TripletEmbeddingTrainer as TripletEmbeddingTrainer,
    UnitNorm as UnitNorm,
    WassersteinGanTrainer as WassersteinGanTrainer,
)
from .audio.resampling import (
    Resampler as Resampler,
    resample as resample,
)
from .spectral.adaptive import (
    FrequencyAdaptive as FrequencyAdaptive,
    frequency_adaptive as frequency_adaptive,
    square as square,
)
from .spectral.fft_backend import (
    fft_backend as fft_backend,
    set_fft_backend as set_fft_backend,
)
from .spectral.features import (
    bark_bands as bark_bands,
    chroma as chroma,
    mel_spectrogram as mel_spectrogram,
    mfcc as mfcc,
    spectral_centroid as spectral_centroid,
    spectral_flatness as spectral_flatness,
)
from .spectral.fingerprint import (
    fingerprint as fingerprint,
)
from .spectral.filters import (
    morlet_filter_bank as morlet_filter_bank,
)
from .spectral.kernels import (
    materialize as materialize,
)
from .spectral.sliding import (
    sliding_window as sliding_window,
)
from .spectral.transforms import (
    dct as dct,
    dctiv as dctiv,
    fft as fft,
    mdct as mdct,
    stft as stft,
)
from .spectral.weighting import (
    AWeighting as AWeighting,
    FrequencyWeighting as FrequencyWeighting,
    weight as weight,
)
from .synthesize.inverse import (
    DCTIVSynthesizer as DCTIVSynthesizer,
    DCTSynthesizer as DCTSynthesizer,
    FFTSynthesizer as FFTSynthesizer,
    FrequencyAdaptiveDCTSynthesizer as FrequencyAdaptiveDCTSynthesizer,
    FrequencyAdaptiveFFTSynthesizer as FrequencyAdaptiveFFTSynthesizer,
    MDCTSynthesizer as MDCTSynthesizer,
)
from .synthesize.simple import (
    NoiseSynthesizer as NoiseSynthesizer,
    SilenceSynthesizer as SilenceSynthesizer,
    SineSynthesizer as SineSynthesizer,
    TickSynthesizer as TickSynthesizer,
)
from .timeseries.dimension import (
    TimeDimension as TimeDimension,
)
from .timeseries.durations import (
    Hours as Hours,
    Microseconds as Microseconds,
    Milliseconds as Milliseconds,
    Minutes as Minutes,
    Nanoseconds as Nanoseconds,
    Picoseconds as Picoseconds,
    Seconds as Seconds,
)
from .timeseries.index import (
    TimeIndex as TimeIndex,
    time_coords as time_coords,
)
from .timeseries.samplerate import (
    AudioSampleRate as AudioSampleRate,
    HalfLapped as HalfLapped,
    SR11025 as SR11025,
    SR16000 as SR16000,
    SR22050 as SR22050,
    SR44100 as SR44100,
    SR48000 as SR48000,
    SR8000 as SR8000,
    SR96000 as SR96000,
    SampleRate as SampleRate,
    audio_sample_rate as audio_sample_rate,
)
from .timeseries.timeslice import (
    TimeSlice as TimeSlice,
)
from .explorer.notebook import explore as explore
from .viz import (
    play as play,
    seconds as seconds,
    specshow as specshow,
)
from .core.streamable import (
    frame_local as frame_local,
    framing as framing,
    stateful as stateful,
    streaming_of as streaming_of,
)
from .spectral.windowing import (
    HanningWindowingFunc as HanningWindowingFunc,
    IdentityWindowingFunc as IdentityWindowingFunc,
    OggVorbisWindowingFunc as OggVorbisWindowingFunc,
    WindowingFunc as WindowingFunc,
)


__all__: list[str]
