"""Named components: samplers, encoders, objectives and methods are each one `Registry`.

A registry maps a name to a component and is the only place where the list of valid names is
written down: tests, configs, the benchmark runner and every error message read it from here.
Adding a component is one entry in the registry of its kind.
"""

from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """An ordered, read-only name -> component map whose lookups fail with the valid names."""

    def __init__(self, kind: str, entries: Mapping[str, T]):
        self.kind = kind
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> T:
        if name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; valid names: {', '.join(self)}")
        return self._entries[name]

    def __contains__(self, name) -> bool:
        return name in self._entries

    def get(self, name, default=None):
        return self._entries.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def check(self, name: str, field: str) -> None:
        """Raises ValueError naming the config `field` if `name` is not registered."""
        if name not in self._entries:
            raise ValueError(f"config.{field}={name!r}: unknown {self.kind}; valid names: "
                             f"{', '.join(self)}")
