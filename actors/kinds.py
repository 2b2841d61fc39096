"""What the registries of kinds share: `Kind` (one record per kind), the union and the lookup.

A package whose configuration comes in kinds (checks: `actors.checks.kinds`; channels:
`actors.notify.channels.kinds`) keeps a tuple of records, one per kind, each naming the kind and
its config model (a model narrowing the `kind` key to `Literal["<kind>"]`). From that tuple come
the discriminated union users write (`kind_union`), the factory's lookup (`kind_of`) and the keys
the docs must list (`Kind.keys`).
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, Field

__all__ = ["Kind", "KindT", "ModelT", "kind_of", "kind_union"]

ModelT = TypeVar("ModelT", bound=BaseModel)
"""The config model of a kind."""


@dataclass(frozen=True)
class Kind(Generic[ModelT]):
    """One kind: its `kind` value and its config model. Subclasses add what builds the kind.

    Class attributes of a subclass: `family` names the kinds in messages ("check", "channel");
    `common` is the model of the keys every kind of the family has.

    Raises:
        ValueError: (at construction) `name` is not the config model's `kind` literal.
    """

    family: ClassVar[str] = "kind"
    common: ClassVar[type[BaseModel]] = BaseModel

    name: str
    config: type[ModelT]

    def __post_init__(self) -> None:
        literal = typing.get_args(self.config.model_fields["kind"].annotation)
        if literal != (self.name,):
            raise ValueError(
                f"{self.family} kind {self.name!r}: "
                f"{self.config.__name__}.kind is Literal{list(literal)}"
            )

    def keys(self) -> tuple[str, ...]:
        """The keys of this kind's table beyond those of every kind (`common`), as written."""
        common = set(self.common.model_fields)
        return tuple(
            field.alias or name
            for name, field in self.config.model_fields.items()
            if name not in common
        )


KindT = TypeVar("KindT", bound=Kind[Any])


def kind_union(kinds: Sequence[Kind[Any]], family: str) -> Any:
    """The pydantic type of a table of one of `kinds`: their config models, chosen by `kind`.

    An unknown `kind` is reported with the registered kinds (the union's tags, in order).

    Raises:
        ValueError: `kinds` is empty or names a kind twice.
    """
    names = [kind.name for kind in kinds]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"{family} kinds must be distinct and at least one, got {names}")
    models = tuple(kind.config for kind in kinds)
    if len(models) == 1:  # pydantic discriminates unions only; one model checks `kind` itself
        return models[0]
    return Annotated[typing.Union[models], Field(discriminator="kind")]  # noqa: UP007


def kind_of(config: BaseModel, kinds: Sequence[KindT], family: str) -> KindT:
    """The kind of `kinds` whose config model `config` is.

    Raises:
        LookupError: no kind of `kinds` has `type(config)` as its model.
    """
    for kind in kinds:
        if type(config) is kind.config:
            return kind
    raise LookupError(f"unknown {family} kind {type(config).__name__}")
