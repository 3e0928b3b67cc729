"""Reading settings: a YAML file, then single keys from BANKBOT_<KEY> environment variables
(BANKBOT_SECTION__KEY for nested keys), then DATABASE_URL and REDIS_URL.

Generic: `load()` validates the values against the caller's model (server.Settings);
banking.admin reads the database URL alone (`read_config()`).
"""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import make_url

ENV_PREFIX = "BANKBOT_"
CONFIG_VARIABLE = f"{ENV_PREFIX}CONFIG"


class ConfigError(Exception):
    """The configuration cannot be used; the message says which file and key."""


def config_path(given: Path | None, default: Path, environ: Mapping[str, str]) -> Path:
    """The settings file: the one given, else BANKBOT_CONFIG's, else `default`."""
    return given or Path(environ.get(CONFIG_VARIABLE) or default)


Model = TypeVar("Model", bound=BaseModel)


def load(model: type[Model], path: Path, environ: Mapping[str, str] = os.environ) -> Model:
    """The settings of `path` with the environment's overrides, as `model`; ConfigError
    says what is wrong."""
    try:
        return model.model_validate(read_config(path, environ))
    except ValidationError as error:
        raise ConfigError(f"invalid settings from {path} and environment:\n{error}") from error


def read_config(path: Path, environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The file's values with the environment's overrides; ConfigError if unreadable."""
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from error
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX) and name != CONFIG_VARIABLE:
            keys = name.removeprefix(ENV_PREFIX).lower().split("__")
            _set_nested(values, keys, _environment_value(raw))
    if environ.get("DATABASE_URL"):
        values["database_url"] = environ["DATABASE_URL"]
    if environ.get("REDIS_URL"):
        values.setdefault("sessions", {})["redis_url"] = environ["REDIS_URL"]
    return values


def _environment_value(raw: str) -> Any:
    """A YAML scalar or list ("8000", "true", "[rules]"); anything else stays text.

    So "prefix:" or "a: b" is the text itself, not a mapping.
    """
    try:
        value = yaml.safe_load(raw) if raw else raw
    except yaml.YAMLError:
        return raw
    return raw if isinstance(value, dict) else value


def _set_nested(values: dict[str, Any], keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        values = values.setdefault(key, {})
        if not isinstance(values, dict):
            raise ConfigError(f"{ENV_PREFIX}{'__'.join(keys).upper()}: {key} is not a section")
    values[keys[-1]] = value


def anchor_sqlite_path(database_url: str, root: Path) -> str:
    """A relative SQLite path means relative to `root` (the project), not to the current
    directory."""
    url = make_url(database_url)
    path = url.database or ""
    if url.get_backend_name() != "sqlite" or path in ("", ":memory:") or Path(path).is_absolute():
        return database_url
    return url.set(database=str(root / path)).render_as_string(False)
