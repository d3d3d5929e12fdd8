"""Print docs/configuration.md's tables from the settings classes themselves: python scripts/settings_table.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from producer.settings import ProducerSettings
from worker.settings import WorkerSettings


def env_names(cls: type[BaseSettings], name: str) -> list[str]:
    """The environment variables a settings field is read from."""
    field = cls.model_fields[name]
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(a) for a in alias.choices]
    if isinstance(alias, str):
        return [alias]
    return [f"{cls.model_config.get('env_prefix', '')}{name}".upper()]


def _default(cls: type[BaseSettings], name: str) -> str:
    field = cls.model_fields[name]
    if field.default_factory is not None:
        value: Any = field.default_factory()  # type: ignore[call-arg]
    else:
        value = field.default
    if value is None:
        return "unset"
    home = str(Path.home())
    if str(value).startswith(home):
        return "~" + str(value)[len(home) :]
    if name == "inference_threads":
        return "number of cores"
    if isinstance(value, dict | list):
        return json.dumps(value) if value else "none"
    return str(value)


def table(cls: type[BaseSettings]) -> str:
    """A Markdown table of a settings class: variable, default, meaning."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in cls.model_fields.items():
        meaning = " ".join((field.description or "").split()).replace("|", "\\|")
        rows.append(f"| `{'` / `'.join(env_names(cls, name))}` | `{_default(cls, name)}` | {meaning} |")
    return "\n".join(rows)


if __name__ == "__main__":
    from local_rekognition.settings import LocalRekognitionSettings

    for cls in (ProducerSettings, WorkerSettings, LocalRekognitionSettings):
        print(f"#### {cls.__name__}\n\n{table(cls)}\n")
