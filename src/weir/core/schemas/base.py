"""Bases for wire models: strict request bodies, tolerant responses."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    """A request body: an unknown field is an error naming the field, not silently dropped."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ResponseModel(BaseModel):
    """A response: extra fields from a newer server are ignored by older clients."""

    model_config = ConfigDict(extra="ignore", from_attributes=True, populate_by_name=True)
