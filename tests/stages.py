"""What each stage can do: the single table the test suite reads.

Every stage of the server lives in its own directory (stage1-echo, ...).
Tests do not mention stage numbers.  Instead each test declares the
capabilities it needs:

    @pytest.mark.needs("echo", "concurrent")
    def test_many_concurrent_clients(server): ...

and every stage below lists the capabilities it has.  For a given test and
stage, `decide()` picks one of three outcomes:

  run    the stage has every capability the test needs;
  xfail  the stage lacks some, but each missing one is a *limitation* of the
         stage that a later stage removes.  The test is expected to fail
         (strictly: if it passes, the suite fails, because then the table
         is wrong);
  skip   the test does not apply to this stage ("stage 3 has no echo").

Capabilities:
  cli         command line, listening line, exit statuses (every stage)
  echo        sends back every byte it receives
  concurrent  serves many clients at the same time
  event-loop  holds its clients in an event loop: --max-conns, 10,000 at once, and
              clients shed at once when out of descriptors
  protocol    answers requests: reads them out of the bytes that arrive, rather than
              sending those bytes back
  http        speaks HTTP/1.1
  not-found   tells paths apart: an unknown one gets 404
  router      dispatches requests to handlers by method and path
  static      serves files from --root
  offload     a slow handler does not hold up other clients
  threads     several event loops (--threads N)
  batched-io  many operations per system call: under 0.1 calls per pipelined request
  uring       uses io_uring for its I/O

Server arguments can take capabilities away: stage 6 run with `--io epoll` (say
`--server-args='--io epoll'`) waits with stage 5's epoll backend, so it has no
batched-io and no uring, and those tests are skipped (see `with_server_args()`).

A limitation is keyed by a capability that only the tests showing it need
(concurrent, protocol, not-found, offload, batched-io), so that the tests of a later
stage's other features are skipped on an earlier stage, not counted as its limitation.
"""

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Stage:
    number: int
    directory: str  # relative to the repository root
    capabilities: frozenset
    # Arguments the test suite always passes, after --port 0.
    default_args: tuple = ()
    # capability -> why this stage lacks it and which stage adds it.
    limitations: dict = field(default_factory=dict)
    # How the stage runs, if server arguments changed its capabilities: " under --io epoll".
    variant: str = ""

    @property
    def name(self):
        return f"stage{self.number}"


STAGES = {
    stage.number: stage
    for stage in [
        Stage(
            1,
            "stage1-echo",
            capabilities=frozenset({"cli", "echo"}),
            limitations={"concurrent": "one client at a time: stage 2 removes this"},
        ),
        Stage(
            2,
            "stage2-nonblocking",
            capabilities=frozenset({"cli", "echo", "concurrent", "event-loop"}),
            limitations={"protocol": "only echo, it sends a request's bytes back instead of "
                                     "answering: stage 3 removes this"},
        ),
        Stage(
            3,
            "stage3-http",
            capabilities=frozenset({"cli", "protocol", "http", "concurrent", "event-loop"}),
            limitations={"not-found": "every path gets the same answer: stage 4 removes this"},
        ),
        Stage(
            4,
            "stage4-router",
            capabilities=frozenset(
                {"cli", "protocol", "http", "concurrent", "event-loop", "not-found", "router",
                 "static"}
            ),
            limitations={"offload": "a slow handler blocks its event loop: stage 5 removes this"},
        ),
        Stage(
            5,
            "stage5-threads",
            capabilities=frozenset(
                {"cli", "protocol", "http", "concurrent", "event-loop", "not-found", "router",
                 "static", "offload", "threads"}
            ),
            limitations={"batched-io": "every read and write is a system call: stage 6 removes this"},
            default_args=("--threads", "2"),
        ),
        Stage(
            6,
            "stage6-uring",
            capabilities=frozenset(
                {"cli", "protocol", "http", "concurrent", "event-loop", "not-found", "router",
                 "static", "offload", "threads", "batched-io", "uring"}
            ),
            default_args=("--threads", "2"),
        ),
    ]
}

# Server arguments that take capabilities away: (argument, value) -> what they take.
ARGUMENT_TAKES = {
    ("--io", "epoll"): frozenset({"batched-io", "uring"}),  # stage 6 on its epoll backend
}


def with_server_args(stage, args):
    """The stage as it runs with `args` (a list, e.g. from --server-args): without the
    capabilities an argument there takes away, if it has them."""
    for (name, value), taken in ARGUMENT_TAKES.items():
        given = None
        for i, arg in enumerate(args):  # the last one counts, as with getopt
            if arg == name and i + 1 < len(args):
                given = args[i + 1]
            elif arg.startswith(name + "="):
                given = arg.split("=", 1)[1]
        if given == value and stage.capabilities & taken:
            stage = replace(stage, capabilities=stage.capabilities - taken,
                            variant=f"{stage.variant} under {name} {value}")
    return stage


KNOWN_CAPABILITIES = frozenset().union(*(s.capabilities for s in STAGES.values()))


def decide(stage, needs):
    """Return ("run", None), ("xfail", reason) or ("skip", reason)."""
    missing = [c for c in needs if c not in stage.capabilities]
    if not missing:
        return "run", None
    if all(c in stage.limitations for c in missing):
        reasons = "; ".join(stage.limitations[c] for c in missing)
        return "xfail", f"stage {stage.number}{stage.variant}: {reasons}"
    return "skip", f"stage {stage.number}{stage.variant} has no {', '.join(missing)}"


def _check_table():
    """Catch mistakes in the table above as soon as it is imported."""
    for number, stage in STAGES.items():
        assert stage.number == number
        assert stage.directory.startswith(f"stage{number}-"), stage.directory
        for capability in stage.limitations:
            assert capability not in stage.capabilities, (
                f"stage {number} lists {capability!r} both as a capability "
                f"and as a limitation"
            )
            assert any(
                capability in later.capabilities
                for later in STAGES.values()
                if later.number > number
            ), f"stage {number}: no later stage removes the {capability!r} limitation"


_check_table()
