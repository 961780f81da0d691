"""Jupyter notebooks: code cells converted and linted as one module, written back cell by cell."""

import math
from pathlib import Path

import nbformat
import pytest
from conftest import check_golden
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from loopshift.cli import main
from loopshift.convert import convert_source
from loopshift.notebook import NotebookCode, notebook_text, read_notebook

CASE = Path(__file__).parent / "fixtures_notebooks" / "training_notebook"
INPUT, EXPECTED = CASE / "input.ipynb", CASE / "expected.ipynb"
TRAINING_CELL, OPTIMIZER_CELL = 9, 7  # 0-based indices in the input notebook


@pytest.fixture
def notebook(tmp_path: Path) -> Path:
    path = tmp_path / "train.ipynb"
    path.write_text(INPUT.read_text())
    return path


def cells_of(*sources: str, language: str = "python") -> nbformat.NotebookNode:
    """A notebook of code cells, with a markdown cell before each."""
    cells = []
    for number, source in enumerate(sources):
        cells += [new_markdown_cell(f"Step {number}"), new_code_cell(source)]
    return new_notebook(
        cells=cells, metadata={"kernelspec": {"name": "k", "display_name": "k", "language": language}}
    )


def converted(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    code = NotebookCode(notebook)
    return code.rebuild(convert_source(code.code).code)


FLAT = [
    "import torch\nfrom torch import nn\nfrom torch.utils.data import DataLoader, TensorDataset",
    "loader = DataLoader(TensorDataset(torch.randn(64, 4), torch.randn(64, 1)), batch_size=8)\n"
    "model = nn.Linear(4, 1)",
    "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)",
    "for epoch in range(2):\n    for x, y in loader:\n        optimizer.zero_grad()\n"
    "        loss = nn.functional.mse_loss(model(x), y)\n        loss.backward()\n        optimizer.step()",
]


# -- the fixture notebook -------------------------------------------------------------------
def test_converted_notebook_matches_the_golden(notebook: Path, capsys, update_fixtures: bool) -> None:
    assert main(["convert", str(notebook)]) == 0
    output = notebook.with_name("train_lightning.ipynb")
    assert f"wrote {output}" in capsys.readouterr().err
    check_golden(EXPECTED, output.read_text(), update_fixtures)
    assert notebook.read_text() == INPUT.read_text()
    nbformat.validate(nbformat.reads(output.read_text(), as_version=4))


def test_markdown_magics_and_cell_magics_survive() -> None:
    before, after = read_notebook(INPUT), read_notebook(EXPECTED)
    assert [c.source for c in after.cells if c.cell_type == "markdown"] == [
        c.source for c in before.cells if c.cell_type == "markdown"
    ]
    assert after.cells[1].source.startswith("!pip install -q torch\n%matplotlib inline\nimport torch\n")
    assert after.cells[2] == before.cells[2]  # the %%bash cell, outputs and all


def test_outputs_go_only_from_changed_cells_and_an_emptied_cell_goes() -> None:
    before, after = read_notebook(INPUT), read_notebook(EXPECTED)
    kept = {cell.id: cell for cell in after.cells}
    assert before.cells[OPTIMIZER_CELL].id not in kept  # its only statement moved into configure_optimizers
    for cell in before.cells:
        if cell.id not in kept or cell.cell_type != "code":
            continue
        new = kept[cell.id]
        if new.source == cell.source:
            assert new == cell
        else:
            assert (new.outputs, new.execution_count) == ([], None)
    assert "class LitModel(L.LightningModule):" in kept["cell-2"].source  # where the converter put it
    assert kept[before.cells[TRAINING_CELL].id].source.endswith(
        "trainer.fit(lit_model, train_dataloaders=train_loader)"
    )
    assert kept["cell-5"].outputs  # an unchanged code cell keeps what it printed


def test_converting_the_output_changes_nothing(tmp_path: Path, capsys) -> None:
    path = tmp_path / "done.ipynb"
    path.write_text(EXPECTED.read_text())
    assert main(["convert", "--diff", str(path)]) == 0
    assert capsys.readouterr().out == ""
    code = NotebookCode(read_notebook(path))
    assert convert_source(code.code).code == code.code
    assert code.rebuild(code.code) == read_notebook(path)


def test_an_unconverted_notebook_rebuilds_as_it_was() -> None:
    code = NotebookCode(read_notebook(INPUT))
    assert code.rebuild(code.code) == read_notebook(INPUT)
    assert code.diff(code.code) == ""


# -- the command line -----------------------------------------------------------------------
def test_stdout_diff_and_in_place(notebook: Path, capsys) -> None:
    assert main(["convert", "--stdout", str(notebook)]) == 0
    assert capsys.readouterr().out == EXPECTED.read_text()
    assert main(["convert", "--diff", str(notebook)]) == 1
    diff = capsys.readouterr().out
    name = str(notebook).lstrip("/")
    assert f"--- a/{name}:cell 2\n+++ b/{name}:cell 2\n" in diff
    assert "+class LitModel(L.LightningModule):" in diff
    assert f"b/{name}:cell 8\n@@ -1 +0,0 @@\n-optimizer = torch.optim.SGD" in diff
    assert "-for epoch in range(EPOCHS):" in diff and "+trainer.fit(lit_model" in diff
    assert sorted(p.name for p in notebook.parent.iterdir()) == ["train.ipynb"]
    assert main(["convert", "--in-place", str(notebook)]) == 0
    assert notebook.read_text() == EXPECTED.read_text()


def test_output_option_force_and_target(notebook: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.ipynb"
    output.write_text("keep me")
    assert main(["convert", str(notebook), "-o", str(output), "--target", "pytorch_lightning"]) == 2
    assert output.read_text() == "keep me"
    assert (
        main(["convert", str(notebook), "-o", str(output), "--target", "pytorch_lightning", "--force"]) == 0
    )
    first = read_notebook(output).cells[1].source
    assert "import pytorch_lightning as pl" in first and "class LitModel(pl.LightningModule):" in first


def test_fabric_target_keeps_the_loop_in_its_cell(tmp_path: Path) -> None:
    code = NotebookCode(cells_of(*FLAT))
    notebook = code.rebuild(convert_source(code.code, target="fabric").code)
    loop = notebook.cells[-1].source
    assert "fabric.backward(loss)" in loop and loop.startswith("for epoch in range(2):")
    nbformat.validate(notebook)


def test_folders_take_notebooks_but_not_outputs_or_checkpoints(tmp_path: Path, capsys) -> None:
    (tmp_path / "train.ipynb").write_text(INPUT.read_text())
    (tmp_path / "script.py").write_text("\n".join(FLAT) + "\n")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "train-checkpoint.ipynb").write_text(INPUT.read_text())
    assert main(["convert", str(tmp_path)]) == 0
    assert (tmp_path / "train_lightning.ipynb").read_text() == EXPECTED.read_text()
    assert not (tmp_path / ".ipynb_checkpoints" / "train-checkpoint_lightning.ipynb").exists()
    assert (
        "2 files scanned, 2 with training loops (2 loops, 2 converted): 2 converted cleanly"
        in capsys.readouterr().err
    )
    assert main(["convert", "--force", str(tmp_path)]) == 0  # the output is no input


def test_a_notebook_without_a_loop_or_in_another_language(tmp_path: Path, capsys) -> None:
    for name, notebook in [("plain", cells_of("x = 1")), ("r", cells_of(*FLAT, language="R"))]:
        path = tmp_path / f"{name}.ipynb"
        nbformat.write(notebook, path)
        assert main(["convert", str(path)]) == 1
        assert f"{path}: no training loop found" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.ipynb", "r.ipynb"]


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"cells": [\n  oops', ":2:3: error: not valid JSON: Expecting value"),
        ("", ":1:1: error: not valid JSON: Expecting value"),
        ('{"cells": 1}', ": error: not a Jupyter notebook"),
        ("[1, 2]", ": error: not a Jupyter notebook"),
        (
            notebook_text(cells_of("x = 1", "%time y = 2\nfor i in range(3):\n    print(i]")),
            ":cell 4:3:12: error: syntax error: "
            "closing parenthesis ']' does not match opening parenthesis '('",
        ),
    ],
    ids=["invalid-json", "empty", "no-notebook", "json-list", "cell-syntax-error"],
)
def test_bad_input_is_one_line_exit_two_and_writes_nothing(
    tmp_path: Path, capsys, content: str, message: str
) -> None:
    path = tmp_path / "bad.ipynb"
    path.write_text(content)
    for command in (["convert"], ["lint"], ["lint", "--fix"]):
        assert main([*command, str(path)]) == 2
        assert capsys.readouterr().err.startswith(f"{path}{message}")  # then lint's summary, if linting
        assert path.read_text() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ipynb"]


