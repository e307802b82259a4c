"""The runs a workflow config describes, each checked with the package's own validation while planning. No torch.

    grid = Grid.from_config(config)          # raises GridError naming the entry, the key, the value and why
    grid.runs                                # {runs.Run: grid entry}
    grid.settings(run)                       # that run's resolved Settings
    grid.figure_job("fig1")                  # what a configured figure's job needs (planning/figurejob.py)

The workflow (workflow/rules/common.smk), `trifecta status`, the audit and the GPU-hour benchmark read the grid
here, so a run's settings and the checks of the `probe:`, `figures:` and `tables:` blocks have one home. Reading
config files: configfile.py.
"""

import itertools
import json
from dataclasses import dataclass, field

from trifecta.identity.runcode import run_code
from trifecta.planning.figurejob import FigureJob, figure_job
from trifecta.planning.paper import BASELINE_NOTES, FIGURES, TABLES
from trifecta.planning.runs import Run
from trifecta.training.settings import SettingsError, Settings, render_settings, resolved_recipe, resolve_settings
from trifecta.training.registry import canonical_name, check_combination, get_arch, get_dataset, parse_ff_name


class GridError(ValueError):
    """The config's grid, probe or figures block cannot be run as written."""


@dataclass
class Grid:
    config: dict
    runs: dict[Run, dict] = field(default_factory=dict)  # run -> its grid entry
    notes: list[str] = field(default_factory=list)  # analysis entries that plan nothing, one line each
    _settings: dict = field(default_factory=dict)  # (entry name, algo, dataset) -> Settings

    @classmethod
    def from_config(cls, config: dict) -> "Grid":
        grid = cls(config)
        names = set()
        for i, entry in enumerate(config["runs"]):
            name = entry["name"]
            if name in names:
                raise GridError(f"config: two grid entries in `runs` are named '{name}'")
            names.add(name)
            for dataset, arch, algo, seed in itertools.product(entry["datasets"], entry["archs"], entry["algos"],
                                                               entry["seeds"]):
                grid._add(Run(dataset, arch, algo, seed), entry, i)
        grid._check_probe()
        grid._check_figures()
        grid._check_tables()
        grid._check_resources()
        return grid

    def _add(self, run: Run, entry: dict, index: int) -> None:
        where = f"config: grid entry '{entry['name']}' (runs[{index}])"
        if canonical_name(run.algo) != run.algo:
            raise GridError(f"{where}: algo '{run.algo}': write '{canonical_name(run.algo)}' "
                            "(one name per algorithm, so that one run serves every table and figure)")
        try:
            check_combination(run.algo, run.arch)
            get_dataset(run.dataset)
        except ValueError as err:
            note = f" ({BASELINE_NOTES[run.algo]})" if run.algo in BASELINE_NOTES and "supports" in str(err) else ""
            raise GridError(f"{where}: {err}{note}") from None
        key = (entry["name"], run.algo, run.dataset)
        if key not in self._settings:
            try:
                self._settings[key] = resolve_settings(entry["settings"], run.algo, run.dataset)
            except SettingsError as err:
                value = err.value if err.key not in entry["settings"] else entry["settings"][err.key]
                raise GridError(f"{where}, run {run.dataset}/{run.arch}/{run.algo}: settings.{err.key} = "
                                f"{value!r}: {err.why}") from None
        first = self.runs.setdefault(run, entry)
        mine, theirs = render_settings(entry["settings"]), render_settings(first["settings"])
        if mine != theirs:
            raise GridError(f"config: run {run.id} is in grid entries '{first['name']}' ({theirs}) and "
                            f"'{entry['name']}' ({mine}) with different settings; give it one set of settings")

    def settings(self, run: Run) -> Settings:
        entry = self.runs[run]
        return self._settings[(entry["name"], run.algo, run.dataset)]

    def expected_identity(self, run: Run, device: str | None = None) -> dict:
        """The identity the grid and the checkout name for a run (as run.json and metrics.json hold it): its
        settings and the code it can execute, the recipe where the device type is given; not the data checksums,
        which only the data files can give."""
        cfg = self.settings(run)
        expected = {**vars(run), "settings": json.loads(json.dumps(cfg.identity_dict())),
                    "training_code": run_code(run.dataset, run.arch, run.algo).sha256}
        if device is not None:
            expected["recipe"] = resolved_recipe(cfg.precision, device)
        return expected

    def device(self) -> str | None:
        """The device type a training job of this config computes on: the CPU when its jobs get no GPU; None when
        they get one (CUDA where the node has it: known only where the job runs)."""
        return "cpu" if self.config.get("resources", {}).get("gpu") == 0 else None

    def select(self, **only) -> list[Run]:
        """Runs of the grid whose fields equal `only` (e.g. dataset="cifar10", algo="tff"), in config order."""
        return [run for run in self.runs if all(getattr(run, k) == v for k, v in only.items())]

    # ---- The analysis blocks against the grid ----

    def _check_probe(self) -> None:
        probe = self.config.get("probe", {})
        if not probe.get("activate"):
            return
        _check_names("probe", probe)
        if not any(self.select(dataset=probe["dataset"], arch=probe["arch"], algo=algo) for algo in probe["algos"]):
            self.notes.append(f"probe: no run of {probe['dataset']}/{probe['arch']} with algos "
                              f"{', '.join(probe['algos'])} is in the grid: no probes, no Figure 8")
        for algo in probe["algos"]:
            if parse_ff_name(algo) is None:
                raise GridError(f"config: probe.algos: '{algo}' is not a Forward-Forward algorithm (probes read "
                                "goodness layers)")
            for run in self.select(dataset=probe["dataset"], arch=probe["arch"], algo=algo):
                kept = self.settings(run).snapshot_epochs
                if probe.get("epoch") is not None and probe["epoch"] not in kept:
                    raise GridError(f"config: probe.epoch = {probe['epoch']}: run {run.id} (grid entry "
                                    f"'{self.runs[run]['name']}') keeps snapshots at epochs {kept} only; add it to "
                                    "that entry's settings.snapshot_epochs or change probe.epoch")

    def figure_job(self, name: str) -> FigureJob | None:
        """A configured figure's job (planning/figurejob.py), or None: figures off, no entry, a run it draws not in
        the grid, or probes it draws that the probe block does not make."""
        figures = self.config.get("figures", {})
        entry = figures.get(name)
        if not figures.get("activate") or not entry:
            return None
        job = figure_job(name, entry, self.runs)
        if job and "probe" in FIGURES[name].data and not self._probes(job):
            return None
        return job

    def _probes(self, job: FigureJob) -> bool:
        """Whether the probe block probes every run a figure draws."""
        probe = self.config.get("probe", {})
        return bool(probe.get("activate")) and (probe["dataset"], probe["arch"]) == (job.dataset, job.arch) \
            and set(job.algos) <= set(probe["algos"])

    def _check_figures(self) -> None:
        for name, entry in self.config.get("figures", {}).items():
            if name == "activate":
                continue
            if name not in FIGURES:
                raise GridError(f"config: figures.{name}: no such figure; the paper's are {', '.join(FIGURES)} "
                                "(planning/paper.py)")
            _check_names(f"figures.{name}", entry)
            try:
                job = figure_job(name, entry, self.runs)
            except ValueError as err:
                raise GridError(f"config: figures.{name}.{err}") from None
            if job is None:
                if self.config["figures"].get("activate"):
                    missing = [f"{entry['dataset']}/{entry['arch']}/{algo}" for algo in entry["algos"]
                               if not self.select(dataset=entry["dataset"], arch=entry["arch"], algo=algo)]
                    self.notes.append(f"figures.{name}: no run of {', '.join(missing)} in the grid: not drawn")
                continue
            for option, setting in FIGURES[name].keeps:
                epochs = job.options[option]
                epochs = [e for e in (epochs if isinstance(epochs, list) else [epochs]) if e is not None]
                for run in job.runs:
                    kept = getattr(self.settings(run), setting)
                    missing = [e for e in epochs if e not in kept]
                    if missing:
                        raise GridError(f"config: figures.{name}: epoch {missing[0]} is not in {setting} {kept} of "
                                        f"run {run.id} (grid entry '{self.runs[run]['name']}')")

    def _check_tables(self) -> None:
        for name in self.config.get("tables", {}).get("stand_in", {}):
            if name not in TABLES:
                raise GridError(f"config: tables.stand_in.{name}: no such table; the paper's are "
                                f"{', '.join(TABLES)} (planning/paper.py)")

    def _check_resources(self) -> None:
        """Every architecture of the grid has a runtime estimate (or each of its entries has its own)."""
        minutes = self.config.get("resources", {}).get("minutes_per_epoch")
        if minutes is None:
            return
        for run, entry in self.runs.items():
            if run.arch not in minutes and "minutes_per_epoch" not in entry.get("resources", {}):
                raise GridError(f"config: resources.minutes_per_epoch has no estimate for architecture '{run.arch}' "
                                f"(run {run.id}, grid entry '{entry['name']}'); add `{run.arch}: MINUTES` there")


def _check_names(block: str, entry: dict) -> None:
    """The dataset and architecture an analysis block names exist."""
    try:
        get_dataset(entry["dataset"]), get_arch(entry["arch"])
    except ValueError as err:
        raise GridError(f"config: {block}: {err}") from None
