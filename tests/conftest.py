"""Fixtures that build each stage, start its server and stop it again.

    pytest tests                  every stage directory present (stage1-echo, ...)
    pytest tests --stage 2        only stage 2; also --stage 1,2 or --stage 1 --stage 2
    pytest tests --stage 3 --server PATH
                                  stage 3's black-box tests against the executable PATH,
                                  any server that keeps the command line of README.md
                                  (a learner's own); nothing is built, and the tests
                                  that need this repository's sources are skipped,
                                  saying so
    pytest tests --docs           also the tutorial's checks, tests/test_docs.py (`make
                                  check-docs`); without it they are not collected, so
                                  that a stage edited for an exercise meets only the
                                  behavioural tests
    pytest tests --stage 3 --exercise 3 -m exercise
                                  the opt-in checks of chapter 3's exercises (`make
                                  check CH=3`); without --exercise they are skipped

A test that uses the `stage` fixture, directly or through `server`,
`start_server`, `run_cli` or `server_binary`, runs once per selected stage (ids like
[stage2]).  Whether it runs, is skipped or is an expected failure on a
stage depends on its @pytest.mark.needs(...) marker and on the table in
stages.py.  Tests that use none of these fixtures run once, as usual.

Environment:
    SERVER_WRAPPER  prepended to the server's command line, for example
                    "valgrind --error-exitcode=99 -q" (what `make memcheck` uses)
    SANITIZE        read by the stages' Makefiles: 1 builds with ASan and UBSan,
                    thread with TSan; `make SANITIZE=1 test` sets it
    TIMEOUT_SCALE   multiplies every timeout (default: 3 with a wrapper or
                    sanitizers, else 1)

The build runs `make -C stageN-name` with the environment of pytest
itself, so `make SANITIZE=1 test` reaches it.

Markers besides @needs (pytest.ini): @repository("what") on a test that starts a server
but also needs this repository's own files or build, skipped under --server;
@exercise("3.2") on the check of a chapter's exercise, run only with --exercise 3 and on
that chapter's stage.

Under a wrapper or sanitizers (client.INSTRUMENTATION):
  * a server whose tool reported errors fails the test with the tool's report:
    valgrind's, recognised by its --error-exitcode, or a sanitizer's, recognised
    in the server's stderr, whatever the exit status;
  * a test marked @pytest.mark.uninstrumented("what it measures") is skipped:
    it measures the server process itself (its memory, its system calls, its
    speed), which the tool changes;
  * a test that starts no server of a stage is skipped: the tool is not involved,
    and the plain run covers it.
"""

import errno
import os
import re
import resource
import select
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

import seccomp
from client import INSTRUMENTATION, scaled
from stages import KNOWN_CAPABILITIES, STAGES, Stage, decide, with_server_args

REPO = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = scaled(10.0)  # for the listening line; 30 s under a SERVER_WRAPPER
EXIT_TIMEOUT = scaled(10.0)  # after SIGTERM
SELECTED_STAGES = pytest.StashKey[list]()
OWN_SERVER = pytest.StashKey[Path]()  # --server: the executable under test, or None

# `make test STAGE=1 ARGS=...` hands its command-line variables to every make the suite
# starts, through MAKEFLAGS ("s -- ARGS=... STAGE=1"), and there they override the
# Makefiles' own variables of the same name: tests/fuzz/Makefile's STAGE became "1". The
# suite's builds take nothing from the top-level make but SANITIZE, which reaches them as
# an ordinary environment variable; keep make's flags (-s, -j and its jobserver), drop the
# variables after "--".
if "MAKEFLAGS" in os.environ:
    os.environ["MAKEFLAGS"] = re.split(r"(?:^| )-- ", os.environ["MAKEFLAGS"], maxsplit=1)[0]
os.environ.pop("MAKEOVERRIDES", None)


# --- Choosing stages ----------------------------------------------------------


