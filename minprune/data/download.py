"""Download one file from a list of mirrors, verify its MD5, and move it into place atomically.

The bytes are streamed into a temporary file in the destination folder while their MD5 is
computed. Only a file whose MD5 matches is renamed (`os.replace`, atomic within one filesystem)
to its final name, so the final name either does not exist or holds a verified file: an
interrupted, truncated or corrupt download never leaves a partial file behind.
"""

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from minprune.data.dataset import DatasetError

__all__ = ["fetch"]

CHUNK_BYTES = 1 << 16
USER_AGENT = "minprune"


def fetch(
    filename: str, folder: Path, md5: str, mirrors: Sequence[str], timeout: float = 60.0
) -> Path:
    """Download `filename` into `folder` from the first mirror that serves it with the right MD5.

    Each mirror is a URL prefix (`https://...`, `http://...` or `file://...`); the file's URL is
    the prefix, a slash, then `filename`. Mirrors are tried in order; a mirror that fails (network
    error, HTTP error, cut-short transfer, wrong MD5) is skipped. Returns `folder / filename`.
    Raises `DatasetError` listing every mirror's failure if none succeeds.
    """
    if isinstance(mirrors, str):
        raise TypeError(f"mirrors must be a sequence of URL prefixes, not one string: {mirrors!r}")
    destination = Path(folder) / filename
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatasetError(
            f"{destination.parent}: cannot create the download folder ({error.strerror or error})"
        ) from None
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        print(f"minprune: downloading {url} -> {destination}", file=sys.stderr)
        failure = _download_verified(url, destination, md5, timeout)
        if failure is None:
            return destination
        failures.append(f"  - {url}: {failure}")
    raise DatasetError(
        f"{destination}: could not download {filename} from any mirror:\n" + "\n".join(failures)
    )


def _download_verified(url: str, destination: Path, md5: str, timeout: float) -> str | None:
    """Try one URL. Returns None on success, else a sentence saying what went wrong."""
    try:
        descriptor, temporary_name = tempfile.mkstemp(
            dir=destination.parent, prefix=f".{destination.name}.", suffix=".part"
        )
    except OSError as error:
        raise DatasetError(
            f"{destination.parent}: cannot write a file there ({error.strerror or error})"
        ) from None
    temporary = Path(temporary_name)
    try:
        digest = hashlib.md5()
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        try:
            with (
                os.fdopen(descriptor, "wb") as out,
                urllib.request.urlopen(request, timeout=timeout) as response,
            ):
                declared_length = response.headers.get("Content-Length")
                received = 0
                while chunk := response.read(CHUNK_BYTES):
                    digest.update(chunk)
                    out.write(chunk)
                    received += len(chunk)
                out.flush()
                os.fsync(out.fileno())
        except urllib.error.HTTPError as error:  # the server answered, with 404, 403, ...
            return f"download failed ({error})"
        except urllib.error.URLError as error:  # no answer: unknown host, refused, no such file
            return f"download failed ({error.reason})"
        except (OSError, http.client.HTTPException) as error:  # timeouts, resets, cut-short reads
            return f"download failed ({type(error).__name__}: {error})"
        if declared_length and declared_length.isdigit() and received != int(declared_length):
            # http.client returns a short body without complaint when the connection drops.
            return f"transfer cut short: received {received} of {declared_length} bytes"
        if digest.hexdigest() != md5:
            return (
                f"MD5 of the downloaded bytes is {digest.hexdigest()}, expected {md5} "
                "(a corrupt transfer or a different file)"
            )
        os.chmod(temporary, 0o644)
        os.replace(temporary, destination)
        return None
    finally:
        # Any failure, KeyboardInterrupt included, must not leave the partial file behind.
        temporary.unlink(missing_ok=True)
