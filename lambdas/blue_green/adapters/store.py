"""The state table (DynamoDB): per-app deployment locks and pending approvals.

One table, string partition key ``pk``: ``LOCK#<app>`` and ``APPROVAL#<app>``."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from immutable_deploy.domain.aws import client, error_code, state_table, transient_errors


def table_name() -> str:
    return state_table()


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, typed in item.items():
        ((kind, value),) = typed.items()
        out[key] = int(value) if kind == "N" else value
    return out


def _typed(values: dict[str, Any]) -> dict[str, Any]:
    return {k: ({"N": str(v)} if isinstance(v, int) else {"S": str(v)}) for k, v in values.items() if v is not None}


def get(pk: str) -> dict[str, Any] | None:
    with transient_errors():
        resp = client("dynamodb").get_item(TableName=table_name(), Key={"pk": {"S": pk}}, ConsistentRead=True)
    item = resp.get("Item")
    return _plain(item) if item else None


def put_if(
    pk: str,
    values: dict[str, Any],
    condition: str,
    names: dict[str, str] | None = None,
    condition_values: dict[str, Any] | None = None,
) -> bool:
    """Conditional put; False when the condition did not hold."""
    kwargs: dict[str, Any] = {
        "TableName": table_name(),
        "Item": {"pk": {"S": pk}, **_typed(values)},
        "ConditionExpression": condition,
    }
    if names:
        kwargs["ExpressionAttributeNames"] = names
    if condition_values:
        kwargs["ExpressionAttributeValues"] = _typed(condition_values)
    try:
        with transient_errors():
            client("dynamodb").put_item(**kwargs)
        return True
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise


def put(pk: str, values: dict[str, Any]) -> None:
    with transient_errors():
        client("dynamodb").put_item(TableName=table_name(), Item={"pk": {"S": pk}, **_typed(values)})


def delete_if_owner(pk: str, owner_field: str, owner: str) -> bool:
    try:
        with transient_errors():
            client("dynamodb").delete_item(
                TableName=table_name(),
                Key={"pk": {"S": pk}},
                ConditionExpression="#o = :o",
                ExpressionAttributeNames={"#o": owner_field},
                ExpressionAttributeValues={":o": {"S": owner}},
            )
        return True
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
