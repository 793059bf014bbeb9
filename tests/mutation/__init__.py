"""Mutation testing (``make mutation``, docs/reliability.md): mutmut over the domain logic, a mutator of
its own over the synthesized state machine definitions, and the fast sample of both that ``make test``
runs (test_sample.py)."""
