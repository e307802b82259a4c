"""Settings once: TrainConfig holds each setting's type, default and rules; the config schema and the settings
table of docs/configuration.md say the same, checked here in full; help texts live outside the training code."""

import re
import typing
from pathlib import Path

import yaml

from trifecta.training.config import format_value
from trifecta.planning.settings import HELP, default_of, describe_settings
from trifecta.training.config import FIELDS

REPO = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())["$defs"]["settings"]["properties"]
JSON_TYPES = {int: "integer", float: "number", bool: "boolean", str: "string"}
RULES = {"minimum": "minimum", "exclusive_minimum": "exclusiveMinimum", "exclusive_maximum": "exclusiveMaximum"}


def schema_of(name: str) -> dict:
    """What the schema must say of a setting, from TrainConfig alone."""
    f = FIELDS[name]
    rules = {RULES[k]: v for k, v in f.metadata.items() if k in RULES}
    if "choices" in f.metadata:
        return {"enum": list(f.metadata["choices"])}
    if f.type == list[int]:
        return {"type": "array", "items": {"type": "integer", "minimum": 1}, **rules}
    if typing.get_origin(f.type) is list:  # the schedule, written EPOCH:LR,... in the config
        return {"type": "string", **rules}
    return {"type": JSON_TYPES[f.type], **rules}


def test_the_schema_states_every_setting_with_its_type_rules_and_default():
    assert list(SCHEMA) == list(FIELDS)
    for name in FIELDS:
        stated = {k: v for k, v in SCHEMA[name].items() if k in ("type", "enum", "items", *RULES.values())}
        assert stated == schema_of(name), name
        default = re.search(r"(?:\(|; )default (\S+?)\)?\.$", SCHEMA[name]["description"])
        assert default and default.group(1) == (format_value(default_of(name)) or "none"), name


def test_every_setting_is_explained_outside_the_training_code():
    assert set(HELP) == set(FIELDS)
    assert [name for name, _, _ in describe_settings()] == list(FIELDS)


def test_the_settings_table_of_the_docs_is_trainconfigs():
    """docs/configuration.md's table: one row per setting, its default as `--set` takes it and its meaning."""
    text = (REPO / "docs/configuration.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| `?([^|`]*)`? \| ([^|]+) \|$", text, re.M)
    assert [(k, d, m.strip()) for k, d, m in rows] == [(k, d or "none", m) for k, d, m in describe_settings()]