def pytest_addoption(parser):
    parser.addoption(
        "--stage",
        action="append",
        default=[],
        metavar="N[,N...]",
        help="test only these stages (repeatable); default: every stage directory present",
    )
    parser.addoption(
        "--server-args",
        default="",
        metavar="ARGS",
        help="extra arguments for every server started, after the stage's defaults, "
        "e.g. --server-args='--threads 1'",
    )
    parser.addoption(
        "--server",
        metavar="PATH",
        help="test this executable instead of building the stage's (needs one --stage: "
        "whose tests to run); e.g. a server of your own",
    )
    parser.addoption(
        "--docs",
        action="store_true",
        help="also run the tutorial's checks, tests/test_docs.py (`make check-docs`)",
    )
    parser.addoption(
        "--exercise",
        action="append",
        default=[],
        metavar="CH",
        help="run the checks of chapter CH's exercises (`make check CH=3`); "
        "they are skipped otherwise",
    )


def pytest_configure(config):
    config.stash[SELECTED_STAGES] = select_stages(config.getoption("stage"))
    config.stash[OWN_SERVER] = own_server(config.getoption("server"),
                                          config.stash[SELECTED_STAGES])


def own_server(value, stages):
    """The --server executable as an absolute path (None without the option); it must
    exist and be executable, and exactly one stage must say whose tests to run."""
    if value is None:
        return None
    if len(stages) != 1:
        raise pytest.UsageError(
            f"--server {value}: say which stage's tests to run with one --stage N "
            f"(`make test STAGE=3 SERVER={value}`)")
    path = Path(value).expanduser().resolve()
    if not path.is_file() or not os.access(path, os.X_OK):
        raise pytest.UsageError(f"--server {value}: {path} is not an executable file")
    return path


def pytest_report_header(config):
    path = config.stash[OWN_SERVER]
    if path:
        stage = config.stash[SELECTED_STAGES][0]
        return (f"server under test: {path} (stage {stage.number}'s tests: "
                f"{', '.join(sorted(stage.capabilities))})")
    return None


def pytest_ignore_collect(collection_path, config):
    """tests/test_docs.py only with --docs: an exercise that edits a stage must not
    first fail the tutorial's snippet checks."""
    if collection_path.name == "test_docs.py" and not config.getoption("docs"):
        return True
    return None


def select_stages(values):
    """The Stage objects named by the --stage options, or all present ones."""
    if not values:
        # Every stage of the table whose directory is there (the top Makefile reads the
        # same table); another directory, such as a learner's stage3-mine, is no stage.
        return [stage for stage in STAGES.values()
                if (REPO / stage.directory / "Makefile").is_file()]
    numbers = set()
    for value in values:
        for part in value.split(","):
            if not part.strip().isdigit():
                raise pytest.UsageError(f"--stage {value}: expected numbers like 2 or 1,2")
            number = int(part)
            if number not in STAGES:
                raise pytest.UsageError(
                    f"--stage {number}: no such stage (stages.py knows {sorted(STAGES)})"
                )
            if not (REPO / STAGES[number].directory / "Makefile").is_file():
                raise pytest.UsageError(
                    f"--stage {number}: there is no {STAGES[number].directory}/Makefile"
                )
            numbers.add(number)
    return [STAGES[number] for number in sorted(numbers)]


def pytest_generate_tests(metafunc):
    if "stage" in metafunc.fixturenames:
        stages = metafunc.config.stash[SELECTED_STAGES]
        metafunc.parametrize(
            "stage", stages, ids=[s.name for s in stages], indirect=True, scope="session"
        )


def pytest_collection_modifyitems(config, items):
    """Apply the needs-marker rule: run, strict xfail or skip (see stages.py); then,
    under a wrapper or sanitizers, skip what they would not check or would distort;
    under --server, what needs this repository; and the exercises not asked for."""
    own = config.stash[OWN_SERVER]
    exercises = {part.strip() for value in config.getoption("exercise")
                 for part in value.split(",")}
    if exercises:
        # Asked for some chapters' checks: the other chapters' are not even listed.
        chosen, dropped = [], []
        for item in items:
            marker = item.get_closest_marker("exercise")
            other = marker and marker.args and marker.args[0].split(".")[0] not in exercises
            (dropped if other else chosen).append(item)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = chosen
    for item in items:
        if apply_exercise(item, exercises) or (own and skip_if_own_server(item)):
            continue
        uninstrumented = item.get_closest_marker("uninstrumented")
        if uninstrumented and len(uninstrumented.args) != 1:
            raise pytest.UsageError(
                f"{item.nodeid}: @uninstrumented takes one argument, what the test measures")
        if not apply_needs(item) and INSTRUMENTATION:
            skip_if_instrumented(item)


