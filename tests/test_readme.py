""".ci/run runs README's test command exactly as written there, and README's fast-tier command is
that command's pytest run with -m "not slow"."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def bash_block_after(text: str, marker: str) -> str:
    """The one-line ```bash block that follows the first line holding `marker`."""
    start = text.index(marker)
    return re.search(r"```bash\n(.*?)\n```", text[start:], re.S).group(1).strip()


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    command = bash_block_after(readme, "this is what `.ci/run` runs")
    ci = [
        line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")
    ]
    assert ci[-1] == command


def test_fast_tier_is_the_full_pytest_run_without_slow_tests():
    readme = (REPO / "README.md").read_text()
    full = bash_block_after(readme, "this is what `.ci/run` runs")
    fast = bash_block_after(readme, "The fast tier")
    pytest_run = full.split(" && ")[-1]
    assert fast == f'{pytest_run} -m "not slow"'
