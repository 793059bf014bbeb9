"""moto, made faster for the local AWS without changing what it answers.

**Each state machine definition is parsed once per process**, not at every create and execution.
moto's Step Functions parses a definition with ANTLR when the state machine is created, again
when it is validated, and again at the start of every execution: about 1.2 s for the deploy
definition on this machine, which made it most of a scenario test's time. What takes the time is
the lexing and parsing into a syntax tree; turning the tree into the components an execution runs
(moto's ``Preprocessor``) is cheaper, the more so as each rule's text is kept with it. So the tree
is kept, keyed by the definition's text, and a definition that does not parse still fails as before
(failures are not kept). The components are kept too, and shared by the definition's executions,
when they keep no state of an execution (no Map or Parallel state; see :func:`_shareable`): 50 ms of
every deployment, a twentieth of its time.

**moto's request dispatch lists a response class's methods once per class**, not with
``inspect.getmembers`` at every request (3% of a scenario's time).

**The local AWS's own clients are created once per process** (:func:`client`): creating a boto3
client takes 20-50 ms, and the stack, the world and the harness used to create a few dozen for every
test (a tenth of a scenario's time). moto intercepts every client made after it is imported.

**A definition that passed moto's validation once is not validated again**
(:func:`remember_valid_definitions`), and **moto's Step Functions interpreter reuses one client per
region, service and endpoint** instead of creating one for every Task (:func:`reuse_interpreter_clients`).

**A JSONPath is parsed once per process** (:func:`install`): moto's interpreter parses each path with
jsonpath-ng (a PLY grammar) at every evaluation, a twentieth of a scenario's time; the parsed
expressions are kept by their text (finding and updating never change them). Like every cache
:func:`install` puts in, it outlives the local AWS that installed it (:func:`_kept`): each test's
local AWS installs them again, and used to start them empty.

**moto's table of a service's error shapes is built once** (:func:`_one_error_lookup`): moto makes a new
lookup, and builds the table from the whole service model again, for every error it answers.

**moto's XML is written straight into strings** (``xml_emit.py``): the same bytes xmltodict's SAX
generator writes, a twentieth of the suite's CPU; and **botocore parses each timestamp once**
(:func:`_parsed_timestamps`): moto and botocore read the same launch times and dates over and over.

**The interpreter copies state data as JSON** (:func:`json_copy`): moto deep-copies a state's input
for every path it reads; the data is JSON (dicts, lists, strings, numbers, booleans, null), which a
plain recursive copy duplicates several times faster than ``copy.deepcopy`` (anything else is still
deep-copied).

**A client class's methods are built once per service model** (:func:`share_client_methods`): botocore
builds one function per operation (EC2 has more than 700) for every client it creates, a third of
the time the moto-backed tests spent creating the 1,700 clients they make.

**moto finds each response field's attribute the same way once per kind of object**
(:func:`_picked_value`): for every field of every response it builds a context and asks six alias
providers which attribute names to try (a tenth of a scenario's time); the names depend only on the
object's class, the field and its place in the service's model, so they are kept by those.

**Requests are signed with a fixed signature** (:func:`_unsigned`): moto checks no signature and reads
only the access key of a request's ``Authorization`` header (to tell accounts apart), which is still
the caller's; computing SigV4 (a canonical request, a hash of the body, four HMACs) was a twentieth
of a scenario's time.

**moto draws its random ids and request ids in one call each** (:func:`_random_string`), not one call
per character (a request id is 52): 2% of a call's time.

**SNS signs with one key per process** (:func:`_one_signing_key`): moto generated a 2048-bit RSA key for
every subscription it delivered to, 50-100 ms each.

**moto's URL callbacks are built once per process** (:func:`reuse_url_callbacks`): every time a mock
starts, moto builds a ``responses`` callback for each of its ~180 URL patterns and seven HTTP methods
(1,288 of them): 27 ms of every local AWS and of every test's own ``mock_aws``.

**moto finds a service's backends without scanning every service's** (:func:`index_backend_dicts`): each
time anything reads a backend (every request, several times), moto checks that the service is in its
list of backend dictionaries by comparing it with each of the list's ~150 entries, under a lock, after
copying the dictionary's keys into a list: 1.4% of the suite's CPU.

Installed by the local AWS (``harness.provision`` and ``LocalAws``) beside the gap fixes; none
changes behaviour.
"""

from __future__ import annotations

import copy
import functools
import os
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import boto3


