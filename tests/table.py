"""Writes docs/tests.md: every test of the suite against the six stages, from the suite itself.

    /usr/bin/python3 tests/table.py > docs/tests.md      (what `make test-table` does)

It collects the suite as pytest does (nothing runs) and, for each test that starts a
stage's server, asks stages.decide() what its @needs marker means on each stage: it runs,
it is an expected failure (a limitation that a later stage removes), or it does not apply.
The tests that start no server are listed apart. tests/test_docs.py checks that the
committed page is what this prints, so the table cannot drift from the suite.
"""

import io
import re
import sys
from collections import defaultdict
from contextlib import redirect_stdout
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

from stages import STAGES, decide  # noqa: E402

MARK = {"run": "✓", "xfail": "✗", "skip": "·"}

# What each file tests, in a few words; a file not named here is listed by its name alone.
FILES = {
    "test_echo.py": "The echo, and the command line",
    "test_http.py": "HTTP/1.1: requests, bodies, keep-alive, pipelining, malformed input, timeouts",
    "test_router.py": "Routes, path parameters, methods, the access log",
    "test_static.py": "Static files: types, validators, ranges, directories, the root's walls",
    "test_faults.py": "Faults: out of descriptors, resets, slow clients, signals",
    "test_threads.py": "Threads and the worker pool",
    "test_syscalls.py": "System calls per request",
    "test_site.py": "The tutorial's site, served and loaded in a browser",
}


class Collector:
    """A pytest plugin that keeps, for every test function, its file, its @needs
    capabilities, its other markers and its number of cases."""

    def __init__(self):
        self.tests = {}  # (file, name) -> dict

    def pytest_collection_finish(self, session):
        for item in session.items:
            key = (item.path.name, item.originalname)
            entry = self.tests.setdefault(key, {
                "needs": tuple(item.get_closest_marker("needs").args)
                if item.get_closest_marker("needs") else (),
                "per_stage": "stage" in item.fixturenames,
                "exercise": item.get_closest_marker("exercise"),
                "repository": item.get_closest_marker("repository") is not None,
                "cases": set(),
            })
            case = re.sub(r"stage\d-?|-?stage\d", "", item.name[len(item.originalname):])
            entry["cases"].add(case)


def collect():
    collector = Collector()
    output = io.StringIO()
    with redirect_stdout(output):
        status = pytest.main(
            [str(TESTS), "--collect-only", "-q", "--docs", "-p", "no:cacheprovider",
             "--rootdir", str(TESTS)],
            plugins=[collector],
        )
    if status != 0:
        sys.exit(f"tests/table.py: collecting the suite failed:\n{output.getvalue()}")
    return collector.tests


def row(name, info):
    cases = len(info["cases"])
    label = f"`{name}`" + (f" ({cases} cases)" if cases > 1 else "")
    if info["repository"]:
        label += " †"
    return label


def render(tests):
    out = []
    w = out.append
    w("# Which test runs where")
    w("")
    w("<!-- Written by tests/table.py (`make test-table`); tests/test_docs.py checks it. -->")
    w("")
    w("Every test of the suite that starts a server, against the six stages. A test says")
    w("which capabilities it needs (`@pytest.mark.needs`), and")
    w("[`tests/stages.py`](../tests/stages.py) says which each stage has; from the two,")
    w("a test on a stage")
    w("")
    w("- ✓ **runs**, and must pass;")
    w("- ✗ is an **expected failure**: it shows a limitation of the stage that the next")
    w("  one removes, and the suite fails if it ever passes there;")
    w("- · **does not apply** (stage 3 has no echo), and is skipped.")
    w("")
    w("`make test STAGE=N` runs column N, and `make test STAGE=N SERVER=path/to/server` runs")
    w("it against a server of your own (chapter 0 says how). † marks the few tests that also")
    w("need this repository's own files, skipped with `SERVER=`. A test with several cases")
    w("(parameters) counts once here.")
    w("")

    per_stage = {k: v for k, v in tests.items() if v["per_stage"] and not v["exercise"]}
    numbers = sorted(STAGES)
    w("| | " + " | ".join(f"stage {n}" for n in numbers) + " |")
    w("|---|" + "---:|" * len(numbers))
    for outcome, label in [("run", "✓ runs"), ("xfail", "✗ expected failure"),
                           ("skip", "· does not apply")]:
        cells = [sum(1 for v in per_stage.values()
                     if decide(STAGES[n], v["needs"])[0] == outcome) for n in numbers]
        w(f"| {label} | " + " | ".join(str(c) for c in cells) + " |")
    w("")
    w("The limitations, one a stage but the last:")
    w("")
    for n in numbers:
        for capability, reason in STAGES[n].limitations.items():
            shown = sorted(f"`{name}`" for (_, name), v in per_stage.items()
                           if decide(STAGES[n], v["needs"])[0] == "xfail")
            w(f"- stage {n} ({capability}): {reason.split(': ')[0]}; "
              f"{', '.join(shown)}.")
    w("")

    by_file = defaultdict(list)
    for (file, name), info in per_stage.items():
        by_file[file].append((name, info))
    order = list(FILES) + sorted(set(by_file) - set(FILES))
    for file in order:
        if file not in by_file:
            continue
        w(f"## {FILES.get(file, file)}")
        w("")
        w(f"[`tests/{file}`](../tests/{file}), grouped by the capabilities the tests need.")
        w("")
        w("| test | needs | " + " | ".join(str(n) for n in numbers) + " |")
        w("|---|---|" + ":-:|" * len(numbers))
        groups = defaultdict(list)
        for name, info in by_file[file]:
            groups[info["needs"]].append((name, info))
        for needs in sorted(groups, key=lambda n: (len(n), n)):
            for name, info in groups[needs]:
                marks = [MARK[decide(STAGES[n], needs)[0]] for n in numbers]
                w(f"| {row(name, info)} | {', '.join(needs) or '—'} | " + " | ".join(marks) + " |")
        w("")

    exercises = sorted(((v["exercise"].args[0], f, n) for (f, n), v in tests.items()
                        if v["exercise"]), key=lambda e: [int(p) for p in e[0].split(".")])
    if exercises:
        w("## The exercises' checks")
        w("")
        w("Opt-in: skipped by `make test`, run on their chapter's stage by `make check CH=N`,")
        w("and passing once the exercise is done.")
        w("")
        w("| exercise | test |")
        w("|---|---|")
        for number, file, name in exercises:
            w(f"| {number} | `{name}` in [`tests/{file}`](../tests/{file}) |")
        w("")

    once = defaultdict(list)
    for (file, name), info in tests.items():
        if not info["per_stage"]:
            once[file].append(name)
    w("## Tests that start no server")
    w("")
    w("These check this repository's own code and documents, once, whatever `--stage` says,")
    w("and are skipped with `SERVER=`. `make test` runs all of them but the tutorial's")
    w("checks, which `make check-docs` runs.")
    w("")
    w("| file | tests |")
    w("|---|---|")
    for file in sorted(once):
        w(f"| [`tests/{file}`](../tests/{file}) | {', '.join(f'`{n}`' for n in sorted(once[file]))} |")
    w("")
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render(collect()))
