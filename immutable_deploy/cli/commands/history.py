"""``immutable-deploy history APP``: past deployments, rollbacks and clean-ups of the app, newest first,
a page at a time; ``--timeline FILE.html`` renders one of them as a page (immutable_deploy.timeline).

The summaries are the state table's ``HISTORY#`` items, written by the stack's history function when
each execution ended (immutable_deploy.domain.logic.history), read through the table's ``history`` index (an app's,
newest first). ``--page TOKEN`` continues where a page stopped: the token is the last item's key,
base64 JSON, checked on the way in (a token that is not one this command printed is a usage error)."""

from __future__ import annotations

import base64
import binascii
import json
import re
import shlex
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from immutable_deploy.cli import exitcodes, follow as live
from immutable_deploy.cli.aws import Aws, CliError, error_code
from immutable_deploy.cli.commands.common import Context
from immutable_deploy.domain import contract
from immutable_deploy.domain.models.history import Summary
from immutable_deploy.domain.models.request import parse_app

#: a page token's version (a token of another shape is refused, never sent to DynamoDB)
PAGE_VERSION = 1
PAGE_TOKEN_MAX = 1024
ENDED = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")
STARTED_BY = re.compile(r"[\x20-\x7e]{1,256}")


def started_by(aws: Aws) -> str:
    """Who starts an execution: the caller's identity ARN (STS), else $USER, else ``unknown``."""
    who = aws.caller()
    return who if STARTED_BY.fullmatch(who) else contract.UNKNOWN_CALLER


# --- page tokens --------------------------------------------------------------------------------------


def page_token(key: dict[str, str]) -> str:
    """The token of the page after the item whose index key is ``key`` (pk, app, ended)."""
    body = {"v": PAGE_VERSION, "pk": key["pk"], "app": key["app"], "ended": key["ended"]}
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode().rstrip("=")


def start_key(token: str, app: str) -> dict[str, Any]:
    """The ExclusiveStartKey a token of :func:`page_token` stands for; CliError (usage) for anything else."""

    def refused(why: str) -> CliError:
        return CliError(f"--page: {why}; use the token a previous page of history {app} printed", exitcodes.USAGE)

    if not token or len(token) > PAGE_TOKEN_MAX or not re.fullmatch(r"[A-Za-z0-9_-]+", token):
        raise refused("not a page token")
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise refused("not a page token") from None
    if not isinstance(body, dict) or set(body) != {"v", "pk", "app", "ended"} or body["v"] != PAGE_VERSION:
        raise refused("not a page token")
    if body["app"] != app:
        raise refused(f"a token of another app's history ({str(body['app'])[:40]!r})")
    pk, ended = body["pk"], body["ended"]
    if not (isinstance(pk, str) and pk.startswith(contract.HISTORY_PREFIX) and len(pk) <= 200 and pk.isprintable()):
        raise refused("not a page token")
    if not (isinstance(ended, str) and ENDED.fullmatch(ended)):
        raise refused("not a page token")
    return {"pk": {"S": pk}, contract.HISTORY_APP: {"S": app}, contract.HISTORY_ENDED: {"S": ended}}


# --- reading ------------------------------------------------------------------------------------------