def apply_needs(item):
    """Mark the item as the stage table says; True if that skips it."""
    marker = item.get_closest_marker("needs")
    needs = marker.args if marker else ()
    unknown = set(needs) - KNOWN_CAPABILITIES
    if unknown:
        raise pytest.UsageError(
            f"{item.nodeid}: unknown capability {', '.join(sorted(unknown))}; "
            f"stages.py knows {', '.join(sorted(KNOWN_CAPABILITIES))}"
        )
    if "stage" not in item.fixturenames:
        if marker:
            raise pytest.UsageError(
                f"{item.nodeid}: @needs applies to tests that use a stage or server fixture"
            )
        return False
    stage = item.callspec.params["stage"]
    if not isinstance(stage, Stage):
        return True  # no stage selected: pytest skips the test ("empty parameter set")
    # Under --server-args='--io epoll', stage 6 has epoll's capabilities (stages.py).
    stage = with_server_args(stage, shlex.split(item.config.getoption("server_args")))
    outcome, reason = decide(stage, needs)
    if outcome == "xfail":
        item.add_marker(pytest.mark.xfail(reason=reason, strict=True))
    elif outcome == "skip":
        item.add_marker(pytest.mark.skip(reason=reason))
    return outcome == "skip"


def apply_exercise(item, chapters):
    """Skip an exercise's check unless its chapter was asked for, and on every stage but
    the chapter's own; True if that skips it."""
    marker = item.get_closest_marker("exercise")
    if not marker:
        return False
    if len(marker.args) != 1 or not re.fullmatch(r"\d\.\d+", marker.args[0]):
        raise pytest.UsageError(f"{item.nodeid}: @exercise takes one argument, like \"3.2\"")
    chapter = marker.args[0].split(".")[0]
    if chapter not in chapters:
        item.add_marker(pytest.mark.skip(
            reason=f"checks an exercise, opt-in: `make check CH={chapter}` runs them"))
        return True
    stage = item.callspec.params.get("stage") if hasattr(item, "callspec") else None
    if isinstance(stage, Stage) and str(stage.number) != chapter:
        item.add_marker(pytest.mark.skip(
            reason=f"checks an exercise of chapter {chapter}, on stage {chapter} only"))
        return True
    return False


def skip_if_own_server(item):
    """Under --server: skip the tests that need this repository's sources or build;
    True if that skips it."""
    if "stage" not in item.fixturenames:
        item.add_marker(pytest.mark.skip(
            reason="--server: starts no server; checks this repository's own code or docs"))
        return True
    marker = item.get_closest_marker("repository")
    if marker:
        item.add_marker(pytest.mark.skip(reason=f"--server: needs {marker.args[0]}"))
        return True
    return False


def skip_if_instrumented(item):
    """Under a wrapper or sanitizers: skip what they would not check or would distort."""
    if "stage" not in item.fixturenames:
        item.add_marker(pytest.mark.skip(
            reason=f"starts no stage's server, so {INSTRUMENTATION} checks nothing here "
                   f"(the plain run covers it)"))
        return
    marker = item.get_closest_marker("uninstrumented")
    if marker:
        item.add_marker(pytest.mark.skip(
            reason=f"measures {marker.args[0]}, which {INSTRUMENTATION} changes"))


