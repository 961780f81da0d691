"""A script whose training loop lives in a module of its folder: convert follows the import and
converts the pair (`tests/data/trainer_pair`: train.py imports Trainer from trainer.py)."""

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopshift.cli import app
from loopshift.project import local_imports, with_imports_renamed

PAIR = Path(__file__).parent / "data" / "trainer_pair"


@pytest.fixture
def pair(tmp_path: Path) -> Path:
    folder = tmp_path / "pair"
    shutil.copytree(PAIR, folder)
    return folder


def convert(*args: str):
    return CliRunner().invoke(app, ["convert", *args])


def test_local_imports_resolve_against_the_scripts_folder(pair: Path) -> None:
    (pair / "helpers").mkdir()
    (pair / "helpers" / "__init__.py").write_text("")
    source = "import os\nimport helpers\nfrom trainer import Trainer\nfrom torch import nn\n"
    source += "from .missing import x\n"
    found = local_imports(pair / "train.py", source)
    assert [(i.module, i.file.name, i.line) for i in found] == [("trainer", "trainer.py", 3)]


def test_imports_of_the_converted_module_are_renamed_and_keep_the_scripts_names() -> None:
    source = "import os, trainer\nimport trainer as t\nfrom trainer import Trainer as T\n"
    source += "from .trainer import x\nfrom os import trainer\n"
    assert with_imports_renamed(source, {"trainer": "trainer_lightning"}) == (
        "import os, trainer_lightning as trainer\n"
        "import trainer_lightning as t\n"
        "from trainer_lightning import Trainer as T\n"
        "from .trainer_lightning import x\n"
        "from os import trainer\n"
    )


def test_write_mode_writes_both_outputs_and_the_script_imports_the_converted_module(pair: Path) -> None:
    result = convert("--target", "fabric", str(pair / "train.py"))
    assert result.exit_code == 0, result.output
    assert "following the import of `trainer` (line 7)" in result.output
    converted = (pair / "trainer_lightning.py").read_text()
    assert "fabric.backward(self.loss)" in converted
    script = (pair / "train_lightning.py").read_text()
    assert "from trainer_lightning import Trainer, TrainerConfig" in script
    assert script.replace("trainer_lightning", "trainer") == (pair / "train.py").read_text()
    assert (pair / "trainer.py").read_text() == (PAIR / "trainer.py").read_text()  # the originals stay


def test_in_place_rewrites_the_module_and_leaves_the_script(pair: Path) -> None:
    result = convert("--target", "fabric", "--in-place", str(pair / "train.py"))
    assert result.exit_code == 0, result.output
    assert (pair / "train.py").read_text() == (PAIR / "train.py").read_text()
    assert "self.fabric.setup(model, self.optimizer)" in (pair / "trainer.py").read_text()
    assert not (pair / "train_lightning.py").exists()


def test_diff_shows_the_modules_change_and_writes_nothing(pair: Path) -> None:
    result = convert("--target", "fabric", "--diff", str(pair / "train.py"))
    assert result.exit_code == 0, result.output
    assert "+            self.fabric.backward(self.loss)" in result.output
    assert sorted(p.name for p in pair.iterdir()) == ["train.py", "trainer.py"]


def test_stdout_names_the_module_that_trains(pair: Path) -> None:
    result = convert("--stdout", str(pair / "train.py"))
    assert "it imports `trainer` (line 7), which trains: convert" in result.output
    assert sorted(p.name for p in pair.iterdir()) == ["train.py", "trainer.py"]


def test_the_trainer_target_says_why_the_module_is_not_converted(pair: Path) -> None:
    result = convert(str(pair / "train.py"))
    assert "trainer.py:53:9: LS001" in result.output
    assert result.exit_code == 1
    assert "--target fabric" in result.output
    assert sorted(p.name for p in pair.iterdir()) == ["train.py", "trainer.py"]


def test_a_folder_converts_each_module_once_and_the_script_imports_it(pair: Path) -> None:
    result = convert("--target", "fabric", str(pair))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in pair.iterdir()) == [
        "train.py",
        "train_lightning.py",
        "trainer.py",
        "trainer_lightning.py",
    ]
    assert "from trainer_lightning import" in (pair / "train_lightning.py").read_text()


@pytest.mark.slow
def test_the_converted_pair_computes_the_original_losses(pair: Path) -> None:
    result = convert("--target", "auto", "--verify", str(pair / "train.py"))
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output, result.output
