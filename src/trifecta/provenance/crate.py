"""The finished workflow as a Provenance Run Crate (a Workflow Run RO-Crate): results/ro-crate-metadata.json.

    trifecta crate results/lineage.json --out results/ro-crate-metadata.json [--workflow Snakefile] [--license URL]

Made from what the workflow already wrote, so it retrains nothing: the lineage (every run, table cell, probe and
figure, and the sha256 of their files) and each run's run.json. The crate is the folder of --out (results/); a
file is a data entity by its path from there, also outside it (../Snakefile, ../resources/store/...). A data
file is named by dataset instead (#data/mnist/<file>): where it lies depends on the machine. In the terms of
the profile (https://w3id.org/ro/wfrun/provenance/0.5):
- the Snakefile is the ComputationalWorkflow (version: its runs' git commit), with a tool (SoftwareApplication)
  and a step (HowToStep) per rule with results: train_model, probe_layers, make_table, plot_figure;
- the workflow run is a CreateAction of it, and Snakemake's OrganizeAction ran a ControlAction per step, whose
  objects are the step's CreateActions: one per training run (object: its data files and settings, result: its
  files and snapshots, environment: versions, device, host, commit), per probe, per table and per figure
  (object: the metrics.json and snapshots it read, result: its files); probes, tables and figures record no
  times, so their endTime is that of their newest file (the workflow run's: the lineage's);
- every file has its sha256 from the lineage.
Check it with `rocrate-validator validate -p provenance-run-crate results` (which fetches the JSON-LD contexts).
"""

import argparse
import datetime
import json
import mimetypes
import os
from collections import defaultdict
from pathlib import Path

from rocrate.model.contextentity import ContextEntity
from rocrate.rocrate import ROCrate

from trifecta.identity.commands import COMMANDS
from trifecta.planning.paper import DATASET_DESCRIPTIONS
from trifecta.training.rundir import FILES as RUN_FILES, RECORD, SUMMARY, read_json, sha256_file

PROFILES = {"https://w3id.org/ro/wfrun/process/0.5": "Process Run Crate",  # the profile and those it extends
            "https://w3id.org/ro/wfrun/workflow/0.5": "Workflow Run Crate",
            "https://w3id.org/ro/wfrun/provenance/0.5": "Provenance Run Crate",
            "https://w3id.org/workflowhub/workflow-ro-crate/1.0": "Workflow RO-Crate"}
WFRUN_CONTEXT = "https://w3id.org/ro/terms/workflow-run/context"  # defines sha256 and environment
RULES = {"train_model": "train", "collect_runs": "collect", "probe_layers": "probe", "make_table": "tables",
         "plot_figure": "figure"}  # rule ->
# the `trifecta` command it runs (what each does: identity/commands.py)
IDENTITY = ("dataset", "arch", "algo", "seed")  # with run.json's config: a run's settings
ENVIRONMENT = ("git", "source_sha256", "training_code", "versions", "device", "gpu", "recipe",
               "determinism", "host", "slurm_job_id")  # run.json keys, where present
STATUS = {True: "http://schema.org/CompletedActionStatus", False: "http://schema.org/FailedActionStatus"}


def scalar(value):
    """A PropertyValue's value: numbers, text and booleans as they are, anything else as JSON."""
    return value if isinstance(value, (str, int, float, bool)) else json.dumps(value)


def kind(value) -> str:
    """A FormalParameter's additionalType for a setting's value."""
    return "Boolean" if isinstance(value, bool) else "Number" if isinstance(value, (int, float)) else "Text"


def flat(record: dict, keys) -> dict:
    """{"versions.torch": "2.4.1", ...}: the values of `keys`, nested ones flattened, None left out."""
    out = {}
    for key in keys:
        value = record.get(key)
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in flat(value, value).items()})
        elif value is not None:
            out[key] = value
    return out


def modified(paths) -> str | None:
    """The newest modification time of `paths` (ISO 8601, UTC); None if none exists."""
    times = [os.path.getmtime(p) for p in paths if os.path.exists(p)]
    return datetime.datetime.fromtimestamp(max(times), datetime.timezone.utc).isoformat(timespec="seconds") \
        if times else None


def media_type(path) -> dict:
    media, compressed = mimetypes.guess_type(str(path))
    return {"encodingFormat": f"application/{compressed}" if compressed else media} if media else {}


