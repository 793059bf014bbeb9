"""The commands, one module each: :mod:`.deploy`, :mod:`.approval` (approve and reject),
:mod:`.rollback`, :mod:`.status`, :mod:`.history`; what they share is in :mod:`.common`. ``app.py``
dispatches to each module's function of the command's name."""

from __future__ import annotations

from immutable_deploy.cli.commands.common import Context, execution_name

__all__ = ["Context", "execution_name"]
