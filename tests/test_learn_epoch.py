"""An epoch's order and its deal over ranks and workers: randomness, exactly-once,
elastic determinism, elastic resume (also with real gloo process groups)."""
import json
import multiprocessing
import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from _windows_helpers import ContractStore, frames_of  # noqa: E402

import zounds_xr as zx  # noqa: E402
from zounds_xr.learn import RandomWindows  # noqa: E402
from zounds_xr.learn.epoch_layout import EpochLayout  # noqa: E402
from zounds_xr.learn.permutation import KeyedPermutation  # noqa: E402
from zounds_xr.learn.window_orders import BlockOrder, UniformOrder, WeightedOrder  # noqa: E402
from zounds_xr.learn.window_plan import WindowPlan  # noqa: E402


# ---------------------------------------------------------------- the permutation
@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 5000), seed=st.integers(0, 2**32), epoch=st.integers(0, 100))
def test_the_permutation_is_a_bijection_found_per_position(n, seed, epoch):
    perm = KeyedPermutation(n, (seed, epoch))
    everything = perm(np.arange(n))
    assert sorted(everything.tolist()) == list(range(n))
    if n:
        some = np.random.default_rng(seed).integers(0, n, 20)
        np.testing.assert_array_equal(perm(some), everything[some])


# ------------------------------------------------------------- the deal (layout)
def delivered(layout: EpochLayout, world_size: int, workers: int):
    """What a job of ``world_size`` ranks, each with a DataLoader over ``workers``
    workers, yields: per rank its batches (as position arrays) in the DataLoader's order
    (one batch from each worker in turn, skipping an exhausted worker)."""
    ranks = []
    for rank in range(world_size):
        per_worker = []
        for w in range(workers):
            js = np.arange(w, layout.batches(rank), workers)
            offsets, sizes = layout.batch_spans(rank, js)
            per_worker.append([np.arange(o, o + s) for o, s in zip(offsets, sizes,
                                                                    strict=True)])
        order, turn = [], 0
        while any(per_worker):
            w = turn % workers
            turn += 1
            if per_worker[w]:
                order.append(per_worker[w].pop(0))
        ranks.append(order)
    return ranks


def interleaved(ranks):
    """The ranks' batches interleaved by step: the job's global sequence."""
    out = []
    for step in range(max(len(r) for r in ranks)):
        out += [b for r in ranks if step < len(r) for b in [r[step]]]
    return np.concatenate(out) if out else np.array([], dtype=np.int64)


@settings(max_examples=150, deadline=None)
@given(total=st.integers(0, 400), start=st.integers(0, 400), world=st.integers(1, 5),
       workers=st.integers(1, 4), unit=st.integers(1, 9), even=st.booleans())
def test_every_position_once_and_the_same_sequence_for_any_deal(total, start, world,
                                                                 workers, unit, even):
    start = min(start, total)
    layout = EpochLayout(start, total, world, unit, even)
    ranks = delivered(layout, world, workers)
    sequence = interleaved(ranks)
    lost = total - start - len(sequence)
    # the global sequence is the positions in order, whatever the ranks and workers
    np.testing.assert_array_equal(sequence, np.arange(start, start + len(sequence)))
    lengths = [sum(len(b) for b in r) for r in ranks]
    assert lengths == [layout.length(r) for r in range(world)]
    if even:
        assert 0 <= lost <= world - 1 and len(set(lengths)) == 1
    else:
        assert lost == 0 and max(lengths) - min(lengths) <= 1
    # after every rank took `steps` batches, exactly a prefix was delivered
    for steps in range(max((len(r) for r in ranks), default=0) + 1):
        taken = interleaved([r[:steps] for r in ranks]) if ranks else []
        assert layout.position_after(steps) == start + len(taken)


# ------------------------------------------------------------------ the orders
class CatalogStore:
    """A catalog whose documents lie in storage in another order than the catalog's
    (ids sorted): only the order is computed, no array is read."""

    def __init__(self, n_docs=250, seed=0):
        rng = np.random.default_rng(seed)
        frames = rng.integers(400, 1200, n_docs)
        parts = rng.integers(0, 5, n_docs)
        rows, offsets = [], [0] * 5
        index = json.dumps({"type": "TimeIndex", "version": 1, "size": 0, "start": "0",
                            "frequency": "1/100", "duration": "1/100"})
        for i in rng.permutation(n_docs):  # written in a random order
            p = int(parts[i])
            rows.append({"id": f"doc{i:04d}", "klass": i % 4, "mel.frames": int(frames[i]),
                         "mel.array": f"parts/p{p}/mel", "mel.offset": offsets[p],
                         "mel.index": index})
            offsets[p] += int(frames[i])
        self._catalog = pd.DataFrame(rows).set_index("id").sort_index()

    def catalog(self):
        return self._catalog.copy()

    def array(self, path):
        raise AssertionError("the order is computed from the catalog alone")


