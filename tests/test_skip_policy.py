"""The suite's skip policy (tests/conftest.py): a skipped browser or SLURM test fails in CI, not elsewhere."""

import os
import subprocess

import pytest

from helpers import PYTHON, ROOT, run_env

CASES = '''
import pytest

@pytest.mark.browser
def test_service():
    pytest.skip("no chromium")

def test_plain():
    pytest.skip("not here")

@pytest.fixture
def cluster():
    pytest.skip("no cluster")

@pytest.mark.slurm
def test_in_a_cluster(cluster):
    pass
'''


def outcome(tmp_path, **env):
    """pytest on CASES with the suite's conftest as a plugin: (exit code, output)."""
    (tmp_path / "test_cases.py").write_text(CASES)
    environment = {k: v for k, v in run_env().items() if k not in ("CI", "OPTIMBENCH_STRICT_SKIPS")}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "tests"), environment.get("PYTHONPATH")]))
    environment.update(env)
    result = subprocess.run([PYTHON, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-rA", "-q",
                             "-W", "ignore::pytest.PytestUnknownMarkWarning", "--rootdir", str(tmp_path),
                             str(tmp_path / "test_cases.py")],
                            cwd=tmp_path, env=environment, capture_output=True, text=True)
    return result.returncode, result.stdout


@pytest.mark.parametrize("env", [{"CI": "true"}, {"OPTIMBENCH_STRICT_SKIPS": "1"}], ids=["CI", "strict"])
def test_in_ci_a_skipped_service_test_fails_and_a_plain_skip_stays_a_skip(tmp_path, env):
    code, out = outcome(tmp_path, **env)
    assert code == 1, out
    assert "1 failed, 1 skipped, 1 error" in out, out  # the fixture's skip fails the slurm test's setup
    assert "a browser test skipped in CI" in out and "no chromium" in out and "no cluster" in out


def test_outside_ci_skips_are_skips(tmp_path):
    code, out = outcome(tmp_path)
    assert code == 0 and "3 skipped" in out, out