def read_record(rid: str, entry: dict) -> dict:
    path = Path(entry["run_dir"]) / RECORD
    if not path.is_file():
        raise ValueError(f"run {rid}: {path} is missing: the lineage names a run without its record; rerun the "
                         "workflow (and so its lineage) before making the crate")
    return read_json(path)


# ---- Entities ----

class Crate:
    """An ROCrate being built and the folder that its data entities' paths start from."""

    def __init__(self, root: Path):
        self.root, self.crate = Path(root), ROCrate(version="1.1")
        self.crate.metadata.extra_contexts.append(WFRUN_CONTEXT)

    def entity(self, id_, type_, **props):
        """The contextual entity `id_`, added the first time with `props` (not None; one-item lists: the item)."""
        props = {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in props.items() if v is not None}
        return self.crate.get(id_) or self.crate.add(ContextEntity(self.crate, id_, {"@type": type_, **props}))

    def file(self, path, sha256, what):
        """The data entity of a file (a path from the working directory) with its sha256."""
        if sha256 is None:
            raise ValueError(f"{path}: the lineage has no sha256 for this {what} (it was missing when the lineage "
                             "was written): rerun the workflow")
        rel = Path(os.path.relpath(path, self.root)).as_posix()
        return self.crate.get(rel) or self.crate.add_file(dest_path=rel, properties={
            "name": Path(path).name, "description": what, "sha256": sha256, **media_type(path)})

    def parameter(self, tool, direction: str, name: str, kind: str):
        """The FormalParameter `name` of the tool's inputs or outputs."""
        id_ = f"{tool.id}/{direction}/{name}"
        if self.crate.get(id_) is None:
            tool.append_to(direction, self.crate.add_formal_parameter(name, kind, identifier=id_))
        return self.crate.get(id_)

    def train(self, tool, rid: str, entry: dict, record: dict, data_dir: str):
        """The CreateAction of a training run: its data files and settings in, its files and snapshots out."""
        dataset = record["dataset"]
        what = f"{dataset}: {DATASET_DESCRIPTIONS[dataset]}" if dataset in DATASET_DESCRIPTIONS else dataset
        data = [self.entity(f"#data/{dataset}/{name}", "File", name=name, sha256=sha, **media_type(name),
                            description=f"a file of {what}; the data directory was {data_dir}",
                            exampleOfWork=self.parameter(tool, "input", "data", "File"))
                for name, sha in (record.get("data") or {}).items()]
        settings = [self.entity(f"#train/{rid}/{key}", "PropertyValue", name=key, value=scalar(value),
                                exampleOfWork=self.parameter(tool, "input", key, kind(value)))
                    for key, value in {**{k: record[k] for k in IDENTITY}, **record.get("settings", {})}.items()]
        made = [(name, self.file(Path(entry["run_dir"]) / name, entry["files"].get(name), f"{name} of run {rid}"))
                for name in RUN_FILES]
        made += [("snapshot", self.file(snap["path"], snap["sha256"], f"snapshot of run {rid} at epoch {epoch}"))
                 for epoch, snap in entry["snapshots"].items()]
        for name, file in made:
            file["exampleOfWork"] = self.parameter(tool, "output", name, "File")
        listing = record.get("environment")  # the installed distributions, where the run listed them
        listed = [self.file(listing["file"], listing["sha256"], f"installed distributions of run {rid}")] \
            if isinstance(listing, dict) and listing.get("file") and listing.get("sha256") else []
        done = record.get("status") == "complete"
        return self.entity(
            f"#train/{rid}", "CreateAction", name=f"train {rid}", description=f"trifecta train into {entry['run_dir']}",
            instrument=tool, object=data + settings, result=[file for _, file in made] + listed,
            startTime=record.get("started"), endTime=record.get("finished"), actionStatus=STATUS[done],
            error=None if done else record.get("error"),
            environment=[self.entity(f"#train/{rid}/environment/{key}", "PropertyValue", name=key, value=scalar(v))
                         for key, v in flat(record, ENVIRONMENT).items()])


# ---- The crate ----

