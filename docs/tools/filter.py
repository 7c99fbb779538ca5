#!/usr/bin/python3
"""A pandoc filter (JSON on stdin and stdout) that turns the repository's Markdown into
pages of the site: `pandoc --filter tools/filter.py --metadata source=... --metadata page=...`.

The Markdown is written to be read on a Git host too, so its links are relative paths in
the repository: `02-nonblocking.md`, `diagrams/pipeline.svg`, `../stage2-nonblocking/echo.c`.
This filter maps each one to where that thing is in the site (see site_path), relative to
the page being made, so the site works from any directory and from the file system:

    docs/README.md, docs/          index.html
    docs/NAME.md                   NAME.html
    docs/diagrams/NAME.svg         diagrams/NAME.svg (drawn by dot at build time)
    docs/bench/...                 bench/... (the benchmark's plots, copied)
    DIR/README.md, DIR/            repo/DIR/index.html
    any other file FILE            repo/FILE.html (a page of numbered lines, tools/sources.py)

It also:
  - captions every code snippet with the file and function it comes from, linked to that
    line of the file's page. A snippet is a fenced block right after a marker line
        <!-- snippet: stage2-nonblocking/loop_epoll.c flush_output -->
    naming the file (from the repository's root) and, optionally, the function or type.
    The block must be the file's text, verbatim; a line `/* ... */` (or `# ...`) stands for
    lines left out. tests/test_docs.py checks every snippet, so they cannot drift; here, a
    snippet that is not found only gets a warning, so that the site still builds.
  - sets the page's title (its first level-1 heading), the path back to the site's root,
    the links to the previous and next pages in the reading order (--metadata nav), and
    the chapter sidebar and search box (tools/sitenav.py).
"""

import html
import json
import os
import posixpath
import re
import sys

import sitenav
from sitenav import REPO, SITE_TITLE, first_heading, nav_page, relative

SNIPPET_MARKER = re.compile(r"<!--\s*snippet:\s*(\S+)\s*(.*?)\s*-->\Z", re.S)
ELISION = re.compile(r"\s*(/\* \.\.\. \*/|# \.\.\.|\.\.\.)\s*\Z")


def warn(message):
    sys.stderr.write(f"filter.py: {message}\n")


# --- Where things are in the site -----------------------------------------------------------


def site_path(path, is_dir):
    """The site path of a repository path ('' is the repository's root)."""
    if path in ("docs", "docs/README.md"):
        return "index.html"
    if path.startswith("docs/"):
        rest = path[len("docs/"):]
        if "/" not in rest and rest.endswith(".md"):
            return rest[: -len(".md")] + ".html"
        if rest.startswith("diagrams/") and rest.endswith(".svg"):
            return rest
        if rest.startswith("bench/"):
            return rest
    if is_dir:
        return posixpath.join("repo", path, "index.html")
    directory, name = posixpath.split(path)
    if name == "README.md":
        return posixpath.join("repo", directory, "index.html")
    return posixpath.join("repo", path + ".html")


def in_site(path, is_dir, repo_files):
    """Whether the site has a page or file for this repository path."""
    if path.startswith("docs/") and "/" not in path[len("docs/"):] and path.endswith(".md"):
        return path == "docs/README.md" or os.path.exists(os.path.join(REPO, path)) or (
            path == "docs/benchmarks.md")  # a placeholder until the benchmark has run
    if path.startswith(("docs/diagrams/", "docs/bench/")) and not path.endswith(".dot"):
        return True  # drawn or copied at build time
    if path in ("", "docs"):
        return True
    if repo_files is None:  # not told what the site holds: trust the file system
        return os.path.exists(os.path.join(REPO, path))
    if is_dir:
        return any(f.startswith(path + "/") for f in repo_files)
    return path in repo_files


def rewrite_url(url, source, page, repo_files):
    """Maps a link written in the Markdown file source (a repository path) to the site;
    None if the site has nothing there (the link is then dropped, its text kept)."""
    if not url or url.startswith("#") or re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", url):
        return url  # in-page, or absolute (https:, mailto:)
    path, hash_, fragment = url.partition("#")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(source), path))
    if resolved == ".":
        resolved = ""
    if resolved.startswith(".."):
        warn(f"{source}: link {url!r} leaves the repository; dropped")
        return None
    is_dir = path.endswith("/") or os.path.isdir(os.path.join(REPO, resolved))
    if not in_site(resolved, is_dir, repo_files):
        warn(f"{source}: link {url!r}: the site has no {resolved or '.'}; dropped")
        return None
    return relative(site_path(resolved, is_dir), page) + hash_ + fragment


