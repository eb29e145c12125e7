"""Rows in canonical order, a step at a time, worked on in threads with results in order.

Arrow kernels and hashlib release the GIL, so on N cores N steps really run at once; at most a
few steps are in flight, so memory stays at a few steps' worth whatever the table size.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import pyarrow as pa

# Rows per step: big enough that per-call overhead vanishes, small enough that a step's
# intermediates stay tens of MB (and its string offsets far below 2 GiB).
_STEP_BYTES = 8 * 1024 * 1024
_MAX_STEP_ROWS = 65_536
_WORKERS = max(1, min(4, os.cpu_count() or 1))

_T = TypeVar("_T")
_R = TypeVar("_R")


def _step_rows(table: pa.Table) -> int:
    if table.num_rows == 0:
        return 1
    per_row = max(1, table.nbytes // table.num_rows)
    return int(max(1, min(_MAX_STEP_ROWS, _STEP_BYTES // per_row)))


def steps(table: pa.Table, order: pa.Array | None) -> list[Callable[[], pa.Table]]:
    """The table in canonical order as lazily taken slices (taken in the worker threads)."""
    step = _step_rows(table)
    starts = range(0, table.num_rows, step)
    if order is None:
        return [(lambda start=start: table.slice(start, step)) for start in starts]
    take = _batch_taker(table)
    indices = order.to_numpy().astype(np.int64)  # uint64 minus int64 would turn float
    return [(lambda start=start: take(indices[start : start + step])) for start in starts]


def _batch_taker(table: pa.Table) -> Callable[[np.ndarray], pa.Table]:
    """Rows by global index, gathered batch by batch.

    Table.take on a multi-chunk table concatenates every column first, on every call: a full
    copy of the table per step. Here each batch gives its own rows, then one small take puts
    them back in the requested order.
    """
    batches = table.to_batches()  # zero-copy; aligns columns chunked differently
    if len(batches) <= 1:
        single = batches[0] if batches else table
        return lambda indices: pa.Table.from_batches([single.take(pa.array(indices))])
    bounds = np.cumsum([0] + [batch.num_rows for batch in batches], dtype=np.int64)

    def take(indices: np.ndarray) -> pa.Table:
        batch_of = np.searchsorted(bounds, indices, side="right") - 1
        grouped = np.argsort(batch_of, kind="stable")
        edges = np.searchsorted(batch_of[grouped], np.arange(len(batches) + 1))
        parts = [
            batch.take(pa.array(indices[grouped[lo:hi]] - bounds[number]))
            for number, (batch, lo, hi) in enumerate(
                zip(batches, edges[:-1], edges[1:], strict=True)
            )
            if hi > lo
        ]
        restore = np.empty_like(grouped)
        restore[grouped] = np.arange(len(grouped))
        return pa.Table.from_batches(parts, schema=table.schema).take(pa.array(restore))

    return take


def pipelined(func: Callable[[_T], _R], items: Sequence[_T]) -> Iterator[_R]:
    """func over items on worker threads, results in order, at most a few steps in flight."""
    if _WORKERS == 1 or len(items) < 2:
        yield from map(func, items)
        return
    with ThreadPoolExecutor(_WORKERS) as pool:
        pending: deque[Future[_R]] = deque()
        for item in items:
            pending.append(pool.submit(func, item))
            if len(pending) > _WORKERS:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
