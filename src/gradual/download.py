"""Fetching a dataset archive: streamed to a partial file, checked against its SHA-256, then unpacked."""

import hashlib
import logging
import os
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from gradual.errors import InputError
from gradual.shared import build_once

CHUNK = 1 << 20
log = logging.getLogger(__name__)


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


def dataset_spec(url: str, sha256: str | None = None, templates_url: str | None = None) -> dict:
    """The config values that decide a download's content (and so its shared folder)."""
    return {"url": url, "sha256": sha256, "templates_url": templates_url}


def download_dataset(spec: dict, shared_dir: str | Path) -> Path:
    """The dataset zip of `spec` (url, sha256, templates_url) unpacked into `shared_dir`, once."""

    def build(out_dir: Path) -> None:
        archive = out_dir / "download.zip"
        digest = fetch(spec["url"], archive, spec["sha256"])
        log.info("%s: sha256 %s (set dataset.download.sha256 to pin it)", spec["url"], digest)
        extract_zip(archive, out_dir)
        archive.unlink()
        if spec["templates_url"]:
            fetch(spec["templates_url"], out_dir / "relation_query_templates.json")

    build_once(shared_dir, spec, build)
    return Path(shared_dir)
