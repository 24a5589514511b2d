"""emnist-depth-study: depth, L2/L1/dropout, learning rules and batch norm of 100-unit MLPs; CNNs with Adam."""

from __future__ import annotations

from zoo.studies.findings import beats, best
from zoo.studies.spec import RunSpec, Selection, Study, run

_DEPTHS = range(3, 9)
_BASE_DEPTH = 3  # hidden layers of the regularisation / learning-rule runs (the published protocol does not say)
_PENALTIES = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
_L2_PUBLISHED = {1e-3: 0.8551}
_INCLUSION = (0.5, 0.7, 0.9)
_RULES = {"sgd": ("sgd", 0.05, None), "rmsprop": ("rmsprop", 1e-3, 0.8585), "adam": ("adam", 1e-3, 0.8590)}
_BN_PUBLISHED = {"sgd": 0.8363, "rmsprop": 0.8342, "adam": 0.8284}
_HIDDEN = [100] * _BASE_DEPTH


def _dnn_runs() -> list[RunSpec]:
    runs = [run(f"depth{d}", "emnist_dnn_2x100", "depth", hidden=[100] * d) for d in _DEPTHS]
    for value in _PENALTIES:
        runs.append(run(f"l2-{value:g}", "emnist_dnn_2x100", "L2", _L2_PUBLISHED.get(value),
                        train={"weight_decay": value}, hidden=_HIDDEN))
    for value in _PENALTIES:
        runs.append(run(f"l1-{value:g}", "emnist_dnn_2x100", "L1", train={"l1": value}, hidden=_HIDDEN))
    for keep in _INCLUSION:
        runs.append(run(f"dropout-keep{keep:g}", "emnist_dnn_2x100", "dropout", hidden=_HIDDEN,
                        dropout_hidden=round(1 - keep, 6)))
    for name, (optimizer, lr, published) in _RULES.items():
        if name == "sgd":  # the SGD baseline is depth3, listed in both groups
            continue
        runs.append(run(f"{name}-lr{lr:g}", "emnist_dnn_2x100", "learning rule", published,
                        train={"optimizer": optimizer, "lr": lr}, hidden=_HIDDEN))
    for name, (optimizer, lr, _) in _RULES.items():
        runs.append(run(f"bn-{name}-lr{lr:g}", "emnist_dnn_2x100", "batch norm", _BN_PUBLISHED[name],
                        train={"optimizer": optimizer, "lr": lr}, hidden=_HIDDEN, batch_norm=True))
    return runs


def _with_baseline_in_rules(runs: list[RunSpec]) -> list[RunSpec]:
    # depth3 is the SGD run of the learning-rule comparison too.
    return [run(r.label, r.model, (*r.groups, "learning rule"), r.published, r.note, r.train, **r.model_args)
            if r.label == f"depth{_BASE_DEPTH}" else r for r in runs]


_DNN_RUNS = _with_baseline_in_rules(_dnn_runs())
_ADAM = {"optimizer": "adam", "lr": 1e-3}

STUDY = Study(
    name="emnist-depth-study",
    title="EMNIST Balanced: depth, regularisation, learning rules and batch norm of 100-unit MLPs; CNNs",
    protocol=(
        "EMNIST Balanced. DNN with 100 units per hidden layer, SGD lr 0.05, batch 100, 100 epochs. Depth 3-8 "
        "hidden layers; L2 in {1e-6..1e-2} (best 1e-3: 0.8551 max val acc); L1; dropout inclusion "
        "probability 0.5 / 0.7 / 0.9; learning rules (RMSProp 0.8585, Adam 0.8590 at lr 0.001); batch norm "
        "with each rule (SGD / RMSProp / Adam: 0.8363 / 0.8342 / 0.8284); CNN with 1 vs 2 conv layers, Adam "
        "0.001 (0.8413 / 0.8600 val). Final test: DNN 0.8395, CNN 0.8444. Published numbers are the maximum "
        "validation accuracy over the epochs."
    ),
    published_dataset="emnist-balanced",
    dataset="emnist-balanced",
    metric="best_val_acc",
    base={"epochs": 100, "optimizer": "sgd", "lr": 0.05, "batch_size": 100},
    runs=tuple(_DNN_RUNS) + (
        run("cnn-1conv-adam", "emnist_cnn_1conv", "CNN", 0.8413, train=_ADAM),
        run("cnn-2conv-adam", "emnist_cnn_2conv", "CNN", 0.8600, train=_ADAM),
    ),
    findings=(
        best("L2 1e-3 is the best L2 coefficient", "l2-0.001", [f"l2-{v:g}" for v in _PENALTIES]),
        beats("Adam (0.001) beats SGD (0.05)", "adam-lr0.001", f"depth{_BASE_DEPTH}"),
        beats("RMSProp (0.001) beats SGD (0.05)", "rmsprop-lr0.001", f"depth{_BASE_DEPTH}"),
        beats("Batch norm does not help Adam (BN run below the plain one)", "adam-lr0.001", "bn-adam-lr0.001"),
        beats("The 2-conv CNN beats the 1-conv CNN", "cnn-2conv-adam", "cnn-1conv-adam"),
    ),
    selections=(
        Selection("best DNN (by validation accuracy), on test", tuple(r.label for r in _DNN_RUNS), published=0.8395),
        Selection("best CNN (by validation accuracy), on test", ("cnn-1conv-adam", "cnn-2conv-adam"), published=0.8444),
    ),
    notes=(
        f"The regularisation, learning-rule and batch-norm runs use {_BASE_DEPTH} hidden layers (the published "
        "protocol does not say which depth).",
        "L2 is torch's weight decay with the same coefficient (gradient + lambda * w, i.e. a penalty "
        "lambda/2 * ||w||^2, as in the course framework), on every parameter; L1 adds lambda * sum|w| over "
        "Linear/Conv weights. The L1 values are the L2 grid (the published protocol lists none).",
        "Dropout inclusion probability p means dropout rate 1 - p after each hidden layer (not on the input).",
    ),
)
