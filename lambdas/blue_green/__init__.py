"""Domain code of Immutable Deploy's workflow: models, AWS adapters and the logic of each step.

Handlers in ``lambdas/handlers`` are thin wrappers over ``immutable_deploy.domain.logic``.
"""
