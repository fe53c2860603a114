"""SimHash codes and HammingIndex search, checked against naive Python."""
from fractions import Fraction

import numpy as np
import pytest

pytest.importorskip("torch")

import zounds_xr as zx  # noqa: E402
from zounds_xr.learn import (  # noqa: E402
    HammingIndex,
    NotInvertibleError,
    SimHash,
    hamming_distance,
    pack_bits,
    unpack_bits,
)


def frames(data, ms=50, start_ms=0):
    return zx.ArrayWithUnits(np.asarray(data),
                             [zx.TimeDimension(zx.Milliseconds(ms),
                                               start=zx.Milliseconds(start_ms)),
                              zx.IdentityDimension()])


def naive_popcount_distance(a_words, b_words):
    return sum(bin(int(a) ^ int(b)).count("1") for a, b in zip(a_words, b_words, strict=True))


@pytest.mark.parametrize("n_bits", [1, 7, 64, 65, 130])
def test_pack_unpack_round_trip(rng, n_bits):
    bits = rng.integers(0, 2, size=(9, n_bits)).astype(np.uint8)
    words = pack_bits(bits)
    assert words.dtype == np.uint64 and words.shape == (9, -(-n_bits // 64))
    np.testing.assert_array_equal(unpack_bits(words, n_bits), bits)
    # bit j is bit j % 64 of word j // 64
    for row in range(3):
        for j in range(n_bits):
            assert (int(words[row, j // 64]) >> (j % 64)) & 1 == bits[row, j]


def test_hamming_distance_matches_naive(rng):
    codes = rng.integers(0, 2 ** 63, size=(40, 3), dtype=np.uint64) * np.uint64(2) + \
        rng.integers(0, 2, size=(40, 3), dtype=np.uint64)
    query = codes[5] ^ np.uint64(0b1011)
    expected = [naive_popcount_distance(c, query) for c in codes]
    np.testing.assert_array_equal(hamming_distance(codes, query), expected)


def test_simhash_bits_match_definition(rng):
    x = frames(rng.normal(size=(30, 5)) + 3)
    hasher = SimHash(bits=20, seed=1).fit(x)
    np.testing.assert_allclose(hasher.mean, x.values.mean(axis=0))
    codes = hasher(x)
    assert codes.dims == ("time", "bit") and codes.dtype == np.uint8
    assert codes.xindexes["time"].equals(x.xindexes["time"])
    expected = (((x.values - x.values.mean(0)) @ hasher.planes) > 0).astype(np.uint8)
    np.testing.assert_array_equal(codes.values, expected)
    packed = SimHash(bits=20, seed=1, packbits=True).fit(x)(x)
    assert packed.dims == ("time", "word") and packed.dtype == np.uint64
    np.testing.assert_array_equal(unpack_bits(packed.values, 20), expected)
    lazy = SimHash(bits=20, seed=1, packbits=True).fit(x)(x.chunk({"time": 7}))
    assert lazy.chunks is not None
    np.testing.assert_array_equal(lazy.values, packed.values)
    with pytest.raises(NotInvertibleError):
        hasher.transform(x).inverse_transform()


def test_simhash_is_seeded_and_similarity_preserving(rng):
    x = frames(rng.normal(size=(200, 16)))
    a = SimHash(bits=128, seed=7, packbits=True).fit(x)(x).values
    b = SimHash(bits=128, seed=7, packbits=True).fit(x)(x).values
    np.testing.assert_array_equal(a, b)
    hasher = SimHash(bits=256, seed=7, packbits=True).fit(x)
    base = x.values[0]
    near = frames(base + 0.05 * rng.normal(size=(1, 16)))
    far = frames(-base[None, :])
    q = hasher(frames(base[None]))
    assert hamming_distance(hasher(near).values, q.values[0])[0] < 40
    assert hamming_distance(hasher(far).values, q.values[0])[0] > 200


def test_hamming_index_search_matches_brute_force(rng):
    index = HammingIndex()
    docs = {}
    for i, n in enumerate([17, 30, 5]):
        codes = rng.integers(0, 2, size=(n, 100)).astype(np.uint8)  # bits: packed by add
        docs[f"doc{i}"] = codes
        index.add(frames(codes, ms=50, start_ms=1000 * i), f"doc{i}")
    assert len(index) == 52 and index.document_ids == ["doc0", "doc1", "doc2"]
    query_bits = docs["doc1"][12].copy()
    query_bits[:3] ^= 1
    results = index.search(pack_bits(query_bits[None])[0], n_results=6)
    naive = []
    for doc, codes in docs.items():
        for pos, row in enumerate(codes):
            naive.append((int(np.sum(row != query_bits)), doc, pos))
    naive.sort(key=lambda t: t[0])  # stable: insertion order breaks ties
    assert [(r.distance, r.document_id, r.position) for r in results] == naive[:6]
    best = results[0]
    assert best.document_id == "doc1" and best.position == 12 and best.distance == 3
    assert best.time_slice == zx.TimeSlice(duration=zx.Milliseconds(50),
                                           start=zx.Milliseconds(1000 + 12 * 50))
    assert best.time_slice.start_fraction == Fraction(16, 10)
    # a query given as a one-frame DataArray of bits
    again = index.search(frames(query_bits[None]), n_results=1)[0]
    assert (again.document_id, again.position) == ("doc1", 12)
    assert len(index.search(pack_bits(query_bits[None])[0], n_results=1000)) == 52


def test_hamming_index_save_load(rng, tmp_path):
    index = HammingIndex()
    x = frames(rng.normal(size=(40, 6)))
    codes = SimHash(bits=64, packbits=True).fit(x)(x)
    index.add(codes, "a")
    index.add(codes.values[:5], "b")  # plain arrays: no time slices
    index.save(tmp_path / "idx")
    loaded = HammingIndex.load(tmp_path / "idx")
    q = codes.values[3]
    assert loaded.search(q, 3) == index.search(q, 3)
    hit = [r for r in loaded.search(q, 3) if r.document_id == "b"][0]
    assert hit.time_slice is None


def test_hamming_index_errors(rng):
    index = HammingIndex()
    index.add(np.zeros((3, 2), dtype=np.uint64), "a")
    with pytest.raises(zx.ParameterError):
        index.add(np.zeros((3, 1), dtype=np.uint64), "b")
    with pytest.raises(zx.ParameterError):
        index.search(np.zeros((2, 2), dtype=np.uint64))
    with pytest.raises(zx.ParameterError):
        index.search(np.zeros(2, dtype=np.uint64), n_results=0)
    assert HammingIndex().search(np.zeros(1, dtype=np.uint64)) == []


def test_one_home_for_hashing_helpers(rng):
    """learn's SimHash and HammingIndex are the seed's API over zounds_xr.search: the same
    hyperplanes, packing and distance (no second copy)."""
    from zounds_xr import search

    assert pack_bits is search.pack_bits and unpack_bits is search.unpack_bits
    assert hamming_distance is search.hamming_distance
    x = frames(rng.normal(size=(40, 6)))
    hasher = SimHash(bits=70, seed=3).fit(x)
    np.testing.assert_array_equal(hasher.planes, search.hyperplanes(6, 70, 3))
    np.testing.assert_array_equal(hasher(x).values,
                                  search.simhash_bits(x.values, hasher.mean, hasher.planes))
