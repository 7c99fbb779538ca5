#!/usr/bin/python3
"""Writes a page for every source file of the repository, and a listing of every directory,
under SITE/repo/, so that the chapters' links to the code work in the site.

    sources.py --repo .. --site site --build build FILE...

FILE is a path from the repository's root. A file's page, repo/FILE.html, shows its lines
numbered, each with an anchor (#L42) that the chapters' snippet captions link to; comments
and the code is highlighted by pandoc, as in the chapters. Markdown files are left to
pandoc (see the Makefile), but they are listed. A directory's listing is a page of its own,
repo/DIR/index.html, unless the directory has a README.md: then pandoc makes that page from
the README, and the listing, written to BUILD/listings/DIR/README.html, goes at its end.
"""

import argparse
import html
import json
import os
import posixpath
import re
import subprocess

import sitenav
from sitenav import SITE_TITLE

# pandoc's highlighter (skylighting) by kind of file: the same colours as the chapters' code.
LANGUAGES = {".c": "c", ".h": "c", ".py": "python", ".lua": "lua", ".mk": "makefile",
             ".ini": "ini", ".dot": "dot", ".html": "html", ".css": "css", ".js": "javascript",
             ".json": "json"}
NAMED = {"Makefile": "makefile", "run": "bash", ".clang-format": "yaml"}
# pandoc writes each line of a block as <span id="cbN-LINE"><a ...></a>TEXT</span>.
PANDOC_LINE = re.compile(
    r'^(?:<div class="sourceCode"[^>]*><pre[^>]*><code[^>]*>)?'
    r'<span id="cb\d+-\d+"><a href="[^"]*" aria-hidden="true" tabindex="-1"></a>'
    r"(.*)</span>(?:</code></pre></div>)?$")
PANDOC_API = None


def language(path):
    name = posixpath.basename(path)
    return NAMED.get(name) or LANGUAGES.get(posixpath.splitext(name)[1])


def highlight_all(texts, pandoc):
    """Each (text, language) as a list of HTML lines, highlighted by one run of pandoc;
    a text without a language is only escaped."""
    global PANDOC_API
    if PANDOC_API is None:
        empty = subprocess.run([pandoc, "--from", "markdown", "--to", "json"], input="",
                               capture_output=True, text=True, check=True)
        PANDOC_API = json.loads(empty.stdout)["pandoc-api-version"]
    blocks = []
    for n, (text, lang) in enumerate(texts):
        if lang:
            blocks.append({"t": "RawBlock", "c": ["html", f"<!--file {n}-->"]})
            blocks.append({"t": "CodeBlock", "c": [["", [lang], []], text]})
    doc = {"pandoc-api-version": PANDOC_API, "meta": {}, "blocks": blocks}
    run = subprocess.run([pandoc, "--from", "json", "--to", "html5", "--wrap", "none"],
                         input=json.dumps(doc), capture_output=True, text=True, check=True)
    chunks = re.split(r"^<!--file (\d+)-->\n", run.stdout, flags=re.M)
    highlighted = {int(chunks[i]): chunks[i + 1] for i in range(1, len(chunks) - 1, 2)}
    out = []
    for n, (text, lang) in enumerate(texts):
        if n not in highlighted:
            lines = [html.escape(line, quote=False) for line in text.split("\n")]
            if text.endswith("\n"):
                lines.pop()
            out.append(lines)
            continue
        lines = []
        for line in highlighted[n].rstrip("\n").split("\n"):
            match = PANDOC_LINE.match(line)
            if match is None:
                raise ValueError(f"pandoc wrote a line that is not one of the file's: {line!r}")
            lines.append(match[1])
        out.append(lines)
    return out


def page(title, root, crumbs, body, where, nav):
    """A whole page, laid out as the template lays out the chapters (see template.html):
    where is its path in the site, nav the reading order for the sidebar."""
    links = " / ".join(f'<a href="{html.escape(href)}">{html.escape(name)}</a>'
                       for name, href in crumbs)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{html.escape(title)} · {SITE_TITLE}</title>
