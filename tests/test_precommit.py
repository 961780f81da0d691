"""The pre-commit hooks, through the real pre-commit tool, and the diff preview as a patch git accepts."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
RAW_LOOP = (ROOT / "tests" / "fixtures" / "flat_script" / "input.py").read_text()


def git(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    git(folder, "init", "-q")
    (folder / "train.py").write_text(RAW_LOOP)
    git(folder, "add", "train.py")
    git(folder, "commit", "-qm", "a raw training loop")
    return folder


def test_convert_diff_is_a_patch_git_applies(project: Path) -> None:
    diff = subprocess.run(
        [sys.executable, "-m", "loopshift", "convert", "--diff", "train.py"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert diff.returncode == 1 and diff.stdout.startswith("--- a/train.py")
    assert "\033[" not in diff.stdout  # no colours when piped
    subprocess.run(["git", "apply", "--check", "-"], input=diff.stdout, cwd=project, text=True, check=True)
    subprocess.run(["git", "apply", "-"], input=diff.stdout, cwd=project, text=True, check=True)
    assert (project / "train.py").read_text() == (
        ROOT / "tests" / "fixtures" / "flat_script" / "expected.py"
    ).read_text()


@pytest.mark.slow
@pytest.mark.parametrize(
    "hook, expected",
    [
        ("loopshift-lint", "LS101"),
        ("loopshift-convert-diff", "+class LitModel(L.LightningModule):"),
    ],
)
def test_hook_runs_through_pre_commit(project: Path, tmp_path: Path, hook: str, expected: str) -> None:
    pytest.importorskip("pre_commit")
    environment = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    run = subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), hook, "--all-files"],
        cwd=project,
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
    )
    assert run.returncode == 1, run.stdout + run.stderr  # the hook found the raw loop
    assert expected in run.stdout
    assert (project / "train.py").read_text() == RAW_LOOP  # hooks never write


def test_convert_diff_hook_passes_once_in_place_wrote_the_todos(project: Path) -> None:
    """A loop convert cannot convert: --diff shows the TODO comment it would add; --in-place adds it,
    and from then on the hook passes, silently."""
    (project / "lbfgs.py").write_text(
        (ROOT / "tests" / "fixtures" / "lbfgs_code_after_step" / "input.py").read_text()
    )
    (project / "model.py").write_text(
        (ROOT / "tests" / "fixtures" / "no_loop_model_only" / "input.py").read_text()
    )

    def loopshift(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "loopshift", "convert", *args, "lbfgs.py", "model.py"],
            cwd=project,
            capture_output=True,
            text=True,
        )

    assert loopshift("--diff").returncode == 1
    in_place = loopshift("--in-place")
    assert in_place.returncode == 1 and "lbfgs.py:13:1: LS002" in in_place.stdout
    again = loopshift("--diff")
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
