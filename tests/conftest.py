"""Helpers shared by the test modules: the in-process ``bimix`` CLI runner."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NamedTuple

import pytest


class CliResult(NamedTuple):
    """What one ``bimix`` call left behind.

    Attributes
    ----------
    code : int
        Exit status; 0 where ``main`` returned or exited with code ``None`` or 0.
    out : str
        What the call wrote to stdout.
    err : str
        What the call wrote to stderr.
    """

    code: int
    out: str
    err: str

    def assert_user_error(self, *needles: str) -> None:
        """Assert the CLI's answer to bad input: exit 2, one ``error: `` line, no traceback.

        Parameters
        ----------
        *needles : str
            Texts the error line must contain.
        """
        assert self.code == 2, (self.code, self.err)
        assert self.err.startswith("error: ") and self.err.endswith("\n"), self.err
        assert self.err.count("\n") == 1, self.err
        assert "Traceback" not in self.err
        for needle in needles:
            assert needle in self.err, self.err


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``bimix`` in-process, as its script does.

    Returns
    -------
    callable
        ``cli(*argv)`` runs ``bimix_bayes.cli.main`` on ``argv`` (paths are turned into ``str``)
        and returns a :class:`CliResult` holding that call's exit status and output only.
    """
    from bimix_bayes.cli import main  # the CLI pulls in typer: only for tests that use it

    def run(*argv: str | os.PathLike[str]) -> CliResult:
        capsys.readouterr()  # drop what came before this call
        try:
            main([os.fspath(arg) for arg in argv])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
