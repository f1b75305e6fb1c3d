"""Binding call arguments to a function's parameters, and validating flow parameters.

A run's parameters are a dict (name → value) bound from the call: that dict is
what run names, cache keys and the runtime see, and what the function is called
with. Flow parameters are validated and coerced with pydantic from the type
hints; the validator is built on a flow's first call, not at decoration.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from weir.exceptions import ParameterTypeError

_VAR_KINDS = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class Signature:
    """A function's signature, with what binding and calling need precomputed."""

    __slots__ = (
        "_validator", "defaults", "fn", "name_set", "names", "owner", "plain", "positional",
        "signature",
    )  # fmt: skip

    def __init__(self, fn: Callable[..., Any], owner: str) -> None:
        self.fn = fn
        self.owner = owner
        self.signature = inspect.signature(fn)
        params = self.signature.parameters.values()
        self.names = tuple(p.name for p in params)
        # plain: every parameter can be passed by keyword, so fn(**parameters) works
        self.plain = all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params)
        self.defaults = {p.name: p.default for p in params if p.default is not p.empty}
        self.name_set = frozenset(self.names)
        self.positional = sum(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)
        self._validator: Any = None

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.plain and len(args) <= self.positional:
            bound = self._bind_plain(args, kwargs)
            if bound is not None:
                return bound
        try:
            arguments = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ParameterTypeError(
                f"{self.owner} was called with bad arguments: {exc}."
            ) from None
        arguments.apply_defaults()
        return arguments.arguments

    def _bind_plain(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """The common case, without inspect's general binder; None means "let it decide"."""
        given = dict(zip(self.names, args, strict=False))
        for key, value in kwargs.items():
            if key in given or key not in self.name_set:
                return None
            given[key] = value
        if len(given) == len(self.names):
            return given if not kwargs else {name: given[name] for name in self.names}
        defaults = self.defaults
        try:
            return {name: given[name] if name in given else defaults[name] for name in self.names}
        except KeyError:
            return None  # a required parameter is missing: inspect words the error

    def call_args(self, parameters: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Split a parameters dict back into (args, kwargs) for calling the function."""
        if self.plain:
            return (), parameters
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        # before a *args parameter, everything must go by position
        by_position = any(p.kind is p.VAR_POSITIONAL for p in self.signature.parameters.values())
        for param in self.signature.parameters.values():
            if param.name not in parameters:
                continue
            value = parameters[param.name]
            if param.kind is param.VAR_POSITIONAL:
                args.extend(value)
                by_position = False
            elif param.kind is param.VAR_KEYWORD:
                kwargs.update(value)
            elif param.kind is param.POSITIONAL_ONLY or (
                by_position and param.kind is param.POSITIONAL_OR_KEYWORD
            ):
                args.append(value)
            else:
                kwargs[param.name] = value
        return tuple(args), kwargs

    # -- validation (flows) -------------------------------------------------
    def validate(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """Coerce parameters to their type hints; a bad one raises ParameterTypeError."""
        if self._validator is None:
            self._validator = self._build_validator()
        model, fields = self._validator
        if not fields:
            return parameters
        from pydantic import ValidationError

        try:
            validated = model.model_validate({k: parameters[k] for k in fields if k in parameters})
        except ValidationError as exc:
            raise ParameterTypeError(_describe(self.owner, exc)) from None
        coerced = dict(parameters)
        for name in fields:
            if name in parameters:
                coerced[name] = getattr(validated, name)
        return coerced

    def model(self) -> Any:
        """The pydantic model the parameters are validated with (for their JSON schema)."""
        if self._validator is None:
            self._validator = self._build_validator()
        return self._validator[0]

    def _build_validator(self) -> tuple[Any, tuple[str, ...]]:
        from pydantic import ConfigDict, create_model

        hints = _type_hints(self.fn)
        definitions: dict[str, Any] = {}
        for param in self.signature.parameters.values():
            if param.kind in _VAR_KINDS:
                continue
            annotation = hints.get(param.name, Any)
            default = ... if param.default is param.empty else param.default
            definitions[param.name] = (annotation, default)
        model = create_model(
            "Parameters",
            __config__=ConfigDict(arbitrary_types_allowed=True, protected_namespaces=()),
            **definitions,
        )
        return model, tuple(definitions)


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """Type hints by parameter; one that cannot be resolved (a string naming a class local
    to a function, say) is left out, so that parameter is passed through unvalidated."""
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:
        pass
    hints: dict[str, Any] = {}
    namespace = getattr(fn, "__globals__", {})
    for name, annotation in getattr(fn, "__annotations__", {}).items():
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, namespace)  # what get_type_hints does, per name
            except Exception:
                continue
        hints[name] = annotation
    return hints


def _describe(owner: str, exc: Any) -> str:
    problems = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "?"
        problems.append(f"parameter {name!r}: {error['msg']} (got {error.get('input')!r})")
    return f"{owner} got bad parameters: " + "; ".join(problems) + "."
