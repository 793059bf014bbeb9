"""``immutable-deploy deploy APP VERSION``: validate the request locally, start the deploy state
machine, follow it."""

from __future__ import annotations

import subprocess
from typing import Any

from pydantic import ValidationError

from immutable_deploy.domain.errors import InvalidDeploymentRequest
from immutable_deploy.domain.models.request import DeploymentRequest, Release, describe_validation_error, parse_app
from immutable_deploy.cli import exitcodes
from immutable_deploy.cli.commands.common import (
    Context,
    execution_name,
    follow_and_report,
    in_progress,
    load_profile_file,
    rejected,
    with_profile,
)
from immutable_deploy.cli.commands.history import started_by

NO_COMMIT = "release.commit: not given (--commit) and the working directory is not a git repository"


def release_problems(app: str, release: dict[str, str]) -> list[str]:
    """What is wrong with the app name and the release, by field: found before anything is read
    from AWS (the stored profile is read only for a request that could be valid)."""
    problems: list[str] = []
    try:
        parse_app(app)
    except ValueError as exc:
        problems += str(exc).split("; ")
    try:
        Release.model_validate(release)
    except ValidationError as exc:
        for problem in describe_validation_error(exc):
            problem = f"release.{problem}"
            problems.append(NO_COMMIT if problem == "release.commit: required field is missing" else problem)
    return problems


def git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def default_commit(git_ref: str) -> tuple[str | None, str]:
    """The commit of ``git_ref`` in the repository of the working directory, else its HEAD."""
    commit = git("rev-parse", "--verify", "--quiet", f"{git_ref}^{{commit}}")
    if commit:
        return commit, f"{git_ref} in the local repository"
    commit = git("rev-parse", "--verify", "--quiet", "HEAD")
    if commit:
        return commit, f"HEAD of the local repository ({git_ref} is not there)"
    return None, ""


def deploy(ctx: Context, args: Any) -> int:
    app, version = args.app, args.version
    override = load_profile_file(args.profile) if args.profile else None
    git_ref = args.git_ref or f"refs/tags/{version}"
    commit = args.commit
    if not commit:
        commit, source = default_commit(git_ref)
        if commit:
            ctx.say(f"commit {commit[:12]}: {source}")
    release = {"version": version, "git_ref": git_ref}
    if commit:
        release["commit"] = commit
    # what is sent: the release and only the --profile file; the workflow merges it over the stored profile
    early = release_problems(app, release)
    if early:
        return rejected(ctx, early)
    request: dict[str, Any] = {"app": app, "release": release}
    if args.force:
        request["force"] = True
    if override:
        request["profile"] = override
    try:
        complete = with_profile(ctx, request)
    except InvalidDeploymentRequest as exc:
        return rejected(ctx, exc.problems)
    problems: list[str] = []
    try:
        DeploymentRequest.model_validate(complete)
    except ValidationError as exc:
        for problem in describe_validation_error(exc):
            problems.append(NO_COMMIT if problem == "release.commit: required field is missing" else problem)
    if problems:
        return rejected(ctx, problems)
    holder = ctx.aws.running_holder(app)
    if holder:
        return in_progress(ctx, app, holder)
    name = execution_name(app, version)
    request["started_by"] = started_by(ctx.aws)  # who, for the history (immutable-deploy history)
    arn = ctx.aws.start_execution(ctx.aws.deploy_arn, name, request)
    ctx.say(f"Deploying {app} {version} ({git_ref} @ {commit[:12]}): execution {name}")
    ctx.say(f"  {arn}")
    if not args.wait:
        ctx.say(f"Not following. See it with: {ctx.hint(f'status {app}')}")
        ctx.result({"status": "RUNNING", "execution": arn, "name": name, "app": app, "version": version})
        return exitcodes.OK
    return follow_and_report(ctx, arn, app, "deploy")
