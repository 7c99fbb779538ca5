"""The HTTP parser's C unit tests (tests/unit), run from pytest.

Builds them with make, runs both builds (with SSE2, and with the portable byte loops), and fails
with the failing cases if any. Needs nothing from conftest.py.
"""

import pathlib
import subprocess

UNIT_DIR = pathlib.Path(__file__).resolve().parent / "unit"
BINARIES = ["http_parse_test", "http_parse_test_scalar"]


def test_http_parse_unit_tests():
    build = subprocess.run(
        ["make", "-C", str(UNIT_DIR)] + BINARIES, capture_output=True, text=True
    )
    assert build.returncode == 0, "make failed:\n" + build.stdout + build.stderr

    for binary in BINARIES:
        run = subprocess.run(
            [str(UNIT_DIR / binary)], capture_output=True, text=True, timeout=300
        )
        lines = run.stdout.splitlines()
        failures = [line for line in lines if line.startswith("FAIL ")]
        summary = lines[-1] if lines else "(no output)"
        assert run.returncode == 0 and not failures, (
            f"{binary}: {summary}\n" + "\n".join(failures) + "\n" + run.stderr
        )