def build_crate(lineage: dict, root: Path, workflow: Path = Path("Snakefile"),
                license: str = "https://spdx.org/licenses/MIT") -> ROCrate:
    """The Provenance Run Crate of a finished workflow from its lineage and its runs' run.json. `root`: the
    crate's folder; paths (the lineage's too) are from the working directory."""
    c, runs = Crate(root), lineage["runs"]
    records = {rid: read_record(rid, entry) for rid, entry in runs.items()}
    commits = ", ".join(sorted({(r.get("git") or {}).get("commit") or "unknown" for r in records.values()}))
    tools = make_tools(c, lineage, records, commits)
    data_dir = (lineage.get("grid") or {}).get("data_dir", "the data directory")
    actions = {rule: [] for rule in RULES}
    actions["train_model"] = [c.train(tools["train_model"], rid, runs[rid], records[rid], data_dir) for rid in runs]
    analysis_actions(c, lineage, tools, actions)
    steps = [rule for rule in RULES if actions[rule]]  # a tool in the crate must have run
    c.crate.delete(*[tools[rule] for rule in RULES if rule not in steps])
    run = workflow_run(c, lineage, records, workflow, commits, tools, actions, steps)
    describe(c, license, len(runs), [run, *(a for rule in steps for a in actions[rule])])
    return c.crate


def make_tools(c: Crate, lineage: dict, records: dict, commits: str) -> dict:
    """A SoftwareApplication per rule's command, with the version of its code (the training runs': the commits,
    and the training code's hash as identifier)."""
    versions = {"train_model": commits, "make_table": lineage["analysis_code_sha256"],
                "plot_figure": lineage["figures_code_sha256"]}  # the probe's code hash is not in the lineage
    tools = {rule: c.entity(f"#trifecta-{command}", "SoftwareApplication", name=f"trifecta {command}",
                            description=COMMANDS[command][1], softwareVersion=versions.get(rule))
             for rule, command in RULES.items()}
    codes = [c.entity(f"#training-code/{code}", "PropertyValue", name="training_code", value=code)
             for code in sorted({str(r.get("training_code")) for r in records.values()})]
    tools["train_model"]["identifier"] = codes[0] if len(codes) == 1 else codes
    return tools


def analysis_actions(c: Crate, lineage: dict, tools: dict, actions: dict) -> None:
    """A CreateAction per probe, figure and table, its runs' metrics.json and snapshots in, its files out."""
    runs = lineage["runs"]

    def metrics(rids):
        return [c.file(Path(runs[r]["run_dir"]) / SUMMARY, runs[r]["files"].get(SUMMARY), f"{SUMMARY} of run {r}")
                for r in rids]

    def snapshots(artefact):
        return [c.file(runs[s["run"]]["snapshots"][str(s["epoch"])]["path"], s["sha256"],
                       f"snapshot of run {s['run']} at epoch {s['epoch']}") for s in artefact.get("snapshots", [])]

    def act(rule, id_, name, description, inputs, paths):
        actions[rule].append(c.entity(id_, "CreateAction", name=name, description=description, instrument=tools[rule],
                                      object=inputs, endTime=modified(paths),
                                      result=[c.file(p, lineage["files"].get(p), name) for p in paths]))

    tables = defaultdict(list)
    for a in lineage["artefacts"]:
        if a["kind"] == "probe":
            rid = a["runs"][0]
            act("probe_layers", f"#probe/{rid}", a["id"], "a classifier on each layer's features",
                metrics(a["runs"]) + snapshots(a), [p for p in lineage["files"] if p.endswith(f"/probe/{rid}.csv")])
        elif a["kind"] == "figure":
            act("plot_figure", f"#figure/{a['id']}", f"figure {a['id']}", f"from {len(a['runs'])} runs",
                metrics(a["runs"]) + snapshots(a), a["files"])
        elif a["kind"] == "collection":
            act("collect_runs", f"#collection/{a['id']}", a["id"], f"every run's evaluations, from {len(a['runs'])} runs",
                metrics(a["runs"]), a["files"])
        elif a["kind"] == "table_cell":
            tables[Path(a["file"]).with_suffix("")].append(a)
    for stem, cells in tables.items():
        rids = sorted({r for a in cells for r in a["runs"]})
        act("make_table", f"#table/{stem.name}", f"table {stem.name}", f"{len(cells)} cells from {len(rids)} runs",
            metrics(rids), [p for p in lineage["files"] if Path(p).with_suffix("") == stem])  # .csv, .md, ...


