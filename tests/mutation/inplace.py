"""Change one line of a loaded module's source, in this process, for as long as a test runs.

What `make mutation` does to a copy of the code, done to the module that is already imported: the
changed source is compiled and every function of the module (and every method of its classes) takes
the code of its changed twin, so a caller that imported the function by name (``from m import f``)
runs the change too; a changed constant (a list of names, a limit) is changed in place, or, when it
cannot be (a number, a string), set again in every module that imported it by name. Everything is put
back when the ``with`` block ends.

Every function takes its twin's code even where the line did not change it, so a run with the
unchanged source (:func:`changed_source` with ``old == new``) checks the mechanism itself: the
tests must pass and nothing is reported changed.

The functions keep their own globals (the module's): only code and constants change, never the
identity of a class, an error or a model, so nothing that was imported before tells the two apart.
Not thread-safe against tests running at the same time in this process (pytest runs one at a time).
"""

from __future__ import annotations

import builtins
import importlib
import sys
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

_MISSING = object()


def _fingerprint(code: types.CodeType) -> tuple:
    """What a function does, without where its lines are (a changed line above it moves them)."""
    consts = tuple(_fingerprint(c) if isinstance(c, types.CodeType) else (type(c), c) for c in code.co_consts)
    return code.co_code, consts, code.co_names, code.co_varnames, code.co_freevars


def _functions(value: Any) -> Iterator[tuple[str, types.FunctionType]]:
    """The plain functions a module attribute or a class attribute holds (a method, a static or a class
    method, a property's accessors), by a name that pairs it with its twin."""
    if isinstance(value, types.FunctionType):
        yield "", value
    elif isinstance(value, (staticmethod, classmethod)) and isinstance(value.__func__, types.FunctionType):
        yield "", value.__func__
    elif isinstance(value, property):
        for accessor in ("fget", "fset", "fdel"):
            function = getattr(value, accessor)
            if isinstance(function, types.FunctionType):
                yield f".{accessor}", function


class _Swap:
    """The changes made to a module, and how to undo them."""

    def __init__(self, module: types.ModuleType) -> None:
        self.module = module
        self.changed: list[str] = []
        self.undo: list[Callable[[], None]] = []

    def code(self, name: str, current: types.FunctionType, twin: types.FunctionType) -> None:
        if len(current.__code__.co_freevars) != len(twin.__code__.co_freevars):
            raise RuntimeError(f"{name}: its closure changed; change a line that keeps it")
        saved = current.__code__, current.__defaults__, current.__kwdefaults__
        if _fingerprint(saved[0]) != _fingerprint(twin.__code__) or saved[1:] != (
            twin.__defaults__,
            twin.__kwdefaults__,
        ):
            self.changed.append(name)
        current.__code__, current.__defaults__, current.__kwdefaults__ = (
            twin.__code__,
            twin.__defaults__,
            twin.__kwdefaults__,
        )

        def undo() -> None:
            current.__code__, current.__defaults__, current.__kwdefaults__ = saved

        self.undo.append(undo)

    def members(self, name: str, current: Any, twin: Any) -> None:
        """Functions held by the attribute (or, for a class of the module, by its attributes)."""
        if isinstance(current, type) and isinstance(twin, type) and current.__module__ == self.module.__name__:
            for member, value in vars(twin).items():
                if member in vars(current):
                    self.members(f"{name}.{member}", vars(current)[member], value)
            return
        currents, twins = dict(_functions(current)), dict(_functions(twin))
        for suffix, function in currents.items():
            if suffix in twins and function.__module__ == self.module.__name__:
                self.code(name + suffix, function, twins[suffix])

    def constant(self, name: str, current: Any, twin: Any) -> None:
        if type(current) is not type(twin) or current == twin:
            return
        self.changed.append(name)
        if isinstance(current, list):
            saved_list = list(current)
            current[:] = twin
            self.undo.append(lambda: current.__setitem__(slice(None), saved_list))
        elif isinstance(current, (dict, set)):
            saved = current.copy()
            current.clear()
            current.update(twin)
            self.undo.append(lambda: (current.clear(), current.update(saved)))
        else:  # immutable: set again wherever it was imported by name
            holders = [m for m in list(sys.modules.values()) if getattr(m, name, _MISSING) is current]
            for holder in holders:
                setattr(holder, name, twin)
            self.undo.append(lambda: [setattr(holder, name, current) for holder in holders])


def _as_own(value: Any, own: dict[int, Any]) -> Any:
    """``value`` with every object of the twin module replaced by the module's own of the same name."""
    if isinstance(value, (list, tuple, set, frozenset)):
        return type(value)(_as_own(item, own) for item in value)
    if isinstance(value, dict):
        return {_as_own(key, own): _as_own(item, own) for key, item in value.items()}
    if isinstance(value, (types.FunctionType, type)):
        return own.get(id(value), value)
    return value


_CONSTANTS = (bool, int, float, str, bytes, tuple, frozenset, list, dict, set, type(None))


@contextmanager
def changed_source(module_name: str, old: str, new: str) -> Iterator[list[str]]:
    """Run the ``with`` block with ``old`` (found exactly once in the module's source) replaced by
    ``new``; yields the names of the functions and constants that the change changed."""
    module = importlib.import_module(module_name)
    path = Path(module.__file__ or "")
    source = path.read_text()
    if source.count(old) != 1:
        raise AssertionError(f"{path.name} no longer holds, exactly once, the line this break changes")
    twin: dict[str, Any] = {
        "__name__": module.__name__,
        "__file__": module.__file__,
        "__package__": module.__package__,
        "__builtins__": builtins,
    }
    exec(compile(source.replace(old, new), str(path), "exec"), twin)  # noqa: S102 - the project's own source
    swap = _Swap(module)
    # a constant may hold the module's functions (a table of actions): the twin's stand for the module's
    own = {id(value): vars(module)[name] for name, value in twin.items() if name in vars(module)}
    try:
        for name, value in twin.items():
            current = vars(module).get(name, _MISSING)
            if current is _MISSING or name.startswith("__"):
                continue
            if isinstance(value, _CONSTANTS) and not isinstance(value, type):
                swap.constant(name, current, _as_own(value, own))
            else:
                swap.members(name, current, value)
        yield swap.changed
    finally:
        for undo in reversed(swap.undo):
            undo()