def client(service: str, region: str = "us-east-1") -> Any:
    """A boto3 client of the default session, shared by everything in this process that asks for the
    same service, region, endpoint and credentials (botocore clients are thread-safe)."""
    return _client(service, region, os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("AWS_ACCESS_KEY_ID"))


@functools.lru_cache(maxsize=256)
def _client(service: str, region: str, _endpoint: str | None, _key: str | None) -> Any:
    return boto3.client(service, region_name=region)


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
    _keep_texts(tree)
    return tree


def _keep_texts(tree: Any) -> None:
    """Give every rule of a parsed tree its text once: moto's preprocessor asks each rule for it
    (ANTLR joins it from the tokens below at every call), half of the 80 ms an execution of the
    deploy machine spent turning the kept tree into its components. The tree is never changed after
    the parse, so the text a rule had then is its text for good."""
    from antlr4 import ParserRuleContext

    order, stack = [], [tree]
    while stack:  # every rule, each after its parent: read backwards, each after its children
        node = stack.pop()
        order.append(node)
        stack.extend(child for child in node.children or () if isinstance(child, ParserRuleContext))
    for node in reversed(order):
        text = "".join(child.getText() for child in node.children or ())
        node.getText = functools.partial(str, text)  # the instance's own, before the class's method


_lock = threading.Lock()


#: the components of each definition whose components executions can share (:func:`_shareable`), kept
#: with the tree they were made from (at most ``_KEPT``, the oldest dropped first)
_programs: dict[str, tuple[Any, Any]] = {}
_shared_hits = [0]


def parse(definition: str) -> tuple[Any, Any]:
    """What ``AmazonStateLanguageParser.parse`` returns: the components, and the (shared) tree. A
    definition's components are made once and shared by its executions when none of them keeps state of
    its own (:func:`_shareable`); otherwise every call gets fresh ones."""
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    with _lock:  # executions run in threads of their own; ANTLR's shared caches are not thread-safe
        kept = _programs.get(definition)
        if kept is not None:
            _shared_hits[0] += 1
            return kept
        tree = _tree(definition)
    program = Preprocessor().visit(tree)
    if not _shareable(program):
        return program, tree
    with _lock:
        if len(_programs) >= _KEPT:
            del _programs[next(iter(_programs))]
        return _programs.setdefault(definition, (program, tree))


def _shareable(program: Any) -> bool:
    """Whether executions can share ``program``'s components: moto's interpreter keeps an execution's
    state in its environment, never in a component, except in Map and Parallel states (their workers and
    map runs), and each component names its slots in the environment with an id it draws when first
    asked (``heap_key``). So a program without Map and Parallel states is shared once every component has
    drawn its id (drawn here, before any execution could race to draw two)."""
    from moto.stepfunctions.parser.asl.component.component import Component
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel.state_parallel import StateParallel

    seen: set[int] = set()
    found: list[Any] = [program]
    while found:
        value = found.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, (StateMap, StateParallel)):
            return False
        if isinstance(value, EvalComponent):
            value.heap_key  # noqa: B018 - drawn now, once
        if isinstance(value, Component):
            found.extend(vars(value).values())
        elif isinstance(value, dict):
            found.extend(value.values())
        elif isinstance(value, (list, tuple, set, frozenset)):
            found.extend(value)
    return True


def _method_names(original: Callable[[object], list[str]]) -> Callable[[object], list[str]]:
    @functools.lru_cache(maxsize=None)
    def names(clazz: object) -> list[str]:
        return original(clazz)

    names.__wrapped__ = original
    return names


def parses() -> Any:
    """How many definitions were parsed (``misses``) and found again (``hits``: a kept tree, or kept
    components), as ``functools`` cache info."""
    info = _tree.cache_info()
    return info._replace(hits=info.hits + _shared_hits[0])


def json_copy(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, strings, numbers, booleans, None); any other value in it
    (a datetime, a dict subclass) is copied by ``copy.deepcopy``."""
    kind = type(value)
    if kind is dict:
        return {key: json_copy(item) for key, item in value.items()}
    if kind is list:
        return [json_copy(item) for item in value]
    if kind in _IMMUTABLE:
        return value
    return copy.deepcopy(value)


_IMMUTABLE = frozenset({str, int, float, bool, type(None)})


class _JsonCopyModule:
    """Stands in for the ``copy`` module in moto's interpreter modules: ``deepcopy`` is :func:`json_copy`."""

    deepcopy = staticmethod(lambda value, memo=None: json_copy(value))
    copy = staticmethod(copy.copy)


