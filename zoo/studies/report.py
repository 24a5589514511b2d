"""The markdown report of a study, regenerated from its result files alone (``zoo study NAME --report-only``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo.files import read_json, write_text
from zoo.studies.findings import check
from zoo.studies.plots import plot_group
from zoo.studies.results import StudyPaths, read_runs
from zoo.studies.spec import METRICS, RunSpec, Study

__all__ = ["DATASET_NAMES", "metric_values", "render_report", "write_report"]

DATASET_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "emnist-balanced": "EMNIST Balanced",
                 "cifar10": "CIFAR-10"}

Records = Mapping[str, Mapping[str, Any]]


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}%"


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


def _dataset(record: Mapping[str, Any]) -> str:
    name = DATASET_NAMES.get(record["dataset"], record["dataset"])
    return name + (" (JPEG copy)" if record.get("data_source") == "jpeg" else "")


def metric_values(records: Records, metric: str) -> dict[str, float]:
    """``metric`` per finished run; a diverged run counts as 0 (it failed), a missing run is absent."""
    values = {}
    for label, record in records.items():
        if record["status"] == "diverged":
            values[label] = 0.0
        elif record.get(metric) is not None:
            values[label] = record[metric]
    return values


def _settings(spec: RunSpec) -> str:
    # What distinguishes the run: its preset and overrides (the study's shared settings are in the header).
    parts = [f"{k}={json.dumps(v)}" for k, v in {**spec.model_args, **spec.train}.items()]
    return f"`{spec.model}` " + ", ".join(parts)


def _ours(record: Mapping[str, Any] | None, metric: str) -> str:
    if record is None:
        return "not run"
    if record["status"] == "diverged":
        return f"diverged (epoch {record['epochs_done'] + 1})"
    return _pct(record.get(metric))


def _run_table(study: Study, specs: list[RunSpec], records: Records) -> list[str]:
    metric = study.metric
    extra = [m for m in ("test_acc", "best_val_acc") if m != metric]
    head = ["run", "settings", "dataset", "epochs", f"ours: {METRICS[metric]}", "published", "difference",
            *(METRICS[m] for m in extra), "wall time", "seed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for spec in specs:
        record = records.get(spec.label)
        if record is None:
            blank = [""] * len(extra)
            cells = [spec.label, _settings(spec), "", "", "not run", _pct(spec.published), "", *blank, "", ""]
        else:
            value = record.get(metric) if record["status"] == "done" else None
            # A difference only means something on the dataset the published number is on.
            same_data = record["dataset"] == study.published_dataset
            comparable = value is not None and spec.published is not None and same_data
            diff = f"{100 * (value - spec.published):+.2f}" if comparable else ""
            cells = [spec.label, _settings(spec), _dataset(record), str(record["epochs_done"]) + (
                f"/{record['config']['epochs']}" if record["epochs_done"] != record["config"]["epochs"] else ""),
                _ours(record, metric), _pct(spec.published), diff,
                *(_pct(record.get(m)) if record["status"] == "done" else "" for m in extra),
                _seconds(record["wall_s"]), str(record["config"]["seed"])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _selection_table(study: Study, records: Records) -> list[str]:
    lines = ["| selection | chosen run | by | ours | published |", "|---|---|---|---|---|"]
    for sel in study.selections:
        values = metric_values({k: v for k, v in records.items() if k in sel.candidates}, sel.by)
        if values:
            chosen = max(values, key=values.__getitem__)
            ours = _pct(records[chosen].get(sel.report))
            missing = len(sel.candidates) - len(values)
            chosen_text = chosen + (f" ({missing} candidates not run)" if missing else "")
        else:
            chosen_text, ours = "no candidate run", ""
        lines.append(f"| {sel.label} | {chosen_text} | {METRICS[sel.by]} | {ours} | {_pct(sel.published)} |")
    return lines


def _finding_table(study: Study, records: Records) -> list[str]:
    lines = ["| published finding | held in our runs? | numbers |", "|---|---|---|"]
    for finding in study.findings:
        metric = finding.metric or study.metric
        values = metric_values(records, metric)
        held = check(finding, values)
        verdict = {True: "**yes**", False: "**no**", None: "not checked (runs missing)"}[held]
        numbers = ", ".join(f"{label} {_ours(records.get(label), metric)}" for label in finding.needs)
        lines.append(f"| {finding.text} | {verdict} | {METRICS[metric]}: {numbers} |")
    return lines


def _gradcheck_section(path: Path) -> list[str]:
    data = read_json(path)
    lines = [
        "## Numerical gradient check",
        "",
        f"Central differences (h = {data['h']:g}) vs autograd in {data['dtype']}, on {data['batch_size']} "
        f"{_dataset(data)} training images, cost = cross-entropy + "
        f"{data['l2']:g} * sum ||W||^2, through the whole network (zoo's batch-norm kernels included); up to "
        f"{data['max_entries']} random entries per parameter. "
        f"Relative error = |a - n| / max(|a| + |n|, {data['rel_floor']:g}).",
        "",
    ]
    for model in data["models"]:
        lines += [f"**{model['name']}** (`{model['preset']}`): {'passed' if model['passed'] else '**FAILED**'} "
                  f"({model['seconds']:.1f} s)", "",
                  "| parameter | layer | shape | entries | max abs error | max rel error | max abs gradient | passed |",
                  "|---|---|---|---|---|---|---|---|"]
        for p in model["params"]:
            shape = "x".join(map(str, p["shape"]))
            lines.append(f"| {p['name']} | {p['module']} | {shape} | {p['checked']} | {p['max_abs_err']:.2e} "
                         f"| {p['max_rel_err']:.2e} "
                         f"| {p['max_abs_grad']:.2e} | {'yes' if p['passed'] else 'NO'} |")
        lines.append("")
    return lines


def _summary(study: Study, records: Records) -> list[str]:
    done = [r for r in records.values() if r["status"] == "done"]
    diverged = [r["label"] for r in records.values() if r["status"] == "diverged"]
    datasets = sorted({_dataset(r) for r in records.values()})
    epochs = sorted({r["config"]["epochs"] for r in records.values()})
    published_epochs = sorted({int({**study.base, **s.train}.get("epochs", 0)) for s in study.runs})
    pairs = [(records[s.label][study.metric], s.published) for s in study.runs
             if s.published is not None and s.label in records and records[s.label]["status"] == "done"
             and records[s.label]["dataset"] == study.published_dataset]
    lines = [
        f"- Runs: {len(records)} of {len(study.runs)} done ({len(done)} finished, {len(diverged)} diverged"
        + (f": {', '.join(diverged)}" if diverged else "") + ").",
        f"- Dataset actually used: {', '.join(datasets) or 'none yet'} "
        f"(published: {DATASET_NAMES.get(study.published_dataset, study.published_dataset)}).",
        f"- Epochs per run: {', '.join(map(str, epochs)) or '-'} (published protocol: "
        f"{', '.join(map(str, published_epochs))}).",
        f"- Total wall time: {_seconds(sum(r['wall_s'] for r in records.values()))}; "
        f"threads: {', '.join(sorted({str(r['threads']) for r in records.values()}))}; "
        f"devices: {', '.join(sorted({r['config']['device'] for r in records.values()}))}; "
        f"torch {', '.join(sorted({r['torch_version'] for r in records.values()}))}.",
    ]
    other = sorted({_dataset(r) for r in records.values() if r["dataset"] != study.published_dataset})
    if other:
        lines.append(f"- **Not the published dataset:** ours are on {', '.join(other)}, the published numbers on "
                     f"{DATASET_NAMES.get(study.published_dataset, study.published_dataset)}, a different task: "
                     "compare trends (which setting wins), not values; the difference column stays empty.")
    subsets = sorted({r["config"]["train_size"] for r in records.values() if r["config"].get("train_size")})
    if subsets:
        lines.append(f"- **Reduced training set:** {', '.join(map(str, subsets))} images drawn at random (seeded) "
                     "from the training split (`--train-size`), validation and test sets complete.")
    limited = sorted({r["config"]["max_batches"] for r in records.values() if r["config"].get("max_batches")})
    if limited:
        lines.append(f"- **Smoke-test budget:** at most {', '.join(map(str, limited))} batches per epoch and "
                     "evaluation (`--max-batches`); these numbers are not results.")
    if pairs:
        gaps = [100 * abs(ours - pub) for ours, pub in pairs]
        lines.append(f"- Against the {len(pairs)} published numbers: mean absolute difference "
                     f"{sum(gaps) / len(gaps):.2f} points, {sum(g <= 1 for g in gaps)} within 1 point, "
                     f"{sum(g <= 3 for g in gaps)} within 3 points.")
    return lines


def render_report(study: Study, paths: StudyPaths) -> str:
    """The report's markdown, drawing per-group plots into the study folder as it goes."""
    labels = {spec.label for spec in study.runs}
    records = {label: r for label, r in read_runs(paths).items() if label in labels}  # stale files are ignored
    folder = paths.folder.name
    dataset_option = f" --dataset {paths.dataset}" if paths.dataset else ""
    lines = [
        f"# {study.title}",
        "",
        f"_Generated by `zoo study {study.name}{dataset_option} --report-only` from the result files in "
        f"[{folder}/runs/]({folder}/runs/). The discussion at the end is kept in "
        f"[{folder}/discussion.md]({folder}/discussion.md)._",
        "",
        f"**Published protocol.** {study.protocol}",
        "",
        "**Shared settings of our runs** (before `--epochs`/`--epoch-scale`): "
        + ", ".join(f"{k}={json.dumps(v)}" for k, v in study.base.items()) + ".",
        "",
        *_summary(study, records),
        "",
    ]
    if study.notes:
        lines += ["**Where our protocol differs or had to guess:**", "", *(f"- {note}" for note in study.notes), ""]
    for group in study.groups:
        specs = study.runs_in(group)
        lines += [f"## {group}", "", *_run_table(study, specs, records), ""]
        done = [records[s.label] for s in specs if s.label in records]
        on = ", ".join(sorted({_dataset(r) for r in done}))
        if plot_group(done, paths.plot(group), f"{study.name}: {group} ({on})"):
            lines += [f"![{group}: validation accuracy per epoch]({folder}/{paths.plot(group).name})", ""]
    if study.selections:
        lines += ["## Selected runs", "", *_selection_table(study, records), ""]
    if study.findings:
        lines += ["## Published findings, checked", "", *_finding_table(study, records), ""]
    if paths.gradcheck.exists():
        lines += _gradcheck_section(paths.gradcheck)
    discussion = paths.folder / "discussion.md"
    lines += ["## Discussion", "", discussion.read_text().strip() if discussion.exists() else "_Not written yet._", ""]
    return "\n".join(lines)


def write_report(study: Study, paths: StudyPaths) -> Path:
    """Write ``NAME.md`` (and the plots) from the result files; returns the report's path."""
    paths.folder.mkdir(parents=True, exist_ok=True)
    write_text(paths.report, render_report(study, paths))
    return paths.report