<link rel="stylesheet" href="{root}style.css">
{sitenav.search(root)}
</head>
<body class="source-page">
<input type="checkbox" id="nav-toggle" class="nav-toggle" aria-controls="sidebar">
<header class="site-header">
<label for="nav-toggle" class="nav-button" title="Chapters">Chapters</label>
<a class="site-title" href="{root}index.html">{SITE_TITLE}</a>
<nav class="crumbs" aria-label="Where you are">{links}</nav>
<div class="search" id="search" role="search"></div>
</header>
<div class="layout">
{sitenav.sidebar(nav, where)}
<div class="content">
<main data-pagefind-body data-pagefind-filter="section:Code">
{body}
</main>
</div>
</div>
</body>
</html>
"""


def crumbs_for(directory, root):
    """Links to the code's root and to each directory down to this one."""
    items = [("The code", f"{root}repo/index.html")]
    parts = directory.split("/") if directory else []
    for n in range(1, len(parts) + 1):
        items.append((parts[n - 1], f"{root}repo/{'/'.join(parts[:n])}/index.html"))
    return items


def source_page(site, path, lines, nav):
    depth = path.count("/") + 1  # repo/ and the file's directories
    root = "../" * depth
    numbered = "".join(
        f'<span class="line" id="L{n}"><a class="ln" href="#L{n}">{n}</a>{line}</span>'
        for n, line in enumerate(lines, 1)
    )
    body = (f'<h1 class="file-name">{html.escape(path)}</h1>\n'
            # The search finds the code too, but ranks a chapter that explains a term first.
            f'<pre class="source sourceCode" data-pagefind-weight="0.1"><code>{numbered}'
            f"</code></pre>")
    crumbs = crumbs_for(posixpath.dirname(path), root)
    crumbs.append((posixpath.basename(path), "#"))
    where = posixpath.join("repo", path + ".html")
    out = os.path.join(site, where)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write(page(path, root, crumbs, body, where, nav))


def listing(directory, entries, has_readme):
    """The HTML list of a directory's subdirectories and files."""
    items = []
    for name, is_dir in entries:
        if is_dir:
            items.append(f'<li class="dir"><a href="{html.escape(name)}/index.html">'
                         f"{html.escape(name)}/</a></li>")
        elif not (name == "README.md"):
            items.append(f'<li><a href="{html.escape(name)}.html">{html.escape(name)}</a></li>')
    heading = "<h2>Files</h2>\n" if has_readme else ""
    note = ""
    if directory == "docs":
        note = '<p>The tutorial itself is <a href="../../index.html">the site\'s first page</a>.</p>\n'
    return f'<section class="listing">\n{heading}{note}<ul>\n' + "\n".join(items) + "\n</ul>\n</section>\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", required=True)
    parser.add_argument("--site", required=True)
    parser.add_argument("--build", required=True)
    parser.add_argument("--nav", default="", help="the reading order, as the Makefile's NAV")
    parser.add_argument("--pandoc", default="pandoc")
    parser.add_argument("files", nargs="*")
    args = parser.parse_args()

    files = sorted(set(args.files))
    tree = {}  # directory -> {name: is_dir}
    for path in files:
        directory = posixpath.dirname(path)
        tree.setdefault(directory, {})[posixpath.basename(path)] = False
        while directory:
            parent = posixpath.dirname(directory)
            tree.setdefault(parent, {})[posixpath.basename(directory)] = True
            directory = parent

    nav = args.nav.split()
    sources = [path for path in files if not path.endswith(".md")]
    texts = []
    for path in sources:
        with open(os.path.join(args.repo, path), encoding="utf-8", errors="replace") as f:
            texts.append((f.read(), language(path)))
    for path, lines in zip(sources, highlight_all(texts, args.pandoc)):
        source_page(args.site, path, lines, nav)
    # For tools/filter.py: which files have a page, so that links to others are dropped.
    os.makedirs(args.build, exist_ok=True)
    with open(os.path.join(args.build, "repo-files.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(files) + "\n")

    for directory, names in tree.items():
        entries = sorted(names.items(), key=lambda e: (not e[1], e[0]))
        has_readme = "README.md" in names
        section = listing(directory, entries, has_readme)
        if has_readme:
            out = os.path.join(args.build, "listings", directory, "README.html")
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with open(out, "w", encoding="utf-8") as f:
                f.write(section)
        else:
            depth = directory.count("/") + 2 if directory else 1
            root = "../" * depth
            title = directory + "/" if directory else "The code"
            body = f'<h1 class="file-name">{html.escape(title)}</h1>\n{section}'
            out = os.path.join(args.site, "repo", directory, "index.html")
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with open(out, "w", encoding="utf-8") as f:
                where = posixpath.join("repo", directory, "index.html")
                f.write(page(title, root, crumbs_for(directory, root), body, where, nav))


if __name__ == "__main__":
    main()