def workflow_run(c: Crate, lineage: dict, records: dict, workflow: Path, commits: str, tools: dict, actions: dict,
                 steps: list) -> ContextEntity:
    """The workflow, its run (the data in, the results out), and Snakemake's run of it: a ControlAction per step."""
    wf = c.crate.add_workflow(dest_path=os.path.relpath(workflow, c.root), main=True, lang="snakemake", properties={
        "@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow", "HowTo"], "version": commits,
        "name": "The Trifecta reproduction workflow", "hasPart": [tools[rule] for rule in steps],
        "conformsTo": {"@id": "https://bioschemas.org/profiles/ComputationalWorkflow/1.0-RELEASE"}})
    wf["step"] = [c.entity(f"{wf.id}#{rule}", "HowToStep", name=rule, position=i, workExample=tools[rule])
                  for i, rule in enumerate(steps)]
    inside = [p for p in lineage["files"] if not os.path.relpath(p, c.root).startswith("..")]
    lineage_file = c.root / "lineage.json"
    data = {d.id: d for a in actions["train_model"] for d in a["object"] if d.id.startswith("#data/")}
    started = min((r["started"] for r in records.values() if r.get("started")), default=None)
    run = c.entity(
        "#workflow-run", "CreateAction", name="run of the Trifecta workflow", instrument=wf, startTime=started,
        endTime=modified([lineage_file]), description=f"{len(records)} training runs, then probes, tables, figures",
        object=[data[i] for i in sorted(data)] + [c.file(p, lineage["files"][p], "an input of the workflow")
                                                  for p in lineage["files"] if p not in inside],
        result=[c.file(p, lineage["files"][p], "a result of the workflow") for p in inside] + (
            [c.file(lineage_file, sha256_file(lineage_file), "the lineage")] if lineage_file.exists() else []))
    controls = [c.entity(f"#control/{rule}", "ControlAction", name=f"orchestrate {rule}", object=actions[rule],
                         instrument=c.crate.get(f"{wf.id}#{rule}")) for rule in steps]
    c.entity("#snakemake-run", "OrganizeAction", name="run of Snakemake", object=controls, result=run,
             startTime=started, instrument=c.entity("https://snakemake.github.io", "SoftwareApplication",
                                                    name="Snakemake", url="https://snakemake.github.io"))
    return run


def describe(c: Crate, license: str, runs: int, mentions: list) -> None:
    """The crate's root dataset: name, license (an entity where it is a URL), profiles, what it mentions."""
    if license.startswith(("http://", "https://")):
        license = c.entity(license, "CreativeWork", name=license.rsplit("/", 1)[-1])
    for key, value in {"name": "The Trifecta reproduction: results", "license": license,
                       "description": f"{runs} training runs and the tables, probes and figures made from them",
                       "conformsTo": [c.entity(url, "CreativeWork", name=name, version=url.rsplit("/", 1)[1])
                                      for url, name in PROFILES.items()],
                       "mentions": mentions}.items():
        c.crate.root_dataset[key] = value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trifecta crate", description=__doc__.split("\n\n")[0])
    p.add_argument("lineage", type=Path, nargs="?", default=Path("results/lineage.json"),
                   help="the lineage from `trifecta lineage` (default: results/lineage.json)")
    p.add_argument("--out", type=Path, default=Path("results/ro-crate-metadata.json"),
                   help="the crate's metadata file, in the crate's folder (default: results/ro-crate-metadata.json)")
    p.add_argument("--workflow", type=Path, default=Path("Snakefile"), help="the workflow (default: Snakefile)")
    p.add_argument("--license", default="https://spdx.org/licenses/MIT",
                   help="license of the results: a URL (default: the project's, MIT) or a text")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.out.name != "ro-crate-metadata.json":
        raise ValueError(f"--out {args.out}: an RO-Crate's metadata file is named ro-crate-metadata.json")
    crate = build_crate(read_json(args.lineage), args.out.parent, args.workflow, args.license)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(crate.metadata.generate(), indent=1, sort_keys=True))
    print(f"crate: {len(crate.get_by_type('CreateAction'))} actions, {len(crate.data_entities)} files -> {args.out}")
    return 0
