"""Settings groups: the options of one package as a dataclass, with one serialisation for all.

A *group* is a dataclass whose fields are options (plain YAML values) or other groups. Each package
owns the group of the options that set its behaviour (``samia.data.CaseSettings``,
``samia.models.ModelSettings``, ``samia.metrics.SurfaceSettings``, ``samia.prompts.PromptSettings``,
``samia.auto.EverythingSettings``, ``samia.finetuning.TrainingSettings``), each option has its one
default there, and the run configurations (``EvaluationConfig``, ``FinetuneConfig``,
``StudyConfig``) are groups composed of them.

Records nest (``{"model": {"name": "litemedsam", ...}, "reading": {...}, ...}``). Every option also
has a *flat name*, unique within a run configuration (its field name, or the name in
:attr:`SettingsGroup.FLAT_NAMES`): :meth:`SettingsGroup.from_dict` reads the flat records samia 0.1
wrote (every option at the top level) as well as nested ones, and :meth:`SettingsGroup.flat` is
what runs compare (resumption, conditions of a report).
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Mapping
from dataclasses import MISSING, asdict, fields
from typing import Any, ClassVar, TypeVar

from samia.errors import ConfigurationError

Group = TypeVar("Group", bound="SettingsGroup")


class SettingsGroup:
    """Mixin of the settings dataclasses: nested records, flat records, flat comparison."""

    FLAT_NAMES: ClassVar[Mapping[str, str]] = {}
    """Field name -> flat option name, where the two differ (``ModelSettings.name`` is ``model``)."""

    def to_dict(self) -> dict[str, Any]:
        """The nested record: options as YAML values, groups as mappings."""
        record: dict[str, Any] = asdict(self)  # type: ignore[call-overload]  # every subclass is a dataclass
        return record

    def flat(self) -> dict[str, Any]:
        """Every option by its flat name (groups flattened), values copied."""
        options: dict[str, Any] = {}
        for name, value in self._items():
            if isinstance(value, SettingsGroup):
                options.update(value.flat())
            else:
                options[self.FLAT_NAMES.get(name, name)] = copy.deepcopy(value)
        return options

    @classmethod
    def from_dict(cls: type[Group], values: Mapping[str, Any]) -> Group:
        """A group of a nested record, a flat record, or a mix; a group may also be given as itself.

        Raises:
            ConfigurationError: a name that is no option of this group (one line naming it), or an
                option's value the group refuses.
        """
        unknown = set(values) - cls.option_names()
        if unknown:
            raise ConfigurationError(
                f"unknown option(s) {', '.join(sorted(unknown))} for {cls.__name__}; "
                f"known: {', '.join(sorted(cls.option_names()))}"
            )
        return cls._build(values)

    @classmethod
    def flat_defaults(cls) -> dict[str, Any]:
        """Every option that has a default, by flat name: the one place each default is set (a
        group without a default of its own, such as a run's model, gives its group's defaults)."""
        defaults: dict[str, Any] = {}
        for field, (name, group) in zip(fields(cls), _fields(cls)):  # type: ignore[arg-type]
            if group is not None:
                defaults.update(group.flat_defaults())
            elif field.default is not MISSING:
                defaults[cls.FLAT_NAMES.get(name, name)] = field.default
            elif field.default_factory is not MISSING:
                defaults[cls.FLAT_NAMES.get(name, name)] = field.default_factory()
        return defaults

    @classmethod
    def option_names(cls) -> set[str]:
        """Every name :meth:`from_dict` reads: field names, flat names and those of nested groups."""
        names: set[str] = set()
        for field, group in _fields(cls):
            names |= {field, cls.FLAT_NAMES.get(field, field)}
            if group is not None:
                names |= group.option_names()
        return names

    @classmethod
    def _build(cls: type[Group], values: Mapping[str, Any]) -> Group:
        arguments: dict[str, Any] = {}
        for field, group in _fields(cls):
            given = values.get(field, values.get(cls.FLAT_NAMES.get(field, field)))
            if group is None:
                if field in values or cls.FLAT_NAMES.get(field, field) in values:
                    arguments[field] = given
            elif isinstance(given, group):
                arguments[field] = given
            elif isinstance(given, Mapping):
                arguments[field] = group.from_dict(given)
            else:  # a flat record: the group picks its options from the top level
                arguments[field] = group._build(values)
        return cls(**arguments)

    def _items(self) -> list[tuple[str, Any]]:
        return [(field.name, getattr(self, field.name)) for field in fields(self)]  # type: ignore[arg-type]


def _fields(cls: type[SettingsGroup]) -> list[tuple[str, type[SettingsGroup] | None]]:
    """``(field name, its group class or None)`` of a settings dataclass."""
    hints = typing.get_type_hints(cls)
    listed = []
    for field in fields(cls):  # type: ignore[arg-type]
        kind = hints[field.name]
        group = kind if isinstance(kind, type) and issubclass(kind, SettingsGroup) else None
        listed.append((field.name, group))
    return listed
