"""Run a study: train each selected run (skipping finished ones), run its gradient check, write the report."""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable
from typing import Any

import torch

import zoo
from zoo.data import data_root, get_dataset
from zoo.data.cifar import SUBDIR as CIFAR_PICKLE_DIR
from zoo.files import read_json, write_json
from zoo.models import create_model
from zoo.studies.gradcheck import H, REL_FLOOR, check_gradients
from zoo.studies.plan import StudyOptions, build_config, select_runs
from zoo.studies.report import write_report
from zoo.studies.results import StudyPaths, summarize
from zoo.studies.spec import RunSpec, Study
from zoo.train import DivergenceError, TrainConfig, fit
from zoo.train.checkpoint import CHECKPOINT_NAME
from zoo.train.rng import seed_everything

__all__ = ["GRADCHECK_STEP", "run_study", "train_run", "run_gradcheck"]

GRADCHECK_STEP = "gradcheck"  # the name --only matches to select the gradient-check step

Log = Callable[[str], None]


def _check_run_dir(paths: StudyPaths, label: str, config: TrainConfig) -> None:
    # A checkpoint from other settings must not be silently resumed (fit would extend or refuse it).
    saved = paths.run_dir(label) / "config.json"
    if (paths.run_dir(label) / CHECKPOINT_NAME).exists() and saved.exists():
        changed = config.differences(read_json(saved)["train_config"])
        if changed:
            raise ValueError(f"{paths.run_dir(label)} holds a checkpoint of other settings ({'; '.join(changed)}); "
                             "pass --rerun to start it again, or --runs-dir for a separate copy")


def _data_source(dataset: str, data_dir: str | None) -> str | None:
    # CIFAR-10 is read from the official pickles when present, else from the lossy JPEG copy: say which.
    if dataset != "cifar10":
        return None
    return "pickles" if (data_root(data_dir) / CIFAR_PICKLE_DIR).is_dir() else "jpeg"


def train_run(spec: RunSpec, config: TrainConfig, paths: StudyPaths, log: Log = print) -> dict[str, Any]:
    """Train one run with :func:`zoo.train.fit` (resuming its checkpoint if any) and return its result record.

    A diverged run (NaN/inf loss) is a result too: ``status`` is ``'diverged'`` and the
    history holds the epochs before it.
    """
    run_dir = paths.run_dir(spec.label)
    _check_run_dir(paths, spec.label, config)

    def on_epoch_end(epoch: int, row: dict[str, Any]) -> None:
        val = f" val acc {row['val_acc']:.4f}" if row["val_acc"] is not None else ""
        log(f"  {spec.label}: epoch {epoch}/{config.epochs} train loss {row['train_loss']:.4f}{val} "
            f"({row['time_s']:.1f} s)")

    started = time.perf_counter()
    status, error, test = "done", None, {}
    try:
        result = fit(config, run_dir, resume=True, on_epoch_end=on_epoch_end)
        history = result.history
        test = {"test_acc": result.test.accuracy, "test_loss": result.test.loss,
                "test_samples": result.results["test_samples"]}
    except DivergenceError as err:
        status, error = "diverged", str(err)
        metrics = run_dir / "metrics.json"
        history = read_json(metrics) if metrics.exists() else []
    return {
        "label": spec.label, "model": spec.model, "groups": list(spec.groups), "model_args": dict(spec.model_args),
        "status": status, "error": error, "dataset": config.dataset,
        "data_source": _data_source(config.dataset, config.data_dir), "published": spec.published,
        "test_acc": None, "test_loss": None, **test, **summarize(history),
        "wall_s": time.perf_counter() - started, "threads": torch.get_num_threads(),
        "zoo_version": zoo.__version__, "torch_version": torch.__version__,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "config": config.portable(), "history": history,
    }


def run_gradcheck(study: Study, options: StudyOptions) -> dict[str, Any]:
    """The study's gradient-check step on a batch of real images from ``options.dataset or study.dataset``."""
    step = study.gradcheck
    assert step is not None
    dataset = options.dataset or study.dataset
    images, labels = get_dataset(dataset, "train", root=options.data_dir).get_batch(range(step.batch_size))
    models = []
    for name, preset, args in step.models:
        seed_everything(options.seed)
        model = create_model(preset, dataset=dataset, **args)
        started = time.perf_counter()
        checks = check_gradients(model, images, labels, l2=step.l2, max_entries=step.max_entries, seed=options.seed)
        models.append({"name": name, "preset": preset, "model_args": dict(args),
                       "passed": all(c.passed for c in checks), "seconds": time.perf_counter() - started,
                       "params": [c.to_dict() for c in checks]})
    return {"dataset": dataset, "data_source": _data_source(dataset, options.data_dir),
            "batch_size": step.batch_size, "l2": step.l2, "max_entries": step.max_entries,
            "dtype": "float64", "h": H, "rel_floor": REL_FLOOR, "seed": options.seed, "models": models}


def _wants_gradcheck(study: Study, options: StudyOptions) -> bool:
    return study.gradcheck is not None and (
        not options.only or any(fnmatch.fnmatch(GRADCHECK_STEP, p) for p in options.only))


def run_study(study: Study, paths: StudyPaths, options: StudyOptions, rerun: bool = False,
              log: Log = print) -> None:
    """Run the selected runs of ``study`` and write its report.

    A run whose result file exists is skipped (so an interrupted study resumes where
    it stopped, and a run interrupted mid-training resumes from its checkpoint),
    unless ``rerun``; a result file from other settings is an error rather than
    silently mixed in.
    """
    specs = select_runs(study, options.only)
    if not specs and not _wants_gradcheck(study, options):
        raise ValueError(f"--only {' '.join(options.only)} matches no run of {study.name}")
    for index, spec in enumerate(specs, 1):
        config = build_config(study, spec, options)
        result_path = paths.result(spec.label)
        if result_path.exists() and not rerun:
            changed = config.differences(read_json(result_path)["config"])
            if changed:
                raise ValueError(f"{result_path} is from other settings ({'; '.join(changed)}); pass --rerun to "
                                 "replace it, or --out for a separate copy")
            log(f"[{index}/{len(specs)}] {spec.label}: done already ({result_path})")
            continue
        if rerun:
            (paths.run_dir(spec.label) / CHECKPOINT_NAME).unlink(missing_ok=True)
        log(f"[{index}/{len(specs)}] {spec.label}: {spec.model} on {config.dataset}, {config.epochs} epochs")
        record = train_run(spec, config, paths, log)
        write_json(result_path, record)
        outcome = (f"test acc {record['test_acc']:.4f}" if record["status"] == "done"
                   else f"diverged after {record['epochs_done']} epochs")
        log(f"[{index}/{len(specs)}] {spec.label}: {outcome} ({record['wall_s']:.0f} s)")
    if _wants_gradcheck(study, options) and (rerun or not paths.gradcheck.exists()):
        log(f"{GRADCHECK_STEP}: finite differences vs autograd, float64")
        write_json(paths.gradcheck, run_gradcheck(study, options))
    report = write_report(study, paths)
    log(f"report: {report}")
