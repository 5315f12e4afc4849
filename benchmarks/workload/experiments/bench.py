"""Benchmark workload: synthetic ridge regression, 4 stages per record + 1 aggregate.

The normative specification of this workload is shared/bench/WORKLOAD.md; this is the
curifactory_like version of shared/bench/reference_project/experiments/bench.py
(identical except for the framework imports).
"""

from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import curifactory_like as cf  # noqa: E402
from curifactory_like.caching import JsonCacher, PandasCsvCacher, PickleCacher  # noqa: E402
from curifactory_like.reporting import DFReporter, FigureReporter  # noqa: E402


@dataclass
class Params(cf.ExperimentParameters):
    seed: int = 0
    n_rows: int = 400
    n_features: int = 8
    noise: float = 0.1
    test_frac: float = 0.25
    base_alpha: float = 1.0
    n_folds: int = 5
    n_alphas: int = 9


# ---------------------------------------------------------------- stage 1
@cf.stage(inputs=None, outputs=["data"], cachers=[PandasCsvCacher])
def load_data(record: cf.Record):
    p = record.params
    rng = np.random.default_rng(p.seed)
    X = rng.normal(size=(p.n_rows, p.n_features))
    w = rng.normal(size=p.n_features)
    eps = rng.normal(size=p.n_rows)
    y = X @ w + 0.5 * X[:, 0] ** 2 + p.noise * eps
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(p.n_features)])
    df["y"] = y
    return df


# ---------------------------------------------------------------- stage 2
@cf.stage(inputs=["data"], outputs=["features"], cachers=[PickleCacher])
def featurize(record: cf.Record, data: pd.DataFrame):
    p = record.params
    feat_cols = [c for c in data.columns if c != "y"]
    X = data[feat_cols].to_numpy(dtype=np.float64)
    y = data["y"].to_numpy(dtype=np.float64)
    n_test = int(round(len(X) * p.test_frac))
    n_train = len(X) - n_test
    mu = X[:n_train].mean(axis=0)
    sd = X[:n_train].std(axis=0)
    sd[sd == 0] = 1.0
    Z = (X - mu) / sd
    F = np.hstack([Z, Z**2])
    names = feat_cols + [f"{c}^2" for c in feat_cols]
    return {
        "X_train": F[:n_train],
        "y_train": y[:n_train],
        "X_test": F[n_train:],
        "y_test": y[n_train:],
        "feature_names": names,
    }


def _ridge_fit(X, y, alpha):
    xm = X.mean(axis=0)
    ym = y.mean()
    Xc = X - xm
    A = Xc.T @ Xc + alpha * np.eye(X.shape[1])
    w = np.linalg.solve(A, Xc.T @ (y - ym))
    b = ym - xm @ w
    return w, b


# ---------------------------------------------------------------- stage 3
@cf.stage(inputs=["features"], outputs=["model"], cachers=[PickleCacher])
def train(record: cf.Record, features: dict):
    p = record.params
    X = features["X_train"]
    y = features["y_train"]
    alphas = p.base_alpha * np.logspace(-2, 2, p.n_alphas)
    folds = np.arange(len(X)) % p.n_folds
    cv_mse = []
    for a in alphas:
        errs = []
        for k in range(p.n_folds):
            tr = folds != k
            w, b = _ridge_fit(X[tr], y[tr], a)
            r = y[~tr] - (X[~tr] @ w + b)
            errs.append(float(np.mean(r**2)))
        cv_mse.append(float(np.mean(errs)))
    best = int(np.argmin(cv_mse))
    w, b = _ridge_fit(X, y, alphas[best])
    return {
        "w": w,
        "b": float(b),
        "alpha": float(alphas[best]),
        "alphas": [float(a) for a in alphas],
        "cv_mse": cv_mse,
    }


# ---------------------------------------------------------------- stage 4
@cf.stage(inputs=["model", "features"], outputs=["metrics"], cachers=[JsonCacher])
def evaluate(record: cf.Record, model: dict, features: dict):
    X = features["X_test"]
    y = features["y_test"]
    pred = X @ model["w"] + model["b"]
    r = y - pred
    return {
        "name": record.params.name,
        "seed": int(record.params.seed),
        "alpha": float(model["alpha"]),
        "mse": float(np.mean(r**2)),
        "mae": float(np.mean(np.abs(r))),
        "r2": float(1.0 - np.sum(r**2) / np.sum((y - y.mean()) ** 2)),
        "n_test": int(len(y)),
    }


# ---------------------------------------------------------------- aggregate
@cf.aggregate(
    inputs=["metrics"],
    outputs=["summary", "best"],
    cachers=[PandasCsvCacher, JsonCacher],
)
def compare(record: cf.Record, records: list, metrics: dict):
    rows = [metrics[r] for r in records if r in metrics]
    df = pd.DataFrame(rows).sort_values("name").set_index("name")
    best_name = str(df["r2"].idxmax())
    best = {
        "best_name": best_name,
        "best_r2": float(df.loc[best_name, "r2"]),
        "mean_r2": float(df["r2"].mean()),
        "mean_mse": float(df["mse"].mean()),
        "n_records": int(len(df)),
    }
    record.report(DFReporter(df, name="summary_table"))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(df["alpha"], df["r2"], s=10)
    ax.set_xscale("log")
    ax.set_xlabel("selected alpha")
    ax.set_ylabel("test r2")
    ax.set_title(f"{len(df)} records")
    record.report(FigureReporter(fig, name="r2_vs_alpha"))
    return df, best


def run(param_sets, manager):
    records = []
    for param_set in param_sets:
        record = cf.Record(manager, param_set)
        record = load_data(record)
        record = featurize(record)
        record = train(record)
        record = evaluate(record)
        records.append(record)
    agg = cf.Record(manager, None)
    compare(agg, records)
    return agg
