"""A workflow's config files outside Snakemake: config.yaml and `--configfile` overlays merged as Snakemake merges
them, and a schema violation said in one line. No torch."""

from pathlib import Path

from trifecta.planning.grid import GridError
from trifecta.training.settings import yaml_problem


def load_config(paths) -> dict:
    """config.yaml and `--configfile` overlays merged by Snakemake's own merge (a mapping key by key, anything
    else, e.g. the list `runs`, replaced whole), for commands that read a workflow's config outside Snakemake."""
    import yaml
    from snakemake.utils import update_config

    config = {}
    for path in paths:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except OSError as err:
            raise GridError(f"{path}: {err}") from None
        except yaml.YAMLError as err:
            raise GridError(yaml_problem(path, err)) from None
        if not isinstance(loaded, dict):
            raise GridError(f"{path}: not a YAML mapping of config keys")
        update_config(config, loaded)
    return config


def schema_problem(config: dict, schema_path: Path) -> str | None:
    """The first schema violation as `config: KEY.PATH: what is wrong (allowed: ...)`, or None."""
    import jsonschema  # Snakemake's dependency; only planning needs it
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text())
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(config))
    if error is None:
        return None
    path = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in error.absolute_path).replace(".[", "[")
    allowed = ""
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
    elif error.validator == "additionalProperties":
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
    elif error.validator == "pattern":
        allowed = f"names matching {error.validator_value}"
    elif error.validator == "required":
        allowed = ", ".join(error.validator_value)
    hint = f" (allowed: {allowed})" if allowed else ""
    where = path or "top level"
    if len(error.absolute_path) > 1 and error.absolute_path[0] == "runs":  # name the grid entry
        entry = config["runs"][error.absolute_path[1]]
        where += f" (grid entry '{entry.get('name')}')" if isinstance(entry, dict) else ""
    return f"config: {where}: {error.message}{hint}"
