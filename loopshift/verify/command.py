"""The `loopshift verify` command: a thin typer layer over `verify()`.

Registered in cli.py with
`app.command("verify", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})`
so that `loopshift verify SCRIPT -- --epochs 1` passes `--epochs 1` to SCRIPT.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from loopshift.source import InputError

if TYPE_CHECKING:  # the runner loads on use: `loopshift lint` never needs it
    from loopshift.verify.runner import ScriptError, VerifyResult

EXIT_PASS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
OUTPUT_LINES_ON_FAILURE = 20


def verify_command(
    script: Path = typer.Argument(..., help="The script to run (usually the converted one)."),
    original: Path | None = typer.Option(
        None, "--original", help="Check parity: the original script must compute the same losses."
    ),
    steps: int = typer.Option(
        1, "--steps", help="Batches per stage (fast_dev_run), or optimizer steps with --original."
    ),
    python: str | None = typer.Option(None, "--python", help="The interpreter to run the scripts with."),
    devices: int = typer.Option(
        1, "--devices", help="Run on CPU with strategy='ddp' and this many processes."
    ),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds before a run is killed and fails."),
    seed: int = typer.Option(0, "--seed", help="Seed set before each script starts."),
    rtol: float = typer.Option(1e-4, "--rtol", help="Relative tolerance of the loss comparison."),
    atol: float = typer.Option(0.0, "--atol", help="Absolute tolerance of the loss comparison."),
    summary: bool = typer.Option(False, "--summary", help="Print the layer table with In/Out sizes."),
    script_args: list[str] | None = typer.Argument(None, help="Arguments for SCRIPT, after --."),
) -> None:
    """Run SCRIPT for a few batches under a patched Trainer: PASS when it trains (and, with
    --original, when it computes the same losses as the original)."""
    from loopshift.verify.runner import verify

    try:
        result = verify(
            script,
            original=original,
            steps=steps,
            python=python,
            devices=devices,
            timeout=timeout,
            seed=seed,
            rtol=rtol,
            atol=atol,
            script_args=script_args or (),
            summary=summary,
        )
    except InputError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except FileNotFoundError as exc:
        typer.echo(f"{exc.filename}: error: {exc.strerror}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except ValueError as exc:
        typer.echo(f"{script}: error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    typer.echo(render_result(result, rtol=rtol, atol=atol))
    raise typer.Exit(EXIT_PASS if result.ok else EXIT_FAIL)


def render_result(result: VerifyResult, *, rtol: float = 1e-4, atol: float = 0.0) -> str:
    lines = [f"{'PASS' if result.ok else 'FAIL'} {result.message}"]
    if result.stages:
        lines.append(f"  stages  {', '.join(result.stages)}")
    if result.original_losses is not None:
        lines += loss_table(result.original_losses, result.losses, rtol, atol)
    elif result.losses:
        lines.append(f"  losses  {', '.join(f'{loss:.6g}' for loss in result.losses)}")
    lines.append(f"  time    {result.seconds:.1f} s")
    if result.summary:
        lines += ["", result.summary]
    output = result.output.rstrip()  # set only when it explains a failure better than a traceback
    if result.error is not None:
        lines += error_lines(result.error, with_traceback=not output)
    if output:
        lines += ["", "last lines of output:", *output.splitlines()[-OUTPUT_LINES_ON_FAILURE:]]
    return "\n".join(lines)


def loss_table(original: Sequence[float], converted: Sequence[float], rtol: float, atol: float) -> list[str]:
    """The losses side by side, one row per backward call; `<-` marks rows beyond tolerance."""
    from loopshift.verify.runner import losses_close

    lines = [f"  {'#':>4}  {'original':>14}  {'converted':>14}  {'difference':>11}"]
    for index in range(max(len(original), len(converted))):
        want = original[index] if index < len(original) else None
        got = converted[index] if index < len(converted) else None
        if want is None or got is None:
            difference, mark = "", "  <-"
        else:
            difference = f"{got - want:.3g}"
            mark = "" if losses_close(want, got, rtol, atol) else "  <-"
        lines.append(
            f"  {index + 1:>4}  {format_loss(want):>14}  {format_loss(got):>14}  {difference:>11}{mark}"
        )
    return lines


def format_loss(loss: float | None) -> str:
    return "-" if loss is None else f"{loss:.8g}"


def error_lines(error: ScriptError, *, with_traceback: bool) -> list[str]:
    lines = [""]
    if error.file:
        lines.append(f"  at {error.file}:{error.line}")
    if with_traceback:
        lines += [f"  {line}" for line in error.traceback]
    return lines