def _interpreter_modules() -> list[Any]:
    from moto.stepfunctions.parser.asl.component.common.string import string_expression
    from moto.stepfunctions.parser.asl.component.state.exec import execute_state
    from moto.stepfunctions.parser.asl.eval import states

    return [states, string_expression, execute_state]


def install() -> Callable[[], None]:
    """Route moto's parser, its JSONPaths, its copies of state data and its dispatch through the
    caches; returns the function that undoes it."""
    import xmltodict
    from botocore import auth, utils as botocore_utils
    from moto.core import errors, responses, serialize
    from moto.moto_api._internal import moto_random
    from moto.sns import models as sns_models
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.utils import json_path

    from immutable_deploy.localaws import xml_emit
    from immutable_deploy.localaws.sim.scheduler import Patches

    if getattr(AmazonStateLanguageParser.__dict__["parse"], "__func__", None) is parse:
        return lambda: None
    patches = Patches()
    patches.set(AmazonStateLanguageParser, "parse", staticmethod(parse))
    # an lru_cache wrapper of moto's listing
    patches.set(responses, "method_names_from_class", _kept(_method_names, responses.method_names_from_class))
    for module in _interpreter_modules():
        patches.set(module, "copy", _JsonCopyModule)
    for module in (json_path, result_path):
        patches.set(module, "parse", _kept(_parsed_paths, module.parse))
    patches.set(serialize.ResponseSerializer, "get_value", _kept(_picked_value, serialize.ResponseSerializer.get_value))
    patches.set(errors, "ErrorLookupFactory", _kept(_one_error_lookup, errors.ErrorLookupFactory))
    patches.set(xmltodict, "unparse", _kept(xml_emit.fast_unparse, xmltodict.unparse))
    patches.set(botocore_utils, "_parse_timestamp_with_tzinfo", _kept(_parsed_timestamps, _parse_timestamp()))
    patches.set(auth.SigV4Auth, "add_auth", _unsigned)
    patches.set(sns_models.Subscription, "private_key", _kept(_one_signing_key, sns_models.Subscription.private_key))
    patches.set(moto_random.MotoRandom, "get_random_string", _random_string)
    patches.set(moto_random.MotoRandom, "get_random_hex", _random_hex)
    return patches.restore


@contextmanager
def installed() -> Iterator[None]:
    """:func:`install` for the ``with`` block (a moto that is not a whole local AWS: the tests' own)."""
    undo = install()
    try:
        yield
    finally:
        undo()


#: the wrappers :func:`install` made, by (maker, original): the next install (each test's local AWS makes
#: one) finds its caches warm instead of filling new ones (a tenth of a deployment's time)
_WRAPPERS: dict[tuple[Callable[..., Any], Any], Any] = {}


def _kept(make: Callable[[Any], Any], original: Any) -> Any:
    """``make(original)``, made once per process: what it caches depends only on the original."""
    with _lock:
        if (make, original) not in _WRAPPERS:
            _WRAPPERS[make, original] = make(original)
        return _WRAPPERS[make, original]


def _parsed_paths(original: Callable[[str], Any]) -> Callable[[str], Any]:
    """jsonpath-ng's ``parse`` kept by the path's text (finding and updating never change a parsed path)."""
    return functools.lru_cache(maxsize=1024)(original)


def _parse_timestamp() -> Callable[[Any, Any], Any]:
    from botocore import utils

    found = utils._parse_timestamp_with_tzinfo
    return getattr(found, "__wrapped__", found)


