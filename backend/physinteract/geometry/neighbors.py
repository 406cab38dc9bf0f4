"""Exact k-nearest neighbours in numpy (no scipy): a multi-level grid hash.

Points are hashed into cubic cells of side c, 2c, 4c, ... A query looks at the
3x3x3 block of cells around it at the finest level first; the block contains
every point within distance c_level of the query, so when its k-th nearest
candidate is at most c_level away the answer is exact. Unresolved queries move
to the next, coarser level. Work is vectorised over queries in batches.
"""

from __future__ import annotations

import numpy as np

_BATCH_PAIRS = 4_000_000  # candidate (query, point) pairs per batch


def knn(query: np.ndarray, points: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest ``points`` of each query point (Euclidean).

    Args:
        query: [Q, 3] positions.
        points: [P, 3] positions, P >= 1 (k is lowered to P when P < k).
    Returns:
        dist: [Q, k] distances, ascending; idx: [Q, k] int64 indices into ``points``.
    """
    query = np.asarray(query, dtype=np.float64).reshape(-1, 3)
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(points) == 0:
        raise ValueError("knn needs at least one point")
    k = min(k, len(points))
    Q = len(query)
    dist = np.full((Q, k), np.inf)
    idx = np.zeros((Q, k), dtype=np.int64)
    if Q == 0:
        return dist, idx
    lo = np.minimum(points.min(0), query.min(0))
    extent = float(np.max(np.maximum(points.max(0), query.max(0)) - lo)) + 1e-12
    c = _start_cell(points, k, extent)
    todo = np.arange(Q)
    offsets = np.stack(np.meshgrid(*([np.arange(-1, 2)] * 3), indexing="ij"), -1).reshape(-1, 3)
    while len(todo):
        last = c >= extent  # the 3x3x3 block covers everything
        keys_p = np.floor((points - lo) / c).astype(np.int64)
        dims = keys_p.max(0) + 3
        order, starts, ends, pkeys = _cell_table(keys_p, dims)
        cq = np.floor((query[todo] - lo) / c).astype(np.int64)
        # Candidate ranges for the 27 cells around each query.
        nb = cq[:, None, :] + offsets[None, :, :]  # [q, 27, 3]
        inside = np.all((nb >= 0) & (nb < dims), axis=2)
        flat = _flat(np.clip(nb, 0, dims - 1), dims)
        pos = np.searchsorted(pkeys, flat)
        pos_c = np.minimum(pos, len(pkeys) - 1)
        hit = inside & (pkeys[pos_c] == flat)
        s = np.where(hit, starts[pos_c], 0)
        n = np.where(hit, ends[pos_c] - starts[pos_c], 0)
        per_query = n.sum(1)
        done_local = np.zeros(len(todo), bool)
        for b0, b1 in _batches(per_query):
            qi = np.repeat(np.arange(b0, b1), per_query[b0:b1])
            if len(qi) == 0:
                continue
            # Expand the (query, cell) ranges into candidate point indices.
            nn = n[b0:b1].reshape(-1)
            ss = s[b0:b1].reshape(-1)
            run_start = np.repeat(ss - np.concatenate([[0], np.cumsum(nn)[:-1]]), nn)
            cand = order[run_start + np.arange(len(run_start))]
            diff = points[cand] - query[todo[qi]]
            d = np.sqrt(np.einsum("ij,ij->i", diff, diff))
            cnt = per_query[b0:b1]
            first = np.concatenate([[0], np.cumsum(cnt)[:-1]])  # qi is grouped by query already
            has = cnt > 0
            rows = todo[np.arange(b0, b1)[has]]
            if k == 1:
                dmin = np.minimum.reduceat(d, first[has])
                grp = np.repeat(np.arange(b1 - b0), cnt)
                is_min = d == dmin[np.searchsorted(np.flatnonzero(has), grp)]
                pos_min = np.flatnonzero(is_min)
                g = grp[pos_min]
                first_min = pos_min[np.concatenate([[True], g[1:] != g[:-1]])]
                dist[rows, 0] = d[first_min]
                idx[rows, 0] = cand[first_min]
            else:
                # Scatter each query's candidates into a padded row, then partial-sort the rows.
                width = int(cnt.max())
                local = np.arange(len(qi)) - np.repeat(first, cnt)
                D = np.full((b1 - b0, width), np.inf)
                I = np.zeros((b1 - b0, width), np.int64)
                D[qi - b0, local] = d
                I[qi - b0, local] = cand
                kk = min(k, width)
                part = np.argpartition(D, kk - 1, axis=1)[:, :kk] if width > kk else np.broadcast_to(np.arange(kk), (b1 - b0, kk))
                Dk = np.take_along_axis(D, part, 1)
                o = np.argsort(Dk, axis=1, kind="stable")
                dist[todo[b0:b1], :kk] = np.take_along_axis(Dk, o, 1)
                idx[todo[b0:b1], :kk] = np.take_along_axis(np.take_along_axis(I, part, 1), o, 1)
            ok = (cnt >= k) & (dist[todo[b0:b1], k - 1] <= c)
            done_local[b0:b1] = ok | last
        todo = todo[~done_local]
        c *= 2.0
    return dist, idx


def _start_cell(points: np.ndarray, k: int, extent: float) -> float:
    """A cell size holding about k points near a typical point, from a sample's nearest-neighbour spacing."""
    rng = np.random.default_rng(0)
    sample = points[rng.choice(len(points), size=min(len(points), 48), replace=False)]
    if len(points) < 2:
        return extent
    d2 = np.full(len(sample), np.inf)
    for i in range(0, len(points), 65536):
        blk = points[i:i + 65536]
        dd = ((sample[:, None, :] - blk[None, :, :]) ** 2).sum(-1)
        dd[dd == 0] = np.inf
        d2 = np.minimum(d2, dd.min(1))
    spacing = float(np.median(np.sqrt(d2[np.isfinite(d2)]))) if np.any(np.isfinite(d2)) else extent
    return max(1.1 * spacing * max(1.0, 0.75 * k ** (1 / 3)), extent * 1e-6)


def _flat(keys: np.ndarray, dims: np.ndarray) -> np.ndarray:
    return (keys[..., 0] * dims[1] + keys[..., 1]) * dims[2] + keys[..., 2]


def _cell_table(keys: np.ndarray, dims: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    flat = _flat(keys, dims)
    order = np.argsort(flat, kind="stable")
    sf = flat[order]
    uniq, starts = np.unique(sf, return_index=True)
    ends = np.append(starts[1:], len(sf))
    return order, starts, ends, uniq


def _batches(counts: np.ndarray):
    """Split range(len(counts)) into consecutive batches of about _BATCH_PAIRS total count."""
    csum = np.cumsum(counts)
    b0 = 0
    while b0 < len(counts):
        base = csum[b0 - 1] if b0 else 0
        b1 = int(np.searchsorted(csum, base + _BATCH_PAIRS, side="right"))
        b1 = max(b1, b0 + 1)
        yield b0, min(b1, len(counts))
        b0 = b1


def _knn(query: np.ndarray, points: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Reference twin of :func:`knn`: chunked brute force."""
    query = np.asarray(query, dtype=np.float64).reshape(-1, 3)
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    k = min(k, len(points))
    dist = np.empty((len(query), k))
    idx = np.empty((len(query), k), dtype=np.int64)
    for i in range(0, len(query), 1024):
        d = np.linalg.norm(query[i:i + 1024, None, :] - points[None, :, :], axis=2)
        o = np.argsort(d, axis=1, kind="stable")[:, :k]
        idx[i:i + 1024] = o
        dist[i:i + 1024] = np.take_along_axis(d, o, axis=1)
    return dist, idx