def pytest_terminal_summary(terminalreporter):
    """One line per skip reason ("132 skipped: stage 2 has no http") rather than
    pytest's one line per test, which buries the xfails and failures."""
    counts = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        counts[reason] = counts.get(reason, 0) + 1
    if counts:
        terminalreporter.section("skipped, by reason", sep="-")
        for reason, count in sorted(counts.items()):
            terminalreporter.line(f"{count:5d} skipped: {reason}")


# --- Building -----------------------------------------------------------------

_builds = {}  # stage number -> built executable (a Path) or why the build failed


def build(stage):
    """Run make once per session for a stage and return the executable's path,
    relative to the repository root.  The subprocess inherits our environment."""
    if stage.number not in _builds:
        command = ["make", "-C", stage.directory]
        result = subprocess.run(
            command, cwd=REPO, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
        )
        executable = Path(stage.directory, "server")
        if result.returncode != 0:
            _builds[stage.number] = (
                f"{shlex.join(command)} failed with exit status {result.returncode}:\n"
                f"{result.stdout}"
            )
        elif not (REPO / executable).is_file():
            _builds[stage.number] = f"{shlex.join(command)} did not produce {executable}"
        else:
            _builds[stage.number] = executable
    built = _builds[stage.number]
    if isinstance(built, str):
        pytest.fail(built, pytrace=False)
    return built


# --- Running a server ---------------------------------------------------------


def describe_status(status):
    if status < 0:
        return f"signal {-status} ({signal.Signals(-status).name})"
    return f"exit status {status}"


# --- Reports of valgrind and the sanitizers --------------------------------------

WRAPPER = shlex.split(os.environ.get("SERVER_WRAPPER", ""))
# The exit status by which the wrapper says it found errors (valgrind's --error-exitcode).
WRAPPER_ERROR_STATUS = next(
    (int(arg.split("=", 1)[1]) for arg in WRAPPER if arg.startswith("--error-exitcode=")), None
)
# The first line of a report: valgrind prefixes each of its lines with ==PID==, as ASan and
# LeakSanitizer do their ERROR lines; then TSan's warnings and UBSan's one-line errors.
REPORT_START = re.compile(r"^==\d+==|^WARNING: ThreadSanitizer:|^\S+: runtime error: ", re.M)
SANITIZER_ERROR = re.compile(
    r"^==\d+==ERROR: \w+Sanitizer|^WARNING: ThreadSanitizer:|^\S+: runtime error: ", re.M
)
REPORT_LIMIT = 12000
# UBSan prints one line per error unless asked for the stack too.
os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")


def tool_report(text):
    """Valgrind's or a sanitizer's output in a server's stderr, from its first line
    (the first error is the one to fix), or None if there is none."""
    match = REPORT_START.search(text)
    if not match:
        return None
    report = text[match.start():]
    if len(report) > REPORT_LIMIT:
        report = report[:REPORT_LIMIT] + f"\n[... {len(report) - REPORT_LIMIT} characters more ...]"
    return report


def tool_failure(status, stderr):
    """Why the server failed the wrapper's or a sanitizer's checks, or None.

    Valgrind says so with its --error-exitcode.  A sanitizer's report fails the test
    whatever the exit status: an UBSan error built to recover would not change it."""
    if WRAPPER_ERROR_STATUS is not None and status == WRAPPER_ERROR_STATUS:
        return (f"{os.path.basename(WRAPPER[0])} found errors (exit status {status}, "
                f"its --error-exitcode)")
    if SANITIZER_ERROR.search(stderr):
        return f"a sanitizer found errors ({describe_status(status)})"
    return None


