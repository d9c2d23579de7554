"""Shapes shared by every kubetune resource: camelCase models, conditions, references."""
from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "kubetune.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "tuning"

Scalar = bool | int | float | str
"""A parameter value: what a sampler can produce and a container can read from env."""

SCALAR_SCHEMA: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}
"""Schema of one scalar value. Structural CRD schemas cannot say "number or string or
boolean"; the value is checked by the models instead (and by `kubetune validate`)."""


class Model(BaseModel):
    """Base for every API object: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=False,
        use_enum_values=True,
    )

    def wire(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase, unset fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ObjectRef(Model):
    """A reference to another object in the same namespace."""

    name: str = Field(
        min_length=1, max_length=253, description="Name of the referenced object in the same namespace."
    )


class Condition(Model):
    """An observation about the object, in the Kubernetes API conventions' shape."""

    type: str = Field(description="CamelCase type of the condition, e.g. Ready, Complete, MetricsAvailable.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="One CamelCase word saying why the condition has this status.")
    message: str = Field(default="", description="What happened, written for a person.")
    last_transition_time: str = Field(
        description="When the status last changed, RFC 3339 UTC."
    )
    observed_generation: int | None = Field(
        default=None, description="metadata.generation of the spec this condition was computed from."
    )


CONDITIONS_EXTRA: dict[str, Any] = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
}

MESSAGE_LIMIT = 1024


def rfc3339(now: dt.datetime) -> str:
    return now.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: list[Condition],
    type: str,
    status: bool | str,
    reason: str,
    message: str,
    now: dt.datetime,
    generation: int | None = None,
) -> list[Condition]:
    """Return conditions with `type` set; lastTransitionTime moves only when status changes."""
    status_text = status if isinstance(status, str) else ("True" if status else "False")
    if len(message) > MESSAGE_LIMIT:
        message = message[: MESSAGE_LIMIT - 1] + "…"
    old = get_condition(conditions, type)
    new = Condition(
        type=type,
        status=status_text,  # type: ignore[arg-type]
        reason=reason,
        message=message,
        last_transition_time=old.last_transition_time if old and old.status == status_text else rfc3339(now),
        observed_generation=generation,
    )
    if old is None:
        return [*conditions, new]
    return [new if c.type == type else c for c in conditions]


def get_condition(conditions: list[Condition], type: str) -> Condition | None:
    return next((c for c in conditions if c.type == type), None)


class ObjectMeta(Model):
    """The part of metadata kubetune reads. Everything else passes through untouched."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    name: str = ""
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
