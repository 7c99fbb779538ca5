"""The tutorial's web site, built by `make -C docs` into docs/site/, served by the stage
under test (`--root docs/site`) and loaded in headless Chromium.

- Every page, style sheet and image reachable from the index answers 200, with no
  redirect; every link within the site is relative, so the site works wherever it is
  served from; every link to a place in a page (#id) finds that place.
- Every image on every page renders in the browser (complete, with a natural width).
- The chapters are chained in reading order by their previous/next links.
- A screenshot of the index and of a chapter is saved under the test's temporary
  directory; their paths are attached to the report (junit properties, and the output).

Needs Chromium and its driver, driven with Selenium (Debian's chromium, chromium-driver and
python3-selenium); the test is skipped, saying which is missing, without them. The site is
built once per session, before the first test that needs it; `make -C docs` only redoes
what changed.
"""

import html.parser
import importlib.util
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SITE = REPO / "docs" / "site"
CHAPTER_ORDER = [
    "index.html",
    "00-introduction.html",
    "01-echo.html",
    "02-nonblocking.html",
    "03-http.html",
    "04-router.html",
    "05-threads.html",
    "06-uring.html",
    "07-measurement.html",
    "benchmarks.html",
]
SCREENSHOTS = ["index.html", "02-nonblocking.html"]
MAX_URLS = 3000  # a runaway crawl is a bug in the site
PAGE_LOAD_TIMEOUT = 20

# The machine may have no network: without these, Chromium tries to reach Google's hosts.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--window-size=1280,1600",
]


# --- Fixtures -------------------------------------------------------------------------------


def find_program(*names):
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def chromium_tools():
    """(browser, driver) executables, or the test is skipped saying what is missing."""
    browser = find_program("chromium", "chromium-browser", "google-chrome")
    driver = find_program("chromedriver")
    if driver is None and Path("/usr/lib/chromium/chromedriver").exists():
        driver = "/usr/lib/chromium/chromedriver"
    if importlib.util.find_spec("selenium") is None:
        pytest.skip("Selenium is missing (Debian's python3-selenium; `make deps` installs it)")
    if browser is None:
        pytest.skip("Chromium is missing (Debian's chromium; `make deps` installs it)")
    if driver is None:
        pytest.skip("chromedriver is missing (Debian's chromium-driver; `make deps` installs it)")
    return browser, driver


@pytest.fixture(scope="session")
def docs_site(chromium_tools):
    """docs/site/, built (or brought up to date) with `make -C docs`."""
    build = subprocess.run(
        ["make", "-C", str(REPO / "docs")], cwd=REPO, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
        timeout=600,
    )
    if build.returncode != 0:
        pytest.fail(f"make -C docs failed with exit status {build.returncode}:\n{build.stdout}",
                    pytrace=False)
    if not (SITE / "index.html").is_file():
        pytest.fail("make -C docs did not produce docs/site/index.html", pytrace=False)
    return SITE


