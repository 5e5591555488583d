"""Files that are never half-written, never silently corrupt, and safe to open when hostile.

- `atomic_write`: bytes go to a temporary file in the same folder, are synced, and are renamed
  over the target (``os.replace`` is atomic), so a crash or ``kill -9`` leaves the old file or the
  new one, never a mix. Temporaries left by a killed writer are removed by the next write.
  ``keep_previous=True`` first keeps the old file as ``NAME.prev``.
- `write_npz` / `read_npz`: an uncompressed .npz with one more member, ``__sha256__``, the SHA-256
  of every other member's name, dtype, shape and bytes. `read_npz` checks the archive before it
  allocates anything: each member a stored (not compressed) .npy whose header-claimed size equals
  the bytes it holds, no object arrays (never unpickled), and then the checksum.

Every defect raises `CorruptFileError` (a ValueError) naming the file and the member.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
import tempfile
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np

from minprune.base.faults import kill_point

__all__ = [
    "CorruptFileError",
    "atomic_write",
    "write_npz",
    "read_npz",
    "arrays_sha256",
    "CHECKSUM_MEMBER",
]

CHECKSUM_MEMBER = "__sha256__"
_NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
# What a damaged zip can raise from inside zipfile and NumPy's .npy header parser (which
# tokenizes the header as Python: TokenError, SyntaxError); found by the fuzzing tests.
_ARCHIVE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
                   KeyError, IndexError, NotImplementedError, struct.error, OverflowError,
                   zlib.error, RuntimeError, SyntaxError, tokenize.TokenError)

_UMASK = os.umask(0)
os.umask(_UMASK)


class CorruptFileError(ValueError):
    """A file is missing, truncated, corrupt, hostile or not what it claims to be."""


def _remove_stale_temporaries(path: Path) -> None:
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def _sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_write(path, write, *, keep_previous: bool = False) -> None:
    """Create or replace ``path`` with what ``write(stream)`` writes, atomically (module
    docstring). With ``keep_previous``, an existing ``path`` is kept as ``path.prev``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        kill_point("file-write")
        if keep_previous and path.exists():
            previous = path.with_name(path.name + ".prev")
            link = Path(temporary[: -len(".tmp")] + ".prev.tmp")
            os.link(path, link)  # path itself stays in place until the final rename
            os.replace(link, previous)
        os.replace(temporary, path)
        _sync_folder(path.parent)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def arrays_sha256(arrays: dict) -> str:
    """SHA-256 over the arrays' names (sorted), dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.reshape(-1).view(np.uint8) if array.size else b"")
    return digest.hexdigest()


def write_npz(path, arrays: dict, *, keep_previous: bool = False) -> None:
    """Write ``arrays`` (name -> numeric array) as an uncompressed .npz with a ``__sha256__``
    member, atomically (see `atomic_write`). Object arrays are refused."""
    for name, array in arrays.items():
        if not isinstance(name, str) or name == CHECKSUM_MEMBER:
            raise ValueError(f"write_npz: bad array name {name!r}")
        if not isinstance(array, np.ndarray) or array.dtype.hasobject:
            raise ValueError(f"write_npz: {name!r} must be a numeric numpy array, got {array!r}")
    checksum = np.frombuffer(arrays_sha256(arrays).encode(), dtype=np.uint8)

    def write(stream):
        with zipfile.ZipFile(stream, mode="w", compression=zipfile.ZIP_STORED) as archive:
            for name, array in [*arrays.items(), (CHECKSUM_MEMBER, checksum)]:
                with archive.open(name + ".npy", mode="w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)
                kill_point("partial-write")  # the temporary file holds some members only

    atomic_write(path, write, keep_previous=keep_previous)


def _check_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, fail) -> None:
    """The member's .npy header against its size in the archive, before anything is allocated."""
    if not info.filename.endswith(".npy"):
        fail(f"member {info.filename!r} is not a .npy array")
    if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
        fail(f"member {info.filename!r} is compressed; minprune writes stored members only")
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version not in _NPY_HEADER_READERS:
            fail(f"member {info.filename!r}: unsupported .npy version {version}")
        shape, _, dtype = _NPY_HEADER_READERS[version](member)
        header_bytes = member.tell()
    if dtype.hasobject:
        fail(f"member {info.filename!r} holds Python objects ({dtype}); refusing to unpickle")
    if any(n < 0 for n in shape):
        fail(f"member {info.filename!r} claims a negative shape {shape}")
    claimed = math.prod(shape) * dtype.itemsize
    if claimed != info.file_size - header_bytes:
        fail(f"member {info.filename!r} claims shape {shape} of {dtype} ({claimed} bytes), "
             f"but holds {info.file_size - header_bytes} bytes")


def read_npz(path, *, error=CorruptFileError, what: str = "file", hint: str = "") -> dict:
    """The arrays of an .npz written by `write_npz`, every check of the module docstring passed;
    otherwise ``error`` (a CorruptFileError subclass) naming ``what`` and the file, followed by
    ``hint`` (what the user can do)."""
    path = Path(path)

    def fail(reason):
        raise error(f"{what} {path}: {reason}{hint}")

    if not path.is_file():
        raise error(f"{what} {path}: no such file")
    size = path.stat().st_size
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            names = [info.filename for info in infos]
            if len(set(names)) != len(names):
                fail("the archive lists a member twice")
            if sum(info.file_size for info in infos) > size:
                fail(f"members claim {sum(info.file_size for info in infos)} bytes in a file "
                     f"of {size}")
            for info in infos:
                _check_member(archive, info, fail)
            for info in infos:
                with archive.open(info) as member:
                    arrays[info.filename[: -len(".npy")]] = np.lib.format.read_array(
                        member, allow_pickle=False)
    except CorruptFileError:
        raise
    except _ARCHIVE_ERRORS as cause:
        fail(f"cannot be read ({type(cause).__name__}: {cause}); it is truncated or not an "
             ".npz archive")
    checksum = arrays.pop(CHECKSUM_MEMBER, None)
    if checksum is None:
        fail(f"no {CHECKSUM_MEMBER} member: not written by this version of minprune, or damaged")
    if checksum.dtype != np.uint8 or checksum.tobytes().decode("ascii", "replace") != (
            arrays_sha256(arrays)):
        fail("checksum mismatch: the file is corrupt (a flipped bit or a partial copy)")
    return arrays
