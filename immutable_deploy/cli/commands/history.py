"""``immutable-deploy history APP``: past deployments and rollbacks of the app, newest first."""

from __future__ import annotations

import heapq
from datetime import timezone
from typing import Any, Iterator

from immutable_deploy.cli import exitcodes, follow as live
from immutable_deploy.cli.aws import Aws
from immutable_deploy.cli.commands.common import Context, parse_cause, utcnow

SCAN_LIMIT = 1000  # executions described per state machine at most


def _rows(aws: Aws, machine: str, kind: str, app: str) -> Iterator[dict]:
    for scanned, ex in enumerate(aws.executions(machine)):
        if scanned >= SCAN_LIMIT:
            return
        desc = aws.describe_execution(ex["executionArn"])
        payload = parse_cause(desc.get("input"))
        if not isinstance(payload, dict) or payload.get("app") != app:
            continue
        release: dict[str, Any] = payload["release"] if isinstance(payload.get("release"), dict) else {}
        output = parse_cause(desc.get("output")) if desc.get("output") else None
        if kind == "deploy":
            version = release.get("version")
        else:
            version = (
                f"to {output.get('serving_asg')}" if isinstance(output, dict) and output.get("serving_asg") else None
            )
        start, stop = desc["startDate"], desc.get("stopDate")
        yield {
            "kind": kind,
            "name": desc.get("name") or ex["name"],
            "execution": ex["executionArn"],
            "status": desc["status"],
            "error": desc.get("error"),
            "version": version,
            "started": start.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "stopped": stop.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if stop else None,
            "seconds": int(((stop or utcnow()) - start).total_seconds()),
            "_start": start,
        }


def history(ctx: Context, args: Any) -> int:
    streams = [
        _rows(ctx.aws, ctx.aws.deploy_arn, "deploy", args.app),
        _rows(ctx.aws, ctx.aws.rollback_arn, "rollback", args.app),
    ]
    rows = []
    for row in heapq.merge(*streams, key=lambda r: r["_start"], reverse=True):
        rows.append(row)
        if len(rows) >= args.limit:
            break
    for row in rows:
        row.pop("_start")
    if not rows:
        ctx.say(f"No deployments or rollbacks of {args.app}.")
    else:
        ctx.say(f"{'STARTED':<21} {'KIND':<9} {'VERSION':<22} {'OUTCOME':<32} {'DURATION':>8}  EXECUTION")
        for r in rows:
            outcome = r["status"] + (f" {r['error']}" if r["error"] else "")
            ctx.say(
                f"{r['started']:<21} {r['kind']:<9} {str(r['version'] or '-'):<22} {outcome:<32} "
                f"{live.duration(r['seconds']):>8}  {r['name']}"
            )
    ctx.result({"app": args.app, "executions": rows})
    return exitcodes.OK
