"""Shared fixtures: a seeded rng, the numpy/dask ``backend``, the shared corpus."""
import pathlib

import numpy as np
import pytest
import xarray as xr

CORPUS = pathlib.Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture
def rng():
    return np.random.default_rng(440)


@pytest.fixture(params=["numpy", "dask"])
def backend(request):
    """A function that returns its DataArray as is (numpy) or chunked along time (dask)."""
    if request.param == "numpy":
        return lambda da: da

    def chunk(da: xr.DataArray, size: int = 1000) -> xr.DataArray:
        first = da.dims[0]
        return da.chunk({first: size})

    chunk.name = "dask"
    return chunk


@pytest.fixture(scope="session")
def corpus():
    """The third-party audio corpus of ../shared (skips when it is absent)."""
    if not (CORPUS / "MANIFEST.tsv").exists():
        pytest.skip("../shared/corpus is not present")
    return CORPUS
