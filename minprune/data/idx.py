"""Read IDX files, the simple binary format MNIST is distributed in, with every header checked.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then the values in
row-major order. MNIST uses two kinds (both hold unsigned bytes, type code 0x08):

    images  magic 0x00000803  dims N, 28, 28  then N*28*28 pixel bytes
    labels  magic 0x00000801  dims N          then N label bytes

Every problem (missing file, bad gzip data, wrong magic, short or long payload) becomes a
`DatasetError` naming the file, never a traceback from inside gzip or numpy. What the values
mean (labels in 0..9, 28 x 28 images) is checked one level up, in `minprune.data.mnist_loader`.
"""

import math
import zlib
from pathlib import Path

import numpy as np

from minprune.data.dataset import DatasetError

__all__ = [
    "IDX_IMAGES_MAGIC", "IDX_LABELS_MAGIC", "MAX_DEFLATE_RATIO", "parse_idx", "read_idx_gz",
]

IDX_UNSIGNED_BYTE = 0x08
IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension


# Deflate encodes at most 1032 output bytes per input byte (RFC 1951's longest match, 258 bytes,
# in a code of at least 2 bits), so a gzip file can never expand by more than this.
MAX_DEFLATE_RATIO = 1032


def _decompress_checked(compressed: bytes, expected_magic: int, name: str) -> bytes:
    """Gunzip ``compressed``, reading the IDX header first and refusing a claimed payload the
    file cannot hold, so that no allocation follows a hostile header; then at most one byte
    more than the header claims is inflated (a gzip bomb stops there)."""
    ndim = expected_magic & 0xFF
    header_length = 4 + 4 * ndim
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing
    header = inflater.decompress(compressed, header_length)
    if len(header) == header_length and int.from_bytes(header[:4], "big") == expected_magic:
        shape = [int.from_bytes(header[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
        claimed = math.prod(shape)
        if claimed > MAX_DEFLATE_RATIO * len(compressed):
            raise DatasetError(
                f"{name}: the IDX header claims shape {' x '.join(map(str, shape))} = {claimed} "
                f"bytes, more than a {len(compressed)}-byte gzip file can hold"
            )
        body = inflater.decompress(inflater.unconsumed_tail, claimed + 1)
        if len(body) <= claimed and not inflater.eof:  # all input used, no end marker seen
            raise EOFError("compressed file ended before the end-of-stream marker was reached")
        return header + body  # one byte too many: parse_idx reports the extra bytes
    return header  # too short or a wrong magic number: parse_idx says which


def read_idx_gz(path: Path, expected_magic: int) -> np.ndarray:
    """Decompress the gzip file at `path` and parse it with `parse_idx`. A header claiming more
    than the file can hold is refused before anything is allocated."""
    path = Path(path)
    try:
        compressed = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except OSError as error:
        raise DatasetError(f"{path}: cannot read the file ({error.strerror or error})") from None
    try:
        data = _decompress_checked(compressed, expected_magic, str(path))
    except (OSError, EOFError, zlib.error) as error:
        # Not gzip at all or a bad CRC; EOFError: the file was cut short.
        raise DatasetError(f"{path}: truncated or corrupt gzip data ({error})") from None
    return parse_idx(data, expected_magic, name=str(path))


def parse_idx(data: bytes, expected_magic: int, name: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into a read-only uint8 array whose shape is the header's dimensions.

    `expected_magic` fixes the type (only 0x08, unsigned byte) and the number of dimensions;
    `name` is used in error messages. The payload must be exactly as long as the header says.
    """
    if (expected_magic >> 8) != IDX_UNSIGNED_BYTE:
        raise ValueError(f"only unsigned-byte IDX files are supported, got {expected_magic:#010x}")
    ndim = expected_magic & 0xFF
    header_length = 4 + 4 * ndim
    if len(data) < 4:
        raise DatasetError(f"{name}: only {len(data)} bytes, too short to be an IDX file")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise DatasetError(
            f"{name}: IDX magic number is {magic:#010x}, expected {expected_magic:#010x} "
            f"(unsigned bytes, {ndim} dimension{'s' if ndim != 1 else ''})"
        )
    if len(data) < header_length:
        raise DatasetError(
            f"{name}: IDX header is truncated: {len(data)} bytes, "
            f"expected {header_length} for {ndim} dimensions"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected_payload = math.prod(shape)
    payload = len(data) - header_length
    if payload != expected_payload:
        what = "is truncated" if payload < expected_payload else "has extra bytes"
        raise DatasetError(
            f"{name}: IDX payload {what}: the header says shape "
            f"{' x '.join(map(str, shape))} = {expected_payload} bytes, the file holds {payload}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_length).reshape(shape)