def test_verify_asks_for_a_script(notebook: Path, capsys) -> None:
    assert main(["convert", "--verify", str(notebook)]) == 2
    assert "--verify does not run notebooks" in capsys.readouterr().err
    assert not notebook.with_name("train_lightning.ipynb").exists()


# -- lint -----------------------------------------------------------------------------------
def test_lint_reports_findings_by_cell(notebook: Path, capsys) -> None:
    assert main(["lint", str(notebook)]) == 1
    out = capsys.readouterr().out
    assert (
        out == f"{notebook}:cell 10:6:5: LS101 manual training loop: Lightning can run it "
        "(`loopshift convert --diff` shows how, or why not)\n"
    )
    assert main(["lint", "--output-format", "json", str(notebook)]) == 1
    assert '"cell": 10' in capsys.readouterr().out
    assert main(["lint", str(EXPECTED)]) == 0


def test_lint_honours_noqa_in_a_cell_and_takes_notebooks_from_folders(tmp_path: Path, capsys) -> None:
    suppressed = FLAT[3].replace("in loader:", "in loader:  # noqa: LS101")
    nbformat.write(cells_of(*FLAT[:3], suppressed), tmp_path / "a.ipynb")
    nbformat.write(cells_of(*FLAT), tmp_path / "b.ipynb")
    assert main(["lint", str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{tmp_path / 'b.ipynb'}:cell 8:2:5: LS101 manual training loop: Lightning can run it "
        "(`loopshift convert --diff` shows how, or why not)"
    ]


def test_lint_fix_converts_the_notebook_in_place(notebook: Path, capsys) -> None:
    assert main(["lint", "--fix", str(notebook)]) == 0
    assert "fixed LS101 x1" in capsys.readouterr().err
    assert notebook.read_text() == EXPECTED.read_text()


# -- IPython syntax and the way back to cells -----------------------------------------------
MAGICS = [
    "%load_ext autoreload\n%autoreload 2\nimport torch",
    "files = !ls data\ntorch.nn.Linear?\n??torch.optim\n!pip install \\\n    lightning",
    "for epoch in range(2):\n    !nvidia-smi\n    %time x = torch.ones(2)",
    'doc = """\n% not a magic inside a string\n!nor this\n"""',
]


def test_magics_become_placeholders_that_parse_and_map_back_exactly() -> None:
    notebook = cells_of(*MAGICS)
    code = NotebookCode(notebook)
    compile(code.code, "<notebook>", "exec")
    assert "!" not in code.code.replace('"""\n% not a magic inside a string\n!nor this', "")
    assert len(code.magics) == 8
    assert code.rebuild(code.code) == notebook
    assert code.restore_magics(code.code).count("!pip install \\\n    lightning") == 1


def test_cells_whose_markers_are_gone_indented_or_misplaced_fold_into_the_cell_before() -> None:
    notebook = cells_of("a = 1", "b = 2", "def f():\n    return 3", "c = 4")
    code = NotebookCode(notebook)
    a, b, f, c = (f"# {code.tag} cell {index}" for index in (1, 3, 5, 7))
    assert code.code == f"{a}\na = 1\n{b}\nb = 2\n{f}\ndef f():\n    return 3\n{c}\nc = 4\n"
    # b's marker gone with its statement; f's marker indented into the body; c's cutting a block
    edited = f"{a}\na = 1\nb2 = 2\n{f}\ndef f():\n    {c}\n    return 3\nif a:\n{c}\n    c = 4\n"
    rebuilt = code.rebuild(edited)
    nbformat.validate(rebuilt)
    assert [cell.source for cell in rebuilt.cells] == [
        "Step 0",
        "a = 1\nb2 = 2",
        "Step 1",
        "Step 2",
        "def f():\n    return 3\nif a:\n    c = 4",
        "Step 3",
    ]
    # markers moved up the file, or repeated, are no boundaries: code keeps its order
    moved = code.rebuild(f"{a}\na = 1\n{c}\nc = 4\n{b}\nb = 2\n{c}\n{f}\ndef f():\n    return 3\n")
    assert [cell.source for cell in moved.cells if cell.cell_type == "code"] == [
        "a = 1",
        "c = 4\nb = 2\ndef f():\n    return 3",
    ]


def test_code_above_the_first_marker_joins_the_first_cell() -> None:
    code = NotebookCode(cells_of("x = 1", "y = 2"))
    rebuilt = code.rebuild("import lightning as L\n" + code.code)
    assert [cell.source for cell in rebuilt.cells if cell.cell_type == "code"] == [
        "import lightning as L\nx = 1",
        "y = 2",
    ]


def test_markers_avoid_words_the_notebook_uses() -> None:
    notebook = cells_of("loopshift = 1  # loopshift cell 1", "x = loopshift")
    code = NotebookCode(notebook)
    assert code.tag == "loopshift1" and code.rebuild(code.code) == notebook
    assert (
        code.rebuild(code.code.replace("x = loopshift", "x = loopshift + 1")).cells[3].source
        == "x = loopshift + 1"
    )


def test_a_flat_notebook_converts_cell_by_cell() -> None:
    notebook = converted(cells_of(*FLAT))
    sources = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    assert len(sources) == 3  # the optimizer's cell is gone into configure_optimizers
    assert "class LitModel(L.LightningModule):" in sources[0]
    assert sources[2].endswith("trainer.fit(lit_model, train_dataloaders=loader)")
    assert [cell.source for cell in notebook.cells if cell.cell_type == "markdown"] == [
        f"Step {n}" for n in range(4)
    ]


def one_cell_per_statement(source: str) -> nbformat.NotebookNode:
    import libcst as cst

    module = cst.parse_module(source)
    sources = [module.code_for_node(statement) for statement in module.body]
    sources[0] = cst.Module(body=[], header=module.header).code + sources[0]
    return cells_of(*sources)


@pytest.mark.parametrize(
    "case",
    [
        "flat_script",
        "mnist_style_functions",
        "corpus_dcgan_manual_optimization",
        "corpus_wide_deep_partial_accumulation",
        "hand_update_raw_tensors",
    ],
)
def test_a_script_cut_into_cells_converts_as_the_script(case: str) -> None:
    """Cells, wherever the converter moves their code, come back as the script's conversion, in
    order; its diagnostics point at the same lines in the cells; a second pass changes nothing."""
    script = (Path(__file__).parent / "fixtures" / case / "input.py").read_text()
    code = NotebookCode(one_cell_per_statement(script))
    result = convert_source(code.code)
    notebook = code.rebuild(result.code)
    nbformat.validate(notebook)
    sources = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    for source in sources:
        compile(source, case, "exec")
    lines = [line for line in "\n".join(sources).split("\n") if line.strip()]
    assert lines == [line for line in convert_source(script).code.split("\n") if line.strip()]
    assert [cell.source for cell in notebook.cells if cell.cell_type == "markdown"] == [
        cell.source for cell in code.notebook.cells if cell.cell_type == "markdown"
    ]
    script_lines = script.split("\n")
    for in_script, in_notebook in zip(convert_source(script).diagnostics, result.diagnostics, strict=True):
        located = code.in_cell(in_notebook)
        assert (
            code.notebook.cells[located.cell - 1].source.split("\n")[located.span.line - 1]
            == script_lines[in_script.span.line - 1]
        )
    again = NotebookCode(notebook)
    assert again.rebuild(convert_source(again.code).code) == notebook


# -- the converted notebook trains ----------------------------------------------------------
@pytest.mark.slow
def test_converted_notebook_reproduces_the_original_losses(tmp_path: Path) -> None:
    from loopshift.verify import verify

    original, script = tmp_path / "original.py", tmp_path / "converted.py"
    original.write_text(NotebookCode(read_notebook(INPUT)).code)  # IPython lines are inert strings there
    script.write_text(NotebookCode(read_notebook(EXPECTED)).code)
    result = verify(script, original=original, steps=10, timeout=240)
    assert result.ok, f"{result.message}\n{result.error}\n{result.output}"
    assert len(result.losses) == len(result.original_losses) == 10
    assert all(math.isfinite(loss) for loss in result.losses)