@pytest.fixture(scope="session")
def browser(chromium_tools):
    """One headless Chromium for the session, with a fresh profile directory."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser_path, driver_path = chromium_tools
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser_path
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
    except Exception as error:  # the driver's message says what went wrong
        shutil.rmtree(profile, ignore_errors=True)
        pytest.fail(f"could not start headless Chromium: {error}", pytrace=False)
    driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


# --- Crawling -------------------------------------------------------------------------------


class PageLinks(html.parser.HTMLParser):
    """The URLs an HTML page refers to, the ids it defines, and its rel=prev/next links."""

    def __init__(self):
        super().__init__()
        self.links = []  # (attribute, value)
        self.images = []
        self.ids = set()
        self.rel = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        if tag == "a" and attrs.get("href"):
            self.links.append(("href", attrs["href"]))
            if attrs.get("rel") in ("prev", "next"):
                self.rel.setdefault(attrs["rel"], attrs["href"])
        elif tag == "link" and attrs.get("href"):
            self.links.append(("href", attrs["href"]))
        elif tag in ("img", "script", "source") and attrs.get("src"):
            self.links.append(("src", attrs["src"]))
            if tag == "img":
                self.images.append(attrs["src"])


def fetch(opener, url):
    """(status, final URL, content type, body) of a GET; errors become a status."""
    try:
        with opener.open(url, timeout=10) as response:
            return (response.status, response.geturl(), response.headers.get_content_type(),
                    response.read())
    except urllib.error.HTTPError as error:
        return error.code, url, "", b""


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is reported as its own status


def crawl(base):
    """Fetches everything reachable from base (same origin). Returns (pages, problems):
    pages maps a URL without fragment to its PageLinks, for the HTML ones."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirects())
    origin = urllib.parse.urlsplit(base)[:2]
    queue, seen = [base], {base}
    pages, problems, fragments = {}, [], []
    while queue:
        url = queue.pop(0)
        status, final, content_type, body = fetch(opener, url)
        if status != 200:
            problems.append(f"{url}: status {status}")
            continue
        if content_type != "text/html":
            continue
        parser = PageLinks()
        parser.feed(body.decode("utf-8", errors="replace"))
        pages[url] = parser
        for attribute, value in parser.links:
            parts = urllib.parse.urlsplit(value)
            if parts.scheme and parts.scheme not in ("http", "https"):
                continue  # mailto: and the like
            target = urllib.parse.urljoin(url, value)
            if urllib.parse.urlsplit(target)[:2] != origin:
                continue  # another site
            if not parts.scheme and value.startswith("/"):
                problems.append(f"{url}: {attribute}={value!r} is not relative")
            target, _, fragment = target.partition("#")
            if fragment:
                fragments.append((url, target, fragment))
            if target not in seen:
                if len(seen) >= MAX_URLS:
                    problems.append(f"more than {MAX_URLS} URLs: is something looping?")
                    return pages, problems
                seen.add(target)
                queue.append(target)
    for page, target, fragment in fragments:
        ids = pages[target].ids if target in pages else None
        if ids is not None and urllib.parse.unquote(fragment) not in ids:
            problems.append(f"{page}: link to {target}#{fragment}, which has no such id")
    return pages, problems


def broken_images(driver):
    """The src of every image on the loaded page that did not render."""
    return driver.execute_script(
        "return Array.from(document.images)"
        "  .filter(img => !(img.complete && img.naturalWidth > 0))"
        "  .map(img => img.getAttribute('src'));"
    )


def load(driver, url):
    driver.get(url)
    state = driver.execute_script("return document.readyState")
    assert state == "complete", f"{url}: still {state} after loading"


# --- The test -------------------------------------------------------------------------------


@pytest.mark.needs("http", "static")
@pytest.mark.repository("this repository's tutorial, built with `make -C docs`")
def test_site_is_served_whole(start_server, docs_site, browser, tmp_path, record_property):
    server = start_server("--root", str(docs_site))
    base = f"http://{server.host}:{server.port}/"

    pages, problems = crawl(base)
    assert not problems, "the site, served by the stage:\n" + "\n".join(problems)
    names = {urllib.parse.urlsplit(url).path.lstrip("/") or "index.html": url for url in pages}
    missing = [name for name in CHAPTER_ORDER if name not in names]
    assert not missing, f"pages not reachable from the index: {missing}"

    # The reading order: from the index, "next" visits every chapter, and "previous" agrees.
    for here, there in zip(CHAPTER_ORDER, CHAPTER_ORDER[1:]):
        url = names[here]
        following = urllib.parse.urljoin(url, pages[url].rel.get("next", ""))
        assert following == names[there], f"{here}: 'next' leads to {following}, not {there}"
        back = urllib.parse.urljoin(names[there], pages[names[there]].rel.get("prev", ""))
        assert back == url, f"{there}: 'previous' leads to {back}, not {here}"

    # Every page with an image, in the browser: every image renders.
    for url, page in sorted(pages.items()):
        if not page.images:
            continue
        load(browser, url)
        broken = broken_images(browser)
        assert not broken, f"{url}: images that do not render: {broken}"

    # The style sheet applies, and the screenshots.
    for name in SCREENSHOTS:
        load(browser, names[name])
        measure = browser.execute_script(
            "return getComputedStyle(document.documentElement).getPropertyValue('--measure')")
        assert measure.strip(), f"{name}: the style sheet did not apply"
        path = tmp_path / f"screenshot-{name.removesuffix('.html')}.png"
        assert browser.save_screenshot(str(path)), f"{name}: no screenshot"
        record_property(f"screenshot {name}", str(path))
        print(f"screenshot of {name}: {path}")
    print(f"{len(pages)} pages checked, served by {server.command_line}")
