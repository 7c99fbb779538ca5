"""The suite against a server of your own: `make test STAGE=3 SERVER=path/to/server`.

Runs the suite itself, in a second pytest, against executables outside the repository:
a copy of stage 3's server passes stage 3's tests as the stage does; a server that
keeps the command line but answers wrongly fails, and the failure says how to replay
it by hand. Also: a directory of your own beside the stages (stage3-mine) is not taken
for one, by the suite or by the top Makefile.

These start no server of a stage themselves, so they run once, whatever --stage says.
"""

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"

# A sample of stage 3's tests: plain requests, a parametrised one, a limitation (an
# expected failure), and tests that need the repository's sources (skipped).
SAMPLE = "get_says_hello or pipelined or unknown_path or limits_match or unit_tests"

# A server that keeps the command line and the listening line, and answers every request
# with the same wrong body.
WRONG_SERVER = textwrap.dedent("""\
    #!/usr/bin/python3
    import signal, socket, sys
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    host, port = args.get("--host", "127.0.0.1"), int(args.get("--port", "8080"))
    listener = socket.create_server((host, port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"listening on {host}:{listener.getsockname()[1]}", flush=True)
    while True:
        client, _ = listener.accept()
        client.recv(65536)
        client.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 8\\r\\n\\r\\nGood-bye")
        client.close()
    """)


def suite(*args, cwd=REPO):
    """Run the test suite in another pytest; the CompletedProcess, output as text."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(TESTS), *args],
        cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
        timeout=300,
    )


def counts(output):
    """{"passed": 3, "xfailed": 1, ...} from pytest's last line."""
    last = output.strip().splitlines()[-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", last)}


@pytest.fixture(scope="module")
def stage3_copy(tmp_path_factory):
    """Stage 3's server, built here and copied to a directory of its own."""
    build = subprocess.run(["make", "-C", str(REPO / "stage3-http")], capture_output=True,
                           text=True)
    assert build.returncode == 0, f"make -C stage3-http failed:\n{build.stdout}{build.stderr}"
    copy = tmp_path_factory.mktemp("mine") / "server"
    shutil.copy2(REPO / "stage3-http" / "server", copy)
    return copy


def test_a_copy_of_stage_3_passes_stage_3s_tests(stage3_copy):
    run = suite("--stage", "3", "--server", str(stage3_copy), "-k", SAMPLE)
    found = counts(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr
    assert found.get("passed", 0) >= 3 and found.get("xfailed") == 1, run.stdout
    assert f"server under test: {stage3_copy}" in run.stdout, run.stdout
    assert "skipped: --server: starts no server" in run.stdout, run.stdout


def test_a_wrong_server_fails_with_a_replayable_request(tmp_path):
    server = tmp_path / "wrong-server"
    server.write_text(WRONG_SERVER)
    server.chmod(0o755)
    run = suite("--stage", "3", "--server", str(server), "-k", "get_says_hello")
    assert run.returncode == 1, run.stdout + run.stderr
    assert counts(run.stdout).get("failed", 0) >= 1, run.stdout
    assert re.search(rf"replay: start `{re.escape(str(server))} --port \d+`", run.stdout), run.stdout
    assert "printf 'GET /plaintext HTTP/1.1" in run.stdout, run.stdout


@pytest.mark.parametrize("args, problem", [
    (["--server", "/bin/true"], "with one --stage N"),
    (["--stage", "3,4", "--server", "/bin/true"], "with one --stage N"),
    (["--stage", "3", "--server", "/nonexistent/server"], "is not an executable file"),
])
def test_server_option_mistakes_are_usage_errors(args, problem):
    run = suite(*args, "--collect-only", "-q")
    assert run.returncode == 4 and problem in run.stderr, run.stdout + run.stderr


def test_a_directory_of_your_own_is_no_stage(tmp_path):
    """stage3-mine/ beside the stages: make diff, run and test still find stage 3, and
    make diff takes the directory by its name."""
    for entry in REPO.iterdir():
        # docs/ and tools/ too: `make deps` asks docs/Makefile for the site's
        # search tool, and make diff runs tools/stage-diff.
        if entry.name.startswith("stage") or entry.name in ("Makefile", "docs", "tools"):
            (tmp_path / entry.name).symlink_to(entry)
    # The suite's files are copied, so that the copy's conftest looks for stages here.
    (tmp_path / "tests").mkdir()
    for path in [*TESTS.glob("*.py"), TESTS / "pytest.ini"]:
        shutil.copy2(path, tmp_path / "tests" / path.name)
    mine = tmp_path / "stage3-mine"
    mine.mkdir()
    (mine / "Makefile").write_text("server:\n\ttrue\n")
    (mine / "http.c").write_text("/* mine */\n")

    def make(*args):
        return subprocess.run(["make", "-s", "--no-print-directory", *args], cwd=tmp_path,
                              capture_output=True, text=True)

    # What make run would build and start (make -n would still run its sub-makes).
    run = make("--eval", "show: ; @echo $(RUN_STAGE) $(STAGES)", "show", "STAGE=3")
    assert run.stdout.split() == ["stage3-http", "stage1-echo", "stage2-nonblocking", "stage3-http",
                                  "stage4-router", "stage5-threads", "stage6-uring"], run.stderr
    run = make("-n", "test", "STAGE=3", "SERVER=stage3-mine/server")
    assert "--stage 3 --server stage3-mine/server" in run.stdout, run.stdout + run.stderr
    run = make("diff", "A=3", "B=stage3-mine")
    assert run.returncode == 0 and "+++ stage3-mine/http.c" in run.stdout, run.stdout + run.stderr
    run = make("diff", "A=2", "B=3")
    assert run.returncode == 0 and "+++ stage3-http/http.c" in run.stdout, run.stderr
    assert "stage3-mine" not in run.stdout

    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests", "--collect-only",
         "-q", "-k", "small_round_trip"],
        cwd=tmp_path, capture_output=True, text=True)
    ids = re.findall(r"\[(stage\d)\]", collected.stdout)
    assert collected.returncode == 0 and ids == [f"stage{n}" for n in range(1, 7)], (
        collected.stdout + collected.stderr)