def _parsed_timestamps(original: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """botocore's timestamp parsing (``dateutil.parser.parse`` for a text: a fiftieth of the suite's CPU)
    kept by the value and the time zone class: a datetime cannot change, and the same launch times and
    creation dates are read over and over (moto turns its own into datetimes to serialize them, botocore
    parses them back)."""
    cached = functools.lru_cache(maxsize=4096)(original)

    def parsed(value: Any, tzinfo: Any) -> Any:
        try:
            return cached(value, tzinfo)
        except TypeError:  # a value that cannot be a key
            return original(value, tzinfo)

    parsed.__wrapped__ = original  # type: ignore[attr-defined]
    return parsed


def _one_error_lookup(factory: type) -> Callable[[], Any]:
    """moto makes a new ``ErrorLookupFactory`` for every error it answers, so its per-service table of
    error shapes (built from the whole service model) is built again each time: one factory keeps it."""
    one = factory()
    return lambda: one


def _one_signing_key(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """moto's SNS makes a new 2048-bit RSA key for every subscription it delivers to (to sign each
    message and the certificate it hands out): 50-100 ms, a twenty-fifth of a fault-matrix case. AWS signs
    with one key per region; one key per process signs as well (messages are still signed, each with its
    certificate)."""
    key: list[Any] = []
    making = threading.Lock()  # its own: making the key takes 50-100 ms, which parse() need not wait for

    def one_key(self: Any) -> Any:
        with making:
            if not key:
                key.append(getattr(original, "__wrapped__", original)(self))
            return key[0]

    one_key.__wrapped__ = original  # type: ignore[attr-defined]
    return one_key


def _unsigned(self: Any, request: Any) -> None:
    """``SigV4Auth.add_auth`` without the signature: the same headers (the date, the session token,
    the ``Authorization`` header with the caller's credential scope), the signature a fixed value."""
    from botocore.auth import SIGV4_TIMESTAMP, get_current_datetime
    from botocore.exceptions import NoCredentialsError

    if self.credentials is None:
        raise NoCredentialsError()
    request.context["timestamp"] = get_current_datetime().strftime(SIGV4_TIMESTAMP)
    self._modify_request_before_signing(request)
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={self.scope(request)}, SignedHeaders=host;x-amz-date, Signature={'0' * 64}"
    )


def _random_string(self: Any, length: int = 20, include_digits: bool = True, lower_case: bool = False) -> str:
    """moto's ``MotoRandom.get_random_string`` (the 52 characters of every response's request id, and
    ids), drawing the characters in one ``choices`` call instead of one ``choice`` each, three times
    faster: the same characters, each as likely (a seeded moto draws other ones; nothing here seeds it)."""
    import string

    pool = string.ascii_letters + (string.digits if include_digits else "")
    drawn = "".join(self.choices(pool, k=length))
    return drawn.lower() if lower_case else drawn


def _random_hex(self: Any, length: int = 8) -> str:
    """moto's ``MotoRandom.get_random_hex`` (resource ids), drawn as :func:`_random_string` draws."""
    from moto.moto_api._internal.moto_random import HEX_CHARS

    return "".join(map(str, self.choices(HEX_CHARS, k=length)))


def _picked_value(original: Callable[..., Any]) -> Callable[..., Any]:
    """``ResponseSerializer.get_value`` with the attribute names to try kept per (alias providers,
    object class, field, the field's shape and its parent's name, service and API version): what
    every alias provider reads (``Meta`` aliases are declared on the class); and the response
    transformer that applies kept per (transformers, the field's path). Any other picker than moto's
    ``XFormedAttributePicker`` goes the original way.

    With moto's default alias providers, the names are found first by the identity of the field's shape
    and of its parent (botocore makes each member's shape once per parent, and moto's service models live
    as long as the process; both are kept here so that their ids are not reused), and each name is read
    the way ``moto.core.utils.get_value`` reads it, without its checks for what the object is."""
    from moto.core.serialize import DEFAULT_ALIAS_PROVIDERS, AttributePickerContext, XFormedAttributePicker
    from moto.core.utils import MISSING, get_value

    names: dict[tuple, tuple[str, ...]] = {}
    by_shape: dict[tuple[int, int, type, str], tuple[tuple[str, ...], Callable[[Any, str], Any]]] = {}
    transforms: dict[tuple[int, str], Any] = {}
    kept: list[Any] = []  # every transformers dictionary and shape seen, so that its id is not reused

    def transform_for(transformers: dict, key_path: str) -> Any:
        cache_key = (id(transformers), key_path)
        if cache_key not in transforms:
            kept.append(transformers)
            transforms[cache_key] = next((t for path, t in transformers.items() if key_path.endswith(path)), None)
        return transforms[cache_key]

    def names_to_try(self: Any, picker: Any, value: Any, key: str, shape: Any) -> tuple[str, ...]:
        parent = getattr(shape, "parent", None)
        service = self.operation_model.service_model
        cache_key = (
            tuple(picker.alias_providers),
            type(value),
            key,
            None if shape is None else (shape.name, shape.type_name, shape.serialization.get("name")),
            None if parent is None else (parent.name, parent.type_name),
            service.service_name,
            service.api_version,
        )
        tried = names.get(cache_key)
        if tried is None:
            context = AttributePickerContext(
                obj=value, key=key, shape=shape, operation_model=self.operation_model, service_model=service
            )
            tried = names[cache_key] = tuple(picker.get_possible_keys(context))
        return tried

    def reader(example: Any, tried: tuple[str, ...]) -> Callable[[Any, str], Any]:
        """How ``get_value(value, name, MISSING)`` reads each of ``tried`` from an object of the class of
        ``example``."""
        if any("." in name for name in tried):  # a path: get_value walks it
            return lambda value, name: get_value(value, name, MISSING)
        if type(example) is dict:
            return lambda value, name: value.get(name, MISSING)
        if not hasattr(example, "__getitem__"):
            return lambda value, name: getattr(value, name, MISSING)
        return lambda value, name: get_value(value, name, MISSING)

    def picked_value(self: Any, value: Any, key: str, shape: Any) -> Any:
        picker = self._value_picker
        if type(picker) is not XFormedAttributePicker:
            return original(self, value, key, shape)
        if shape is not None and picker.alias_providers is DEFAULT_ALIAS_PROVIDERS:
            parent = getattr(shape, "parent", None)
            shape_key = (id(shape), id(parent), type(value), key)
            found_names = by_shape.get(shape_key)
            if found_names is None:
                tried = names_to_try(self, picker, value, key, shape)
                with _lock:
                    kept.extend((shape, parent))
                found_names = by_shape[shape_key] = (tried, reader(value, tried))
            tried, read = found_names
        else:
            tried = names_to_try(self, picker, value, key, shape)
            read = reader(value, tried)
        found = None
        for name in tried:
            candidate = read(value, name)
            if candidate is not MISSING:
                found = candidate
                break
        if picker.response_transformers:
            transform = transform_for(picker.response_transformers, f"{'.'.join(self.path)}.{key}")
            if transform is not None:
                found = transform(found)
        return found

    picked_value.__wrapped__ = original  # type: ignore[attr-defined]
    return picked_value


def remember_valid_definitions() -> None:
    """moto parses a state machine's definition (an ANTLR grammar, about a second for ours) to
    validate it on every CreateStateMachine, and every test creates the same two: a definition that
    passed once passes again (executions take their parse from :func:`parse`'s cache)."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    validate = StepFunctionsParserBackend._validate_definition
    if getattr(validate, "remembers", False):
        return
    valid: set[str] = set()

    def remembering(definition: str) -> None:
        if definition not in valid:
            validate(definition)
            valid.add(definition)

    remembering.remembers = True  # type: ignore[attr-defined]
    StepFunctionsParserBackend._validate_definition = staticmethod(remembering)


def reuse_interpreter_clients() -> None:
    """moto's Step Functions interpreter creates a new boto3 client for every Task it runs (a Lambda
    invoke, an SNS publish): most of an execution's time here. One client per region, service and
    endpoint does the same (botocore clients are thread-safe; moto's stubber intercepts them all)."""
    import sys

    from moto.stepfunctions.parser.asl.utils import boto_client

    create = boto_client.boto_client_for
    if getattr(create, "reuses", False):
        return
    clients: dict[tuple, Any] = {}

    def reusing(region: str, service: str, state_credentials: Any = None) -> Any:
        # what the original decides the endpoint by: the stubber intercepting, else moto's server port
        key = (
            region,
            service,
            boto_client.botocore_stubber.enabled,
            boto_client.moto_server_port(),
            repr(state_credentials),
        )
        if key not in clients:
            clients[key] = create(region, service, state_credentials)
        return clients[key]

    reusing.reuses = True  # type: ignore[attr-defined]
    for module in list(sys.modules.values()):  # every interpreter module imported it by name
        if getattr(module, "boto_client_for", None) is create:
            module.boto_client_for = reusing  # type: ignore[attr-defined]


def _share_service_models(creator: Any) -> None:
    """botocore makes a new ``ServiceModel`` over the (shared, loaded once) description for every
    client, so every client resolves its shapes and operations again and scans all of them for
    endpoint discovery (EC2 has more than 700). The model is read-only: one per description serves
    every client of the service, with its caches warm."""
    load = creator._load_service_model
    models: dict[tuple[str, str | None, int], tuple[Any, Any]] = {}
    lock = threading.Lock()

    def sharing(self: Any, service_name: str, api_version: str | None = None) -> Any:
        description = self._loader.load_service_model(service_name, "service-2", api_version=api_version)
        key = (service_name, api_version, id(description))
        with lock:
            if key not in models:  # the description is kept with the model: its id cannot be reused
                models[key] = (description, load(self, service_name, api_version))
            return models[key][1]

    sharing.__wrapped__ = load  # type: ignore[attr-defined]
    creator._load_service_model = sharing


def share_client_methods() -> None:
    """botocore's ``ClientCreator._create_methods`` builds a function for every operation of the service
    each time a client is created. The functions depend only on the operation's names, so they are
    built once per service model and every client class gets a copy of that dictionary (the
    ``creating-client-class`` handlers still run for each class and may add to their copy). The
    service model itself is shared too (:func:`_share_service_models`)."""
    from botocore.client import ClientCreator

    create = ClientCreator._create_methods
    if getattr(create, "shares", False):
        return
    built: dict[tuple[str, int], tuple[Any, dict]] = {}
    lock = threading.Lock()
    _share_service_models(ClientCreator)

    def sharing(self: Any, service_model: Any) -> dict:
        description = service_model._service_description
        key = (service_model.service_name, id(description))
        with lock:
            if key not in built:
                # the description is kept with the methods: its id cannot be reused while it is cached
                built[key] = (description, create(self, service_model))
            return dict(built[key][1])

    sharing.shares = True  # type: ignore[attr-defined]
    sharing.__wrapped__ = create  # type: ignore[attr-defined]
    ClientCreator._create_methods = sharing


def reuse_url_callbacks() -> None:
    """Make moto's mock start register the same URL callbacks every time, built at the first start of
    the process (permanent, like :func:`share_client_methods`). What is registered is what moto registers
    (the same methods, patterns and callbacks, in its order: tests/localaws/test_speedups.py); the
    callbacks keep no state that the next mock would see (``responses`` counts their calls)."""
    from moto.core import models

    if getattr(models.MockAWS._enable_patching, "_reuses_callbacks", False):
        return
    original = models.MockAWS._enable_patching
    built: list[Any] = []

    def _enable_patching(self: Any, reset: bool = True) -> None:
        if not built:
            with _lock:
                if not built:
                    built.extend(_url_callbacks(models))
        models.botocore_stubber.enabled = True
        if reset:
            self.reset()
        models.responses_mock.start()
        for callback in built:
            models.responses_mock.add(callback)

    _enable_patching._reuses_callbacks = True  # type: ignore[attr-defined]
    _enable_patching.__wrapped__ = original  # type: ignore[attr-defined]
    models.MockAWS._enable_patching = _enable_patching


def _url_callbacks(models: Any) -> list[Any]:
    """The callbacks moto 5.2.5's ``MockAWS._enable_patching`` registers, in its order."""
    import re

    out = []
    for method in models.RESPONSES_METHODS:
        for _, pattern in models.backend_index.backend_url_patterns:
            out.append(
                models.CallbackResponse(
                    method=method, url=pattern, callback=models.botocore_stubber.process_prepared_request
                )
            )
        out.append(
            models.CallbackResponse(
                method=method,
                url=re.compile(r"https?://.+\.amazonaws.com/.*"),
                callback=models.not_implemented_callback,
            )
        )
    return out


class _IndexedInstances(list):
    """moto's ``BackendDict._instances`` (a list it appends to and clears) that also knows its members by
    identity, so that membership is a set lookup. Two dictionaries of moto are equal only when they are
    the same one (``__eq__`` compares an id each draws at random), so this answers as the list did."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__(items)
        self._ids = {id(item) for item in self}

    def append(self, item: Any) -> None:
        super().append(item)
        self._ids.add(id(item))

    def clear(self) -> None:
        super().clear()
        self._ids.clear()

    def __contains__(self, item: object) -> bool:
        return id(item) in self._ids


def index_backend_dicts() -> None:
    """Make ``BackendDict[account]`` a dictionary lookup when the account's backends exist and the service
    is registered, as it is after its first use (permanent, like :func:`share_client_methods`); the first
    use of each still goes through moto's own code, under its lock."""
    from moto.core.base_backend import BackendDict

    if isinstance(BackendDict._instances, _IndexedInstances):
        return
    BackendDict._instances = _IndexedInstances(BackendDict._instances)
    original = BackendDict._create_account_specific_backend

    def create(self: Any, account_id: str) -> None:
        if dict.__contains__(self, account_id) and self in BackendDict._instances:
            return
        original(self, account_id)

    create.__wrapped__ = original  # type: ignore[attr-defined]
    BackendDict._create_account_specific_backend = create
