"""The tutorial's web site, built by `make -C docs` into docs/site/, served by the stage
under test (`--root docs/site`) and loaded in headless Chromium.

- Every page, style sheet and image reachable from the index answers 200, with no
  redirect; every link within the site is relative, so the site works wherever it is
  served from; every link to a place in a page (#id) finds that place.
- Every image on every page renders in the browser (complete, with a natural width).
- The chapters are chained in reading order by their previous/next links.
- Every page in the reading order, and some of the code's pages, fit a desktop (1280 px)
  and a phone (390 px) window: nothing makes the page scroll sideways (long code lines and
  wide tables scroll inside their own boxes), and the chapter sidebar marks the page.
- The search box (Pagefind, indexed at build time) finds a term, with a link to the
  chapter that explains it.
- Screenshots of the index and of a chapter, at both widths, light and dark (the system's
  setting, emulated), are saved under the test's temporary directory; their paths are
  attached to the report (junit properties, and the output).

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
    "08-beyond-one-machine.html",
    "benchmarks.html",
    "glossary.html",
]
SCREENSHOTS = ["index.html", "02-nonblocking.html"]
# The code's pages with the longest lines and a README with tables, besides the chapters.
WIDTH_CHECKED = ["repo/shared/http_parse.c.html", "repo/index.html",
                 "repo/tests/bench/bench.py.html"]
WIDTHS = {"desktop": (1280, 900, False), "phone": (390, 844, True)}
# A term the search must find, and the page that must be among its first results.
SEARCH = ("SO_REUSEPORT", "05-threads.html")
SEARCH_TIMEOUT = 15
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


def set_window(driver, width, height, mobile, dark=False):
    """The viewport (as a phone's, with its viewport meta tag, when mobile) and the
    system's colour scheme, emulated through the DevTools protocol."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
        "features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]})


def overflow(driver):
    """How far the page is wider than the window (0 if it fits), and the widest elements
    that stick out past the right edge, to say what to fix."""
    return driver.execute_script("""
        const width = document.documentElement.clientWidth;
        const over = document.documentElement.scrollWidth - width;
        const culprits = [];
        if (over > 0) {
            for (const e of document.querySelectorAll("body *")) {
                const box = e.getBoundingClientRect();
                if (box.right > width + 1 && box.width > 0)
                    culprits.push(e.tagName.toLowerCase() + (e.className ? "." + e.className : "")
                                  + ` (right edge at ${Math.round(box.right)} px)`);
            }
        }
        return [over, culprits.slice(0, 5)];
    """)


def search_results(driver, term):
    """Types term into the search box; the result links, once Pagefind has shown them."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    box = WebDriverWait(driver, SEARCH_TIMEOUT).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#search input[type=text]"),
        "no search box: Pagefind's UI did not load")[0]
    box.send_keys(term)
    WebDriverWait(driver, SEARCH_TIMEOUT).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".pagefind-ui__result-link"),
        f"the search for {term!r} showed no result")
    # Each result is a page; its first link goes to the page, the others to its sections.
    results = driver.find_elements(By.CSS_SELECTOR, "li.pagefind-ui__result")
    return [result.find_element(By.CSS_SELECTOR, "a.pagefind-ui__result-link").get_attribute("href")
            for result in results]


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

    # At a desktop's and a phone's width: no page scrolls sideways, and the sidebar marks it.
    checked = [names[name] for name in CHAPTER_ORDER] + [
        urllib.parse.urljoin(base, path) for path in WIDTH_CHECKED]
    for kind, (width, height, mobile) in WIDTHS.items():
        set_window(browser, width, height, mobile)
        for url in checked:
            load(browser, url)
            over, culprits = overflow(browser)
            assert over <= 0, (f"{url} at {width} px ({kind}): the page is {over} px too wide; "
                               f"sticking out: {culprits}")
            current = browser.execute_script(
                "const a = document.querySelector('.sidebar a[aria-current=page]');"
                "return a ? a.href : null;")
            if url in checked[:len(CHAPTER_ORDER)]:
                assert current == url, f"{url}: the sidebar marks {current}, not this page"

    # Search: Pagefind's index, fetched from the stage, finds the term and its chapter.
    set_window(browser, *WIDTHS["desktop"])
    load(browser, names["index.html"])
    term, expected = SEARCH
    found = [urllib.parse.urlsplit(href).path.lstrip("/") for href in search_results(browser, term)]
    assert expected in found[:5], f"searching {term!r} found {found[:5]}, not {expected} among them"

    # The style sheet applies, and the screenshots: both widths, light and dark.
    for name in SCREENSHOTS:
        for kind, (width, height, mobile) in WIDTHS.items():
            for scheme in ("light", "dark"):
                set_window(browser, width, height, mobile, dark=scheme == "dark")
                load(browser, names[name])
                measure = browser.execute_script(
                    "return getComputedStyle(document.documentElement)"
                    ".getPropertyValue('--measure')")
                assert measure.strip(), f"{name}: the style sheet did not apply"
                shot = f"{name.removesuffix('.html')}-{kind}-{scheme}"
                path = tmp_path / f"screenshot-{shot}.png"
                assert browser.save_screenshot(str(path)), f"{name}: no screenshot"
                record_property(f"screenshot {shot}", str(path))
                print(f"screenshot of {name}, {kind}, {scheme}: {path}")
    print(f"{len(pages)} pages checked, served by {server.command_line}")