@pytest.fixture(scope="module")
def big():
    plan = WindowPlan(CatalogStore(), "mel", 1, 1, None, None, weights="klass")
    docs = np.lexsort((plan.offsets, plan.array_codes))
    stored_before = np.empty(len(docs), dtype=np.int64)
    stored_before[docs] = np.concatenate([[0], np.cumsum(plan.counts()[docs])[:-1]])
    return plan, stored_before


def spearman(a, b):
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def order_statistics(plan, stored_before, windows):
    doc, k, _ = plan.locate(windows)
    n = len(windows)
    position = np.arange(n)
    counts = plan.counts()
    chance = float((counts * (counts - 1)).sum()) / (plan.total * (plan.total - 1))
    return {"catalog": spearman(position, windows),
            "storage": spearman(position, stored_before[doc] + k),
            "runs": float(np.mean(doc[1:] == doc[:-1])) / chance}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("world,workers", [(1, 1), (1, 2), (2, 3), (3, 2)])
def test_the_global_order_is_uniform(big, seed, world, workers):
    plan, stored_before = big
    assert plan.total >= 10**5
    order = UniformOrder(plan, seed, 0)
    # what the job delivers, ranks and workers interleaved, is the sequence
    sequence = interleaved(delivered(EpochLayout(0, plan.total, world, 64, False),
                                     world, workers))
    windows = order(sequence)
    assert np.array_equal(np.sort(windows), np.arange(plan.total))
    stats = order_statistics(plan, stored_before, windows)
    bound = 3 / np.sqrt(plan.total)
    assert abs(stats["catalog"]) < bound and abs(stats["storage"]) < bound, stats
    assert abs(stats["runs"] - 1) < 0.2, stats
    # two epochs' orders are unrelated
    next_epoch = UniformOrder(plan, seed, 1)(np.arange(plan.total))
    where = np.empty(plan.total, dtype=np.int64)
    where[next_epoch] = np.arange(plan.total)
    assert abs(spearman(np.arange(plan.total), where[windows])) < bound


def test_the_block_order_is_what_its_docstring_says(big):
    plan, stored_before = big
    rho, runs = [], []
    for seed in range(3):
        order = BlockOrder(plan, seed, 0, block_windows=2048, buffer_size=8192)
        windows = order(np.arange(plan.total))
        assert np.array_equal(np.sort(windows), np.arange(plan.total))
        stats = order_statistics(plan, stored_before, windows)
        rho.append(abs(stats["storage"]))
        runs.append(stats["runs"])
    # far from uniform: the docstring says so, with these figures
    assert max(rho) > 3 / np.sqrt(plan.total) and min(runs) > 5, (rho, runs)


def test_weighted_order_samples_by_weight_without_replacement(big):
    plan, _ = big
    order = WeightedOrder(plan, 0, 0, num_samples=20_000)
    windows = order(np.arange(order.total))
    assert len(np.unique(windows)) == order.total == 20_000
    doc, _, _ = plan.locate(windows)
    klass = np.asarray(CatalogStore().catalog()["klass"])[doc]
    assert not (klass == 0).any()  # weight 0: never drawn
    # early draws follow the weights: class c holds c x its windows' share of weight
    counts = np.bincount(np.asarray(CatalogStore().catalog()["klass"]),
                         weights=plan.counts(), minlength=4)
    first = np.bincount(klass[:2000], minlength=4)[1:] / 2000
    expected = (counts[1:] * [1, 2, 3]) / (counts[1:] * [1, 2, 3]).sum()
    np.testing.assert_allclose(first, expected, atol=0.04)
    again = WeightedOrder(plan, 0, 0, num_samples=20_000)(np.arange(20_000))
    np.testing.assert_array_equal(again, windows)
    assert not np.array_equal(WeightedOrder(plan, 0, 1, 20_000)(np.arange(20_000)), windows)


def test_index_state_is_small(big):
    plan, _ = big
    # a few arrays per document, never per window (10^6 documents: ~60 MB)
    assert plan.nbytes() < 80 * len(plan.counts()) + 4096


# ---------------------------------------------------------- end to end (a store)
@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    rng = np.random.default_rng(1)
    docs = [frames_of(i, n) for i, n in enumerate(rng.integers(5, 90, 30))]
    return ContractStore(tmp_path_factory.mktemp("epoch"), docs, chunk=8)


def keys_of(batches):
    return [(d, round(float(s), 9)) for b in batches
            for d, s in zip(b["document"], b["start"], strict=True)]


def run_rank(store, rank, world, workers, state=None, steps=None, **kw):
    ds = RandomWindows(store, "mel", window=zx.Milliseconds(60), seed=3, batch_size=5,
                       rank=rank, world_size=world, read_ahead=16, **kw)
    if state is not None:
        ds.load_state_dict(state)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers)
    batches = []
    for b in loader:
        batches.append(keys_of([b]))
        if steps is not None and len(batches) == steps:
            break
    return batches, ds


