"""A figure's job, from its declaration (planning/paper.py: `FIGURES`, `FIGURE_OPTIONS`) and its entry under the
config's `figures:`: the runs it draws, its options with their declared defaults, its data files and the
`trifecta figure` options that say all of it. No torch.

    job = figure_job("fig10", config["figures"]["fig10"], grid_runs)   # None while a run it draws is missing
    job.runs, job.options, job.inputs, job.args(), job.export_args()

The one translation of a figure's entry: the workflow's rules (through `Grid.figure_job`) and `trifecta interim`
both call `figure_job`, and `trifecta figure` fills in its options with `figure_options`, so that a new option is
an `Option` in paper.py and the drawing code that reads it.
"""

from dataclasses import dataclass

from trifecta.planning.paper import FIGURE_OPTIONS, FIGURES
from trifecta.planning.runs import Run
from trifecta.training.registry import get_arch

RUNS_DRAWN = ("dataset", "arch", "algos")  # the keys of an entry that name its runs; the others are options

# A kind of data a figure declares -> the `trifecta figure` options that give it, with their files ({fig}: the
# figure, {algo}: one file per algorithm drawn), as the rules collect_steps, merge_probes and export_weights write.
DATA = {
    "steps": {"epoch-means": "results/figures/data/{fig}.epochs.csv", "steps": "results/figures/data/{fig}.steps.csv"},
    "probe": {"probe": "results/tables/probe.csv"},
    "weights": {"weights": "results/weights/{fig}/{algo}.npz"},
}


@dataclass(frozen=True)
class FigureJob:
    name: str
    dataset: str
    arch: str
    algos: tuple[str, ...]
    runs: tuple[Run, ...]  # every run it draws (every seed: the drawing picks), by algorithm, in the grid's order
    options: dict  # each option the figure takes -> the entry's value, or its declared default
    inputs: dict  # `trifecta figure` option -> its data file(s), beyond runs.csv and layers.csv

    def args(self) -> dict:
        """The `trifecta figure` options, beside --name, --runs, --layers and its outputs: the runs it draws, its
        options and its data files."""
        options = {FIGURE_OPTIONS[key].command_option: value for key, value in self.options.items()}
        return {"dataset": self.dataset, "arch": self.arch, "algos": list(self.algos), **options, **self.inputs}

    def export_args(self) -> dict:
        """The `trifecta export-weights` options of its weight matrices (data "weights"), beside --algo: the last of
        its `layers` (default: the architecture's last) at its `epoch`."""
        layers = self.options.get("layers") or [get_arch(self.arch).layers]
        return {"dataset": self.dataset, "arch": self.arch, "layer": layers[-1], "epoch": self.options.get("epoch")}


def figure_job(name: str, entry: dict, runs) -> FigureJob | None:
    """What a job of figure `name` needs, from its config entry and the grid's runs (an iterable of Run); None
    while an algorithm it draws has no run there. A bad option raises ValueError("KEY: why")."""
    drawn = [[run for run in runs if (run.dataset, run.arch, run.algo) == (entry["dataset"], entry["arch"], algo)]
             for algo in entry["algos"]]
    options = figure_options(name, {k: v for k, v in entry.items() if k not in RUNS_DRAWN}, entry["arch"])
    if not all(drawn):
        return None
    inputs = {}
    for kind in FIGURES[name].data:
        for option, path in DATA[kind].items():
            files = [path.format(fig=name, algo=algo) for algo in entry["algos"]]
            inputs[option] = files if "{algo}" in path else files[0]
    return FigureJob(name, entry["dataset"], entry["arch"], tuple(entry["algos"]),
                     tuple(run for group in drawn for run in group), options, inputs)


def figure_options(name: str, given: dict, arch: str) -> dict:
    """Each option figure `name` takes -> its value in `given` (an entry's options, or the command's) or, where
    missing or None, its declared default, checked: an option the figure does not take, a value of the wrong
    type, one not positive, or a layer the architecture lacks raises ValueError("KEY: why")."""
    taken = FIGURES[name].options
    for key in given:
        if key not in taken:
            raise ValueError(f"{key}: {name} takes no such option (it takes: {', '.join(taken) or 'none'})")
    return {key: _checked(FIGURE_OPTIONS[key], given.get(key), arch) for key in taken}


def _checked(option, value, arch: str):
    """An option's value, or its default where it is None; its values' type, sign and layers checked."""
    if value is None:
        return [] if option.many else option.default
    values = value if option.many and isinstance(value, list) else [value]
    numbers = (int, float) if option.type is float else (int,)
    if (option.many and not isinstance(value, list)) or \
            not all(isinstance(v, numbers) and not isinstance(v, bool) and v > 0 for v in values):
        what = "whole number" if option.type is int else "number"
        raise ValueError(f"{option.name}: {value!r}: must be "
                         + (f"a list of positive {what}s" if option.many else f"a positive {what}"))
    if option.layer and max(values, default=0) > get_arch(arch).layers:
        raise ValueError(f"{option.name}: layer {max(values)}, but arch '{arch}' has {get_arch(arch).layers} layers")
    values = [option.type(v) for v in values]
    return values if option.many else values[0]
