#!/usr/bin/python3
"""Writes a page for every source file of the repository, and a listing of every directory,
under SITE/repo/, so that the chapters' links to the code work in the site.

    sources.py --repo .. --site site --build build FILE...

FILE is a path from the repository's root. A file's page, repo/FILE.html, shows its lines
numbered, each with an anchor (#L42) that the chapters' snippet captions link to; comments
and strings are set apart in C, Python, Lua, Makefiles and shell. Markdown files are left to
pandoc (see the Makefile), but they are listed. A directory's listing is a page of its own,
repo/DIR/index.html, unless the directory has a README.md: then pandoc makes that page from
the README, and the listing, written to BUILD/listings/DIR/README.html, goes at its end.
"""

import argparse
import html
import os
import posixpath
import re

SITE_TITLE = "From echo to io_uring"

# Comments and strings, by kind of file. Each pattern's groups: comment, then string.
C_LIKE = re.compile(
    r"(/\*.*?\*/|//[^\n]*)"
    r"|(\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*')",
    re.S,
)
PYTHON = re.compile(
    r"(#[^\n]*)"
    r"|(\"\"\".*?\"\"\"|'''.*?'''|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*')",
    re.S,
)
LUA = re.compile(r"(--[^\n]*)|(\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*')")
HASH_COMMENTS = re.compile(r"((?:^|(?<=\s))#[^\n]*)|(?!)", re.M)


def language(path):
    name = posixpath.basename(path)
    if name.endswith((".c", ".h", ".dot")):
        return C_LIKE
    if name.endswith(".py"):
        return PYTHON
    if name.endswith(".lua"):
        return LUA
    if name in ("Makefile", "run", ".clang-format") or name.endswith((".mk", ".ini")):
        return HASH_COMMENTS
    return None


def highlight(text, pattern):
    """The text as HTML lines, comments and strings wrapped in spans."""
    segments = []  # (css class or None, text)
    position = 0
    if pattern is not None:
        for match in pattern.finditer(text):
            if match.start() > position:
                segments.append((None, text[position:match.start()]))
            segments.append(("c" if match.group(1) is not None else "s", match.group(0)))
            position = match.end()
    segments.append((None, text[position:]))

    lines, current = [], []
    for kind, chunk in segments:
        parts = chunk.split("\n")
        for n, part in enumerate(parts):
            if n > 0:
                lines.append("".join(current))
                current = []
            if part:
                escaped = html.escape(part, quote=False)
                current.append(f'<span class="{kind}">{escaped}</span>' if kind else escaped)
    lines.append("".join(current))
    if lines and lines[-1] == "" and text.endswith("\n"):
        lines.pop()
    return lines


def page(title, root, crumbs, body):
    links = " / ".join(f'<a href="{html.escape(href)}">{html.escape(name)}</a>'
                       for name, href in crumbs)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · {SITE_TITLE}</title>
<link rel="stylesheet" href="{root}style.css">
</head>
<body class="source-page">
<header class="site-header">
<a class="site-title" href="{root}index.html">{SITE_TITLE}</a>
<nav class="crumbs" aria-label="Where you are">{links}</nav>
</header>
<main>
{body}
</main>
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


def source_page(repo, site, path):
    with open(os.path.join(repo, path), encoding="utf-8", errors="replace") as f:
        text = f.read()
    depth = path.count("/") + 1  # repo/ and the file's directories
    root = "../" * depth
    lines = highlight(text, language(path))
    numbered = "".join(
        f'<span class="line" id="L{n}"><a class="ln" href="#L{n}">{n}</a>{line}</span>'
        for n, line in enumerate(lines, 1)
    )
    body = (f'<h1 class="file-name">{html.escape(path)}</h1>\n'
            f'<pre class="source"><code>{numbered}</code></pre>')
    crumbs = crumbs_for(posixpath.dirname(path), root)
    crumbs.append((posixpath.basename(path), "#"))
    out = os.path.join(site, "repo", path + ".html")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write(page(path, root, crumbs, body))


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

    for path in files:
        if not path.endswith(".md"):
            source_page(args.repo, args.site, path)
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
                f.write(page(title, root, crumbs_for(directory, root), body))


if __name__ == "__main__":
    main()