# --- Walking pandoc's JSON ------------------------------------------------------------------


def stringify(node):
    """The plain text of a list of inlines, or of one inline."""
    if isinstance(node, list):
        return "".join(stringify(n) for n in node)
    if not isinstance(node, dict):
        return ""
    kind, content = node.get("t"), node.get("c")
    if kind == "Str":
        return content
    if kind in ("Space", "SoftBreak", "LineBreak"):
        return " "
    if kind in ("Code", "Math", "RawInline"):
        return content[1]
    if kind in ("Emph", "Strong", "Strikeout", "Underline", "SmallCaps", "Superscript",
                "Subscript"):
        return stringify(content)
    if kind in ("Link", "Image", "Span", "Quoted", "Cite"):
        return stringify(content[1] if kind != "Cite" else content[1])
    return ""


def walk(node, action):
    """Applies action to every dict node, depth first; action may return a replacement."""
    if isinstance(node, list):
        return [walk(item, action) for item in node]
    if isinstance(node, dict):
        if "t" in node and "c" in node:
            node = dict(node, c=walk(node["c"], action))
        elif "t" not in node:
            return {key: walk(value, action) for key, value in node.items()}
        replacement = action(node)
        return node if replacement is None else replacement
    return node


def raw_html(text):
    return {"t": "RawBlock", "c": ["html", text]}


def meta_string(text):
    return {"t": "MetaString", "c": text}


def meta_inlines(text):
    return {"t": "MetaInlines", "c": [{"t": "Str", "c": text}]}


def meta_value(meta, key, default=""):
    value = meta.get(key)
    if value is None:
        return default
    if value["t"] == "MetaString":
        return value["c"]
    if value["t"] == "MetaInlines":
        return stringify(value["c"])
    return default


# --- Snippets -------------------------------------------------------------------------------


