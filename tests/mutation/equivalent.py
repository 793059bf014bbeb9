"""Mutants no test can tell from the original, each with why (they leave the score's denominator).

Keys are mutant names as `make mutation` reports them: mutmut's
(``blue_green.logic.<module>.x_<function>__mutmut_<n>``) and the state machines'
(``<machine>:<state>:<operator>[detail]``). A name here that no longer names a mutant of the same
meaning must be removed: mutmut numbers mutants per function, so editing a function renumbers them
(tests/mutation/test_sample.py checks every entry still names a generated mutant).
"""
from __future__ import annotations

EQUIVALENT: dict[str, str] = {}
