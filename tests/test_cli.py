"""The command line contract: outputs, modes, exit codes and one-line errors on bad input."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from loopshift.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
FLAT = (FIXTURES / "flat_script" / "input.py").read_text()


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "train.py"
    path.write_text(FLAT)
    return path


def test_default_writes_beside_the_input_and_keeps_it(script: Path, capsys) -> None:
    assert main(["convert", str(script)]) == 0
    output = script.with_name("train_lightning.py")
    assert output.read_text() == (FIXTURES / "flat_script" / "expected.py").read_text()
    assert script.read_text() == FLAT
    assert str(output) in capsys.readouterr().err


def test_existing_output_needs_force(script: Path, capsys) -> None:
    output = script.with_name("train_lightning.py")
    output.write_text("keep me")
    assert main(["convert", str(script)]) == 2
    assert output.read_text() == "keep me"
    assert "--force" in capsys.readouterr().err
    assert main(["convert", "--force", str(script)]) == 0
    assert "LightningModule" in output.read_text()


def test_diff_and_stdout_write_nothing(script: Path, capsys) -> None:
    assert main(["convert", "--diff", str(script)]) == 1  # a change to show, as a check would report it
    diff = capsys.readouterr().out
    assert "+class LitModel(L.LightningModule):" in diff and "-for epoch in range(EPOCHS):" in diff
    assert main(["convert", "--stdout", str(script)]) == 0
    assert capsys.readouterr().out == (FIXTURES / "flat_script" / "expected.py").read_text()
    assert sorted(p.name for p in script.parent.iterdir()) == ["train.py"]


def test_in_place_keeps_permissions_and_line_endings(script: Path) -> None:
    script.write_bytes(FLAT.replace("\n", "\r\n").encode())
    script.chmod(0o640)
    assert main(["convert", "--in-place", str(script)]) == 0
    data = script.read_bytes()
    assert b"LightningModule" in data and b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    assert stat.S_IMODE(script.stat().st_mode) == 0o640


def test_output_option_and_target(script: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.py"
    assert main(["convert", str(script), "-o", str(output), "--target", "pytorch_lightning"]) == 0
    code = output.read_text()
    assert "import pytorch_lightning as pl" in code and "class LitModel(pl.LightningModule):" in code
    assert "import lightning" not in code


def test_no_loop_exits_one_and_writes_nothing(tmp_path: Path, capsys) -> None:
    path = tmp_path / "model.py"
    path.write_text((FIXTURES / "no_loop_model_only" / "input.py").read_text())
    assert main(["convert", str(path)]) == 1
    assert "no training loop found" in capsys.readouterr().err
    assert not path.with_name("model_lightning.py").exists()
    assert main(["convert", "--diff", str(path)]) == 0  # nothing to change: a clean pre-commit check
    assert capsys.readouterr().out == ""


def test_todo_exits_one(tmp_path: Path, capsys) -> None:
    path = tmp_path / "dry.py"
    # a `break` before the optimizer step has no exact Lightning equivalent
    path.write_text(
        (FIXTURES / "mnist_style_functions" / "input.py")
        .read_text()
        .replace(
            "        optimizer.zero_grad()",
            "        if args.dry_run:\n            break\n        optimizer.zero_grad()",
            1,
        )
    )
    assert main(["convert", "--stdout", str(path)]) == 1
    captured = capsys.readouterr()
    assert f"{path}:" in captured.err and "LS003" in captured.err and "# TODO(loopshift):" in captured.out


@pytest.mark.parametrize(
    "content, message",
    [
        (b"def broken(:\n    pass\n", ":1:12: error: syntax error"),
        (b"x = '\xff\xfe caf\xe9'\n", ":1: error: not valid utf-8 text"),
        (b"# coding: hex\nx = 1\n", ":1: error: not a text encoding: hex"),  # was an AttributeError
        (b"# -*- coding: rot13 -*-\nx = 1\n", ":1: error: not a text encoding: rot13"),
    ],
)
def test_bad_input_is_one_line_exit_two(tmp_path: Path, capsys, content: bytes, message: str) -> None:
    path = tmp_path / "bad.py"
    path.write_bytes(content)
    assert main(["convert", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(str(path)) and message in err and "\n" not in err
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.py"]


def test_missing_file_and_directory(tmp_path: Path, capsys) -> None:
    assert main(["convert", str(tmp_path / "nope.py")]) == 2
    assert capsys.readouterr().err.strip() == f"{tmp_path / 'nope.py'}: error: no such file"
    assert main(["convert", str(tmp_path), "-o", str(tmp_path / "x.py")]) == 2


def test_unwritable_output_location(script: Path, capsys) -> None:
    if os.geteuid() == 0:
        target = Path("/proc/loopshift_out.py")  # not even root may create files here
    else:
        script.parent.chmod(0o555)
        target = script.with_name("train_lightning.py")
    try:
        assert main(["convert", str(script), "-o", str(target)]) == 2
    finally:
        script.parent.chmod(0o755)
    err = capsys.readouterr().err.strip()
    assert err.startswith(str(target)) and "cannot write" in err and "\n" not in err
    assert not target.exists()
    assert sorted(p.name for p in script.parent.iterdir()) == ["train.py"]


def test_output_into_missing_folder_leaves_nothing(script: Path, tmp_path: Path, capsys) -> None:
    target = tmp_path / "missing" / "out.py"
    assert main(["convert", str(script), "-o", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(str(target)) and "cannot write" in err
    assert not target.parent.exists()


def test_output_over_a_directory_is_an_error(script: Path, tmp_path: Path, capsys) -> None:
    target = tmp_path / "dir.py"
    target.mkdir()
    assert main(["convert", str(script), "-o", str(target), "--force"]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.py", "train.py"]


def test_python_dash_m_entry_point(script: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "loopshift", "convert", "--stdout", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert "trainer.fit(lit_model, train_dataloaders=loader)" in completed.stdout
    assert "torch" not in completed.stderr


@pytest.mark.parametrize(
    "encoding, header",
    [
        ("latin-1", "# -*- coding: latin-1 -*-\n# café au lait: the experiment's name\n"),
        ("utf-8-sig", "# naïve baseline, written by an editor that adds a BOM\n"),
    ],
)
def test_output_keeps_the_encoding(tmp_path: Path, encoding: str, header: str) -> None:
    script = tmp_path / "train.py"
    script.write_bytes((header + FLAT).encode(encoding))
    assert main(["convert", "--in-place", str(script)]) == 0
    data = script.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig")
    text = data.decode(encoding)
    assert text.startswith(header) and "class LitModel(L.LightningModule):" in text


def test_tab_indented_script_converts(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(FLAT.replace("    ", "\t"))
    assert main(["convert", str(script)]) == 0
    output = script.with_name("train_lightning.py").read_text()
    compile(output, "train_lightning.py", "exec")
    assert "\tdef training_step(self, batch, batch_idx):" in output


def test_folder_converts_the_files_with_loops_and_sums_up(tmp_path: Path, capsys) -> None:
    (tmp_path / "train.py").write_text(FLAT)
    (tmp_path / "models.py").write_text((FIXTURES / "no_loop_model_only" / "input.py").read_text())
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "fit.py").write_text((FIXTURES / "mnist_style_functions" / "input.py").read_text())
    assert main(["convert", str(tmp_path)]) == 0  # files without a loop in a folder are not a failure
    err = capsys.readouterr().err
    assert (
        "3 files scanned, 2 with training loops (2 loops, 2 converted): "
        "2 converted cleanly, 0 with TODOs; 0 failed" in err
    )
    assert "no training loop found" not in err
    assert (tmp_path / "train_lightning.py").exists() and (tmp_path / "pkg" / "fit_lightning.py").exists()
    assert not (tmp_path / "models_lightning.py").exists()
    # a second run skips its own outputs and needs --force to overwrite them
    assert main(["convert", str(tmp_path)]) == 2
    assert main(["convert", "--force", str(tmp_path)]) == 0


def test_report_says_what_happened_to_each_file(tmp_path: Path, capsys) -> None:
    import json

    (tmp_path / "train.py").write_text(FLAT)
    (tmp_path / "models.py").write_text((FIXTURES / "no_loop_model_only" / "input.py").read_text())
    (tmp_path / "lbfgs.py").write_text((FIXTURES / "lbfgs_code_after_step" / "input.py").read_text())
    (tmp_path / "broken.py").write_text("for x in loader\n    pass\n")
    report = tmp_path / "out" / "report.json"
    report.parent.mkdir()
    assert main(["convert", str(tmp_path), "--report", str(report)]) == 2  # broken.py
    data = json.loads(report.read_text())
    assert data["summary"] == {
        "files_scanned": 4,
        "with_training_loops": 2,
        "converted_cleanly": 1,
        "converted_with_todos": 1,
        "failed": 1,
        "loops_found": 2,
        "loops_converted": 1,
        "diagnostics_by_code": {"LS002": 1},
    }
    by_name = {Path(entry["path"]).name: entry for entry in data["files"]}
    assert by_name["train.py"]["outcome"] == "clean" and by_name["models.py"]["outcome"] == "none"
    [todo] = by_name["lbfgs.py"]["diagnostics"]
    assert (todo["code"], todo["line"], todo["column"]) == ("LS002", 13, 1)
    assert by_name["broken.py"]["outcome"] == "failed" and "broken.py:1:" in by_name["broken.py"]["error"]


def test_folder_honours_exclude_gitignore_and_the_project_target(tmp_path: Path, capsys) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.loopshift]\nexclude = ["legacy"]\ntarget = "fabric"\n')
    (tmp_path / ".gitignore").write_text("# generated code\ngenerated/\n")
    for folder in ("legacy", "generated", "src"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "train.py").write_text(FLAT)
    assert main(["convert", str(tmp_path)]) == 0
    assert "loopshift: 1 file scanned, 1 with training loops (1 loop, 1 converted)" in capsys.readouterr().err
    assert not (tmp_path / "legacy" / "train_lightning.py").exists()
    assert not (tmp_path / "generated" / "train_lightning.py").exists()
    assert "fabric.setup(" in (tmp_path / "src" / "train_lightning.py").read_text()
    # the command line wins over the project's target
    assert main(["convert", "--force", "--target", "lightning", str(tmp_path / "src")]) == 0
    assert "trainer.fit(" in (tmp_path / "src" / "train_lightning.py").read_text()


def test_folder_piped_says_each_file_and_sums_up_by_reason(tmp_path: Path, capsys) -> None:
    (tmp_path / "a_train.py").write_text(FLAT)
    (tmp_path / "b_lbfgs.py").write_text((FIXTURES / "lbfgs_code_after_step" / "input.py").read_text())
    (tmp_path / "c_broken.py").write_text("for x in loader\n    pass\n")
    (tmp_path / "d_latin.py").write_bytes("x = 'caf\xe9'\n".encode("latin-1"))
    assert main(["convert", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert f"{tmp_path / 'b_lbfgs.py'}:13:1: LS002" in out  # diagnostics stay on stdout
    lines = err.splitlines()
    assert lines[-2:] == [
        "loopshift: 4 files scanned, 2 with training loops (2 loops, 1 converted): "
        "1 converted cleanly, 1 with TODOs; 2 failed",
        "by reason: LS002 1, not valid utf-8 text 1, syntax error 1",
    ]
    assert [line for line in lines if line.startswith("[")] == [
        f"[1/4] {tmp_path / 'a_train.py'}: converted",
        f"[2/4] {tmp_path / 'b_lbfgs.py'}: not written: 1 TODO",
        f"[3/4] {tmp_path / 'c_broken.py'}: failed",
        f"[4/4] {tmp_path / 'd_latin.py'}: failed",
    ]
    assert main(["convert", "--quiet", "--force", str(tmp_path)]) == 2
    assert not any(line.startswith(("[", "loopshift:")) for line in capsys.readouterr().err.splitlines())


@pytest.mark.slow  # seconds of CPU: in the full run, not the fast tier
def test_folder_converts_in_worker_processes_like_one_by_one(tmp_path: Path, capsys) -> None:
    from loopshift.workers import PARALLEL_FROM

    sources = [FLAT, (FIXTURES / "lbfgs_code_after_step" / "input.py").read_text()]
    for number in range(PARALLEL_FROM + 1):
        (tmp_path / f"train_{number:02}.py").write_text(sources[number % 2])
    main(["convert", str(tmp_path)])
    out, err = capsys.readouterr()
    named = [line.split(":")[0] for line in out.splitlines()]
    assert named == [str(tmp_path / f"train_{number:02}.py") for number in range(1, PARALLEL_FROM + 1, 2)]
    assert f"{PARALLEL_FROM + 1} files scanned" in err
    for number in range(PARALLEL_FROM + 1):
        one_by_one = tmp_path / f"one_{number:02}.py"
        assert main(["convert", str(tmp_path / f"train_{number:02}.py"), "-o", str(one_by_one)]) in (0, 1)
        in_folder = tmp_path / f"train_{number:02}_lightning.py"
        assert one_by_one.exists() == in_folder.exists() == (number % 2 == 0)  # the LBFGS TODO writes nothing
        assert not in_folder.exists() or one_by_one.read_text() == in_folder.read_text()


def test_folder_progress_bar_is_on_the_terminal_and_stdout_stays_plain(tmp_path: Path) -> None:
    import pty

    (tmp_path / "train.py").write_text(FLAT)
    (tmp_path / "lbfgs.py").write_text((FIXTURES / "lbfgs_code_after_step" / "input.py").read_text())
    terminal, stderr = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "loopshift", "convert", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    os.close(stderr)
    # read the terminal until the run closes it: one read can stop short of the summary (on a
    # loaded machine the bar redraws for seconds), and a full terminal would block the run
    chunks = []
    while True:
        try:
            chunk = os.read(terminal, 1 << 16)
        except OSError:  # EIO: the run has exited and everything it wrote is read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(terminal)
    screen = b"".join(chunks).decode()
    run = subprocess.CompletedProcess(process.args, process.wait(timeout=120), process.stdout.read())
    process.stdout.close()
    assert run.returncode == 1
    assert run.stdout == f"{tmp_path / 'lbfgs.py'}:13:1: LS002 " + run.stdout.split(" LS002 ", 1)[1]
    assert "\x1b[" not in run.stdout and run.stdout[-1] == "\n" and run.stdout.count("\n") == 1
    assert "converting" in screen and "0/2" in screen  # the bar, with its count
    assert "[1/2]" not in screen  # no plain lines on a terminal
    assert "2 files scanned, 2 with training loops" in screen


def test_new_output_honours_the_umask(script: Path) -> None:
    previous = os.umask(0o027)
    try:
        assert main(["convert", str(script)]) == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE(script.with_name("train_lightning.py").stat().st_mode) == 0o640  # 0666 & ~0027
    previous = os.umask(0o002)
    try:
        assert main(["convert", "--force", str(script), "-o", str(script.with_name("out.py"))]) == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE(script.with_name("out.py").stat().st_mode) == 0o664


def test_in_place_writes_through_a_symlink(script: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.py"
    link.symlink_to(script)
    assert main(["convert", "--in-place", str(link)]) == 0
    assert link.is_symlink() and os.readlink(link) == str(script)
    assert "LightningModule" in script.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.py", "train.py"]


def test_diff_header_of_an_absolute_path_has_one_slash(script: Path, capsys) -> None:
    assert script.is_absolute()
    main(["convert", "--diff", str(script)])
    first, second = capsys.readouterr().out.splitlines()[:2]
    assert first == f"--- a{script}" and second == f"+++ b{script}"


LBFGS = (
    FIXTURES / "lbfgs_code_after_step" / "input.py"
).read_text()  # one loop convert leaves with a TODO (LS002)


def test_in_place_writes_the_todo_comments_and_then_diff_is_clean(tmp_path: Path, capsys) -> None:
    path = tmp_path / "lbfgs.py"
    path.write_text(LBFGS)
    assert main(["convert", "--diff", str(path)]) == 1
    assert "+# TODO(loopshift): " in capsys.readouterr().out
    assert main(["convert", "--in-place", str(path)]) == 1  # the TODOs are reported
    out, err = capsys.readouterr()
    assert f"{path}:13:1: LS002" in out and f"wrote {path}" in err
    assert "# TODO(loopshift): " in path.read_text() and path.read_text().count("\n") == LBFGS.count("\n") + 1
    assert main(["convert", "--diff", str(path)]) == 0  # nothing left that convert would change
    assert capsys.readouterr() == ("", "")
    before = path.read_text()
    assert main(["convert", "--in-place", str(path)]) == 1
    assert path.read_text() == before and "wrote" not in capsys.readouterr().err


def test_a_file_left_with_todos_only_is_not_written_and_says_so(tmp_path: Path, capsys) -> None:
    path = tmp_path / "lbfgs.py"
    path.write_text(LBFGS)
    assert main(["convert", str(path)]) == 1
    out, err = capsys.readouterr()
    assert f"{path}:13:1: LS002" in out and f"{path}: not written: 1 TODO" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lbfgs.py"]


def test_noqa_on_the_loop_line_leaves_the_loop_alone(tmp_path: Path, capsys) -> None:
    path = tmp_path / "lbfgs.py"
    path.write_text(LBFGS.replace("for step in range(15):", "for step in range(15):  # noqa: LS002"))
    assert main(["convert", "--diff", str(path)]) == 0
    assert capsys.readouterr() == ("", "")
    assert main(["convert", "--stdout", str(path)]) == 1  # a file with nothing to convert, as before
    out, err = capsys.readouterr()
    assert out == path.read_text() and "LS002" not in err and "1 loop left alone by noqa" in err
    path.write_text(LBFGS.replace("for step in range(15):", "for step in range(15):  # noqa: LS003"))
    assert main(["convert", "--diff", str(path)]) == 1  # another code does not suppress it


def test_diff_is_quiet_when_there_is_nothing_to_show(tmp_path: Path, capsys) -> None:
    model = (FIXTURES / "no_loop_model_only" / "input.py").read_text()
    (tmp_path / "a.py").write_text(model)
    (tmp_path / "b.py").write_text(model)
    assert main(["convert", "--diff", str(tmp_path / "a.py"), str(tmp_path / "b.py")]) == 0
    assert capsys.readouterr() == ("", "")
    assert main(["convert", "--diff", str(tmp_path)]) == 0
    assert capsys.readouterr() == ("", "")
    (tmp_path / "c.py").write_text(FLAT)
    assert main(["convert", "--diff", str(tmp_path / "a.py"), str(tmp_path / "c.py")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"[2/2] {tmp_path / 'c.py'}: would change",
        "loopshift: 2 files scanned, 1 would change; 0 failed",
    ]


def test_folder_says_it_skipped_earlier_outputs(tmp_path: Path, capsys) -> None:
    (tmp_path / "train.py").write_text(FLAT)
    (tmp_path / "old_lightning.py").write_text(FLAT)
    assert main(["convert", str(tmp_path)]) == 0
    assert (
        "loopshift: 1 file scanned, 1 with training loops (1 loop, 1 converted): 1 converted cleanly, 0 with "
        "TODOs; 0 failed; 1 skipped (earlier outputs *_lightning.py; --include-outputs to convert them)"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "old_lightning_lightning.py").exists()
    assert (
        main(["convert", "--force", "--include-outputs", str(tmp_path)]) == 0
    )  # train_lightning.py: no loop
    assert "loopshift: 3 files scanned, 2 with training loops" in capsys.readouterr().err
    assert (tmp_path / "old_lightning_lightning.py").exists()


def test_ctrl_c_finishes_the_file_under_way_and_lists_what_was_written(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    import signal

    import loopshift.jobs

    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.py").write_text(FLAT)
    run_job = loopshift.jobs.run_job

    def interrupted_after_the_first(job):
        done = run_job(job)
        if job.path.name == "a.py":
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while a.py is being written
        return done

    monkeypatch.setattr(loopshift.jobs, "run_job", interrupted_after_the_first)
    assert main(["convert", "--in-place", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert f"loopshift: interrupted: 1 file written, 2 of 3 not converted\nwrote {tmp_path / 'a.py'}" in err
    assert "LightningModule" in (tmp_path / "a.py").read_text() and (tmp_path / "b.py").read_text() == FLAT


def test_ctrl_c_stops_a_conversion_under_way_at_once(tmp_path: Path, capsys, monkeypatch) -> None:
    """A long conversion (a 5 MB file takes minutes) is computation only: Ctrl-C stops it at once
    and nothing is written."""
    import signal
    import time

    import loopshift.convert

    for name in ("a", "b"):
        (tmp_path / f"{name}.py").write_text(FLAT)

    def interrupted_while_converting(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(60)  # the handler raises: the sleep ends at once
        raise AssertionError("Ctrl-C did not stop the conversion")

    monkeypatch.setattr(loopshift.convert, "convert_source", interrupted_while_converting)
    started = time.monotonic()
    assert main(["convert", "--in-place", str(tmp_path / "a.py"), str(tmp_path / "b.py")]) == 130
    assert time.monotonic() - started < 30
    assert "loopshift: interrupted: 0 files written, 2 of 2 not converted" in capsys.readouterr().err
    assert (tmp_path / "a.py").read_text() == FLAT and (tmp_path / "b.py").read_text() == FLAT


@pytest.mark.parametrize(
    "command, usage",
    [
        ("convert", "Usage: loopshift convert [OPTIONS] PATHS..."),
        ("verify", "Usage: loopshift verify [OPTIONS] SCRIPT [SCRIPT_ARGS]..."),
        ("lint", "Usage: loopshift lint [OPTIONS] [PATHS]..."),
        ("explain", "Usage: loopshift explain [OPTIONS] CODE"),
    ],
)
def test_help_reads_like_click_and_keeps_brackets(command: str, usage: str, capsys) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert usage in out and "{" not in out and "<bool>" not in out
    if command == "convert":
        assert "of [tool.loopshift]" in out and "`target` of [tool.loopshift]" in " ".join(
            line.strip("│ ") for line in out.splitlines()
        ).replace("  ", " ")
    assert main(["--help"]) == 0 and "<bool>" not in capsys.readouterr().out


def test_lint_fix_does_not_write_a_conversion_that_leaves_todos(tmp_path: Path, capsys) -> None:
    """As ruff: a fix whose result convert would report (a TODO) is unsafe, written only with
    --unsafe-fixes."""
    path = tmp_path / "dry.py"
    source = (
        (FIXTURES / "mnist_style_functions" / "input.py")
        .read_text()
        .replace(
            "        optimizer.zero_grad()",
            "        if args.dry_run:\n            break\n        optimizer.zero_grad()",
            1,
        )
    )
    path.write_text(source)
    assert main(["lint", "--fix", str(path)]) == 1
    assert path.read_text() == source
    assert (
        f"{path}: not fixed: the conversion would leave TODOs (LS003); `--unsafe-fixes` writes it"
        in capsys.readouterr().err
    )
    main(["lint", "--fix", "--unsafe-fixes", str(path)])
    assert "# TODO(loopshift):" in path.read_text() and "LightningModule" in path.read_text()
    assert f"{path}: fixed LS101 x1" in capsys.readouterr().err
