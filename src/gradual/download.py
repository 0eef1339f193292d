"""Fetching a dataset archive: streamed to a partial file, checked against its SHA-256, then unpacked."""

import hashlib
import os
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from gradual.errors import InputError

CHUNK = 1 << 20


def fetch(url: str, destination: str | Path, sha256: str | None = None) -> str:
    """Download `url` (http, https or file) to `destination`; returns the file's SHA-256.

    A mismatch with `sha256` removes the download and raises, so a corrupt file never stays.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=Path(url).name, mininterval=5) as progress:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    progress.update(len(chunk))
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise InputError(f"cannot download {url}: {error}") from None
    actual = digest.hexdigest()
    if sha256 and actual != sha256.lower():
        partial.unlink()
        raise InputError(f"{url}: SHA-256 is {actual}, the config expects {sha256}")
    os.replace(partial, destination)
    return actual


def extract_zip(archive: str | Path, directory: str | Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(directory)
    except zipfile.BadZipFile:
        raise InputError(f"{archive} is not a zip archive") from None
