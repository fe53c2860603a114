"""A store that speaks only the reading side of the store contract (catalog + arrays),
over real Zarr arrays: tests of the training windows build the time axes they need."""
import json
from fractions import Fraction

import numpy as np
import pandas as pd
import zarr


class ContractStore:
    """The reading side of the store contract (COORDINATION.md) over real Zarr arrays:
    lets the window arithmetic be tested on time axes that the writer does not make."""

    def __init__(self, root, docs, hop=Fraction(1, 100), duration=None, parts=2, chunk=16):
        self.root, rows = str(root), []
        duration = duration or hop
        for p in range(parts):
            mine = [(i, d) for i, d in enumerate(docs) if i % parts == p]
            data = np.concatenate([d for _, d in mine])
            path = f"parts/p{p}/mel"
            a = zarr.create_array(f"{self.root}/{path}", shape=data.shape, dtype=data.dtype,
                                  chunks=(chunk,) + data.shape[1:])
            a[:] = data
            offset = 0
            for i, d in mine:
                index = {"type": "TimeIndex", "version": 1, "size": len(d), "start": "0",
                         "frequency": str(hop), "duration": str(duration)}
                rows.append({"id": f"doc{i:03d}", "uri": f"file:{i}", "duration":
                             float(len(d) * hop), "klass": i % 3, "name": f"n{i % 2}",
                             "mel.frames": len(d), "mel.version": "v", "mel.array": path,
                             "mel.offset": offset, "mel.index": json.dumps(index)})
                offset += len(d)
        self._catalog = pd.DataFrame(rows).set_index("id").sort_index()
        self.features = ["mel"]

    def catalog(self):
        return self._catalog.copy()

    def array(self, path):
        return zarr.open_array(f"{self.root}/{path}", mode="r")


def frames_of(i, n):
    """Document i: rows (i, frame number, 0.5) so any row says where it came from."""
    return np.stack([np.full(n, i), np.arange(n), np.full(n, 0.5)], axis=1).astype("f4")
