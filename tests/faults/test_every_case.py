"""Every case of the fault matrix (tests/faults/matrix.py), one test each: collected only with
``--fault-matrix`` (``make faults``, and CI after ``make test``; see conftest.py)."""

from __future__ import annotations

from tests.faults import matrix


def test_the_world_is_whole_after_the_fault(matrix_case, record_result):
    index, case = matrix_case
    result = matrix.run_case(case)
    record_result(index, result)
    assert result.outcome is not None and not result.problems, result.problems
