"""The documentation: the site builds with `mkdocs build --strict`, and every relative link of README.md
and docs/ points to a file, and a heading, that exists (mkdocs checks docs/ only, not the README)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_site_builds_strictly(tmp_path):
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml")]
    done = subprocess.run([*command, "--site-dir", str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "running" / "index.html").is_file()


def without_code_blocks(text: str) -> str:
    """Markdown without its fenced blocks, where `#` starts no heading and brackets no link."""
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def without_code(text: str) -> str:
    """Markdown without fenced blocks and code spans."""
    return re.sub(r"`[^`\n]*`", "", without_code_blocks(text))


def links(text: str) -> list[str]:
    """The relative link targets of a page (web addresses left out)."""
    targets = re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", without_code(text))
    return [target for target in targets if not re.match(r"[a-z]+:", target)]


def anchors(text: str) -> set[str]:
    """The anchors of a page's headings, as mkdocs (Python-Markdown's toc) and GitHub make them here."""
    from markdown.extensions.toc import slugify  # mkdocs' own; imported here so that .venv-vllm collects this file

    headings = re.findall(r"^#{1,6} (.+)$", without_code_blocks(text), flags=re.M)
    return {slugify(heading.replace("`", "").replace("*", ""), "-") for heading in headings}


def test_the_link_checks_know_links_and_anchors():
    page = "# The method, as implemented\n```\n# not a heading [x](no.md)\n```\nSee [a](b.md#c) and `[d](e.md)`.\n"
    assert links(page) == ["b.md#c"]
    assert anchors(page) == {"the-method-as-implemented"}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_resolves(page):
    text = page.read_text()
    broken = []
    for target in links(text):
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and anchor not in anchors(linked.read_text()):
            broken.append(f"{target}: no heading #{anchor}")
    assert not broken, broken
