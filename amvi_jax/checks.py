"""Config checks at the boundary: impossible values fail before any work, naming the field."""


def fail(field: str, value, why: str):
    raise ValueError(f"config.{field}={value!r}: {why}")


def get(config, field: str):
    value = config
    for name in field.split("."):
        value = value[name]
    return value


def positive_int(config, field: str, allow_zero: bool = False) -> None:
    value = get(config, field)
    low = 0 if allow_zero else 1
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        fail(field, value, f"must be an integer >= {low}")


def positive(config, field: str) -> None:
    value = get(config, field)
    if not value > 0:
        fail(field, value, "must be > 0")


def widths(config, field: str) -> None:
    value = get(config, field)
    if len(value) < 1 or min(value) < 1:
        fail(field, value, "must be a non-empty tuple of positive widths")
