"""Background prefetching: decode the next batches in threads while the model trains on this one.

An `ImageFolder` (`minprune.data.image_folder`) decodes every batch from JPEG files. Done in the
training loop's own thread, the model would wait for each batch to be decoded; done here, up to
`prefetch` batches are decoded ahead, each by its own thread of a `ThreadPoolExecutor`. Threads
help because Pillow releases the GIL while it decodes and resizes.

    with Prefetcher(load, chunks, prefetch=4) as prefetched:
        for batch in prefetched:        # load(chunks[0]), load(chunks[1]), ... in order
            ...

The order is always the order of `chunks`, and `load` must depend only on its chunk, so the
batches are identical with `prefetch=0` (no threads: each batch is loaded when asked for) and
with any `prefetch` -- the tests check this. An exception raised by `load` in a thread is raised
again in the consumer's thread when it reaches that batch, and the threads are shut down.
"""

from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

__all__ = ["Prefetcher"]

THREAD_NAME_PREFIX = "minprune-prefetch"


class Prefetcher:
    """Yield `load(chunk)` for every chunk of `chunks` in order, up to `prefetch` of them ahead.

    The threads stop when the last batch has been handed out, when `close()` is called (also on
    leaving a `with` block), when `load` raises, or when the prefetcher is garbage-collected,
    for instance when a training loop stops early. Closing cancels the batches not yet started
    and waits for those being decoded.
    """

    def __init__(self, load: Callable[[Any], Any], chunks: Iterable, prefetch: int = 2) -> None:
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
            raise ValueError(f"prefetch must be an integer >= 0 (batches ahead), got {prefetch!r}")
        self._load = load
        self._chunks = iter(chunks)
        self._prefetch = prefetch
        self._pending: deque[Future] = deque()
        self._pool = None
        self._closed = False
        if prefetch > 0:
            self._pool = ThreadPoolExecutor(prefetch, thread_name_prefix=THREAD_NAME_PREFIX)
            self._submit_ahead()  # start decoding now, before the first batch is asked for

    def __iter__(self) -> "Prefetcher":
        return self

    def __next__(self):
        if self._closed:
            raise StopIteration
        if self._pool is None:  # prefetch=0: load in the caller's thread, when asked
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._closed = True
                raise
            return self._load(chunk)
        if not self._pending:
            self.close()
            raise StopIteration
        try:
            batch = self._pending.popleft().result()
        except BaseException:
            self.close()
            raise
        self._submit_ahead()
        return batch

    def _submit_ahead(self) -> None:
        """Keep `prefetch` batches queued or being decoded."""
        while len(self._pending) < self._prefetch:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                return
            self._pending.append(self._pool.submit(self._load, chunk))

    def close(self, wait: bool = True) -> None:
        """Cancel the batches not yet started and shut the threads down (idempotent)."""
        self._closed = True
        pending, self._pending = self._pending, deque()
        for future in pending:
            future.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> "Prefetcher":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:
        # Garbage collection must not block on a batch still being decoded: the threads finish
        # it and exit on their own.
        if getattr(self, "_pool", None) is not None:
            self.close(wait=False)
