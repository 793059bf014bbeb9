"""``immutable-deploy deploy APP VERSION``: validate the request locally, start the deploy state
machine, follow it."""

from __future__ import annotations

import subprocess
from typing import Any

from pydantic import ValidationError

from immutable_deploy.cli import exitcodes
from immutable_deploy.cli.aws import CliError
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
from immutable_deploy.domain.errors import InvalidDeploymentRequest
from immutable_deploy.domain.models.request import DeploymentRequest, Release, describe_validation_error, parse_app

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
    """``git ARGS`` in the working directory: its output, or None when it fails (or git is missing)."""
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def local_commit(git_ref: str) -> str | None:
    """The commit ``git_ref`` names in the git repository of the working directory, or None when the
    directory is not in a git repository or the ref is not there. Never HEAD instead: a deployment of
    whatever happens to be checked out is not the release. (``git_ref`` was validated as a ref name; it
    follows --end-of-options all the same.)"""
    return git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{git_ref}^{{commit}}")


def resolve_commit(git_ref: str, commit: str | None) -> tuple[str, str]:
    """The release's commit and where it came from: ``commit`` (checked against the ref when the ref is
    in the local repository), else the ref's commit there. Raises a usage error (CliError, exit 2) when
    there is none, or when the two disagree."""
    found = local_commit(git_ref)
    if commit:
        if found and not found.lower().startswith(commit.strip().lower()):
            raise CliError(
                f"--commit {commit} is not the commit of {git_ref} in the local git repository ({found}): "
                f"deploy the commit the release's ref names, or pass the --git-ref that names {commit}",
                exitcodes.USAGE,
            )
        return commit, ""
    if found:
        return found, f"{git_ref} in the local git repository"
    where = (
        "is not in the local git repository"
        if git("rev-parse", "--git-dir")
        else ("cannot be read: the working directory is not in a git repository")
    )
    raise CliError(
        f"no commit for the release: {git_ref} {where}; pass --commit SHA (the release's commit)", exitcodes.USAGE
    )


def deploy(ctx: Context, args: Any) -> int:
    app, version = args.app, args.version
    override = load_profile_file(args.overrides) if args.overrides else None
    git_ref = args.git_ref or f"refs/tags/{version}"
    # the app and the release as given are checked before anything else (git is asked only about a valid ref)
    given = {"version": version, "git_ref": git_ref, **({"commit": args.commit} if args.commit else {})}
    early = [p for p in release_problems(app, given) if p != NO_COMMIT]
    if early:
        return rejected(ctx, early)
    commit, source = resolve_commit(git_ref, args.commit)
    if source:
        ctx.say(f"commit {commit[:12]}: {source}")
    release = {"version": version, "git_ref": git_ref, "commit": commit}
    # what is sent: the release and only the --overrides file; the workflow merges it over the stored profile
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