def test_one_global_sequence_for_any_ranks_and_workers(fake):
    sequences = {}
    for world, workers in [(1, 0), (2, 0), (3, 0), (1, 1), (1, 2), (2, 2)]:
        ranks = [run_rank(fake, r, world, workers, drop_uneven=False)[0]
                 for r in range(world)]
        sequences[(world, workers)] = [k for step in range(max(map(len, ranks)))
                                       for r in ranks if step < len(r) for k in r[step]]
    reference = sequences[(1, 0)]
    assert len(reference) == len(set(reference)) == RandomWindows(
        fake, "mel", window=zx.Milliseconds(60)).num_windows
    for deal, sequence in sequences.items():
        assert sequence == reference, deal


def test_drop_uneven_loses_at_most_world_size_minus_one(fake):
    total = RandomWindows(fake, "mel", window=zx.Milliseconds(60)).num_windows
    for seed in range(8):
        for world in (2, 3):
            got = [len(list(RandomWindows(fake, "mel", window=zx.Milliseconds(60), seed=seed,
                                          rank=r, world_size=world))) for r in range(world)]
            assert len(set(got)) == 1 and 0 <= total - sum(got) <= world - 1
            assert total - sum(got) == total % world


@pytest.mark.parametrize("before,after", [((2, 2), (3, 1)), ((3, 0), (1, 2)),
                                          ((1, 2), (2, 0))])
def test_elastic_resume_delivers_exactly_the_rest(fake, before, after):
    (world, workers), (world2, workers2) = before, after
    steps = 3
    first = [run_rank(fake, r, world, workers, steps=steps, drop_uneven=False)
             for r in range(world)]
    state = first[0][1].state_dict(steps=steps)
    state = pickle.loads(pickle.dumps(state))
    rest = [run_rank(fake, r, world2, workers2, state=state, drop_uneven=False)[0]
            for r in range(world2)]
    seen = [k for batches, _ in first for b in batches for k in b]
    seen += [k for r in rest for b in r for k in b]
    everything = RandomWindows(fake, "mel", window=zx.Milliseconds(60)).windows()
    assert len(seen) == len(set(seen)) == len(everything)
    # and the sequence continues where it stopped: the same as without a break
    whole = [k for b in run_rank(fake, 0, 1, 0, drop_uneven=False)[0] for k in b]
    firsts = [k for step in range(steps) for batches, _ in first for k in batches[step]]
    assert firsts == whole[:len(firsts)]
    rests = [k for step in range(max(map(len, rest))) for r in rest if step < len(r)
             for k in r[step]]
    assert rests == whole[len(firsts):]


# ------------------------------------------------------ real gloo process groups
def _gloo_rank(rank, world, init, store, state, steps, workers, out):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        ds = RandomWindows(store, "mel", window=zx.Milliseconds(60), seed=11, batch_size=4,
                           drop_uneven=False, read_ahead=8)
        if state is not None:
            ds.load_state_dict(state)
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers)
        seen = []
        for n, batch in enumerate(loader, 1):
            seen += keys_of([batch])
            if n == steps:
                break
        # every rank checkpoints at the same step; rank 0's state is the job's
        dist.barrier()
        result = {"seen": seen, "state": ds.state_dict(steps=steps) if steps else None}
        with open(f"{out}-{rank}.pkl", "wb") as f:
            pickle.dump(result, f)
    finally:
        dist.destroy_process_group()


def _gloo_job(tmp_path, name, world, store, state=None, steps=None, workers=0):
    ctx = multiprocessing.get_context("fork")
    init = f"file://{tmp_path}/{name}.init"
    out = str(tmp_path / name)
    procs = [ctx.Process(target=_gloo_rank, args=(r, world, init, store, state, steps,
                                                  workers, out)) for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0, f"rank of {name} exited with {p.exitcode}"
    results = []
    for r in range(world):
        with open(f"{out}-{r}.pkl", "rb") as f:
            results.append(pickle.load(f))
    return results


@pytest.mark.slow
@pytest.mark.parametrize("world,world2", [(2, 3), (3, 1)])
def test_elastic_resume_over_gloo(fake, tmp_path, world, world2):
    first = _gloo_job(tmp_path, "first", world, fake, steps=4, workers=1)
    states = {json.dumps(r["state"], sort_keys=True) for r in first}
    assert len(states) == 1  # every rank computes the same job state
    rest = _gloo_job(tmp_path, "rest", world2, fake, state=first[0]["state"])
    seen = [k for r in first + rest for k in r["seen"]]
    everything = RandomWindows(fake, "mel", window=zx.Milliseconds(60)).windows()
    assert len(seen) == len(set(seen)) == len(everything)
    assert set(seen) == {(d, round(float(s), 9)) for d, s in zip(
        everything["document"], everything["start"], strict=True)}
