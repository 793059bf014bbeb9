"""Mutants no test can tell from the original, each with why (they leave the score's denominator).

Keys are mutant names as `make mutation` reports them: mutmut's
(``blue_green.logic.<module>.x_<function>__mutmut_<n>``) and the state machines'
(``<machine>:<state>:<operator>[detail]``). A name here that no longer names a mutant of the same
meaning must be removed: mutmut numbers mutants per function, so editing a function renumbers them
(tests/mutation/test_sample.py checks every entry still names a generated mutant).
"""
from __future__ import annotations

EQUIVALENT: dict[str, str] = {
    'blue_green.logic.audit.x_left_behind__mutmut_99':
        "the default only matters when the group has no suspended-by tag: the ARN (starts with 'arn:') and the short id (8 lowercase hex digits) are never substrings of '' nor of 'XXXX', so both defaults give 'not suspended by us'",
    'blue_green.logic.bake.x_apply_settings__mutmut_68':
        'drops attempt=1 from CommandRun(...), whose field default is attempt: int = 1, so the model is identical',
    'blue_green.logic.bake.x_check_settings__mutmut_68':
        "drops the status update, leaving the input's status, which is always SETTINGS here: only apply_settings (status SETTINGS) or a still-running check_settings (SETTINGS) lead to CheckProductionSettings (statemachine/deploy.py), so the result is identical",
    'blue_green.logic.bake.x_check_settings__mutmut_69':
        "drops the status update, leaving the input's status, which is always SETTINGS here: only apply_settings (status SETTINGS) or a still-running check_settings (SETTINGS) lead to CheckProductionSettings (statemachine/deploy.py), so the result is identical",
    'blue_green.logic.image.x_check__mutmut_55':
        "polling.advance's error parameter defaults to WaitTimedOut, so dropping the explicit WaitTimedOut argument raises the same error with the same message.",
    'blue_green.logic.image.x_create__mutmut_39':
        'ImageState.state defaults to "pending", so omitting state="pending" builds the same state.',
    'blue_green.logic.image.x_create__mutmut_40':
        'ImageState.snapshot_ids defaults to a new empty list (default_factory=list), so omitting snapshot_ids=[] builds the same state.',
    'blue_green.logic.lock.x_acquire__mutmut_18':
        "DynamoDB keywords in expressions (AND, OR) are case-insensitive (its reserved-word list 'is not case-sensitive') ('or' parses as 'OR', as moto's parser also does), so the conditional put behaves the same",
    'blue_green.logic.retention.x__delete_kept__mutmut_14':
        "autoscaling.delete_group's force parameter defaults to True, so delete_group(name) makes the same ForceDelete=True call.",
}
