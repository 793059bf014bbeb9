"""The commands, one module each: deploy, approve and reject (approval), rollback, status, history;
what they share is in :mod:`.common`. ``app.py`` dispatches to the functions named here."""
from __future__ import annotations

from immutable_deploy.cli.commands.approval import approve, reject
from immutable_deploy.cli.commands.common import Context, execution_name
from immutable_deploy.cli.commands.deploy import deploy
from immutable_deploy.cli.commands.history import history
from immutable_deploy.cli.commands.rollback import rollback
from immutable_deploy.cli.commands.status import status

__all__ = ["Context", "approve", "deploy", "execution_name", "history", "reject", "rollback", "status"]
