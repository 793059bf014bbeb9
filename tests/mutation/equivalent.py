"""Mutants no test can tell from the original, each with why (they leave the score's denominator).

Keys are mutant names as `make mutation` reports them: mutmut's
(``blue_green.logic.<module>.x_<function>__mutmut_<n>``) and the state machines'
(``<machine>:<state>:<operator>[detail]``). A name here that no longer names a mutant of the same
meaning must be removed: mutmut numbers mutants per function, so editing a function renumbers them
(tests/mutation/test_sample.py checks every entry still names a generated mutant).
"""
from __future__ import annotations

EQUIVALENT: dict[str, str] = {
    'blue_green.logic.audit.x_left_behind__mutmut_68':
        "the default only matters when the group has no suspended-by tag: the ARN (starts with 'arn:') and the short id (8 lowercase hex digits) are never substrings of '' nor of 'XXXX', so both defaults give 'not suspended by us'",
    'blue_green.logic.bake.x__launched__mutmut_19':
        "drops status='BOOTING' from BakeState(...), whose field default is 'BOOTING', so the model is identical",
    'blue_green.logic.bake.x__launched__mutmut_22':
        'drops command=None from BakeState(...), whose field default is None, so the model is identical',
    'blue_green.logic.bake.x_apply_settings__mutmut_62':
        'drops attempt=1 from CommandRun(...), whose field default is attempt: int = 1, so the model is identical',
    'blue_green.logic.bake.x_check__mutmut_84':
        "'or True' takes bake.command whatever its purpose, but CheckStaging only ever sees a command set by _send_ready (purpose 'ready') or none (launch/relaunch set command=None; apply_settings, which sets the production_settings command, runs only after CheckStaging is done, statemachine/deploy.py), and with none the result is None either way",
    'blue_green.logic.bake.x_check__mutmut_94':
        "note=None instead of note='' for the first attempt: _send_ready only uses note through 'if note', and both are falsy, so the text and the state are identical",
    'blue_green.logic.bake.x_check_settings__mutmut_50':
        "drops the status update, leaving the input's status, which is always SETTINGS here: only apply_settings (status SETTINGS) or a still-running check_settings (SETTINGS) lead to CheckProductionSettings (statemachine/deploy.py), so the result is identical",
    'blue_green.logic.bake.x_check_settings__mutmut_51':
        "drops the status update, leaving the input's status, which is always SETTINGS here: only apply_settings (status SETTINGS) or a still-running check_settings (SETTINGS) lead to CheckProductionSettings (statemachine/deploy.py), so the result is identical",
    'blue_green.logic.fleet.x__group_tags__mutmut_12':
        'propagate always holds every key of tags (autoscaling._group builds both from the same tag list), so get(key, None) never falls back to its default.',
    'blue_green.logic.fleet.x__group_tags__mutmut_14':
        'propagate always holds every key of tags (autoscaling._group builds both from the same tag list), so get(key) never falls back to a default.',
    'blue_green.logic.fleet.x__group_tags__mutmut_15':
        'propagate always holds every key of tags (autoscaling._group builds both from the same tag list), so get(key, True) never falls back to its default.',
    'blue_green.logic.fleet.x__has_dimension__mutmut_12':
        "alarm.get('Metrics', None) or [] is the same list as alarm.get('Metrics', []) or [] for every alarm.",
    'blue_green.logic.fleet.x__has_dimension__mutmut_14':
        "alarm.get('Metrics') or [] is the same list as alarm.get('Metrics', []) or [] for every alarm.",
    'blue_green.logic.fleet.x__launch_source__mutmut_8':
        'in launch_configuration mode state.launch_configuration_name is always set to names.launch_configuration (create_launch sets it; create_group runs create_launch when there is no fleet state), so `and` and `or` yield the same name.',
    'blue_green.logic.fleet.x__repoint__mutmut_28':
        'the leaves reached are JSON scalars from boto3 (str, int, float, bool, None), which copy.copy and copy.deepcopy both return as is.',
    'blue_green.logic.fleet.x_check__mutmut_63':
        "check only runs on a fleet state whose status is LAUNCHING (written by create_group or a previous not-healthy check; 'Green healthy?' leaves the loop on HEALTHY), so dropping the status update keeps LAUNCHING.",
    'blue_green.logic.fleet.x_check__mutmut_64':
        "check only runs on a fleet state whose status is LAUNCHING (written by create_group or a previous not-healthy check; 'Green healthy?' leaves the loop on HEALTHY), so dropping the status update keeps LAUNCHING.",
    'blue_green.logic.fleet.x_check_group_deleted__mutmut_12':
        'check_group_deleted only runs when $.undo.delete_group.deleting is true (an Error result goes to delete_launch), i.e. on a result of delete_group/check_group_deleted, which always has undone.',
    'blue_green.logic.fleet.x_check_group_deleted__mutmut_14':
        'check_group_deleted only runs when $.undo.delete_group.deleting is true (an Error result goes to delete_launch), i.e. on a result of delete_group/check_group_deleted, which always has undone.',
    'blue_green.logic.fleet.x_check_group_deleted__mutmut_19':
        "$.undo.delete_group is always a dict (a result of delete_group/check_group_deleted, or a Catch's {Error, Cause}), so the isinstance check is always true.",
    'blue_green.logic.fleet.x_check_group_deleted__mutmut_40':
        'Poll holds only str and int fields, whose python and JSON dumps are the same; model_dump(mode=None) is python mode.',
    'blue_green.logic.fleet.x_check_group_deleted__mutmut_41':
        "Poll holds only str and int fields, whose python and JSON dumps are the same; pydantic treats any mode but 'json' as python mode.",
    'blue_green.logic.fleet.x_check_group_deleted__mutmut_42':
        "Poll holds only str and int fields, whose python and JSON dumps are the same; pydantic treats any mode but 'json' as python mode.",
    'blue_green.logic.fleet.x_check_group_deleted__mutmut_57':
        'Poll holds only str and int fields, whose python and JSON dumps are the same; model_dump(mode=None) is python mode.',
    'blue_green.logic.fleet.x_check_group_deleted__mutmut_58':
        "Poll holds only str and int fields, whose python and JSON dumps are the same; pydantic treats any mode but 'json' as python mode.",
    'blue_green.logic.fleet.x_check_group_deleted__mutmut_59':
        "Poll holds only str and int fields, whose python and JSON dumps are the same; pydantic treats any mode but 'json' as python mode.",
    'blue_green.logic.fleet.x_check_group_deleted__mutmut_9':
        "$.undo.delete_group is always a dict (a result of delete_group/check_group_deleted, or a Catch's {Error, Cause}), so the isinstance check is always true.",
    'blue_green.logic.fleet.x_create_group__mutmut_109':
        'state.green_asg already equals names.green_asg (create_launch, or the fleet state it wrote, sets it), so dropping the green_asg update changes nothing.',
    'blue_green.logic.fleet.x_create_group__mutmut_110':
        'state.green_asg already equals names.green_asg (create_launch, or the fleet state it wrote, sets it), so dropping the green_asg update changes nothing.',
    'blue_green.logic.fleet.x_create_group__mutmut_115':
        "the state create_group updates is create_launch's (status defaults to LAUNCHING; check, which sets HEALTHY, only runs after create_group), so dropping the status update keeps LAUNCHING.",
    'blue_green.logic.fleet.x_create_group__mutmut_116':
        "the state create_group updates is create_launch's (status defaults to LAUNCHING; check, which sets HEALTHY, only runs after create_group), so dropping the status update keeps LAUNCHING.",
    'blue_green.logic.fleet.x_delete_group__mutmut_34':
        "autoscaling.delete_group's force parameter defaults to True, so leaving it out sends the same ForceDelete=True.",
    'blue_green.logic.fleet.x_delete_group__mutmut_47':
        'Poll holds only str and int fields, whose python and JSON dumps are the same; model_dump(mode=None) is python mode.',
    'blue_green.logic.fleet.x_delete_group__mutmut_52':
        "Poll holds only str and int fields, whose python and JSON dumps are the same; pydantic treats any mode but 'json' as python mode.",
    'blue_green.logic.fleet.x_delete_group__mutmut_53':
        "Poll holds only str and int fields, whose python and JSON dumps are the same; pydantic treats any mode but 'json' as python mode.",
    'blue_green.logic.image.x_check__mutmut_52':
        "polling.advance's error parameter defaults to WaitTimedOut, so dropping the explicit WaitTimedOut argument raises the same error with the same message.",
    'blue_green.logic.image.x_create__mutmut_35':
        'ImageState.state defaults to "pending", so omitting state="pending" builds the same state.',
    'blue_green.logic.image.x_create__mutmut_36':
        'ImageState.snapshot_ids defaults to a new empty list (default_factory=list), so omitting snapshot_ids=[] builds the same state.',
    'blue_green.logic.lock.x_acquire__mutmut_18':
        "DynamoDB keywords in expressions (AND, OR) are case-insensitive (its reserved-word list 'is not case-sensitive') ('or' parses as 'OR', as moto's parser also does), so the conditional put behaves the same",
    'blue_green.logic.request.x__instance_profile_problems__mutmut_16':
        "arn.rsplit('/') instead of arn.rsplit('/', 1): the last element (the role name) is the same for every string",
    'blue_green.logic.request.x__instance_profile_problems__mutmut_19':
        "arn.rsplit('/', 2)[-1] instead of arn.rsplit('/', 1)[-1]: the last element (the role name) is the same for every string",
    'blue_green.logic.request.x__instance_profile_problems__mutmut_20':
        "[+1] instead of [-1] on arn.rsplit('/', 1): the roles are IAM role ARNs (inventory.instance_profile_roles returns Roles[].Arn), which always contain '/' (arn:aws:iam::<account>:role/<path><name>), so the split has exactly two parts and [1] is [-1]",
    'blue_green.logic.request.x__instance_profile_problems__mutmut_32':
        "arn.rsplit('/') instead of arn.rsplit('/', 1) in the message: the last element (the role name) is the same for every string",
    'blue_green.logic.request.x__instance_profile_problems__mutmut_35':
        "arn.rsplit('/', 2)[-1] instead of arn.rsplit('/', 1)[-1] in the message: the last element (the role name) is the same for every string",
    'blue_green.logic.request.x__instance_profile_problems__mutmut_36':
        "[+1] instead of [-1] on arn.rsplit('/', 1) in the message: IAM role ARNs always contain '/', so the split has exactly two parts and [1] is [-1]",
    'blue_green.logic.retention.x__delete_kept__mutmut_14':
        "autoscaling.delete_group's force parameter defaults to True, so delete_group(name) makes the same ForceDelete=True call.",
    'blue_green.logic.traffic.x__health__mutmut_11':
        "the default desired (0 vs 1) when the group is gone only changes the 'shown' denominators; callers passing desired=None either discard 'shown' (_blue_serves, restore_blue, rollback_undo) or (rollback_check/rollback_detach) call _health right after _previous found the group, so only a group deleted between two describe calls could show 0/1 instead of 0/0; ok is False either way.",
    'blue_green.logic.traffic.x__health__mutmut_24':
        "counts is never empty: _health gets either the profile's Traffic (validated to name at least one target) or a blue group's targets, which discovery.serving_groups only records when it serves at least one of the profile's targets.",
    'blue_green.logic.traffic.x__health__mutmut_26':
        "counts is never empty (the profile's Traffic names at least one target; discovery records only blue groups serving one of them), so the fallback 0 vs 1 is never used.",
    'blue_green.logic.traffic.x__label__mutmut_2':
        "elb.target_group_label returns its argument unchanged when it has no ':targetgroup/' part, which a classic ELB name (letters, digits, hyphens) never has.",
    'blue_green.logic.traffic.x__resume__mutmut_15':
        '`short or ""` vs `short or "XXXX"` differ only for an empty/None short id with a non-None arn; every caller passing an arn passes names.short_id, which naming.short_id makes 8 hex characters.',
    'blue_green.logic.traffic.x_attach_green__mutmut_15':
        'drops status="ATTACHING" from TrafficState(...), whose default status is "ATTACHING": the same state.',
    'blue_green.logic.traffic.x_check_blue__mutmut_42':
        'Poll has only str and int fields, so model_dump(mode=None) returns the same dict as mode="json".',
    'blue_green.logic.traffic.x_check_blue__mutmut_43':
        'Poll has only str and int fields, and pydantic treats a mode other than "json" as python mode: the same dict.',
    'blue_green.logic.traffic.x_check_blue__mutmut_44':
        'Poll has only str and int fields, and pydantic treats a mode other than "json" as python mode: the same dict.',
    'blue_green.logic.traffic.x_check_blue__mutmut_65':
        'Poll has only str and int fields, so model_dump(mode=None) returns the same dict as mode="json".',
    'blue_green.logic.traffic.x_check_blue__mutmut_66':
        'Poll has only str and int fields, and pydantic treats a mode other than "json" as python mode: the same dict.',
    'blue_green.logic.traffic.x_check_blue__mutmut_67':
        'Poll has only str and int fields, and pydantic treats a mode other than "json" as python mode: the same dict.',
    'blue_green.logic.traffic.x_restore_blue__mutmut_4':
        'waiting = None instead of False: it is only read by `if waiting:` (and set to True), so None and False act alike.',
    'blue_green.logic.traffic.x_restore_blue__mutmut_70':
        'Poll has only str and int fields, so model_dump(mode=None) returns the same dict as mode="json".',
    'blue_green.logic.traffic.x_restore_blue__mutmut_72':
        'Poll has only str and int fields, and pydantic treats a mode other than "json" as python mode: the same dict.',
    'blue_green.logic.traffic.x_restore_blue__mutmut_73':
        'Poll has only str and int fields, and pydantic treats a mode other than "json" as python mode: the same dict.',
    'blue_green.logic.traffic.x_rollback_attach__mutmut_22':
        'drops status="ATTACHING" from TrafficState(...), whose default status is "ATTACHING": the same state.',
}
