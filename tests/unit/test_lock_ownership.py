"""Every step that changes AWS first checks that its execution still owns its app's lock: after a
takeover (this execution was stopped or failed, another one took the stale lock, this one was
redriven) the step fails with LockLost, naming the holder, before it touches anything. Undo steps
that touch only what this execution created run with or without the lock. Here: which actions need
the lock (the steps themselves, against moto, are in tests/integration/test_lock_ownership.py)."""

from __future__ import annotations

import importlib

from immutable_deploy.domain.handler import Locked

#: handler module -> the actions that need the lock (the Deploy and Rollback steps that change AWS)
LOCKED = {
    "bake": {
        "launch",
        "check",
        "relaunch",
        "apply_settings",
        "terminate",
        # a check sends the next migration
        "run_staging_migrations",
        "check_staging_migrations",
        "run_switch_migrations",
        "check_switch_migrations",
    },
    "image": {"create"},
    "fleet": {"create_launch", "create_group", "prune_kept"},
    "traffic": {
        "start_canary",
        "shift_canary",
        "end_canary",
        "undo_canary",
        "attach_green",
        "detach_blue",
        "suspend_blue",
        "scale_down_blue",
        "restore_blue",
        "detach_green",
        "rollback_attach",
        "rollback_detach",
        "rollback_undo",
    },
}


def test_the_actions_that_need_the_lock_are_exactly_those_that_change_aws():
    for module, expected in LOCKED.items():
        handler = importlib.import_module(f"immutable_deploy.handlers.{module}")
        tables = [handler.ACTIONS] + ([handler.ROLLBACK_ACTIONS] if module == "traffic" else [])
        marked = {name for table in tables for name, action in table.items() if isinstance(action, Locked)}
        assert marked == expected, module
    for module in ("approval", "audit", "request"):
        assert not hasattr(importlib.import_module(f"immutable_deploy.handlers.{module}"), "ACTIONS") or not any(
            isinstance(a, Locked) for a in importlib.import_module(f"immutable_deploy.handlers.{module}").ACTIONS.values()
        )
