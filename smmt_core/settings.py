"""The base of every settings object (model, preprocessing, training): declared once, validated once.

Why pydantic (v2) rather than attrs: a field's bounds, choices and help text are declared where the
field is (`setting(...)`), pydantic checks them on construction with messages that name the field
and the bad value, NaN and infinity are refused for every float at once (`allow_inf_nan=False`),
and the same declarations can be read back (`field_bounds`, the CLI's flags, the wizard's ranges),
so no other module repeats a bound. attrs would give the classes but leave the checks and their
messages to us.

Every settings object is frozen (a config that changes after validation is a config nobody
validated) and refuses unknown keys, and a bad value raises `ConfigError` with one line such as
``training.lr: must be greater than 0 (got nan)``.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from smmt_core.errors import ConfigError

_MAX_SHOWN_INPUT = 60  # characters of a bad value quoted in a message (a 5000-digit number stays short)


def setting(default: Any = ..., help: str = "", *, flag: str | None = None, cli: bool = True, **constraints):
    """A settings field: default, one-line help, bounds (ge/gt/le/lt), and its command-line flag.

    flag: the CLI spelling when it is not `--field-name`; cli=False keeps the field off the CLI.
    """
    extra = {"cli": cli}
    if flag is not None:
        extra["flag"] = flag
    if isinstance(default, (list, dict)):
        value = default
        return Field(default_factory=lambda: type(value)(value), description=help, json_schema_extra=extra,
                     **constraints)
    return Field(default, description=help, json_schema_extra=extra, **constraints)


def describe_validation_error(error: ValidationError, prefix: str = "") -> str:
    """One line naming each bad field and value, e.g. ``optim.lr: must be greater than 0 (got -1)``."""
    parts = []
    for item in error.errors(include_url=False):
        location = ".".join(str(p) for p in ((prefix,) if prefix else ()) + tuple(item["loc"]))
        message = item["msg"]
        for lead in ("Input should be ", "Value error, ", "Assertion failed, "):
            if message.startswith(lead):
                message = ("must be " if lead == "Input should be " else "") + message[len(lead):]
        shown = ""
        if item["type"] not in ("missing", "extra_forbidden") and not isinstance(item.get("input", {}), dict):
            text = repr(item["input"])
            shown = f" (got {text[:_MAX_SHOWN_INPUT]}{'…' if len(text) > _MAX_SHOWN_INPUT else ''})"
        if item["type"] == "extra_forbidden":
            message = "unknown setting"
        parts.append(f"{location}: {message}{shown}" if location else f"{message}{shown}")
    return "; ".join(parts)


class Settings(BaseModel):
    """Frozen, strict about unknown keys and non-finite numbers; errors become one-line ConfigErrors."""

    # strict: "3" is not a number of slices and True is not a number of epochs.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, validate_default=True, strict=True)

    def __init__(self, **values):
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise ConfigError(describe_validation_error(error, self.SECTION)) from None

    SECTION: ClassVar[str] = ""  # names the section in error messages

    @model_validator(mode="before")
    @classmethod
    def _plain_numbers(cls, data):
        """numpy scalars (a value read from an array) count as the Python numbers they hold."""
        if isinstance(data, dict):
            return {k: v.item() if type(v).__module__ == "numpy" and hasattr(v, "item") else v
                    for k, v in data.items()}
        return data

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict):
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
        return cls(**data)


def field_bounds(model: type[BaseModel], name: str) -> tuple[float | None, float | None]:
    """(lowest, highest) allowed value of a numeric field, from its declaration (None: unbounded).

    Exclusive bounds are returned as they are declared (gt/lt), so a UI may step inside them.
    """
    low = high = None
    for item in model.model_fields[name].metadata:
        for attr in ("ge", "gt"):
            if getattr(item, attr, None) is not None:
                low = getattr(item, attr)
        for attr in ("le", "lt"):
            if getattr(item, attr, None) is not None:
                high = getattr(item, attr)
    return low, high


@functools.lru_cache(maxsize=None)
def _field_adapter(model: type[BaseModel], name: str) -> TypeAdapter:
    field = model.model_fields[name]
    annotation = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return TypeAdapter(annotation, config=ConfigDict(allow_inf_nan=False, strict=True))


def check_setting(model: type[BaseModel], name: str, value: Any) -> Any:
    """`value` checked against the declaration of `model`'s field `name` (type and bounds), for code
    that takes one setting on its own (a split size, a mask ratio): it accepts what the config
    accepts, no more, and refuses with the config's own message (ConfigError naming the setting)."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()
    try:
        return _field_adapter(model, name).validate_python(value)
    except ValidationError as error:
        section = getattr(model, "SECTION", "")
        raise ConfigError(describe_validation_error(error, f"{section}.{name}" if section else name)) from None
