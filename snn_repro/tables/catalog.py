"""Where tables live: the checklist of the papers' artefacts and the table configs in conf/table/.

A table config (`conf/table/<paper>_<id>.yaml`) is one artefact as data, in one `table:` node, and the single
description of its rows:
  paper, id, title, datasets, metric, seeds, conventions, script (a script artefact), extra_metrics;
  rows:  <row id>: {experiment: <paper>/<base>, job: <paper>/<name>, overrides: {key: value}, paper: value,
                    paper_extra: {name: value}}
         a base experiment of conf/experiment/ (a paper's model on one dataset), the overrides that make it this row
         (Hydra's: `neuron: lif` picks a group option, `+key: v` adds a key the base lacks), the paper's value; `job`
         names the row's runs (its directory under runs/<paper>/, shared by every table of the paper that lists the
         same row; the sweep values extend it), by default the base experiment's name extended by `names`;
  sweep: {<key>: [values]}  axes every row runs at (Hydra's sweeper expands them); a swept row's `paper` maps each
         value to the paper's number;
  names: {<key>: {row: "_T{}", job: "_t{}", job_plain_at: <value>}}  how a value of a key (swept, or a row override)
         extends the row id and the job's directory name (none at `job_plain_at`);
  paper_reference: what the paper column holds when it is not a paper's printed value (the demo);
  paper_values: {<row>: value} for a script artefact (rows written by its script).
A convention (or `paper_protocol`, `seeds_note`) written `{shared: <file>}` is the text of the same key in
conf/table/conventions/<file>.yaml: what several tables say alike is written once there.
The paper values live only here.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from snn_repro.results import ROOT
from snn_repro.tables.protocols import PAPER, protocol_subdir

TABLE_DIR = ROOT / "conf" / "table"
SHARED_DIR = TABLE_DIR / "conventions"  # texts several tables take with `{shared: <file>}`
CHECKLIST = Path(__file__).with_name("checklist.yaml")
RESULTS_DIR = ROOT / "results"
RUNS_DIR = ROOT / "runs"  # the jobs of results/'s tables: outside git, so a run never makes the checkout "-dirty"
PAPERS = ("asf", "apbs", "aia", "bpsa", "map")


@dataclass
class Row:
    """One row of a table as run: a base experiment, the overrides that make it this row, the paper's value(s)."""
    id: str
    experiment: str
    overrides: dict[str, Any] = field(default_factory=dict)  # row overrides and this row's sweep values
    job: str = ""  # the job's directory under runs/<paper>/ (catalog.job_name)
    paper: Any = None
    paper_extra: dict[str, Any] = field(default_factory=dict)
    swept: dict[str, Any] = field(default_factory=dict)  # the sweep axes' values of this row
    declared: str = ""  # the row id as the table declares it (before the sweep values' suffixes)
    job_base: str = ""  # the job's name before the sweep values extend it (catalog.job_name)

    def override_args(self) -> list[str]:
        return [f"{k}={_override_value(v)}" for k, v in self.overrides.items()]

    def args(self) -> list[str]:
        """The command-line overrides that compose this row by hand: ``python -m snn_repro <args>``."""
        return [f"+experiment={self.experiment}", *self.override_args()]


