"""Studies: grids of training runs that reproduce published experiments, with reports beside the published numbers.

Quick use::

    from zoo.studies import get_study, run_study, StudyOptions, StudyPaths
    study = get_study("mnist-bn-study")
    run_study(study, StudyPaths(study.name, Path("docs/studies"), Path("runs/studies")), StudyOptions(threads=1))

or from the shell: ``zoo study mnist-bn-study`` (``python -m zoo.studies mnist-bn-study``).
"""

from __future__ import annotations

from zoo.studies.findings import Finding, check
from zoo.studies.gradcheck import ParamCheck, check_gradients
from zoo.studies.plan import StudyOptions, build_config, select_runs
from zoo.studies.registry import STUDIES, get_study, list_studies
from zoo.studies.report import render_report, write_report
from zoo.studies.results import StudyPaths
from zoo.studies.runner import run_study
from zoo.studies.spec import METRICS, GradCheckStep, RunSpec, Selection, Study

__all__ = [
    "METRICS",
    "STUDIES",
    "Finding",
    "GradCheckStep",
    "ParamCheck",
    "RunSpec",
    "Selection",
    "Study",
    "StudyOptions",
    "StudyPaths",
    "build_config",
    "check",
    "check_gradients",
    "get_study",
    "list_studies",
    "render_report",
    "run_study",
    "select_runs",
    "write_report",
]
