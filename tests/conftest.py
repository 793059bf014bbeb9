"""Shared test setup: fake AWS credentials and quiet observability, before anything creates a client."""
from __future__ import annotations

import logging
import os

from immutable_deploy.localaws.harness import DEFAULT_ENV  # noqa: E402 (imports no AWS client)

os.environ.update(DEFAULT_ENV)
os.environ.update({"POWERTOOLS_LOG_LEVEL": "WARNING", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"})

logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
