"""A worker for the hostile-file tests: reads files with minprune's readers, one per request.

Requests and replies are length-prefixed pickles on stdin/stdout (see `hostile.IsolatedReaders`).
Its address space is capped at 3 GiB above what the imports took, so a reader that tried to
allocate what a hostile header claims fails here with MemoryError -- a failed case -- instead of
swapping the machine.
"""

import hashlib
import json
import pickle
import resource
import struct
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np

from minprune.data.idx import IDX_IMAGES_MAGIC, read_idx_gz
from minprune.sparse.export import load_sparse
from minprune.training.checkpoint import load_checkpoint


def _digest(value) -> str:
    digest = hashlib.sha256()

    def walk(item):
        if isinstance(item, dict):
            for key in sorted(item):
                digest.update(str(key).encode())
                walk(item[key])
        elif isinstance(item, list | tuple):
            for part in item:
                walk(part)
        elif isinstance(item, np.ndarray):
            digest.update(f"{item.dtype.str}{item.shape}".encode())
            digest.update(np.ascontiguousarray(item).tobytes())
        else:
            digest.update(json.dumps(item, sort_keys=True).encode())

    walk(value)
    return digest.hexdigest()


def _check_sparse(state: dict) -> None:
    """What a loaded sparse state_dict must satisfy, whatever the file held."""
    for key, array in state.items():
        if np.issubdtype(array.dtype, np.floating):
            assert np.isfinite(array).all(), f"{key} holds NaN or inf"
        if key.endswith("weight_mask"):
            weight = state[key[: -len("_mask")]]
            assert weight.shape == array.shape, key
            assert np.isin(array, (0, 1)).all(), f"{key} is not binary"


READERS = {
    "sparse": lambda path: (lambda state: (_check_sparse(state), state)[1])(load_sparse(path)),
    "checkpoint": load_checkpoint,
    "idx": lambda path: read_idx_gz(path, IDX_IMAGES_MAGIC),
}


def _limit_memory(extra_bytes: int = 3 << 30) -> None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            in_use = int(line.split()[1]) * 1024
            resource.setrlimit(resource.RLIMIT_AS, (in_use + extra_bytes, in_use + extra_bytes))


def main() -> None:
    _limit_memory()
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    folder = Path(tempfile.mkdtemp(prefix="minprune-hostile-"))
    while True:
        header = requests.read(8)
        if len(header) < 8:
            return
        reader, data = pickle.loads(requests.read(struct.unpack("<Q", header)[0]))
        path = folder / "case"
        path.write_bytes(data)
        try:
            outcome = ("ok", _digest(READERS[reader](path)))
        except ValueError as error:  # CorruptFileError, SparseFileError, DatasetError, ...
            outcome = ("rejected", type(error).__name__, str(error))
        except BaseException as error:  # noqa: BLE001 -- every other outcome is a failure
            outcome = ("failed", type(error).__name__, traceback.format_exc())
        reply = pickle.dumps(outcome)
        replies.write(struct.pack("<Q", len(reply)) + reply)
        replies.flush()


if __name__ == "__main__":
    main()
