"""What every page of the site shows around its text, whoever writes the page: the chapter
sidebar and the search box. tools/filter.py puts them into pandoc's pages (the chapters,
the READMEs) and tools/sources.py into the pages of source files, so both kinds look alike.

The reading order comes from the Makefile (NAV: the index, the chapters, the benchmark
results, the glossary); a page's title in the sidebar is its Markdown file's first heading.
"""

import html
import os
import posixpath
import re

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SITE_TITLE = "From echo to io_uring"


def first_heading(path):
    """The text of the first '# ' line of a Markdown file, without backticks."""
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("# "):
                    return line[2:].strip().replace("`", "")
    except OSError:
        pass
    return None


def nav_page(name):
    """(Markdown file, site path) of a name in the reading order."""
    docs = os.path.join(REPO, "docs")
    if name == "README":
        return os.path.join(docs, "README.md"), "index.html"
    path = os.path.join(docs, name + ".md")
    if name == "benchmarks" and not os.path.exists(path):
        path = os.path.join(docs, "tools", "no-benchmarks.md")
    return path, name + ".html"


def relative(target, page):
    """The URL of site path target from the page at site path page."""
    return posixpath.relpath(target, posixpath.dirname(page) or ".")


def short_title(name, title):
    """The sidebar's label: 'Stage 2: non-blocking ...' becomes '2 Non-blocking ...'."""
    if name == "README":
        return None, "Contents"
    number = re.match(r"(\d\d)-", name)
    label = re.sub(r"^(Stage \d+|Chapter \d+|Appendix)\s*:\s*", "", title)
    if "_" not in label.split(" ")[0]:  # io_uring stays as it is written
        label = label[:1].upper() + label[1:]
    return (str(int(number[1])) if number else None), label


def sidebar(nav, page):
    """The sidebar's HTML for the page at site path page: every page of the reading order,
    the current one marked, and a link to the code."""
    items = []
    for name in nav:
        path, target = nav_page(name)
        number, label = short_title(name, first_heading(path) or name)
        current = ' aria-current="page"' if target == page else ""
        prefix = f'<span class="num">{number}</span>' if number else ""
        items.append(f'<li><a href="{html.escape(relative(target, page))}"{current}>'
                     f"{prefix}{html.escape(label)}</a></li>")
    code = relative("repo/index.html", page)
    current = ' aria-current="page"' if page == "repo/index.html" else ""
    items.append(f'<li class="code"><a href="{html.escape(code)}"{current}>The code</a></li>')
    return ('<nav class="sidebar" id="sidebar" aria-label="Chapters">\n<ol>\n'
            + "\n".join(items) + "\n</ol>\n</nav>")


def search(root):
    """The search box: Pagefind's UI over the index `make -C docs` builds into pagefind/.
    Without JavaScript, or from the file system (the index is fetched), it stays empty."""
    return (f'<link rel="stylesheet" href="{root}pagefind/pagefind-ui.css">\n'
            f'<script src="{root}pagefind/pagefind-ui.js"></script>\n'
            f'<script src="{root}site.js" defer></script>')
