"""What the handlers put into the execution document and into notifications is bounded: SNS subjects
are valid whatever the text, an error leaves a handler with its class name and a short printable
message, a step's result has its notes cut and a size cap. Here: the subject SNS gets, through moto
(the rest, without AWS, is in tests/unit/test_bounds.py)."""

from __future__ import annotations

import json

import boto3
from moto import mock_aws

from immutable_deploy.domain import aws
from immutable_deploy.domain.adapters import notify


def test_published_notifications_carry_the_safe_subject(monkeypatch):
    with mock_aws():
        aws.reset_clients()
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        topic = sns.create_topic(Name="notify")["TopicArn"]
        queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        monkeypatch.setenv("NOTIFY_TOPIC_ARN", topic)
        notify.publish("web-" + "9" * 64 + ": ROLLBACK\nINCOMPLETE 🚨" + "!" * 50, "body", {"event": "x", "app": "web"})
        (message,) = sqs.receive_message(QueueUrl=queue)["Messages"]
        subject = json.loads(message["Body"])["Subject"]
        assert subject == notify.safe_subject("web-" + "9" * 64 + ": ROLLBACK\nINCOMPLETE 🚨" + "!" * 50)
        assert len(subject) == notify.SUBJECT_MAX and "\n" not in subject
        aws.reset_clients()
