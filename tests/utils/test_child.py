"""run_in_child: the result, the exception and the log of a spawned process come back to the caller."""

from __future__ import annotations

import logging
import os

import pytest

from paddlex_feat.utils.child import run_in_child
from paddlex_feat.utils.errors import PaddlexFeatError
from paddlex_feat.utils.logger import logger


def test_the_function_runs_in_another_process_and_its_result_comes_back() -> None:
    assert run_in_child(os.getpid) != os.getpid()
    assert run_in_child(sum, [1, 2, 3]) == 6


def test_an_exception_in_the_child_is_raised_here_with_its_details() -> None:
    with pytest.raises(ValueError, match="invalid literal"):
        run_in_child(int, "not a number")
    # an error of ours raised in the child keeps its message and details
    with pytest.raises(PaddlexFeatError) as err:
        run_in_child(_raise, PaddlexFeatError("bad calibration", {"file": "x.txt"}))
    assert str(err.value) == "bad calibration" and err.value.details == {"file": "x.txt"}


def _raise(error: Exception) -> None:
    raise error


def test_a_child_that_crashes_is_an_error_not_a_dead_parent() -> None:
    with pytest.raises(PaddlexFeatError, match="died without an answer"):
        run_in_child(os.abort)


def test_the_childs_log_records_reach_the_parents_logger(caplog: pytest.LogCaptureFixture) -> None:
    logger.addHandler(caplog.handler)  # the CLI's setup_logging stops propagation to the root logger
    caplog.set_level(logging.INFO, logger=logger.name)
    try:
        run_in_child(logger.info, "hello from the child")
    finally:
        logger.removeHandler(caplog.handler)
    records = [r for r in caplog.records if r.getMessage() == "hello from the child"]
    assert records and all(r.process != os.getpid() for r in records)
