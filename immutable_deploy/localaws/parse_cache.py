"""Parse each state machine definition once per process, not at every create and execution.

moto's Step Functions parses a definition with ANTLR when the state machine is created, again
when it is validated, and again at the start of every execution: about 1.2 s for the deploy
definition on this machine, which made it most of a scenario test's time. What takes the time is
the lexing and parsing into a syntax tree; turning the tree into the components an execution runs
(moto's ``Preprocessor``) is cheap. So the tree is kept, keyed by the definition's text, and every
call still gets components of its own from a fresh preprocessor: no execution shares state with
another, and a definition that does not parse still fails as before (failures are not kept).

Installed by the local AWS (``harness.provision``) beside the gap fixes; it changes no behaviour.
"""
from __future__ import annotations

import functools
import threading
from typing import Any, Callable

#: definitions kept: the deploy and rollback machines, and the few variants that tests create
_KEPT = 16


@functools.lru_cache(maxsize=_KEPT)
def _tree(definition: str) -> Any:
    from antlr4 import CommonTokenStream, InputStream
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLLexer import ASLLexer
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser
    from moto.stepfunctions.parser.asl.parse.asl_parser import ASLParserException, SyntaxErrorListener

    listener = SyntaxErrorListener()
    parser = ASLParser(CommonTokenStream(ASLLexer(InputStream(definition))))
    parser.removeErrorListeners()
    parser.addErrorListener(listener)
    tree = parser.state_machine()
    if listener.errors:
        raise ASLParserException(errors=listener.errors)
    return tree


_lock = threading.Lock()


def parse(definition: str) -> tuple[Any, Any]:
    """What ``AmazonStateLanguageParser.parse`` returns: fresh components, and the (shared) tree."""
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    with _lock:  # executions run in threads of their own; ANTLR's shared caches are not thread-safe
        tree = _tree(definition)
    return Preprocessor().visit(tree), tree


def parses() -> Any:
    """How many definitions were parsed and found again (``functools`` cache info)."""
    return _tree.cache_info()


def install() -> Callable[[], None]:
    """Route moto's parser through the cache; returns the function that undoes it."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    original = AmazonStateLanguageParser.__dict__["parse"]
    if getattr(original, "__func__", None) is parse:
        return lambda: None
    AmazonStateLanguageParser.parse = staticmethod(parse)  # type: ignore[method-assign]

    def uninstall() -> None:
        AmazonStateLanguageParser.parse = original  # type: ignore[method-assign]

    return uninstall