class Server:
    """A server process, started with --port 0 and stopped by the fixture.

    Attributes: port, pid, command_line (how to start the same server by
    hand on the same port, for replaying a failure), listening_line.
    """

    def __init__(self, binary, args, stderr_path, nofile=None, refuse=(),
                 refuse_errno=errno.ENOSYS):
        self.command = server_command(binary, "--port", "0", *args)
        self.stderr_path = stderr_path
        self.signalled = False  # the test sent a signal itself
        self.stopped = False
        self.nofile = nofile
        self.refusal = seccomp.refusal(refuse, refuse_errno) if refuse else None
        with open(stderr_path, "wb") as stderr:  # a file: a pipe could fill up
            self.process = subprocess.Popen(
                self.command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=stderr, preexec_fn=self._prepare if nofile or refuse else None,
            )
        self.pid = self.process.pid
        self.listening_line, self.extra_stdout = self._read_listening_line()
        match = re.fullmatch(r"listening on (\S+):(\d+)", self.listening_line)
        if not match:
            self._abort(f"expected 'listening on HOST:PORT', got {self.listening_line!r}")
        self.host, self.port = match[1], int(match[2])
        self.command_line = shlex.join([str(binary), "--port", str(self.port), *args])

    def _prepare(self):
        """In the child, before exec: the descriptor limit and the refused system calls
        the test asked for."""
        if self.nofile:
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, hard))
        if self.refusal:
            self.refusal()

    def cpu_seconds(self):
        """User plus system CPU time the server has used so far, from /proc/PID/stat."""
        with open(f"/proc/{self.pid}/stat") as stat:
            # The command name, field 2, is in parentheses and may hold spaces.
            fields = stat.read().rsplit(")", 1)[1].split()
        utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
        return (utime + stime) / os.sysconf("SC_CLK_TCK")

    def _read_listening_line(self):
        """Wait for the first line on stdout; fail clearly if none comes."""
        fd = self.process.stdout.fileno()
        output = b""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while b"\n" not in output:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._abort(f"no listening line within {STARTUP_TIMEOUT:g} s "
                            f"(stdout so far: {output!r})")
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                self._abort(f"stdout closed before a listening line (stdout: {output!r})")
            output += chunk
        line, rest = output.split(b"\n", 1)
        return line.decode(errors="replace"), rest

    def _abort(self, problem):
        if self.process.poll() is None:
            self.process.kill()
        status = self.process.wait()
        ended = tool_failure(status, self.stderr_text()) or f"ended with {describe_status(status)}"
        pytest.fail(
            f"{shlex.join(self.command)}: {problem}; server {ended}\nstderr:\n{self.stderr_tail()}",
            pytrace=False,
        )

    def stderr_text(self):
        return self.stderr_path.read_bytes().decode(errors="replace")

    def stderr_tail(self, limit=4000):
        """The end of the server's stderr; or, if valgrind or a sanitizer wrote a
        report there, the report from its first line."""
        text = self.stderr_text()
        report = tool_report(text)
        if report:
            return report
        if len(text) > limit:
            text = f"[... {len(text) - limit} characters before ...]\n" + text[-limit:]
        return text or "(empty)"

    def exit_report(self, wait=0.0):
        """None while the server runs; else how it exited and its stderr."""
        try:
            status = self.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return None
        return f"server exited with {describe_status(status)}; stderr:\n{self.stderr_tail()}"

    def send_signal(self, signum):
        self.signalled = True
        self.process.send_signal(signum)

    def wait_for_exit(self, timeout):
        """The exit status, once the server has exited by itself; an error if
        valgrind or a sanitizer found errors."""
        try:
            status = self.process.wait(timeout=scaled(timeout))
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"server still running {scaled(timeout):g} s later; stderr:\n{self.stderr_tail()}"
            ) from None
        failure = tool_failure(status, self.stderr_text())
        if failure:
            raise AssertionError(f"{failure}; stderr:\n{self.stderr_tail()}")
        return status

    def rss_kib(self):
        """Resident memory of the server process, from /proc/PID/status."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError(f"no VmRSS in /proc/{self.pid}/status")

    def data_kib(self):
        """Private writable memory the server has mapped (VmData, from /proc/PID/status):
        what it has allocated, touched yet or not, and what a kernel that does not
        overcommit charges it for."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1])
        raise AssertionError(f"no VmData in /proc/{self.pid}/status")

    def stop(self):
        """SIGTERM, then expect exit status 0.  Returns what went wrong, or None."""
        if self.stopped:
            return None
        self.stopped = True
        died_during_test = self.process.poll() is not None and not self.signalled
        if self.process.poll() is None:
            self.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            status = None
        self.extra_stdout += self.process.stdout.read()
        self.process.stdout.close()
        failure = None if status is None else tool_failure(status, self.stderr_text())
        if failure:
            problem = f"server died during the test: {failure}" if died_during_test else failure
        elif died_during_test:
            problem = f"server died during the test with {describe_status(status)}"
        elif status is None:
            problem = (
                f"server did not exit within {EXIT_TIMEOUT:g} s of SIGTERM, killed it (an echo "
                f"server waits until its clients hang up: did a test leave a connection open?)"
            )
        elif status != 0:
            problem = f"server exited with {describe_status(status)} after SIGTERM, expected 0"
        else:
            return None
        return f"{problem}; stderr:\n{self.stderr_tail()}"


