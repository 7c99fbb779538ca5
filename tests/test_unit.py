"""The C unit tests (tests/unit), run from pytest: the shared HTTP parser's and
stage 4's router's; and the fuzz targets (tests/fuzz) over their seeds.

Builds them with make and runs each binary: the parser twice (with SSE2, and
with the portable byte loops), the router once. A binary fails the test with
its failing cases. The fuzz targets are built with clang and run once over
each seed, without fuzzing (`make -C tests/fuzz check`): proof that they build
and that the seeds, which include every bug found so far, still pass. These
tests need no server, so they run once, whatever --stage says.
"""

import pathlib
import subprocess

import pytest

UNIT_DIR = pathlib.Path(__file__).resolve().parent / "unit"
FUZZ_DIR = pathlib.Path(__file__).resolve().parent / "fuzz"
BINARIES = ["http_parse_test", "http_parse_test_scalar", "router_test"]


@pytest.fixture(scope="module")
def built():
    build = subprocess.run(["make", "-C", str(UNIT_DIR)] + BINARIES, capture_output=True, text=True)
    assert build.returncode == 0, "make failed:\n" + build.stdout + build.stderr


@pytest.mark.parametrize("binary", BINARIES)
def test_unit_tests_pass(built, binary):
    run = subprocess.run([str(UNIT_DIR / binary)], capture_output=True, text=True, timeout=300)
    lines = run.stdout.splitlines()
    failures = [line for line in lines if line.startswith("FAIL ")]
    summary = lines[-1] if lines else "(no output)"
    assert run.returncode == 0 and not failures, (
        f"{binary}: {summary}\n" + "\n".join(failures) + "\n" + run.stderr
    )


def test_fuzz_targets_pass_their_seeds():
    check = subprocess.run(
        ["make", "-C", str(FUZZ_DIR), "check"], capture_output=True, text=True, timeout=600
    )
    assert check.returncode == 0, "make -C tests/fuzz check:\n" + check.stdout + check.stderr
