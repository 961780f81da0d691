"""The metric a converted validation (or test) logs is the number the original evaluation function returned:
both run on the same weights and data (the fixture's own model, dataset and evaluation code)."""

import importlib.util
import inspect
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import FIXTURES

pytestmark = pytest.mark.slow
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch = L = None  # imported when a test here first runs, not at collection (seconds, the fast tier too)


@pytest.fixture(scope="module", autouse=True)
def torch_and_lightning():
    global torch, L
    torch = pytest.importorskip("torch")
    L = pytest.importorskip("lightning")


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def fixture_modules(case: str):
    original = load(FIXTURES / case / "input.py", f"original_{case}")
    converted = load(FIXTURES / case / "expected.py", f"converted_{case}")
    return original, converted


def logged_by_validation(converted, model, loader, stage="validate", **values) -> dict:
    """Builds the generated LightningModule around `model` (other constructor arguments by name, None
    where the evaluation does not read them) and returns what `trainer.validate` (or `.test`) logged."""
    lit_class = next(
        c
        for c in vars(converted).values()
        if inspect.isclass(c) and issubclass(c, L.LightningModule) and c.__module__ == converted.__name__
    )
    params = list(inspect.signature(lit_class).parameters)
    lit = lit_class(*(model if p == "model" else values.get(p) for p in params))
    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    return getattr(trainer, stage)(lit, dataloaders=loader, verbose=False)[0]


def test_accuracy_of_a_test_function():
    original, converted = fixture_modules("corpus_mnist_dry_run_break")
    torch.manual_seed(0)
    model = original.DigitNet()
    loader = torch.utils.data.DataLoader(original.SyntheticDigits(96, seed=5), batch_size=32)
    expected = original.test(model, torch.device("cpu"), loader)
    logged = logged_by_validation(converted, model, loader, test_loader=loader, args=SimpleNamespace())
    assert logged["accuracy"] == pytest.approx(expected, rel=1e-6)


def test_loss_and_accuracy_returned_as_a_tuple():
    original, converted = fixture_modules("corpus_transformer_accumulation")
    torch.manual_seed(0)
    dataset = original.SyntheticReviews(80, seed=3)
    model = original.TransformerClassifier(vocab_size=200)
    loader = torch.utils.data.DataLoader(dataset, batch_size=16, collate_fn=original.collate_batch)
    expected_loss, expected_acc = original.evaluate(model, loader, torch.device("cpu"))
    logged = logged_by_validation(converted, model, loader, eval_loader=loader, args=SimpleNamespace())
    assert logged["eval_loss"] == pytest.approx(expected_loss, rel=1e-6)
    assert logged["eval_acc"] == pytest.approx(expected_acc, rel=1e-6)


def test_mean_squared_error_over_the_dataset():
    original, converted = fixture_modules("corpus_tabular_plateau_early_stop")
    X, y = original.make_housing_frame(120, seed=1)
    dataset = original.HousingDataset(X, y)
    torch.manual_seed(0)
    model = original.PriceMLP(in_features=X.shape[1])
    loader = torch.utils.data.DataLoader(dataset, batch_size=32)
    criterion = torch.nn.MSELoss()
    expected = original.evaluate(model, loader, criterion, torch.device("cpu"))
    logged = logged_by_validation(converted, model, loader, val_loader=loader, criterion=criterion)
    assert logged["val_loss"] == pytest.approx(expected, rel=1e-6)


def test_test_metrics_after_training():
    original, converted = fixture_modules("test_after_training")
    torch.manual_seed(0)
    model = original.Classifier()
    loader = torch.utils.data.DataLoader(original.make_split(96, seed=4), batch_size=32)
    expected_loss, expected_acc = original.test(model, loader, torch.device("cpu"))
    logged = logged_by_validation(converted, model, loader, stage="test")
    assert logged == pytest.approx({"test_loss": expected_loss, "test_acc": expected_acc}, rel=1e-6)
