from pathlib import Path

import pytest
from hypothesis import settings

FIXTURES = Path(__file__).parent / "fixtures"

# Programs drawn by each property test of tests/test_properties.py: 50 in a full run, 10 in the fast
# tier (-m "not slow"); --hypothesis-profile=full or =fast picks one by hand.
settings.register_profile("full", max_examples=50)
settings.register_profile("fast", max_examples=10)


def pytest_addoption(parser):
    parser.addoption(
        "--update-fixtures",
        action="store_true",
        help="rewrite expected.py / diagnostics.txt where they differ, for review in the diff",
    )


def pytest_configure(config):
    if not config.getoption("hypothesis_profile", None):
        settings.load_profile("fast" if "not slow" in (config.option.markexpr or "") else "full")


@pytest.fixture
def update_fixtures(request) -> bool:
    return request.config.getoption("--update-fixtures")


def check_golden(path: Path, actual: str, update: bool) -> None:
    """The golden file holds `actual`; with --update-fixtures it is rewritten first (review the diff)."""
    if update and (not path.exists() or path.read_text() != actual):
        path.write_text(actual)
    assert path.read_text() == actual, f"{path} differs; run pytest --update-fixtures and review the diff"


def rendered(result, case: Path) -> str:
    """A conversion's diagnostics as the CLI prints them, for a fixture's input.py."""
    return "".join(d.render(f"{case.name}/input.py") + "\n" for d in result.diagnostics)
