"""Exit codes of ``immutable-deploy``: what CI can rely on.

====  ======================================================================================
code  meaning
====  ======================================================================================
0     done as asked: deployed, rolled back, approved/rejected, status/history shown; with
      ``--no-wait``: the execution was started
1     unexpected error (AWS unreachable, stack not found, an execution that was aborted or
      timed out, a failure with an error this tool does not know)
2     usage error (bad command line)
3     rejected input: the request failed local validation (nothing was started) or the
      execution failed with ``InvalidDeploymentRequest``
4     a deployment or rollback of this app is in progress (``DeploymentInProgress``)
5     the deployment failed and was rolled back completely (``DeploymentRolledBack``)
6     rollback incomplete: something was left behind and needs a person (``RollbackIncomplete``),
      or held: past an irreversible migration, the person asked said not to roll back
      (``RollbackHeld``)
7     approval rejected (or timed out) (``ApprovalRejected``)
8     following stopped (Ctrl-C); the execution keeps running
9     the rollback state machine failed (``RollbackFailed``), had nothing to roll back
      (``NothingToRollBack``), or refused to go back past an irreversible migration without
      ``--force`` (``IrreversibleMigration``)
10    approve/reject: no deployment of this app is waiting for approval
====  ======================================================================================
"""

from __future__ import annotations

from immutable_deploy.domain import contract

OK = 0
ERROR = 1
USAGE = 2
REJECTED_INPUT = 3
IN_PROGRESS = 4
ROLLED_BACK = 5
ROLLBACK_INCOMPLETE = 6
APPROVAL_REJECTED = 7
FOLLOW_STOPPED = 8
ROLLBACK_FAILED = 9
NOTHING_PENDING = 10

#: execution error name -> exit code
BY_ERROR = {
    contract.INVALID_REQUEST: REJECTED_INPUT,
    contract.IN_PROGRESS: IN_PROGRESS,
    contract.ROLLED_BACK: ROLLED_BACK,
    contract.ROLLBACK_INCOMPLETE: ROLLBACK_INCOMPLETE,
    contract.APPROVAL_REJECTED: APPROVAL_REJECTED,
    contract.ROLLBACK_FAILED: ROLLBACK_FAILED,
    contract.NOTHING_TO_ROLL_BACK: ROLLBACK_FAILED,
    contract.IRREVERSIBLE_MIGRATION: ROLLBACK_FAILED,
    contract.ROLLBACK_HELD: ROLLBACK_INCOMPLETE,
}

EPILOG = """\
exit codes:
  0   deployed / rolled back as asked (with --no-wait: started); other commands: done
  1   unexpected error (also an execution aborted or timed out)
  2   usage error
  3   rejected input (local validation, nothing started; or InvalidDeploymentRequest)
  4   a deployment or rollback of the app is in progress (DeploymentInProgress)
  5   the deployment was rolled back (DeploymentRolledBack)
  6   rollback incomplete: resources left behind (RollbackIncomplete), or held (RollbackHeld)
  7   approval rejected or timed out (ApprovalRejected)
  8   following stopped with Ctrl-C; the execution keeps running
  9   rollback failed (RollbackFailed), nothing to roll back (NothingToRollBack), or refused past an
      irreversible migration without --force (IrreversibleMigration)
  10  approve/reject: nothing is waiting for approval
"""


def for_execution(desc: dict) -> int:
    """The exit code for a finished execution (``DescribeExecution``'s answer)."""
    status = desc.get("status")
    if status == "SUCCEEDED":
        return OK
    if status == "FAILED":
        return BY_ERROR.get(desc.get("error") or "", ERROR)
    return ERROR
