"""``immutable-deploy``: the operator's command for Immutable Deploy (click; the live view on rich).

    immutable-deploy [GLOBAL OPTIONS] deploy APP VERSION [--git-ref REF] [--commit SHA] [--overrides FILE]
                                             [--force] [--wait|--no-wait] [--json]
    immutable-deploy watch APP [--json]
    immutable-deploy approve APP [--comment TEXT] [--json]
    immutable-deploy reject APP --reason TEXT [--json]
    immutable-deploy promote APP [--json]
    immutable-deploy cancel APP [--reason TEXT] [--yes] [--wait|--no-wait] [--json]
    immutable-deploy rollback APP [--overrides FILE] [--force] [--wait|--no-wait] [--json]
    immutable-deploy status APP [--json]
    immutable-deploy history APP [--limit N] [--json]
    immutable-deploy profile check FILE [--json] | profile schema
    immutable-deploy local up [--port 4566] [--speedup 60] [--scenario KEY=VALUE ...] [--timeline FILE]
    immutable-deploy completion bash|zsh|fish

Global options (before the command, or after it): --region, --aws-profile, --endpoint-url (or
AWS_ENDPOINT_URL), --stack (default ImmutableDeploy), --deploy-arn, --rollback-arn, --cleanup-arn,
--table, --poll-seconds, --heartbeat. Exit codes: :mod:`immutable_deploy.cli.exitcodes`.
"""

from __future__ import annotations

from immutable_deploy.cli.app import main

__all__ = ["main"]
