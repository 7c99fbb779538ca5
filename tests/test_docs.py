"""Checks of the tutorial in docs/: that it is complete, and that it cannot drift from the code.

- Every chapter exists, and docs/README.md (the site's index) lists them in order.
- Each stage's chapter has its sections: the idea, the code, commands to try, exercises,
  and measured figures; and at least one diagram.
- Every code snippet is the source's text, verbatim. A snippet is a fenced block right
  after a marker line
      <!-- snippet: stage1-echo/main.c write_all -->
  naming a file from the repository's root and, optionally, the function (or `struct X`,
  `enum X`, `union X`) it lies in; a line `/* ... */` (or `# ...`) in the block stands for
  lines left out, and the pieces around it must appear in that order.
- Every relative link and image points at something that exists or that `make -C docs`
  makes; every image is a Graphviz diagram with its source in docs/diagrams/ (or the
  route trie, drawn from stage 4's --routes-dot at build time, never by hand); every
  diagram renders with dot.
- Every option given to a stage's server in a chapter's commands is one that stage has.
- Every exercise has a hint and a worked solution, each in a <details> block that the
  reader unfolds.
- docs/tests.md, the table of which test runs on which stage, is what tests/table.py
  writes from the suite as it is now, and every chapter links it.

These need no server, so they run once, whatever --stage says. The built site itself is
tested by test_site.py.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"

CHAPTERS = [
    "00-introduction.md",
    "01-echo.md",
    "02-nonblocking.md",
    "03-http.md",
    "04-router.md",
    "05-threads.md",
    "06-uring.md",
    "07-measurement.md",
    "08-beyond-one-machine.md",
]
STAGE_CHAPTERS = CHAPTERS[1:7]
STAGE_SECTIONS = ["The idea", "The code", "Try it", "Exercises", "Measured"]
MIN_EXERCISES = 4

# The glossary, and the terms it must define (its entries are level-2 headings; the anchor
# is the heading in lower case with dashes, as pandoc and Git hosts make it).
GLOSSARY = "glossary.md"
GLOSSARY_TERMS = [
    "EAGAIN", "Backpressure", "TIME_WAIT", "SQE and CQE", "Pipelining", "Head-of-line blocking",
    "Request smuggling", "Level-triggered and edge-triggered", "Keep-alive", "SO_REUSEPORT",
    "Zero-copy", "Provided buffers", "Multishot", "Lingering close",
]

# The diagrams the tutorial promises, as docs/diagrams/NAME.dot.
DIAGRAMS = [
    "pipeline",
    "layers",
    "stage1-echo",
    "stage2-nonblocking",
    "stage2-states",
    "stage3-http",
    "stage3-states",
    "stage4-router",
    "stage5-threads",
    "stage5-workers",
    "stage6-uring",
    "stage6-states",
    "uring-flow",
    "proxy",
]
# Drawn at build time from stage 4's own route table; a hand-drawn source must not exist.
GENERATED_DIAGRAMS = {"routes"}

MARKER = re.compile(r"<!--\s*snippet:\s*(\S+)\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")
ELISION = re.compile(r"\s*(/\* \.\.\. \*/|# \.\.\.|\.\.\.)\s*$")
LINK = re.compile(r"(!?)\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


# --- Reading Markdown -----------------------------------------------------------------------


class Markdown:
    """A Markdown file split into prose lines and fenced code blocks."""

    def __init__(self, path):
        self.path = path
        self.name = str(path.relative_to(REPO))
        self.lines = path.read_text(encoding="utf-8").split("\n")
        self.blocks = []  # dicts: line (1-based, of the opening fence), info, text, marker
        self.prose = []  # (line number, text) outside code blocks
        self.markers = []  # (line number, path, symbol, followed by a block?)
        i = 0
        while i < len(self.lines):
            line = self.lines[i]
            fence = FENCE.match(line)
            if fence:
                opening = fence[2]
                body = []
                j = i + 1
                while j < len(self.lines):
                    closing = FENCE.match(self.lines[j])
                    if (closing and closing[2][0] == opening[0] and len(closing[2]) >= len(opening)
                            and not closing[3].strip()):
                        break
                    body.append(self.lines[j])
                    j += 1
                marker = None
                if i > 0 and MARKER.match(self.lines[i - 1].strip()):
                    marker = MARKER.match(self.lines[i - 1].strip())
                self.blocks.append({"line": i + 1, "info": fence[3].strip(),
                                    "text": "\n".join(body), "marker": marker})
                i = j + 1
                continue
            marker = MARKER.match(line.strip())
            if marker:
                following = i + 1 < len(self.lines) and FENCE.match(self.lines[i + 1])
                self.markers.append((i + 1, marker[1], marker[2], bool(following)))
            self.prose.append((i + 1, line))
            i += 1

    def headings(self, level):
        prefix = "#" * level + " "
        return [text[len(prefix):].strip() for _, text in self.prose if text.startswith(prefix)]

    def section(self, title):
        """The lines of the level-2 section with this title, up to the next one."""
        out, inside = [], False
        for line in self.lines:
            if line.startswith("## "):
                inside = line[3:].strip() == title
                continue
            if inside:
                out.append(line)
        return "\n".join(out)

    def links(self):
        """(line, is_image, url) of every Markdown link and image in the prose."""
        found = []
        for number, text in self.prose:
            text = re.sub(r"`[^`]*`", "", text)  # not inside inline code
            for match in LINK.finditer(text):
                found.append((number, match[1] == "!", match[2]))
        # A link's text may run over a line break: join paragraphs and look again.
        joined = " ".join(re.sub(r"`[^`]*`", "", t) for _, t in self.prose)
        for match in LINK.finditer(joined):
            entry = (0, match[1] == "!", match[2])
            if not any(f[1:] == entry[1:] for f in found):
                found.append(entry)
        return found


def markdown_files():
    return [DOCS / "README.md"] + [DOCS / name for name in CHAPTERS + [GLOSSARY]
                                   if (DOCS / name).exists()] + [DOCS / "tests.md"]


def load(name):
    path = DOCS / name
    if not path.exists():
        pytest.fail(f"docs/{name} is missing", pytrace=False)
    return Markdown(path)


# --- Structure ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_exists_with_a_title(name):
    doc = load(name)
    assert doc.lines[0].startswith("# "), f"docs/{name} must start with a '# Title' line"


def test_index_lists_every_chapter_in_order():
    index = load("README.md")
    listed = [url for _, is_image, url in index.links() if not is_image and url in CHAPTERS]
    order = list(dict.fromkeys(listed))
    assert order == CHAPTERS, (
        f"docs/README.md must link every chapter, in order; it links {order}"
    )
    assert any(url == "benchmarks.md" for _, _, url in index.links()), (
        "docs/README.md must link the benchmark results (benchmarks.md)"
    )


@pytest.mark.parametrize("name", STAGE_CHAPTERS)
def test_stage_chapter_has_its_sections(name):
    doc = load(name)
    headings = doc.headings(2)
    missing = [s for s in STAGE_SECTIONS if s not in headings]
    assert not missing, f"docs/{name}: no '## {missing[0]}' section (it has {headings})"
    positions = [headings.index(s) for s in STAGE_SECTIONS]
    assert positions == sorted(positions), (
        f"docs/{name}: the sections should come in the order {STAGE_SECTIONS}"
    )


@pytest.mark.parametrize("name", STAGE_CHAPTERS)
def test_stage_chapter_has_commands_exercises_and_figures(name):
    doc = load(name)
    try_it = doc.section("Try it")
    assert re.search(r"^```(sh|console)\s*$", try_it, re.M), (
        f"docs/{name}: 'Try it' has no ```sh block of commands"
    )
    exercises = re.findall(r"^\d+\. ", doc.section("Exercises"), re.M)
    assert len(exercises) >= MIN_EXERCISES, (
        f"docs/{name}: 'Exercises' has {len(exercises)} numbered exercises, "
        f"expected {MIN_EXERCISES} or more"
    )
    measured = doc.section("Measured")
    assert "benchmarks.md" in measured, (
        f"docs/{name}: 'Measured' must link the benchmark results (benchmarks.md)"
    )
    assert re.search(r"\d", measured), f"docs/{name}: 'Measured' quotes no figure"
    images = [url for _, is_image, url in doc.links() if is_image]
    assert any(url.startswith("diagrams/") for url in images), f"docs/{name} has no diagram"


@pytest.mark.parametrize("name", CHAPTERS[1:])
def test_every_exercise_has_a_hint_and_a_solution(name):
    """Inside each numbered exercise, in this order: a <details> with the summary Hint,
    then one with the summary Solution, each closed (pandoc and GitHub unfold them)."""
    section = load(name).section("Exercises")
    exercises = re.split(r"^(?=\d+\. )", section, flags=re.M)[1:]
    assert exercises, f"docs/{name}: no numbered exercises"
    for text in exercises:
        number = text.split(".")[0]
        summaries = re.findall(r"^ {3}<details><summary>(\w+)</summary>$", text, re.M)
        opened = len(re.findall(r"^ {3}<details>", text, re.M))
        closed = len(re.findall(r"^ {3}</details>$", text, re.M))
        assert summaries == ["Hint", "Solution"] and opened == closed == 2, (
            f"docs/{name}, exercise {number}: expected a line <details><summary>Hint</summary> "
            f"and then <details><summary>Solution</summary>, indented into the exercise; found "
            f"summaries {summaries}, {opened} opened and {closed} closed"
        )


def test_measurement_chapter_links_the_results_and_the_benchmark():
    doc = load("07-measurement.md")
    urls = {url for _, _, url in doc.links()}
    assert "benchmarks.md" in urls, "docs/07-measurement.md must link benchmarks.md"
    assert any("tests/bench/" in url for url in urls), (
        "docs/07-measurement.md must link the benchmark's code in tests/bench/"
    )


def anchor(heading):
    """The id pandoc (and a Git host) gives a heading: lower case, spaces to dashes, and
    punctuation other than '-', '_' and '.' dropped."""
    return re.sub(r"[^\w\s.-]", "", heading.replace("`", "")).strip().lower().replace(" ", "-")


def glossary_entries():
    """{anchor: the entry's text} of docs/glossary.md."""
    entries, current = {}, None
    for line in load(GLOSSARY).lines:
        if line.startswith("## "):
            current = anchor(line[3:].strip())
            entries[current] = ""
        elif current:
            entries[current] += line + "\n"
    return entries


def test_glossary_defines_the_terms_and_links_their_chapters():
    entries = glossary_entries()
    missing = [term for term in GLOSSARY_TERMS if anchor(term) not in entries]
    assert not missing, f"docs/{GLOSSARY} has no entry (## heading) for {missing}"
    unlinked = [name for name, text in entries.items()
                if not re.search(r"\]\(0\d-[\w-]+\.md(#[\w-]+)?\)", text)]
    assert not unlinked, f"docs/{GLOSSARY}: entries that link no chapter: {unlinked}"
    assert GLOSSARY in {url for _, _, url in load("README.md").links()}, (
        "docs/README.md must link the glossary")


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_links_the_glossary_to_entries_it_has(name):
    entries = glossary_entries()
    links = [url for _, _, url in load(name).links() if url.startswith(GLOSSARY)]
    assert links, f"docs/{name} links no term to the glossary (docs/{GLOSSARY}#term)"
    wrong = [url for url in links if url.partition("#")[2] not in entries]
    assert not wrong, f"docs/{name}: glossary links to entries it does not have: {wrong}"


# --- Snippets -------------------------------------------------------------------------------


def all_snippets():
    params = []
    for path in markdown_files():
        doc = Markdown(path)
        for block in doc.blocks:
            if block["marker"]:
                params.append(pytest.param(doc.name, block, id=f"{path.name}:{block['line']}"))
    return params


def test_there_are_snippets():
    count = len(all_snippets())
    assert count >= 20, f"the chapters show {count} snippets of code; they should show more"


def test_every_snippet_marker_is_followed_by_a_code_block():
    for path in markdown_files():
        doc = Markdown(path)
        for line, source, _, followed in doc.markers:
            assert followed, (
                f"{doc.name}:{line}: the snippet marker for {source} must be followed, on the "
                f"next line, by a fenced code block"
            )


def pieces_of(snippet):
    """The snippet's runs of lines between elision lines."""
    pieces, piece = [], []
    for line in snippet.split("\n"):
        if ELISION.match(line):
            pieces.append("\n".join(piece))
            piece = []
        else:
            piece.append(line)
    pieces.append("\n".join(piece))
    return [p for p in pieces if p.strip()]


def definition_range(text, symbol):
    """(start, end) character offsets of the top-level definition of symbol in C source:
    from its first line (at column 0, not a declaration ending in ';') to the first line
    after it that is just '}' or '};'. None if there is none."""
    words = symbol.split()
    if len(words) == 2 and words[0] in ("struct", "enum", "union"):
        head = re.compile(rf"^(?:\S.*)?\b{words[0]}\s+{re.escape(words[1])}\s*\{{\s*$")
    elif len(words) == 1 and re.fullmatch(r"\w+", symbol):
        head = re.compile(rf"^\S.*\b{re.escape(symbol)}\s*\([^;]*$")
    else:
        return None
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    for i, line in enumerate(lines):
        if not head.match(line) or line.startswith(("/", " ", "#")):
            continue
        # A prototype ends with ';' before any '{': not the definition.
        j = i
        while j < len(lines) and not lines[j].rstrip().endswith(("{", ";")):
            j += 1
        if j == len(lines) or lines[j].rstrip().endswith(";"):
            continue
        for k in range(j + 1, len(lines)):
            if re.fullmatch(r"\};?\s*", lines[k]):
                return offsets[i], offsets[k] + len(lines[k])
        return None
    return None


@pytest.mark.parametrize("doc_name, block", all_snippets())
def test_snippet_is_the_source_text(doc_name, block):
    source, symbol = block["marker"][1], block["marker"][2]
    where = f"{doc_name}:{block['line']} (snippet of {source}{' ' + symbol if symbol else ''})"
    path = REPO / source
    assert path.is_file(), f"{where}: there is no file {source}"
    text = path.read_text(encoding="utf-8")
    pieces = pieces_of(block["text"])
    assert pieces, f"{where}: the snippet is empty"

    position = 0
    starts = []
    for piece in pieces:
        found = text.find(piece, position)
        if found < 0:
            first = piece.split("\n")[0]
            hint = ("its first line is not in the file either" if first not in text
                    else "its first line is there, a later one differs")
            pytest.fail(
                f"{where}: this part is not in {source} as it is now ({hint}):\n{piece}",
                pytrace=False,
            )
        starts.append(found)
        position = found + len(piece)

    if symbol:
        span = definition_range(text, symbol)
        assert span is not None, f"{where}: {source} has no definition of {symbol}"
        assert span[0] <= starts[0] and position <= span[1], (
            f"{where}: the snippet is in {source}, but not inside {symbol}"
        )


# --- Links and diagrams ---------------------------------------------------------------------


def generated(target):
    """Whether a path under docs/ is made by `make -C docs` or by the benchmark."""
    relative = target.relative_to(DOCS) if target.is_relative_to(DOCS) else None
    if relative is None:
        return False
    parts = relative.parts
    if parts == ("benchmarks.md",) or (parts and parts[0] == "bench"):
        return True  # written by the benchmark (tests/bench), which may not have run
    if len(parts) == 2 and parts[0] == "diagrams" and relative.suffix == ".svg":
        return (DOCS / "diagrams" / (relative.stem + ".dot")).exists() or (
            relative.stem in GENERATED_DIAGRAMS)
    return False


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.name)
def test_links_point_at_something(path):
    doc = Markdown(path)
    broken = []
    for line, _, url in doc.links():
        if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", url) or url.startswith("#"):
            continue
        target = (path.parent / url.split("#")[0]).resolve()
        if not target.is_relative_to(REPO):
            broken.append(f"line {line}: {url} leaves the repository")
        elif not target.exists() and not generated(target):
            broken.append(f"line {line}: {url}")
    assert not broken, f"{doc.name}: links to nothing:\n" + "\n".join(broken)


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.name)
def test_images_are_diagrams(path):
    doc = Markdown(path)
    for line, is_image, url in doc.links():
        if not is_image:
            continue
        match = re.fullmatch(r"diagrams/([\w-]+)\.svg", url)
        assert match, f"{doc.name}: the image {url} is not a diagram (diagrams/NAME.svg)"
        name = match[1]
        assert name in GENERATED_DIAGRAMS or (DOCS / "diagrams" / f"{name}.dot").exists(), (
            f"{doc.name}: {url} has no source docs/diagrams/{name}.dot"
        )