def snippet_line(path, code):
    """The line of path where the snippet starts, or None if its text is not there."""
    try:
        with open(os.path.join(REPO, path), encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    pieces, piece = [], []
    for line in code.split("\n"):
        if ELISION.match(line):
            pieces.append("\n".join(piece))
            piece = []
        else:
            piece.append(line)
    pieces.append("\n".join(piece))
    pieces = [p for p in pieces if p.strip()]
    if not pieces:
        return None
    start = text.find(pieces[0])
    position = start
    for p in pieces:
        position = text.find(p, position)
        if position < 0:
            return None
        position += len(p)
    return text.count("\n", 0, start) + 1


def caption_snippets(blocks, source, page):
    """Wraps each marked code block in a div with a caption naming its origin."""
    out = []
    i = 0
    while i < len(blocks):
        block = blocks[i]
        marker = None
        if block.get("t") == "RawBlock" and block["c"][0] == "html":
            marker = SNIPPET_MARKER.match(block["c"][1].strip())
        if marker and i + 1 < len(blocks) and blocks[i + 1].get("t") == "CodeBlock":
            path, symbol = marker[1], marker[2]
            code = blocks[i + 1]["c"][1]
            line = snippet_line(path, code)
            href = relative(site_path(path, False), page)
            if line is None:
                warn(f"{source}: a snippet is not in {path} as it is now")
            else:
                href += f"#L{line}"
            label = f"<a href=\"{html.escape(href)}\">{html.escape(path)}</a>"
            if symbol:
                shown = symbol + "()" if re.fullmatch(r"\w+", symbol) else symbol
                label += f", <code>{html.escape(shown)}</code>"
            if line is not None:
                label += f", line {line}"
            caption = raw_html(f'<p class="snippet-source">{label}</p>')
            out.append({"t": "Div", "c": [["", ["snippet"], []], [caption, blocks[i + 1]]]})
            i += 2
            continue
        if marker:
            warn(f"{source}: a snippet marker is not followed by a code block")
        out.append(block)
        i += 1
    return out


def blocks_action(source, page, repo_files):
    def action(node):
        kind = node["t"]
        if kind in ("Link", "Image"):
            attr, content, (url, title) = node["c"]
            target = rewrite_url(url, source, page, repo_files)
            if target is None:
                return {"t": "Span", "c": [attr, content]}
            return {"t": kind, "c": [attr, content, [target, title]]}
        # Block lists nested in divs, quotes and list items get their snippets captioned too.
        if kind in ("Div", "BlockQuote"):
            content = node["c"]
            if kind == "Div":
                return {"t": kind, "c": [content[0], caption_snippets(content[1], source, page)]}
            return {"t": kind, "c": caption_snippets(content, source, page)}
        return None

    return action


# --- Titles and navigation ------------------------------------------------------------------


def navigation(meta, source, page):
    order = meta_value(meta, "nav").split()
    name = posixpath.splitext(posixpath.basename(source))[0]
    if not source.startswith("docs/") or "/" in source[len("docs/"):] or name not in order:
        return
    i = order.index(name)
    neighbours = {"prev": order[i - 1] if i > 0 else None,
                  "next": order[i + 1] if i + 1 < len(order) else None}
    for key, neighbour in neighbours.items():
        if neighbour is None:
            continue
        path, target = nav_page(neighbour)
        title = first_heading(path) or neighbour
        meta[f"{key}-href"] = meta_string(relative(target, page))
        meta[f"{key}-title"] = meta_inlines(title)
    meta["chapter-nav"] = {"t": "MetaBool", "c": True}


def crumbs(source, page):
    """Links at the top of the page: the tutorial's contents, or where a file is."""
    def link(title, target):
        return {"t": "MetaMap", "c": {"href": meta_string(relative(target, page)),
                                       "title": meta_inlines(title)}}

    if not page.startswith("repo/"):
        items = [link("Contents", "index.html"), link("The code", "repo/index.html")]
    else:
        items = [link("The code", "repo/index.html")]
        directory = posixpath.dirname(source)
        parts = directory.split("/") if directory else []
        for n in range(1, len(parts) + 1):
            sub = "/".join(parts[:n])
            items.append(link(parts[n - 1], posixpath.join("repo", sub, "index.html")))
        if posixpath.basename(source) != "README.md":
            items.append(link(posixpath.basename(source), page))
    return {"t": "MetaList", "c": items}


def main():
    doc = json.load(sys.stdin)
    meta = doc["meta"]
    source = meta_value(meta, "source")
    page = meta_value(meta, "page")
    if not source or not page:
        sys.exit("filter.py: needs --metadata source=PATH --metadata page=PATH")

    # The repository's files that have a page in the site (tools/sources.py lists them).
    repo_files = None
    listed = os.path.join(meta_value(meta, "build", "build"), "repo-files.txt")
    if os.path.exists(listed):
        with open(listed, encoding="utf-8") as f:
            repo_files = set(f.read().split())

    doc["blocks"] = caption_snippets(doc["blocks"], source, page)
    doc["blocks"] = walk(doc["blocks"], blocks_action(source, page, repo_files))

    # The first heading is the page's title: the template puts it above the table of
    # contents, which then lists the sections.
    title = None
    blocks = doc["blocks"]
    if blocks and blocks[0].get("t") == "Header" and blocks[0]["c"][0] == 1:
        title = stringify(blocks[0]["c"][2])
        meta["title"] = {"t": "MetaInlines", "c": blocks[0]["c"][2]}
        doc["blocks"] = blocks[1:]
    if title is None:
        title = posixpath.basename(source)
    meta["pagetitle"] = meta_inlines(title if page == "index.html" else f"{title} · {SITE_TITLE}")
    depth = page.count("/")
    meta["root"] = meta_string("../" * depth)
    meta["page-kind"] = meta_string("repo-page" if page.startswith("repo/") else "chapter")
    meta["crumbs"] = crumbs(source, page)
    meta["sidebar"] = {"t": "MetaBlocks",
                       "c": [raw_html(sitenav.sidebar(meta_value(meta, "nav").split(), page))]}
    meta["search"] = {"t": "MetaBlocks", "c": [raw_html(sitenav.search(meta["root"]["c"]))]}
    # The search results say where a hit is: in the tutorial, or in the code's READMEs; the
    # tutorial's chapters, which explain a term, come before the READMEs that use it.
    meta["search-kind"] = meta_string("Code" if page.startswith("repo/") else "Tutorial")
    if page.startswith("repo/"):
        meta["search-weight"] = meta_string("0.5")
    navigation(meta, source, page)
    json.dump(doc, sys.stdout)


if __name__ == "__main__":
    main()
