"""Valid files of each kind minprune reads, and ways to spoil them, for the hostile-file tests.

- ``valid_sparse`` / ``valid_checkpoint`` / ``valid_idx``: the bytes of a small, well-formed file;
- ``rewrite_npz``: change some arrays and write the archive again *with a matching checksum* (a
  hostile file, as opposed to a damaged one);
- ``npz_claiming``: an archive whose .npy header claims another shape than the bytes it holds;
- ``run_isolated``: read a file in a separate worker process (`reader_worker.py`), so that a
  crash or a runaway allocation is a failed case, not a lost test run.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import select
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from minprune.base.files import CHECKSUM_MEMBER, write_npz
from minprune.data.idx import IDX_IMAGES_MAGIC
from minprune.sparse.export import save_sparse
from minprune.training.checkpoint import save_checkpoint

WORKER = Path(__file__).with_name("reader_worker.py")


def _sparse_state(seed=0) -> dict:
    rng = np.random.default_rng(seed)
    state = {}
    for name, (rows, cols) in {"fc1": (30, 600), "fc2": (10, 30)}.items():
        mask = (rng.random((rows, cols)) < 0.1).astype(np.float32)
        state[f"{name}.weight"] = (rng.standard_normal((rows, cols)) * mask).astype(np.float32)
        state[f"{name}.weight_mask"] = mask
        state[f"{name}.bias"] = rng.standard_normal(rows).astype(np.float32)
    return state


def valid_sparse(folder: Path) -> bytes:
    path = folder / "valid.sparse.npz"
    save_sparse(path, _sparse_state())
    return path.read_bytes()


def valid_checkpoint(folder: Path) -> bytes:
    path = folder / "valid.checkpoint.npz"
    state = _sparse_state()
    save_checkpoint(path, state, {"velocity.0": np.zeros(3, np.float32), "lr": np.array(0.1)},
                    epoch=1, iteration=3, history=[{"epoch": 1}])
    return path.read_bytes()


def valid_idx(rows=5) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, size=(rows, 28, 28), dtype=np.uint8)
    header = IDX_IMAGES_MAGIC.to_bytes(4, "big") + b"".join(
        n.to_bytes(4, "big") for n in pixels.shape)
    return gzip.compress(header + pixels.tobytes(), mtime=0)


def npz_arrays(data: bytes) -> dict:
    """The members of an .npz (checksum member left out), read with NumPy and no checks."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files if name != CHECKSUM_MEMBER}


def rewrite_npz(folder: Path, data: bytes, changes: dict) -> bytes:
    """``data`` with arrays replaced (value None: removed), written again with its checksum."""
    arrays = npz_arrays(data)
    for name, value in changes.items():
        if value is None:
            arrays.pop(name, None)
        else:
            arrays[name] = value
    path = folder / "rewritten.npz"
    write_npz(path, arrays)
    return path.read_bytes()


def npz_claiming(arrays: dict, member: str, claimed_shape: tuple,
                 dtype: str | None = None) -> bytes:
    """An uncompressed .npz whose ``member`` header claims ``claimed_shape`` (and ``dtype``) but
    holds the bytes of the real array."""
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            if name == member:
                header = {"descr": dtype or array.dtype.str, "fortran_order": False,
                          "shape": tuple(claimed_shape)}
                np.lib.format.write_array_header_1_0(buffer, header)
                buffer.write(np.ascontiguousarray(array).tobytes())
            else:
                np.lib.format.write_array(buffer, array, allow_pickle=False)
            archive.writestr(name + ".npy", buffer.getvalue())
    return stream.getvalue()


def object_npz(arrays: dict, member: str) -> bytes:
    """An .npz whose ``member`` is a pickled object array."""
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            value = np.array([{"evil": 1}, None], dtype=object) if name == member else array
            np.lib.format.write_array(buffer, value, allow_pickle=True)
            archive.writestr(name + ".npy", buffer.getvalue())
    return stream.getvalue()


class IsolatedReaders:
    """Read files in a worker process with a memory limit; restart it after a crash."""

    def __init__(self, timeout: float = 60.0):
        self.timeout = timeout
        self.process = None
        self.crashes = 0

    def _start(self):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
        self.process = subprocess.Popen([sys.executable, str(WORKER)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env)

    def read(self, reader: str, data: bytes) -> tuple:
        """("ok", digest) | ("rejected", error type, message) | ("failed", type, traceback) |
        ("crashed", exit code) | ("hung",)."""
        if self.process is None or self.process.poll() is not None:
            self._start()
        message = pickle.dumps((reader, data))
        try:
            self.process.stdin.write(struct.pack("<Q", len(message)) + message)
            self.process.stdin.flush()
            ready, _, _ = select.select([self.process.stdout], [], [], self.timeout)
            if not ready:
                self.close()
                return ("hung",)
            header = self.process.stdout.read(8)
            if len(header) < 8:
                raise BrokenPipeError
            return pickle.loads(self.process.stdout.read(struct.unpack("<Q", header)[0]))
        except (BrokenPipeError, ConnectionResetError):
            code = self.process.wait()
            self.process = None
            self.crashes += 1
            return ("crashed", code)

    def close(self):
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