def server_command(binary, *args):
    return [*WRAPPER, str(binary), *args]


# --- Fixtures -----------------------------------------------------------------


@pytest.fixture(scope="session")
def stage(request):
    """The stage under test, a stages.Stage; set by pytest_generate_tests."""
    return request.param


@pytest.fixture(scope="session")
def server_binary(stage, request):
    """The stage's executable, built with `make -C stageN-name` once per session;
    if make fails, every test of the stage fails with make's output. Under --server,
    that executable, as it is."""
    return request.config.stash[OWN_SERVER] or build(stage)


@pytest.fixture
def start_server(stage, server_binary, tmp_path, request):
    """start_server(*args, nofile=None, refuse=(), refuse_errno=ENOSYS, binary=None) starts
    the stage's server (or the executable `binary`) and returns a Server.

    The command is `server --port 0`, the stage's default arguments, then
    `args`; `nofile` sets its descriptor limit (RLIMIT_NOFILE, soft), and the
    system calls named in `refuse` fail with ENOSYS in it, or with `refuse_errno`
    (seccomp.py).  At the end of the test every server started is sent SIGTERM
    and must exit with status 0; a server that died during the test fails it.
    """
    servers = []

    def start(*args, nofile=None, refuse=(), refuse_errno=errno.ENOSYS, binary=None):
        stderr_path = tmp_path / f"server{len(servers) + 1}-stderr.txt"
        extra = shlex.split(request.config.getoption("server_args"))
        if refuse and (reason := seccomp.unsupported_reason(refuse)):
            pytest.skip(reason)
        servers.append(Server(binary or server_binary, [*stage.default_args, *extra, *args],
                              stderr_path, nofile=nofile, refuse=refuse,
                              refuse_errno=refuse_errno))
        return servers[-1]

    yield start
    problems = [problem for problem in (s.stop() for s in servers) if problem]
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def server(start_server):
    """The stage's server with its default arguments, running on a free port."""
    return start_server()


@pytest.fixture
def run_cli(server_binary):
    """run_cli(*args, refuse=(), refuse_errno=ENOSYS) runs the server with exactly
    `args` until it exits, with the system calls in `refuse` failing as in start_server.

    For checking the command line (--help, bad flags): returns the
    subprocess.CompletedProcess, with stdout and stderr as text.
    """
    def run(*args, refuse=(), refuse_errno=errno.ENOSYS):
        command = server_command(server_binary, *args)
        if refuse and (reason := seccomp.unsupported_reason(refuse)):
            pytest.skip(reason)
        try:
            result = subprocess.run(
                command, cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True,
                text=True, errors="replace", timeout=EXIT_TIMEOUT,
                preexec_fn=seccomp.refusal(refuse, refuse_errno) if refuse else None,
            )
        except subprocess.TimeoutExpired as timeout:
            pytest.fail(
                f"{shlex.join(command)} still running after {EXIT_TIMEOUT:g} s "
                f"(did it start serving?); stdout: {timeout.stdout!r}", pytrace=False,
            )
        failure = tool_failure(result.returncode, result.stderr)
        if failure:
            pytest.fail(f"{shlex.join(command)}: {failure}; stderr:\n"
                        f"{tool_report(result.stderr) or result.stderr}", pytrace=False)
        return result

    return run
