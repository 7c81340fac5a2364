"""Fixtures: fake experiment, self-training and training run folders (tiny PNGs, fast to build)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reports.fakeruns import (
    config_dict,
    make_dataset,
    make_experiment,
    make_selftrain_run,
    make_train_run,
)

XSS_ID = "<script>alert(1)</script>.png"
XSS_CONFIG = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="session")
def experiment_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("exp")
    return make_experiment(base / "paper_exp", base / "data")


@pytest.fixture(scope="session")
def experiment_report(experiment_dir: Path):
    from teachseg.reports import build_report_with_warnings

    return build_report_with_warnings(experiment_dir)


@pytest.fixture(scope="session")
def xss_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-training run whose image ids and config values are hostile HTML."""
    base = tmp_path_factory.mktemp("xss")
    root = base / "data"
    ids, masks = make_dataset(root, n=8, extra_ids=(XSS_ID,))
    run = base / "st&<x>"
    cfg = config_dict(XSS_CONFIG, root, "fpn", 7)
    return make_selftrain_run(
        run, ids=ids, masks=masks, root=root, arch="fpn", seed=7, n_students=2, config=cfg, test=False
    )


@pytest.fixture(scope="session")
def xss_report(xss_run: Path) -> Path:
    from teachseg.reports import build_report

    return build_report(xss_run)


@pytest.fixture()
def dataset(tmp_path: Path):
    root = tmp_path / "data"
    ids, masks = make_dataset(root, n=8)
    return root, ids, masks


@pytest.fixture()
def train_run(tmp_path: Path, dataset) -> Path:
    root, ids, masks = dataset
    return make_train_run(tmp_path / "train_run", ids=ids, masks=masks, root=root, test=False)


@pytest.fixture()
def selftrain_run(tmp_path: Path, dataset) -> Path:
    root, ids, masks = dataset
    return make_selftrain_run(
        tmp_path / "st_run", ids=ids, masks=masks, root=root, n_students=2, accept=False
    )
