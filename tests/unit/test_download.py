"""fetch and extract_zip against file:// and a loopback HTTP server; the chain the download rule runs."""

import functools
import hashlib
import http.server
import threading
import zipfile

import pytest

from gradual.dataset import find_entityquestions_root
from gradual.download import extract_zip, fetch
from gradual.errors import InputError

MEMBERS = {
    "dataset/train/P1.train.json": '[{"question": "Who is A?", "answers": ["B"]}]',
    "dataset/dev/P1.dev.json": '[{"question": "Who is C?", "answers": ["D"]}]',
    "dataset/test/P1.test.json": '[{"question": "Who is E?", "answers": ["F"]}]',
    "dataset/train/P17.train.json": '[{"question": "Where is G?", "answers": ["H"]}]',
}


@pytest.fixture
def archive(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    path = served / "dataset.zip"
    with zipfile.ZipFile(path, "w") as zipped:
        for name, text in MEMBERS.items():
            zipped.writestr(name, text)
    return path


@pytest.fixture
def server(archive):
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(QuietHandler, directory=str(archive.parent))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def sha256_of(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_fetch_file_url(archive, tmp_path):
    destination = tmp_path / "out" / "nested" / "eq.zip"
    digest = fetch(archive.as_uri(), destination)
    assert digest == sha256_of(archive)
    assert destination.read_bytes() == archive.read_bytes()
    assert leftovers(destination.parent) == ["eq.zip"]


def test_fetch_file_url_with_matching_sha(archive, tmp_path):
    destination = tmp_path / "out" / "eq.zip"
    expected = sha256_of(archive)
    assert fetch(archive.as_uri(), destination, sha256=expected.upper()) == expected
    assert destination.read_bytes() == archive.read_bytes()


def test_fetch_http(server, archive, tmp_path):
    destination = tmp_path / "out" / "eq.zip"
    digest = fetch(f"{server}/dataset.zip", destination, sha256=sha256_of(archive))
    assert digest == sha256_of(archive)
    assert destination.read_bytes() == archive.read_bytes()
    assert leftovers(destination.parent) == ["eq.zip"]


def test_fetch_wrong_sha_http(server, archive, tmp_path):
    destination = tmp_path / "out" / "eq.zip"
    wrong = "0" * 64
    with pytest.raises(InputError) as raised:
        fetch(f"{server}/dataset.zip", destination, sha256=wrong)
    message = str(raised.value)
    assert sha256_of(archive) in message
    assert wrong in message
    assert not destination.exists()
    assert not destination.with_name("eq.zip.partial").exists()
    assert leftovers(destination.parent) == []


def test_fetch_wrong_sha_file_url(archive, tmp_path):
    destination = tmp_path / "out" / "eq.zip"
    wrong = "ab" * 32
    with pytest.raises(InputError, match=wrong):
        fetch(archive.as_uri(), destination, sha256=wrong)
    assert leftovers(destination.parent) == []


def test_fetch_404(server, tmp_path):
    destination = tmp_path / "out" / "eq.zip"
    with pytest.raises(InputError, match="cannot download") as raised:
        fetch(f"{server}/missing.zip", destination)
    assert "missing.zip" in str(raised.value)
    assert "404" in str(raised.value)
    assert leftovers(destination.parent) == []


def test_fetch_missing_file_url(tmp_path):
    destination = tmp_path / "out" / "eq.zip"
    with pytest.raises(InputError, match="cannot download"):
        fetch((tmp_path / "nope.zip").as_uri(), destination)
    assert leftovers(destination.parent) == []


def test_extract_zip(archive, tmp_path):
    target = tmp_path / "extracted"
    extract_zip(archive, target)
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert files == sorted(MEMBERS)
    for name, text in MEMBERS.items():
        assert (target / name).read_text() == text


def test_extract_not_a_zip(tmp_path):
    bogus = tmp_path / "bogus.zip"
    bogus.write_text("<html>not found</html>")
    with pytest.raises(InputError, match="not a zip archive") as raised:
        extract_zip(bogus, tmp_path / "extracted")
    assert str(bogus) in str(raised.value)


def test_download_chain(server, archive, tmp_path):
    downloaded = tmp_path / "raw" / "entityquestions.zip"
    fetch(f"{server}/dataset.zip", downloaded, sha256=sha256_of(archive))
    extracted = tmp_path / "raw" / "entityquestions"
    extract_zip(downloaded, extracted)
    root = find_entityquestions_root(extracted)
    assert root == extracted / "dataset"
    assert sorted(p.name for p in (root / "train").iterdir()) == ["P1.train.json", "P17.train.json"]
    assert (root / "test" / "P1.test.json").read_text() == MEMBERS["dataset/test/P1.test.json"]
