"""The browser helper itself, on a hand-made page: a good and a broken image, a table, two screens."""

import base64
import struct
from io import BytesIO

import pytest
from browser import chromium_available, render

UNAVAILABLE = chromium_available()
pytestmark = [pytest.mark.workflow, pytest.mark.skipif(UNAVAILABLE is not None, reason=str(UNAVAILABLE))]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    assert data[:8] == PNG_SIGNATURE
    return struct.unpack(">II", data[16:24])


def test_render_reads_images_tables_and_screens(tmp_path):
    figure = pytest.importorskip("matplotlib.figure").Figure(figsize=(4, 3), dpi=50)  # no pyplot, no GUI backend
    figure.add_subplot().plot([0, 1, 2], [1, 0, 2])
    buffer = BytesIO()
    figure.savefig(buffer, format="png")
    plot = buffer.getvalue()
    rows = [["method", "accuracy", "n"], ["baseline", "0.512", "100"], ["gradual", "0.734", "100"]]
    table = "".join(
        "<tr>" + "".join(f"<{cell}>{value}</{cell}>" for value in row) + "</tr>"
        for row, cell in zip(rows, ["th", "td", "td"])
    )
    html = tmp_path / "page.html"
    html.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>Test report</title></head><body>"
        "<h1>Report</h1><h2>Plot</h2>"
        f"<img alt='plot' src='data:image/png;base64,{base64.b64encode(plot).decode()}'>"
        "<img alt='broken' src='data:image/png;base64,AAAA'>"
        f"<h2>Scores</h2><table>{table}</table>"
        "<div style='height: 3000px'></div></body></html>"
    )

    page = render(html, tmp_path / "shots")

    assert page.title == "Test report"
    assert page.headings == ["Report", "Plot", "Scores"]
    good = next(image for image in page.images if image["alt"] == "plot")
    assert (good["natural_width"], good["natural_height"]) == png_size(plot) == (200, 150)
    assert good["complete"] and (good["width"], good["height"]) == (200, 150)
    assert [image["alt"] for image in page.broken_images] == ["broken"]
    assert len(page.tables) == 1
    assert page.tables[0].caption == "Scores"
    assert page.tables[0].rows == rows
    assert [shot.name for shot in page.screenshots] == ["screen-1.png", "screen-2.png"]
    for shot in page.screenshots:
        data = shot.read_bytes()
        assert len(data) > len(PNG_SIGNATURE) and data[:8] == PNG_SIGNATURE
        assert png_size(data) == (1280, 900)
    assert page.screenshots[0].read_bytes() != page.screenshots[1].read_bytes()
