"""Strict settings: one pydantic model per process, loaded from YAML with environment overrides.

* Unknown keys are errors (``extra="forbid"``), at every level.
* Values come from the YAML file, and environment variables override them
  (``<PREFIX><FIELD>``, nested fields joined by ``__``: ``UUNET_EDGE_DETECTOR__MIN_SIZE=24``).
* Secrets never have defaults in code: :func:`read_secret` takes them from an environment
  variable or from ``$CREDENTIALS_DIRECTORY/<name>`` (systemd ``LoadCredential=``).
* :class:`ConfigError` lists every problem with its dotted key path, for ``validate-config``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = [
    "ConfigError",
    "SecretNotFoundError",
    "StrictModel",
    "StrictSettings",
    "deep_merge",
    "describe_validation_error",
    "load_settings",
    "read_secret",
]

SettingsT = TypeVar("SettingsT", bound="StrictSettings")


class ConfigError(ValueError):
    """A configuration file or value is invalid.

    Attributes:
        problems: one ``"key.path: what is wrong"`` line per problem.
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"invalid configuration {source}:\n  " + "\n  ".join(problems))
        self.source = source
        self.problems = problems


class SecretNotFoundError(ValueError):
    """A required secret is in neither the environment nor ``$CREDENTIALS_DIRECTORY``."""


class StrictModel(BaseModel):
    """Base of nested configuration sections: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StrictSettings(BaseSettings):
    """Base of a process's settings: strict, YAML values overridden by the environment."""

    model_config = SettingsConfigDict(extra="forbid", env_nested_delimiter="__", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file's values (passed as init arguments).
        return (env_settings, init_settings)


def describe_validation_error(error: ValidationError) -> list[str]:
    """One ``"key.path: what is wrong"`` line per validation problem."""
    lines = []
    for item in error.errors():
        path = ".".join(str(p) for p in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{path}: {message}")
    return lines


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` laid over it; nested mappings are merged key by key."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(
    cls: type[SettingsT], path: str | Path | None = None, **overrides: Any
) -> SettingsT:
    """Build ``cls`` from a YAML file (optional), keyword overrides deep-merged over it (a
    nested mapping replaces only the keys it names), and the environment.

    Raises:
        ConfigError: unreadable file, not a YAML mapping, or values that fail validation (each
            problem named by its key path).
    """
    data: dict[str, Any] = {}
    source = str(path) if path is not None else "(environment)"
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(source, [f"cannot read file: {exc.strerror or exc}"]) from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(source, [f"not valid YAML: {exc}"]) from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            kind = type(loaded).__name__
            raise ConfigError(source, [f"(top level): expected a mapping, got {kind}"])
        data = loaded
    data = deep_merge(data, overrides)
    try:
        return cls(**data)
    except ValidationError as exc:
        raise ConfigError(source, describe_validation_error(exc)) from exc


def read_secret(name: str, env_var: str) -> bytes:
    """Return a secret from ``$env_var`` or the file ``$CREDENTIALS_DIRECTORY/name``.

    Surrounding whitespace (a trailing newline in a file) is stripped.

    Raises:
        SecretNotFoundError: neither source holds a non-empty value.
    """
    value = os.environ.get(env_var)
    if value and value.strip():
        return value.strip().encode("utf-8")
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if directory:
        candidate = Path(directory) / name
        try:
            content = candidate.read_bytes().strip()
        except FileNotFoundError:
            content = b""
        except OSError as exc:
            raise SecretNotFoundError(f"cannot read secret file {candidate}: {exc}") from exc
        if content:
            return content
    raise SecretNotFoundError(
        f"secret {name!r} not found: set ${env_var} or provide {name!r} in "
        f"$CREDENTIALS_DIRECTORY" + ("" if directory else " (CREDENTIALS_DIRECTORY is not set)")
    )
