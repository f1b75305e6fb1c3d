"""Which result store and serializer a run persists with: the run's own option, else its
flow's, else the settings (`WEIR_RESULTS_STORAGE`, `WEIR_RESULTS_SERIALIZER`,
`WEIR_RESULTS_PERSIST_BY_DEFAULT`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from weir.engine.contexts import FlowRunContext
    from weir.engine.results import ResultStore
    from weir.engine.serializers import Serializer


def persist_by_default() -> bool:
    from weir.settings import get_settings

    return bool(get_settings().results.persist_by_default)


def resolve_store(option: Any, flow_ctx: FlowRunContext | None) -> ResultStore:
    from weir.engine.results import get_result_store
    from weir.settings import get_settings

    if option is None and flow_ctx is not None and flow_ctx.result_store is not None:
        return flow_ctx.result_store
    return get_result_store(option, get_settings().results_storage_url)


def resolve_serializer(option: Any, flow_ctx: FlowRunContext | None) -> Serializer:
    from weir.engine.serializers import get_serializer
    from weir.settings import get_settings

    if option is None and flow_ctx is not None and flow_ctx.serializer is not None:
        return flow_ctx.serializer
    return get_serializer(option if option is not None else get_settings().results.serializer)