def _override_value(v: Any) -> str:
    """A value as Hydra's override grammar reads it back (null, true, [a,b], {k:v})."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_override_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}:{_override_value(x)}" for k, x in v.items()) + "}"
    return str(v)


def override_key(key: str) -> str:
    """The config key an override sets (``+arch.x`` adds ``arch.x``)."""
    return key.lstrip("+~")


@dataclass
class Table:
    paper: str
    id: str
    title: str = ""
    datasets: list[str] = field(default_factory=list)
    metric: str = "test/acc"
    seeds: list[int] = field(default_factory=lambda: [0])
    rows: dict[str, Row] = field(default_factory=dict)  # expanded: one per declared row and sweep value
    sweep: dict[str, list] = field(default_factory=dict)
    names: dict[str, dict] = field(default_factory=dict)
    conventions: dict[str, Any] = field(default_factory=dict)
    script: str | None = None
    paper_reference: str | None = None
    paper_values: dict[str, Any] = field(default_factory=dict)  # a script artefact's values
    config_file: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys beyond the fixed format (e.g. extra_metrics)
    variant: str = ""  # a run with overrides that change the jobs (snn_repro/tables/variants.py); "" = canonical

    @property
    def name(self) -> str:  # the `+table=` option and the make target suffix
        return f"{self.paper}_{self.id}"

    @property
    def target(self) -> str:
        return f"table-{self.paper}-{self.id}"

    @property
    def group(self) -> str:  # the W&B group
        return f"{self.paper}-{self.id}"


class TableConfigError(ValueError):
    pass


def table_names() -> list[str]:
    return sorted(p.stem for p in TABLE_DIR.glob("*.yaml"))


def _suffix(names: dict[str, dict], values: dict[str, Any], part: str, interpolated: Iterable[str] = ()) -> str:
    """What the values of ``names``' keys add to a row id (``part="row"``) or a job name (``"job"``); a key in
    ``interpolated`` adds a Hydra interpolation of itself (``${dataset.T}``), expanded by each job of a sweep."""
    out = ""
    for key, spec in names.items():
        if key in values and spec.get(part):
            if part == "job" and "job_plain_at" in spec and values[key] == spec["job_plain_at"]:
                continue
            value = "${" + key + "}" if key in interpolated else str(values[key])
            out += str(spec[part]).replace("{}", value)
    return out


def job_name(table: "Table", job: str, values: dict[str, Any], interpolated: Iterable[str] = ()) -> str:
    """The one rule naming a row's runs: ``job`` extended by the table's ``names`` for ``values`` (keys in
    ``interpolated`` as Hydra interpolations, for a sweep's ``hydra.sweep.subdir``; at a name's ``job_plain_at``
    value the job keeps its plain name, so the runner starts that value's jobs in a sweep of their own)."""
    return f"{job}{_suffix(table.names, values, 'job', interpolated)}"


ROW_KEYS = ("experiment", "job", "overrides", "paper", "paper_extra")


def _expand_rows(path: Path, table: "Table", declared: dict) -> dict[str, Row]:
    rows: dict[str, Row] = {}
    axes = list(table.sweep)
    for rid, spec in (declared or {}).items():
        if isinstance(spec, str):
            spec = {"experiment": spec}
        if not isinstance(spec, dict) or "experiment" not in spec:
            raise TableConfigError(f"{path}: table.rows.{rid} needs an experiment")
        unknown = set(spec) - set(ROW_KEYS)
        if unknown:
            raise TableConfigError(f"{path}: table.rows.{rid}: unknown keys {sorted(unknown)} "
                                   f"(known: {', '.join(ROW_KEYS)})")
        overrides = spec.get("overrides") or {}
        if not isinstance(overrides, dict):
            raise TableConfigError(f"{path}: table.rows.{rid}.overrides: a mapping of key: value")
        fixed = {str(k): v for k, v in overrides.items()}
        for combo in itertools.product(*(table.sweep[a] for a in axes)):
            swept = dict(zip(axes, combo))
            values = {**fixed, **swept}
            row_id = f"{rid}{_suffix(table.names, swept, 'row')}"
            paper = spec.get("paper")
            if axes and isinstance(paper, dict):
                paper = paper.get(combo[0] if len(combo) == 1 else "_".join(map(str, combo)))
            # the row's name at its fixed overrides: its own `job`, else the base experiment's extended by `names`
            job = str(spec["job"]) if spec.get("job") else job_name(table, str(spec["experiment"]), fixed)
            rows[row_id] = Row(row_id, str(spec["experiment"]), values, job_name(table, job, swept), paper,
                               dict(spec.get("paper_extra") or {}), swept, str(rid), job)
    runs: dict[str, Row] = {}
    for row in rows.values():  # one job directory holds the runs of one config
        other = runs.setdefault(row.job, row)
        if row.args() != other.args():
            raise TableConfigError(f"{path}: table.rows.{row.declared} and {other.declared} run differently in the "
                                   f"same job {row.job}: give one its own `job`")
    return rows


@functools.cache
def _shared_file(source: Path) -> Any:
    """A conventions file, parsed once per process (every table of a paper takes several keys of it)."""
    return yaml.safe_load(source.read_text()) if source.exists() else None


def _shared_text(path: Path, where: str, key: str, value: Any) -> Any:
    """``{shared: <file>}`` -> the text of ``key`` in conf/table/conventions/<file>.yaml; any other value as is."""
    if not (isinstance(value, dict) and set(value) == {"shared"}):
        return value
    source = SHARED_DIR / f"{value['shared']}.yaml"
    texts = _shared_file(source)
    if not isinstance(texts, dict) or key not in texts:
        raise TableConfigError(f"{path}: {where}: {{shared: {value['shared']}}}: no `{key}` in {source}")
    return texts[key]


def _resolve_shared(path: Path, node: dict) -> dict:
    node = dict(node)
    for key in ("paper_protocol", "seeds_note"):
        if key in node:
            node[key] = _shared_text(path, f"table.{key}", key, node[key])
    node["conventions"] = {k: _shared_text(path, f"table.conventions.{k}", k, v)
                           for k, v in (node.get("conventions") or {}).items()}
    return node


def load_table(name_or_path: str | Path) -> Table:
    """A table from `conf/table/<name>.yaml` (name like `asf_t1`) or from a path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = TABLE_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        raise TableConfigError(f"no table config {path} (tables: {', '.join(table_names())})")
    node = (yaml.safe_load(path.read_text()) or {}).get("table")
    if not isinstance(node, dict):
        raise TableConfigError(f"{path}: no `table:` node")
    for key in ("paper", "id"):
        if key not in node:
            raise TableConfigError(f"{path}: table.{key} is missing")
    node = _resolve_shared(path, node)
    known = set(Table.__dataclass_fields__) - {"config_file", "extra", "rows", "variant"}
    table = Table(**{k: v for k, v in node.items() if k in known and (v is not None or k == "script")},
                  config_file=path, extra={k: v for k, v in node.items() if k not in known | {"rows"}})
    table.id, table.paper = str(table.id), str(table.paper)
    table.sweep = {str(k): list(v) for k, v in (table.sweep or {}).items()}
    table.names = {str(k): dict(v) for k, v in (table.names or {}).items()}
    table.rows = _expand_rows(path, table, node.get("rows") or {})
    table.seeds = [int(s) for s in (table.seeds or [0])]
    table.datasets = list(table.datasets or [])
    table.paper_values = dict(table.paper_values or {})
    if path.stem != table.name:
        raise TableConfigError(f"{path}: file name must be {table.name}.yaml (paper_id)")
    return table


def discover_tables(errors: dict[str, str] | None = None) -> dict[str, Table]:
    """Every table config under conf/table/, by name; a broken one is left out (its message into ``errors``)."""
    out = {}
    for p in sorted(TABLE_DIR.glob("*.yaml")):
        try:
            out[p.stem] = load_table(p)
        except (TableConfigError, yaml.YAMLError, TypeError) as e:
            if errors is not None:
                errors[p.stem] = str(e).splitlines()[0]
    return out


def job_args(job: str) -> list[str]:
    """The overrides that compose the runs named ``job`` (a row's job directory below runs/<paper>/, e.g.
    ``bpsa/dvsgesture_baseline``) as the tables that list it run them."""
    rows = [row for table in discover_tables().values() for row in table.rows.values() if row.job == job]
    if not rows:
        raise TableConfigError(f"no table row runs as {job}")
    return min((row.args() for row in rows), key=len)  # the same config; a sweep's value at its plain name aside


def paper_reference(table: Table) -> str:
    """What the "paper" column holds: the paper's printed value unless the table says otherwise (the demo)."""
    return table.paper_reference or "the value printed in the paper"


def checklist() -> dict[str, dict]:
    return yaml.safe_load(CHECKLIST.read_text())


def runs_dir(table: Table, base: Path | None = None) -> Path:
    """Where a paper's table jobs run: runs/<paper>/ for the tables of results/ (git-ignored; each job's record is
    copied into results/<paper>/<id>.runs.json when a table is aggregated), <base>/<paper>/runs/ under any other base
    (smoke runs, tests). The directory is the paper's, not the table's: a row that several of its tables list (the
    job apbs/cifar10dvs_all in APBS Tables 1-3 and Fig. 4) runs once, and every table reads that run (the job
    directory names the row's runs; the skip hash, which ignores the table, must match)."""
    if base is None or Path(base).resolve() == RESULTS_DIR.resolve():
        runs = RUNS_DIR / table.paper
    else:
        runs = Path(base) / table.paper / "runs"
    return runs / "variants" / table.variant if table.variant else runs


def table_path(table: Table, base: Path | None = None, suffix: str = ".md") -> Path:
    """Where the table is written: <base>/<paper>/<id>.md (.csv, .runs.json, .png); a variant's beside it as
    <id>.variant-<name>.md, so that it never replaces the canonical table."""
    name = f"{table.id}.variant-{table.variant}" if table.variant else table.id
    return Path(base or RESULTS_DIR) / table.paper / f"{name}{suffix}"


def base_of(table: Table, runs: Path) -> Path:
    """The base (results/, or the smoke or test directory) whose ``runs_dir`` is ``runs``: its inverse."""
    runs = Path(runs)
    if runs.resolve() == (RUNS_DIR / table.paper).resolve():
        return RESULTS_DIR
    if runs.name == "runs" and runs.parent.name == table.paper:
        return runs.parent.parent
    raise ValueError(f"{runs}: not a runs directory of table {table.name} (expected {RUNS_DIR / table.paper} "
                     f"or <base>/{table.paper}/runs)")


def job_subdir(job: str, seed: int | str, protocol: str = PAPER) -> str:
    """The one rule naming a job's directory below the runs directory: ``<row job>/[held_out/]seed<seed>``. The
    runner hands it Hydra interpolations (``${seed}``) to name the jobs of a sweep the same way."""
    return f"{job}/{protocol_subdir(protocol)}seed{seed}"


def job_dir(table: Table, row: Row, seed: int, base: Path | None = None, protocol: str = PAPER) -> Path:
    """The stable directory of one job: runs_dir / <row.job> / [held_out/] seed<seed>."""
    return runs_dir(table, base) / job_subdir(row.job, seed, protocol)
