"""Open a local HTML file in a real headless Chromium and report what rendered.

The report tests check what a reader would see (images that load, tables that hold the numbers), not
just the HTML text, so they drive Debian's `chromium` and `chromium-driver` with selenium. Tests skip
with `chromium_available()`'s reason where those packages are missing (.ci/run installs them).
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WINDOW = (1280, 900)
# Selenium Manager would try to download drivers; with an explicit Service path it is skipped anyway,
# and this keeps it offline should anything still call it.
os.environ.setdefault("SE_OFFLINE", "true")

# Every <img> as the browser sees it: natural size 0 means it did not decode.
IMAGES_JS = """
return Array.from(document.images, im => ({
    alt: im.alt, src: im.currentSrc.slice(0, 200), complete: im.complete,
    natural_width: im.naturalWidth, natural_height: im.naturalHeight,
    width: im.width, height: im.height}));
"""
# Every <table>'s rendered cell texts, header rows included, with its id or else the nearest heading above it.
TABLES_JS = """
const headings = Array.from(document.querySelectorAll('h1, h2, h3, h4, h5, h6'));
return Array.from(document.querySelectorAll('table'), table => {
    let caption = table.id || (table.caption ? table.caption.innerText.trim() : '');
    if (!caption) {
        const above = headings.filter(h => h.compareDocumentPosition(table) & Node.DOCUMENT_POSITION_FOLLOWING);
        caption = above.length ? above[above.length - 1].innerText.trim() : '';
    }
    return {caption: caption,
            rows: Array.from(table.rows, row => Array.from(row.cells, cell => cell.innerText.trim()))};
});
"""
READY_JS = "return document.readyState === 'complete' && Array.from(document.images).every(im => im.complete);"


@dataclass
class Table:
    caption: str  # the table's id, its <caption>, or the text of the nearest heading before it
    rows: list[list[str]]  # cell texts, header rows included


@dataclass
class Page:
    title: str
    images: list[dict]  # alt, src (truncated), complete, natural_width/height, width/height as displayed
    tables: list[Table]
    headings: list[str]  # h1-h3 texts, in document order
    console_errors: list[str]  # SEVERE entries of the browser console (failed loads, script errors)
    screenshots: list[Path] = field(default_factory=list)

    @property
    def broken_images(self) -> list[dict]:
        """Images that did not decode (naturalWidth 0): a missing file or a corrupt embedded PNG."""
        return [image for image in self.images if image["natural_width"] == 0]


def chromium_available() -> str | None:
    """None where the tests can drive Chromium; else why not, for pytest.skip."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if missing:
        return f"no {' or '.join(missing)} (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    return None


def _driver():
    """A headless Chromium: --no-sandbox because the tests may run as root, /tmp instead of a small /dev/shm."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--hide-scrollbars",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def render(html: Path, screenshots: Path, screens: int = 2, timeout: float = 30) -> Page:
    """Open `html` and read what rendered, once the page and all its images have loaded.

    Saves PNGs of the first `screens` screens (screen-1.png, ...) under `screenshots`, scrolling by one
    window height between them; a page shorter than that gives repeated views of its end.
    """
    from selenium.webdriver.support.ui import WebDriverWait

    screenshots.mkdir(parents=True, exist_ok=True)
    driver = _driver()
    try:
        # --window-size counts the (invisible) browser frame too: grow the window so the page gets 1280x900.
        frame = driver.execute_script("return [outerWidth - innerWidth, outerHeight - innerHeight];")
        driver.set_window_size(WINDOW[0] + frame[0], WINDOW[1] + frame[1])
        driver.get(Path(html).resolve().as_uri())
        WebDriverWait(driver, timeout).until(lambda d: d.execute_script(READY_JS))
        shots = []
        for screen in range(1, screens + 1):
            if screen > 1:
                driver.execute_script("window.scrollBy(0, window.innerHeight);")
            shot = screenshots / f"screen-{screen}.png"
            driver.save_screenshot(str(shot))
            shots.append(shot)
        return Page(
            title=driver.title,
            images=driver.execute_script(IMAGES_JS),
            tables=[Table(**table) for table in driver.execute_script(TABLES_JS)],
            headings=driver.execute_script(
                "return Array.from(document.querySelectorAll('h1, h2, h3'), h => h.innerText.trim());"
            ),
            console_errors=[entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"],
            screenshots=shots,
        )
    finally:
        driver.quit()