def test_every_promised_diagram_is_used():
    used = set()
    for path in markdown_files():
        for _, is_image, url in Markdown(path).links():
            match = re.fullmatch(r"diagrams/([\w-]+)\.svg", url)
            if is_image and match:
                used.add(match[1])
    unused = [name for name in DIAGRAMS + sorted(GENERATED_DIAGRAMS) if name not in used]
    assert not unused, f"diagrams no chapter shows: {unused}"


def test_the_route_trie_is_not_drawn_by_hand():
    for name in GENERATED_DIAGRAMS:
        assert not (DOCS / "diagrams" / f"{name}.dot").exists(), (
            f"docs/diagrams/{name}.dot must not exist: the build draws it from stage 4"
        )
    makefile = (DOCS / "Makefile").read_text()
    assert "--routes-dot" in makefile, "docs/Makefile must draw the routes with --routes-dot"


@pytest.mark.parametrize("name", DIAGRAMS)
def test_diagram_renders(name, tmp_path):
    source = DOCS / "diagrams" / f"{name}.dot"
    assert source.exists(), f"docs/diagrams/{name}.dot is missing"
    if shutil.which("dot") is None:
        pytest.fail("dot is missing: `make deps` installs Debian's graphviz", pytrace=False)
    out = tmp_path / f"{name}.svg"
    run = subprocess.run(["dot", "-Tsvg", "-o", str(out), str(source)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and not run.stderr.strip(), (
        f"dot -Tsvg docs/diagrams/{name}.dot: exit status {run.returncode}\n{run.stderr}"
    )
    assert "<svg" in out.read_text(), f"dot wrote no SVG for {name}"


# --- Commands -------------------------------------------------------------------------------


def stage_options(directory):
    """The long options a stage's server takes, from its option table in main.c."""
    main = REPO / directory / "main.c"
    if not main.exists():
        return None
    return set(re.findall(r'\{"([a-z][a-z0-9-]*)",\s*OPTION_', main.read_text())) | {"help"}


@pytest.mark.parametrize("name", CHAPTERS)
def test_server_options_in_commands_exist(name):
    """`./stageN-name/server --flag ...` in a chapter's commands uses flags that stage has."""
    doc = load(name)
    problems = []
    for block in doc.blocks:
        if block["info"] not in ("sh", "console", "bash"):
            continue
        for line in block["text"].split("\n"):
            command = line.split("#")[0]
            for match in re.finditer(r"(stage\d-[\w-]+)/server((?:\s+--?[\w-]+(?:\s+[^-\s|&;]\S*)?)*)",
                                     command):
                options = stage_options(match[1])
                if options is None:
                    continue  # a stage still being written
                for flag in re.findall(r"--([\w-]+)", match[2]):
                    if flag not in options:
                        problems.append(f"{match[1]} has no --{flag}: {line.strip()}")
    assert not problems, f"docs/{name}:\n" + "\n".join(problems)


READMES = sorted(REPO.glob("stage[0-9]-*/README.md")) + [REPO / "README.md"]


@pytest.mark.parametrize("path", [DOCS / name for name in CHAPTERS] + READMES,
                         ids=lambda path: str(path.relative_to(REPO)))
def test_commands_name_their_own_server_process(path):
    """`pgrep -f stageN-.../server` matches every such server on the machine: with two
    running, `ps -p` got two PIDs and `strace -p` attached to both. The commands take the
    PID of the server they started (`$!`) instead."""
    if not path.exists():
        pytest.skip(f"{path.relative_to(REPO)} is not written yet")
    found = [line.strip() for line in path.read_text().splitlines()
             if re.search(r"\b(pgrep|pidof|pkill|killall)\b", line)]
    assert not found, f"{path.relative_to(REPO)}:\n" + "\n".join(found)


# --- The table of tests ---------------------------------------------------------------------


def test_the_table_of_tests_is_up_to_date():
    run = subprocess.run([sys.executable, str(REPO / "tests" / "table.py")], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"tests/table.py failed:\n{run.stderr}"
    assert (DOCS / "tests.md").read_text() == run.stdout, (
        "docs/tests.md is not what tests/table.py writes from the suite now: "
        "run `make test-table` and commit docs/tests.md"
    )


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_links_the_table_of_tests(name):
    urls = {url.split("#")[0] for _, _, url in load(name).links()}
    assert "tests.md" in urls, f"docs/{name} must link the table of tests, tests.md"
