"""Shared test setup: fake AWS credentials and quiet observability, before anything creates a client."""
from __future__ import annotations

import logging
import os

for _key, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_SERVICE_NAME": "immutable-deploy",
    "POWERTOOLS_METRICS_NAMESPACE": "ImmutableDeploy",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
}.items():
    os.environ[_key] = _value

logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
