"""Entrypoints: where a deployment's flow lives, `path/to/file.py:function` (relative to
the deployment's directory) or `package.module:function` (importable from it)."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

from weir.engine.flows import Flow
from weir.exceptions import DeploymentConfigError


def load_flow(entrypoint: str, root: Path) -> Flow[..., Any]:
    """The `@flow` an entrypoint names, importing its module with `root` on sys.path."""
    target, _, attribute = entrypoint.rpartition(":")
    if not target or not attribute:
        raise DeploymentConfigError(
            f"Entrypoint {entrypoint!r} must look like 'path/to/file.py:function' "
            "or 'package.module:function'."
        )
    if target.endswith(".py") or "/" in target or os.sep in target:
        where = target
        module = _load_file(entrypoint, root / target)
    else:
        where = f"module {target}"
        module = _import(entrypoint, target, root)
    value: Any = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise DeploymentConfigError(
                f"Entrypoint {entrypoint!r}: {where} has no attribute {attribute!r}."
            )
        value = getattr(value, part)
    if not isinstance(value, Flow):
        kind = "function" if inspect.isfunction(value) else type(value).__name__
        raise DeploymentConfigError(
            f"Entrypoint {entrypoint!r}: {attribute!r} in {where} is a {kind}, not a flow; "
            "decorate it with @flow."
        )
    return value


def entrypoint_for(flow: Flow[..., Any], cwd: Path | None = None) -> str:
    """`relative/file.py:function` for a flow defined in a file under `cwd`, else
    `package.module:function`."""
    cwd = (cwd or Path.cwd()).resolve()
    fn = flow.fn
    name = getattr(fn, "__name__", flow.name)
    try:
        source = inspect.getsourcefile(fn)
    except TypeError:
        source = None
    if source:
        path = Path(source).resolve()
        if path.is_relative_to(cwd):
            return f"{path.relative_to(cwd).as_posix()}:{name}"
    module = getattr(fn, "__module__", None)
    if module and module != "__main__":
        return f"{module}:{name}"
    raise DeploymentConfigError(
        f"Cannot tell where flow {flow.name!r} is defined; run from the directory that "
        "holds its file, or give an entrypoint."
    )


def _load_file(entrypoint: str, path: Path) -> ModuleType:
    if not path.is_file():
        raise DeploymentConfigError(f"Entrypoint {entrypoint!r}: there is no file {str(path)!r}.")
    directory = str(path.parent.resolve())
    if directory not in sys.path:
        sys.path.insert(0, directory)
    # its own name when free, so that pickling (process task runners) finds it again
    name = path.stem if path.stem not in sys.modules else f"__weir_flow_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise DeploymentConfigError(f"Entrypoint {entrypoint!r}: cannot load {str(path)!r}.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise DeploymentConfigError(
            f"Entrypoint {entrypoint!r}: importing {path.name} failed: {_describe(exc)}."
        ) from exc
    return module


def _import(entrypoint: str, module_name: str, root: Path) -> ModuleType:
    directory = str(root.resolve())
    if directory not in sys.path:
        sys.path.insert(0, directory)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise DeploymentConfigError(
                f"Entrypoint {entrypoint!r}: no module named {module_name!r} "
                f"importable from {directory}."
            ) from None
        raise DeploymentConfigError(
            f"Entrypoint {entrypoint!r}: importing {module_name} failed: {_describe(exc)}."
        ) from exc
    except Exception as exc:
        raise DeploymentConfigError(
            f"Entrypoint {entrypoint!r}: importing {module_name} failed: {_describe(exc)}."
        ) from exc


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".rstrip(".")
