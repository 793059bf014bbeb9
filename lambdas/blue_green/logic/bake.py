"""BAKE: launch the staging instance, wait until it is ready, apply the production settings, and
terminate it once the image exists (or as the undo).

Every action takes the whole :class:`DeployDocument` and returns the new ``$.bake``
(:class:`BakeState`), except ``terminate`` which returns ``{"undone": [...]}``.
"""

from __future__ import annotations

from typing import Any, Sequence

from aws_lambda_powertools.metrics import MetricUnit

from immutable_deploy.domain import contract, naming, polling
from immutable_deploy.domain.adapters import ec2, ssm
from immutable_deploy.domain.errors import CommandFailed, StagingInterrupted, StagingLaunchFailed, StagingNotReady, TransientAwsError
from immutable_deploy.domain.handler import BadEvent
from immutable_deploy.domain.logic import pace
from immutable_deploy.domain.models.aws import Instance
from immutable_deploy.domain.models.request import render
from immutable_deploy.domain.models.state import BakeState, CommandRun, DeployDocument, Plan
from immutable_deploy.domain.observability import logger, metrics

ROLE = "staging"
#: which launch of this execution an instance is (1, or 2 after an interruption)
TAG_LAUNCH = contract.TAG_LAUNCH
MAX_LAUNCHES = 2
#: an instance in one of these states will not become ready: the bake was interrupted
GONE_STATES = frozenset({"shutting-down", "terminated", "stopping", "stopped"})
SPOT_OPTIONS = {
    "MarketType": "spot",
    "SpotOptions": {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"},
}
EXCERPT = 500


#: the ready commands' attempts whose completion events end the staging loop's wait early
WATCHED_ATTEMPTS = 3


def duration_text(seconds: int) -> str:
    """``80`` -> ``1m20s``; ``3725`` -> ``1h02m05s``."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def excerpt(text: str, limit: int = EXCERPT) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def require_bake(doc: DeployDocument) -> BakeState:
    if doc.bake is None:
        raise BadEvent("the document has no $.bake: the staging instance was never launched")
    return doc.bake


def rendered(plan: Plan, commands: list[str]) -> list[str]:
    """The commands as Run Command receives them: placeholders filled, shell-quoted, for this release."""
    return [render(command, plan.app, plan.release) for command in commands]


def _identity(plan: Plan) -> dict[str, str]:
    return {naming.TAG_EXECUTION: plan.execution.arn, naming.TAG_ROLE: ROLE}


# --- launch ----------------------------------------------------------------------------------


def launch(doc: DeployDocument) -> BakeState:
    """Launch the staging instance (launch number 1), or find the one a previous run launched."""
    return _launch(doc.request, number=1, fallbacks=[])


def _launch(plan: Plan, number: int, fallbacks: list[str]) -> BakeState:
    bake = plan.profile.bake
    existing = ec2.find_instances(_identity(plan) | {TAG_LAUNCH: str(number)})
    if existing:
        instance = existing[-1]
        logger.info("staging instance already launched", extra={"instance_id": instance.instance_id})
        return _launched(plan, instance, number, fallbacks)

    markets = ["spot", "on-demand"] if bake.market == "spot" else ["on-demand"]
    refused: list[str] = []  # notes kept in BakeState.fallbacks
    reasons: list[str] = []  # every refusal, for StagingLaunchFailed
    for market in markets:
        if market == "on-demand" and bake.market == "spot":
            refused.append("spot refused for every instance type and subnet, falling back to on-demand")
        for instance_type in bake.instance_types:
            for subnet_id in bake.subnet_ids:
                try:
                    instance = ec2.run_instance(_run_params(plan, number, instance_type, subnet_id, market))
                except ec2.LaunchRefused as exc:
                    refused.append(f"{market} {instance_type} in {subnet_id}: {exc}")
                    reasons.append(refused[-1])
                    logger.warning(
                        "staging launch refused",
                        extra={
                            "market": market,
                            "instance_type": instance_type,
                            "subnet_id": subnet_id,
                            "reason": str(exc),
                        },
                    )
                    continue
                return _launched(plan, instance, number, fallbacks + refused)
    raise StagingLaunchFailed(f"no staging instance could be launched (launch {number}): " + "; ".join(reasons))


def _run_params(plan: Plan, number: int, instance_type: str, subnet_id: str, market: str) -> dict[str, Any]:
    bake = plan.profile.bake
    tags = naming.as_tag_list(
        dict(plan.tags) | {"Name": plan.names.staging, naming.TAG_ROLE: ROLE, TAG_LAUNCH: str(number)}
    )
    # every resource the launch creates carries the tags IAM checks (aws:RequestTag, then aws:ResourceTag)
    resource_types = ["instance", "volume", "network-interface"] + (
        ["spot-instances-request"] if market == "spot" else []
    )
    params: dict[str, Any] = {
        "ImageId": bake.source_ami_id,
        "InstanceType": instance_type,
        "SubnetId": subnet_id,
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
        "TagSpecifications": [{"ResourceType": rt, "Tags": tags} for rt in resource_types],
        "ClientToken": naming.client_token(plan.execution.arn, str(number), instance_type, subnet_id, market),
    }
    user_data = render(bake.user_data, plan.app, plan.release)
    if user_data:
        params["UserData"] = user_data
    if bake.security_group_ids:
        params["SecurityGroupIds"] = list(bake.security_group_ids)
    if bake.key_name:
        params["KeyName"] = bake.key_name
    if bake.instance_profile:
        params["IamInstanceProfile"] = {"Name": bake.instance_profile}
    if market == "spot":
        params["InstanceMarketOptions"] = SPOT_OPTIONS
    return params


def _launched(plan: Plan, instance: Instance, number: int, fallbacks: list[str]) -> BakeState:
    timing = plan.profile.timing
    return BakeState(
        instance_id=instance.instance_id,
        instance_type=instance.instance_type,
        subnet_id=instance.subnet_id,
        market=instance.market,
        launches=number,
        fallbacks=fallbacks,
        status="BOOTING",
        private_ip=instance.private_ip,
        public_ip=instance.public_ip,
        command=None,
        # looked at first when this app's staging instances were ready before (immutable_deploy.domain.logic.pace)
        poll=polling.start(timing, timing.ready_timeout_seconds, expect=pace.expectation(plan.app, "staging_boot")),
        progress=f"staging {instance.instance_id} launched ({instance.market} {instance.instance_type} "
        f"in {instance.subnet_id}, launch {number})",
    )


# --- check -----------------------------------------------------------------------------------


def check(doc: DeployDocument) -> BakeState:
    """One look at the staging instance: BOOTING -> CHECKING -> READY, or INTERRUPTED."""
    plan, bake = doc.request, require_bake(doc)
    instance = ec2.describe_instance(bake.instance_id)
    if instance is None:  # just launched: DescribeInstances may not know it yet
        return _waiting(plan, bake, "booting (not visible yet)", status="BOOTING")

    seen = {"private_ip": instance.private_ip or bake.private_ip, "public_ip": instance.public_ip or bake.public_ip}
    bake = bake.model_copy(update=seen)
    state = instance.state
    if state in GONE_STATES:
        reason = instance.state_reason or "no reason given"
        logger.warning(
            "staging instance interrupted", extra={"instance_id": bake.instance_id, "state": state, "reason": reason}
        )
        return bake.model_copy(
            update={"status": "INTERRUPTED", "progress": f"staging {bake.instance_id} {state}: {reason}"}
        )
    if state != "running":
        return _waiting(plan, bake, "booting", status="BOOTING")

    checks = ec2.status_checks(bake.instance_id)
    if checks.instance != "ok" or checks.system != "ok":
        return _waiting(
            plan, bake, f"status checks (instance {checks.instance}, system {checks.system})", status="BOOTING"
        )
    if bake.status == "BOOTING":
        # booted and checked: what it took tells the next deployment when to look (immutable_deploy.domain.logic.pace)
        pace.learn(plan.app, "staging_boot", polling.elapsed(bake.poll))

    commands = plan.profile.bake.ready_commands
    if not commands:
        return _ready(bake, "status checks passed")

    run = bake.command if bake.command is not None and bake.command.purpose == "ready" else None
    if run is None:
        return _send_ready(plan, bake, attempt=1, note="")

    result = ssm.invocation(run.command_id, bake.instance_id)
    if result.status == ssm.SUCCEEDED:
        return _ready(bake, f"ready commands passed (attempt {run.attempt})")
    if result.status in ssm.FAILED:
        note = f"attempt {run.attempt} {result.details or result.status}: " + excerpt(
            result.stderr or result.stdout, 200
        )
        logger.info("ready commands failed, sending them again", extra={"attempt": run.attempt, "result": note})
        return _send_ready(plan, bake, attempt=run.attempt + 1, note=note)
    return _waiting(
        plan,
        bake,
        f"ready commands (attempt {run.attempt}, {result.status})",
        status="CHECKING",
        watch=_watched(run.command_id, run.attempt),
    )


def _watched(command_id: str, attempt: int) -> list[str]:
    """What a wait for the ready commands watches: their command, for the first
    :data:`WATCHED_ATTEMPTS` attempts. Each event ends a round early; past those, the commands are
    polled, so that commands failing in a second cannot spin the loop (and the execution's history:
    ``budget`` counts the rounds the events can add)."""
    return [command_id] if attempt <= WATCHED_ATTEMPTS else []


def _send_ready(plan: Plan, bake: BakeState, attempt: int, note: str) -> BakeState:
    what = f"ready commands (attempt {attempt})" + (f"; {note}" if note else "")
    try:
        command_id = ssm.send_command(
            bake.instance_id,
            rendered(plan, plan.profile.bake.ready_commands),
            f"{plan.app} {plan.release.version} ready check",
        )
    except ssm.InstanceNotManaged:
        # status checks pass before the SSM agent has registered: wait for it (same attempt number)
        return _waiting(plan, bake, "the SSM agent to register" + (f"; {note}" if note else ""), status="CHECKING")
    run = CommandRun(purpose="ready", command_id=command_id, attempt=attempt)
    # the wait's second phase: commands take seconds where the boot took minutes, so the backoff starts
    # again (once: a command sent again after a failure keeps the backoff it has)
    return _waiting(
        plan,
        bake.model_copy(update={"command": run}),
        what,
        status="CHECKING",
        restart=attempt == 1,
        watch=_watched(command_id, attempt),
    )


def _waiting(
    plan: Plan, bake: BakeState, what: str, status: str, restart: bool = False, watch: Sequence[str] = ()
) -> BakeState:
    """Not ready yet: next poll (raises StagingNotReady once the ready timeout has passed). ``watch``:
    the command whose completion event ends the next wait early (booting and status checks send none
    that says the instance is ready: those are polled)."""
    poll = polling.advance(
        bake.poll,
        plan.profile.timing,
        f"staging {bake.instance_id} not ready: {what}",
        StagingNotReady,
        restart=restart,
        watch=watch,
    )
    progress = f"staging {bake.instance_id} {what} {duration_text(polling.elapsed(bake.poll))}"
    return bake.model_copy(update={"status": status, "poll": poll, "progress": progress})


def _ready(bake: BakeState, how: str) -> BakeState:
    seconds = polling.elapsed(bake.poll)
    if bake.status != "READY":
        metrics.add_metric(name="BakeDuration", unit=MetricUnit.Seconds, value=seconds)
    return bake.model_copy(
        update={
            "status": "READY",
            "progress": f"staging {bake.instance_id} ready after {duration_text(seconds)} ({how})",
        }
    )


# --- relaunch --------------------------------------------------------------------------------


def relaunch(doc: DeployDocument) -> BakeState:
    """After INTERRUPTED: launch once more (launch number 2); a second interruption is fatal."""
    plan, bake = doc.request, require_bake(doc)
    if bake.launches >= MAX_LAUNCHES:
        raise StagingInterrupted(
            f"staging instance {bake.instance_id} was interrupted on launch {bake.launches} and the one relaunch "
            f"is used: {bake.progress}"
        )
    instance = ec2.describe_instance(bake.instance_id)
    reason = bake.progress
    if instance is not None:
        reason = f"{instance.state}: {instance.state_reason or 'no reason given'}"
        if instance.state not in ("terminated", "shutting-down"):
            ec2.terminate_instances([bake.instance_id])
        if instance.spot_request_id:
            ec2.cancel_spot_requests([instance.spot_request_id])
    note = f"launch {bake.launches} {bake.instance_id} ({bake.market} {bake.instance_type}) interrupted: {reason}"
    return _launch(plan, number=bake.launches + 1, fallbacks=list(bake.fallbacks) + [note])


# --- production settings ---------------------------------------------------------------------


def send_once(plan: Plan, instance_id: str, commands: list[str], comment: str) -> str:
    """The id of the command sent under ``comment`` to ``instance_id``: the one a previous run of the
    step sent, else ``commands`` (rendered) sent now. An unreachable SSM agent is transient (retried)."""
    try:
        return ssm.find_command(instance_id, comment) or ssm.send_command(
            instance_id, rendered(plan, commands), comment
        )
    except ssm.InstanceNotManaged as exc:
        raise TransientAwsError(f"the SSM agent of {instance_id} is not reachable: {exc}") from exc


def apply_settings(doc: DeployDocument) -> BakeState:
    """Send the production settings commands (after approval, before the image)."""
    plan, bake = doc.request, require_bake(doc)
    commands = plan.profile.bake.production_settings_commands
    if not commands:
        return bake.model_copy(update={"status": "SETTINGS_APPLIED", "progress": "no production settings commands"})
    instance = ec2.describe_instance(bake.instance_id)
    if instance is None or instance.state != "running":
        # e.g. a spot interruption while the release waited for approval: what was approved is gone
        state = "gone" if instance is None else f"{instance.state} ({instance.state_reason or 'no reason given'})"
        raise StagingInterrupted(
            f"staging {bake.instance_id} is {state}: it was lost before the production settings; deploy again"
        )
    comment = f"immutable-deploy {plan.names.short_id} {plan.app} {plan.release.version} production settings"
    command_id = send_once(plan, bake.instance_id, commands, comment)
    timing = plan.profile.timing
    return bake.model_copy(
        update={
            "status": "SETTINGS",
            "command": CommandRun(purpose="production_settings", command_id=command_id, attempt=1),
            "poll": polling.start(timing, timing.ready_timeout_seconds, watch=[command_id]),
            "progress": f"staging {bake.instance_id} production settings sent ({command_id})",
        }
    )


def check_settings(doc: DeployDocument) -> BakeState:
    plan, bake = doc.request, require_bake(doc)
    run = bake.command
    if run is None or run.purpose != "production_settings":
        if bake.status == "SETTINGS_APPLIED":
            return bake
        raise BadEvent("check_settings: no production settings command was sent")
    result = ssm.invocation(run.command_id, bake.instance_id)
    if result.status == ssm.SUCCEEDED:
        return bake.model_copy(
            update={"status": "SETTINGS_APPLIED", "progress": f"staging {bake.instance_id} production settings applied"}
        )
    if result.status in ssm.FAILED:
        raise CommandFailed(
            f"production settings commands {run.command_id} on {bake.instance_id}: {result.details or result.status}"
            f" (exit code {result.response_code}): " + excerpt(result.stderr or result.stdout or "no output")
        )
    poll = polling.advance(
        bake.poll,
        plan.profile.timing,
        f"production settings commands {run.command_id} still {result.status}",
        CommandFailed,
    )
    progress = (
        f"staging {bake.instance_id} production settings {result.status} {duration_text(polling.elapsed(bake.poll))}"
    )
    return bake.model_copy(update={"status": "SETTINGS", "poll": poll, "progress": progress})


# --- terminate (success path and undo) -------------------------------------------------------


def terminate(doc: DeployDocument) -> dict[str, list[str]]:
    """Terminate every staging instance of this execution (found by tags, not only by the
    document) and cancel their spot requests. Idempotent."""
    plan = doc.request
    undone: list[str] = []
    instances = ec2.find_instances(_identity(plan))
    for instance_id in ec2.terminate_instances([i.instance_id for i in instances]):
        undone.append(f"terminated staging instance {instance_id}")
    spot_requests = {i.spot_request_id for i in instances if i.spot_request_id}
    spot_requests.update(ec2.find_spot_requests(_identity(plan)))
    for request_id in ec2.cancel_spot_requests(sorted(spot_requests)):
        undone.append(f"cancelled spot request {request_id}")
    return {"undone": undone}
