"""`loopshift lint`: suppression, selection, configuration, files, output formats, exit codes and --fix."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from loopshift.lint import lint_paths, lint_source
from loopshift.lint.command import explain_command, lint_command, rules_command
from loopshift.lint.engine import enabled_codes
from loopshift.source import InputError

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parent.parent
FLAT = (FIXTURES / "flat_script" / "input.py").read_text()
FLAT_CONVERTED = (FIXTURES / "flat_script" / "expected.py").read_text()

# LS208 on line 2, LS205 on line 5, LS204 on line 7, LS206 on line 9
LIGHTNING = textwrap.dedent("""\
    import lightning as L
    import pytorch_lightning as pl

    class LitModel(L.LightningModule):
        def training_step(self, batch, batch_idx):
            loss = self(batch).mean()
            self.log("train_loss", loss.item())

    trainer = L.Trainer(gpus=1)
    """)


def make_app() -> typer.Typer:
    """A CLI that registers the commands the way loopshift/cli.py does."""
    app = typer.Typer()
    app.command("lint")(lint_command)
    app.command("rules")(rules_command)
    app.command("explain")(explain_command)
    return app


APP = make_app()


def invoke(*args):
    return CliRunner().invoke(APP, [str(arg) for arg in args])


def codes(findings) -> list[str]:
    return [finding.code for finding in findings]


# -- suppression and selection ---------------------------------------------------------
def test_noqa_with_codes_or_bare_suppresses_the_line() -> None:
    source = "import lightning as L\n" + "".join(
        f"L.Trainer(gpus=1){comment}\n"
        for comment in [
            "  # noqa: LS206",
            "  # noqa",
            "  # noqa: LS101, LS206",
            "  # NOQA:ls206",
            "  # noqa: LS101",
            "",
        ]
    )
    assert [(f.code, f.span.line) for f in lint_source(source)] == [("LS206", 6), ("LS206", 7)]


def test_select_and_ignore_take_codes_prefixes_and_all() -> None:
    def lint(select=None, ignore=None):
        return sorted(codes(lint_source(LIGHTNING, "m.py", select, ignore)))

    assert lint() == ["LS204", "LS205", "LS206", "LS208"]
    assert lint(select=["LS204"]) == ["LS204"] == lint(select="ls204")
    assert lint(select=["LS20"], ignore=["LS206"]) == ["LS204", "LS205", "LS208"]
    assert lint(select=["ALL"], ignore=["LS2"]) == []
    assert lint(select=["LS204"], ignore=["LS2"]) == ["LS204"]  # the more specific selector wins
    assert lint(ignore=["ALL"]) == []
    with pytest.raises(InputError, match="LS999"):
        lint(select=["LS999"])


def test_the_command_line_layer_wins_over_the_configuration() -> None:
    config = (["LS1"], ["LS102"])
    assert enabled_codes([config]) == {"LS101", "LS103"}
    assert enabled_codes([config, (["LS2"], None)]) == {f"LS20{i}" for i in range(1, 9)}
    assert enabled_codes([config, (None, ["LS103"])]) == {"LS101"}
    assert enabled_codes([(None, ["LS204"]), (["LS204"], None)]) == {"LS204"}


def test_lint_source_reports_the_path_and_raises_on_bad_syntax() -> None:
    assert lint_source(LIGHTNING)[0].render().startswith("<string>:2:1: LS208 ")
    with pytest.raises(InputError, match=r"^bad\.py:1:\d+: error: syntax error"):
        lint_source("def f(:\n", "bad.py")


# -- files and configuration -------------------------------------------------------------
def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_pyproject_select_ignore_exclude_and_per_file_ignores(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        textwrap.dedent("""\
        [tool.loopshift]
        ignore = ["LS208"]
        exclude = ["generated"]

        [tool.loopshift.per-file-ignores]
        "tests/*" = ["LS2"]
        """),
    )
    for name in ("model.py", "tests/test_model.py", "generated/model.py"):
        write(tmp_path / name, LIGHTNING)

    def found(**options) -> dict[str, list[str]]:
        return {
            Path(r.path).relative_to(tmp_path).as_posix(): sorted(codes(r.findings))
            for r in lint_paths([tmp_path], **options)
        }

    assert found() == {"model.py": ["LS204", "LS205", "LS206"], "tests/test_model.py": []}
    # the command line wins over `ignore`; per-file-ignores still apply
    assert found(select=["LS208"]) == {"model.py": ["LS208"], "tests/test_model.py": []}


def test_a_bad_pyproject_is_an_input_error(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.loopshift]\nselect = ["LS9"]\n')
    write(tmp_path / "model.py", LIGHTNING)
    result = invoke("lint", tmp_path)
    assert result.exit_code == 2
    assert "pyproject.toml: error: [tool.loopshift]: unknown rule code or prefix `LS9`" in result.stderr


def test_folders_skip_gitignored_hidden_and_non_python_files(tmp_path: Path) -> None:
    write(tmp_path / ".gitignore", "# build output\nbuild/\n*_pb2.py\n")
    for name in ("build/model.py", "proto_pb2.py", ".venv/lib/model.py", "notes.txt", "pkg/model.py"):
        write(tmp_path / name, LIGHTNING)
    assert [Path(r.path).relative_to(tmp_path).as_posix() for r in lint_paths([tmp_path])] == ["pkg/model.py"]


def test_many_files_lint_in_parallel_with_the_same_result(tmp_path: Path) -> None:
    for i in range(20):
        write(tmp_path / f"m{i:02}.py", LIGHTNING if i % 2 else "x = 1\n")

    def found(workers: int):
        return sorted((Path(r.path).name, codes(r.findings)) for r in lint_paths([tmp_path], workers=workers))

    assert found(workers=2) == found(workers=1)
    assert found(workers=1)[1] == ("m01.py", ["LS208", "LS205", "LS204", "LS206"])


def test_a_bad_file_is_reported_and_the_others_are_linted(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.py", "import lightning\nL.Trainer(gpus=1\n")
    unparsed = write(tmp_path / "plain.py", "x = (\n")  # holds no rule's words: compiled, not parsed
    good = write(tmp_path / "good.py", LIGHTNING)
    result = invoke("lint", bad, unparsed, good, tmp_path / "missing.py")
    assert result.exit_code == 2
    assert f"{good}:9:21: LS206 " in result.stdout
    assert f"{bad}:2:" in result.stderr and f"{unparsed}:1:" in result.stderr
    assert f"{tmp_path / 'missing.py'}: error: no such file" in result.stderr
    assert result.stderr.endswith(
        "Found 4 errors.\n[*] 2 fixable with the `--fix` option.\n3 files could not be linted.\n"
    )


# -- the command line ------------------------------------------------------------------------
def test_exit_codes_and_summary(tmp_path: Path) -> None:
    clean = write(tmp_path / "clean.py", "import torch\n")
    raw = write(tmp_path / "raw.py", FLAT)
    result = invoke("lint", clean)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "All checks passed!\n")
    result = invoke("lint", raw)
    assert result.exit_code == 1
    assert (
        result.stdout == f"{raw}:27:5: LS101 manual training loop: Lightning can run it "
        "(`loopshift convert --diff` shows how, or why not)\n"
    )
    assert result.stderr == "Found 1 error.\n[*] 1 fixable with the `--fix` option.\n"
    assert invoke("lint", "--exit-zero", raw).exit_code == 0
    assert invoke("lint", "--select", "LS2", raw).exit_code == 0
    assert invoke("lint", "--select", "LS1,ls2", "--ignore", "LS101", raw).exit_code == 0
    assert invoke("lint", "--select", "nope", raw).exit_code == 2


def test_output_formats(tmp_path: Path) -> None:
    path = write(tmp_path / "m.py", LIGHTNING)
    findings = json.loads(invoke("lint", "--output-format", "json", path).stdout)
    assert [f["code"] for f in findings] == ["LS208", "LS205", "LS204", "LS206"]
    assert findings[3] == {
        "code": "LS206",
        "name": "removed-trainer-argument",
        "message": findings[3]["message"],
        "filename": str(path),
        "location": {"row": 9, "column": 21},
        "end_location": {"row": 9, "column": 27},
        "fixable": True,
    }

    github = invoke("lint", "--output-format", "github", path).stdout.splitlines()
    assert len(github) == 4 and all(line.startswith("::error title=loopshift (LS2") for line in github)
    assert github[3].startswith(
        f"::error title=loopshift (LS206),file={path},line=9,col=21,endLine=9,endColumn=27::LS206 "
    )

    sarif = json.loads(invoke("lint", "--output-format", "sarif", path).stdout)
    assert sarif["version"] == "2.1.0" and len(sarif["runs"]) == 1
    run = sarif["runs"][0]
    assert run["tool"]["driver"]["name"] == "loopshift"
    assert [r["ruleId"] for r in run["results"]] == ["LS208", "LS205", "LS204", "LS206"]
    rules = run["tool"]["driver"]["rules"]
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in run["results"])
    region = run["results"][3]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 9, "startColumn": 21, "endLine": 9, "endColumn": 27}

    statistics = invoke("lint", "--statistics", path)
    assert statistics.exit_code == 1
    assert "    1  LS206  [*] removed-trainer-argument" in statistics.stdout.splitlines()
    assert json.loads(invoke("lint", "--statistics", "--output-format", "json", path).stdout)[0]["count"] == 1


def test_sarif_is_valid_against_the_official_schema(tmp_path: Path, monkeypatch) -> None:
    """Against the OASIS SARIF 2.1.0 schema, vendored in tests/data (its README names the source):
    findings, fixable ones, a path to escape, and a file that cannot be linted."""
    from jsonschema import Draft4Validator, FormatChecker

    schema = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())
    Draft4Validator.check_schema(schema)
    # every format jsonschema knows: draft-04's own checker skips the schema's "uri-reference"
    validator = Draft4Validator(schema, format_checker=FormatChecker())
    write(tmp_path / "m.py", LIGHTNING)
    write(tmp_path / "raw loop.py", FLAT)
    write(tmp_path / "broken.py", "def f(:\n")
    monkeypatch.chdir(tmp_path)
    for folder in (".", tmp_path):  # relative URIs, and file: URIs for absolute paths
        result = invoke("lint", "--output-format", "sarif", folder)
        assert result.exit_code == 2
        sarif = json.loads(result.stdout)
        assert [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(sarif)] == []
        run = sarif["runs"][0]
        assert sorted(r["ruleId"] for r in run["results"]) == ["LS101", "LS204", "LS205", "LS206", "LS208"]
        [invocation] = run["invocations"]
        assert invocation["executionSuccessful"] is False
        [notification] = invocation["toolExecutionNotifications"]
        assert "broken.py:1:7: error: syntax error" in notification["message"]["text"]
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]}
    assert uris == {(tmp_path / "m.py").as_uri(), (tmp_path / "raw loop.py").as_uri()}


def test_rules_and_explain() -> None:
    listing = invoke("rules")
    assert listing.exit_code == 0
    assert listing.stdout.splitlines()[0].split()[:3] == ["LS101", "manual-training-loop", "[*]"]
    explained = invoke("explain", "LS101")
    assert explained.exit_code == 0
    assert explained.stdout.startswith("# manual-training-loop (LS101)")
    assert "## Why is this bad?" in explained.stdout
    assert invoke("explain", "log-item").stdout.startswith("# log-item (LS204)")
    unknown = invoke("explain", "LS999")
    assert unknown.exit_code == 2 and "unknown rule `LS999`" in unknown.stderr


# -- --fix -------------------------------------------------------------------------------------
def test_fix_converts_a_raw_loop_in_place(tmp_path: Path) -> None:
    path = write(tmp_path / "train.py", FLAT)
    result = invoke("lint", "--fix", path)
    assert path.read_text() == FLAT_CONVERTED
    assert result.exit_code == 0
    assert f"{path}: fixed LS101 x1" in result.stderr and "(1 fixed, 0 remaining)" in result.stderr


def test_fix_keeps_windows_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "train.py"
    path.write_bytes(FLAT.replace("\n", "\r\n").encode())
    assert invoke("lint", "--fix", path).exit_code == 0
    assert path.read_bytes() == FLAT_CONVERTED.replace("\n", "\r\n").encode()


def test_noqa_on_a_loop_keeps_the_conversion_from_running(tmp_path: Path) -> None:
    suppressed = FLAT.replace("    for x, y in loader:\n", "    for x, y in loader:  # noqa: LS101\n")
    path = write(tmp_path / "train.py", suppressed)
    result = invoke("lint", "--fix", path)
    assert (result.exit_code, path.read_text()) == (0, suppressed)


def test_fix_rewrites_trainer_arguments_and_reports_what_remains(tmp_path: Path) -> None:
    path = write(tmp_path / "m.py", LIGHTNING)
    [report] = lint_paths([path], fix=True)
    assert report.fixed == {"LS206": 1, "LS204": 1}
    assert 'L.Trainer(accelerator="gpu", devices=1)' in path.read_text()
    assert 'self.log("train_loss", loss)' in path.read_text()
    assert codes(report.findings) == ["LS208", "LS205"]


# -- converted code, hooks, imports ------------------------------------------------------------
@pytest.mark.slow  # seconds of CPU: in the full run, not the fast tier
def test_converted_fixtures_hold_no_raw_loop_and_no_lightning_mistake() -> None:
    """What convert writes lints clean: no LS2xx in the code it generated, and raw loops only in
    files where it left a TODO saying why."""
    expected = sorted(FIXTURES.glob("*/expected.py"))
    assert expected
    for report in lint_paths(expected, workers=1):
        assert report.error is None
        assert [f.render() for f in report.findings if f.code.startswith("LS2")] == []
        if "TODO(loopshift)" not in Path(report.path).read_text():
            assert codes(report.findings) == [], report.path


def test_pre_commit_hooks_run_our_commands(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    hooks = {hook["id"]: hook for hook in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    assert hooks["loopshift-lint"]["entry"] == "loopshift lint"
    assert hooks["loopshift-convert-diff"]["entry"] == "loopshift convert --diff"
    assert all(
        hook["language"] == "python" and hook["types_or"] == ["python", "jupyter"] for hook in hooks.values()
    )
    raw = write(tmp_path / "raw.py", FLAT)
    args = hooks["loopshift-lint"]["entry"].split()[1:]
    assert invoke(*args, raw).exit_code == 1  # pre-commit passes the staged files as arguments


def test_linting_imports_neither_torch_nor_lightning() -> None:
    script = textwrap.dedent(f"""\
        import sys
        from loopshift.lint import lint_paths, lint_source
        from loopshift.lint.command import lint_command
        flat = open({str(FIXTURES / "flat_script" / "input.py")!r}).read()
        assert [f.code for f in lint_source(flat)] == ["LS101"]
        lightning = {str(FIXTURES / "already_lightning" / "input.py")!r}
        assert [f.code for r in lint_paths([lightning]) for f in r.findings] == []
        print(sorted(m for m in ("torch", "lightning", "pytorch_lightning") if m in sys.modules))
        """)
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_file_no_rule_could_match_is_linted_without_libcst(tmp_path: Path) -> None:
    """The CLI imports lazily and the engine reads a file's text before parsing it: a file that
    no rule could match, most of what a pre-commit hook sees, costs neither libcst nor torch."""
    path = write(
        tmp_path / "paths.py", "import os\n\n\ndef here(name):\n    return os.path.join(os.getcwd(), name)\n"
    )
    script = textwrap.dedent(f"""\
        import sys
        import loopshift.cli
        code = loopshift.cli.main(["lint", {str(path)!r}])
        heavy = ("libcst", "torch", "lightning", "loopshift.convert")
        print(code, sorted(m for m in heavy if m in sys.modules))
        """)
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0 []"


def test_the_public_api_loads_the_converter_when_asked_for() -> None:
    import loopshift
    from loopshift import convert

    assert (loopshift.convert_source, loopshift.Result) == (convert.convert_source, convert.Result)
    assert loopshift.convert_source(FLAT).code == FLAT_CONVERTED
    with pytest.raises(AttributeError):
        _ = loopshift.no_such_name


def test_a_named_folder_is_linted_even_below_an_ignored_one(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.loopshift]\nexclude = ["vendor"]\n')
    write(tmp_path / ".gitignore", ".venv/\n")
    write(tmp_path / ".venv" / "pkg" / "model.py", LIGHTNING)
    write(tmp_path / "vendor" / "model.py", LIGHTNING)
    assert [Path(r.path).name for r in lint_paths([tmp_path / ".venv" / "pkg"])] == ["model.py"]
    assert lint_paths([tmp_path]) == []
    assert lint_paths([tmp_path / "vendor" / "model.py"]) == []  # exclude holds for files named too