def read_page(aws: Aws, app: str, limit: int, start: dict[str, Any] | None) -> tuple[list[Summary], str | None]:
    """The app's summaries, newest first: at most ``limit`` after ``start``, and the next page's token
    when there are more (one item more is read to know it, so a last page has no token)."""
    found: list[tuple[dict[str, str], Summary]] = []
    kwargs: dict[str, Any] = {
        "TableName": aws.table,
        "IndexName": contract.HISTORY_INDEX,
        "KeyConditionExpression": "#app = :app",
        "ExpressionAttributeNames": {"#app": contract.HISTORY_APP},
        "ExpressionAttributeValues": {":app": {"S": app}},
        "ScanIndexForward": False,
    }
    if start:
        kwargs["ExclusiveStartKey"] = start
    dynamodb = aws.client("dynamodb")
    while len(found) <= limit:
        kwargs["Limit"] = limit + 1 - len(found)
        try:
            page = dynamodb.query(**kwargs)
        except ClientError as exc:
            # AWS: ValidationException "The table does not have the specified index"; moto: ResourceNotFound
            missing = error_code(exc) in ("ValidationException", "ResourceNotFoundException")
            if missing and "index" in str(exc).lower():
                raise CliError(
                    f"the state table {aws.table} has no index {contract.HISTORY_INDEX!r}: the stack predates the "
                    "history of deployments; deploy its current version (cdk deploy)"
                ) from None
            raise
        for item in page.get("Items", []):
            try:
                summary = Summary.model_validate_json(item["summary"]["S"])
            except (KeyError, ValidationError):
                continue  # not a summary this version can read: skipped, not fatal
            key = {"pk": item["pk"]["S"], "app": app, "ended": item[contract.HISTORY_ENDED]["S"]}
            found.append((key, summary))
        if not page.get("LastEvaluatedKey"):
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    more = len(found) > limit
    found = found[:limit]
    return [s for _, s in found], page_token(found[-1][0]) if more and found else None


# --- showing ------------------------------------------------------------------------------------------


def _what(s: Summary) -> str:
    if s.kind == "rollback":
        return f"to {s.serving_asg}" if s.serving_asg else "-"
    return s.version or "-"


def _outcome(s: Summary) -> str:
    return s.status if s.outcome == s.status else f"{s.status} {s.outcome}"


def _details(s: Summary) -> list[str]:
    lines = []
    if s.failed_state or s.cause:
        where = f"in {s.failed_state}" if s.failed_state else ""
        lines.append(f"failed {where}: {s.cause or s.error or ''}".replace(" :", ":"))
    if s.green_asg:
        lines.append(f"green {s.green_asg}" + (f", blue {s.blue_asg}" if s.blue_asg else ""))
    if s.cleans_up:
        lines.append(f"cleans up after {s.cleans_up}")
    if s.cleaned_up_by:
        lines.append(f"cleaned up by {s.cleaned_up_by}")
    lines += [f"undone: {note}" for note in s.undone]
    lines += [f"left behind: {note}" for note in s.left_behind]
    return lines


def show(ctx: Context, app: str, rows: list[Summary], next_page: str | None, limit: int) -> None:
    if not rows:
        ctx.say(f"No deployments or rollbacks of {app}.")
        return
    ctx.say(
        f"{'STARTED':<21} {'KIND':<9} {'VERSION':<22} {'OUTCOME':<32} {'DURATION':>8}  {'EXECUTION':<30} STARTED BY"
    )
    for s in rows:
        started = s.started_at[:19] + "Z"
        ctx.say(
            f"{started:<21} {s.kind:<9} {_what(s):<22} {_outcome(s):<32} "
            f"{live.duration(int(s.duration_seconds)):>8}  {s.execution_name:<30} {s.started_by}"
        )
        for line in _details(s):
            ctx.say(f"    {line}")
    if next_page:
        ctx.say("")
        ctx.say(f"More: {ctx.hint(f'history {shlex.quote(app)} --limit {limit} --page {next_page}')}")


def history(ctx: Context, args: Any) -> int:
    try:
        app = parse_app(args.app)
    except ValueError as exc:
        raise CliError(str(exc), exitcodes.USAGE) from None
    timeline = getattr(args, "timeline", None)
    if timeline is not None:
        from immutable_deploy import timeline as pages

        return pages.write_for(ctx, app, timeline, getattr(args, "execution", None))
    token = getattr(args, "page", None)
    start = start_key(token, app) if token is not None else None
    rows, next_page = read_page(ctx.aws, app, args.limit, start)
    show(ctx, app, rows, next_page, args.limit)
    ctx.result({"app": app, "executions": [s.model_dump(mode="json") for s in rows], "next_page": next_page})
    return exitcodes.OK
