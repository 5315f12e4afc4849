"""Compare OLS, ridge, polynomial ridge and k-NN regressors on synthetic data.

Stages: ``load_data`` (a seeded synthetic dataset, cached as CSV) -> ``train`` (a lazy,
pickled model) -> ``evaluate`` (test/train metrics, cached as JSON and reported) ->
``compare_models`` (an aggregate table of every parameter set, cached as CSV, reported as a
table and a bar chart). Everything is numpy; a cold run takes a few seconds.

Run it with ``experiment run regression`` from the project root.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

import curifactory_like as cf
from curifactory_like.caching import JsonCacher, PandasCsvCacher, PickleCacher
from curifactory_like.reporting import DFReporter, FigureReporter, JsonReporter

if TYPE_CHECKING:
    from params.regression import Params


# -- models (numpy only) -----------------------------------------------------------------------


def polynomial_features(X: np.ndarray, degree: int) -> np.ndarray:
    """Every monomial of the columns of ``X`` with degree 1 to ``degree``."""
    columns = [
        np.prod(X[:, list(combo)], axis=1)
        for d in range(1, degree + 1)
        for combo in itertools.combinations_with_replacement(range(X.shape[1]), d)
    ]
    return np.column_stack(columns)


@dataclass
class LinearModel:
    """``y = intercept + features(X) @ coef`` on standardised features."""

    coef: np.ndarray
    intercept: float
    mean: np.ndarray
    scale: np.ndarray
    degree: int = 1

    def predict(self, X: np.ndarray, batch_size: int = 256) -> np.ndarray:
        features = X if self.degree == 1 else polynomial_features(X, self.degree)
        return self.intercept + ((features - self.mean) / self.scale) @ self.coef


@dataclass
class KNNModel:
    """Mean target of the ``k`` nearest training rows (Euclidean, standardised features)."""

    X: np.ndarray
    y: np.ndarray
    k: int
    mean: np.ndarray
    scale: np.ndarray

    def predict(self, X: np.ndarray, batch_size: int = 256) -> np.ndarray:
        Z = (X - self.mean) / self.scale
        predictions = []
        for start in range(0, len(Z), batch_size):
            block = Z[start : start + batch_size]
            distances = ((block[:, None, :] - self.X[None, :, :]) ** 2).sum(axis=2)
            nearest = np.argpartition(distances, self.k - 1, axis=1)[:, : self.k]
            predictions.append(self.y[nearest].mean(axis=1))
        return np.concatenate(predictions)


def fit_linear(X: np.ndarray, y: np.ndarray, alpha: float, degree: int = 1) -> LinearModel:
    """Closed-form ridge (``alpha=0``: ordinary least squares); the intercept is not penalised."""
    features = X if degree == 1 else polynomial_features(X, degree)
    mean, scale = features.mean(axis=0), features.std(axis=0)
    scale[scale == 0] = 1.0
    Z = (features - mean) / scale
    y_mean = float(y.mean())
    if alpha == 0:
        coef = np.linalg.lstsq(Z, y - y_mean, rcond=None)[0]
    else:
        gram = Z.T @ Z + alpha * np.eye(Z.shape[1])
        coef = np.linalg.solve(gram, Z.T @ (y - y_mean))
    return LinearModel(coef=coef, intercept=y_mean, mean=mean, scale=scale, degree=degree)


def fit_knn(X: np.ndarray, y: np.ndarray, k: int) -> KNNModel:
    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale[scale == 0] = 1.0
    return KNNModel(X=(X - mean) / scale, y=y, k=k, mean=mean, scale=scale)


def split(data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``X_train, y_train, X_test, y_test`` from the dataset's ``split`` column."""
    features = [column for column in data.columns if column.startswith("x")]
    train = data[data["split"] == "train"]
    test = data[data["split"] == "test"]
    return (
        train[features].to_numpy(float),
        train["y"].to_numpy(float),
        test[features].to_numpy(float),
        test["y"].to_numpy(float),
    )


def metrics(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    residuals = y - predicted
    total = float(((y - y.mean()) ** 2).sum())
    return {
        "rmse": float(np.sqrt((residuals**2).mean())),
        "mae": float(np.abs(residuals).mean()),
        "r2": 1.0 - float((residuals**2).sum()) / total,
    }


# -- stages ------------------------------------------------------------------------------------


@cf.stage(inputs=None, outputs=["data"], cachers=[PandasCsvCacher])
def load_data(record):
    """A seeded synthetic dataset with a nonlinear target and a train/test ``split`` column."""
    params: Params = record.params
    rng = np.random.default_rng(params.data_seed)
    X = rng.uniform(-2.0, 2.0, size=(params.n_rows, params.n_features))
    y = 1.5 * X[:, 0] - 2.0 * X[:, 1] + 1.0 * X[:, 0] * X[:, 1]
    if params.n_features > 2:
        y += 0.5 * X[:, 2]
    if params.n_features > 3:
        y -= 0.8 * X[:, 3] ** 2
    y += params.noise * rng.standard_normal(params.n_rows)
    is_test = rng.permutation(params.n_rows) < round(params.test_fraction * params.n_rows)
    data = pd.DataFrame(X, columns=[f"x{i}" for i in range(params.n_features)])
    data["y"] = y
    data["split"] = np.where(is_test, "test", "train")
    return data


@cf.stage(inputs=["data"], outputs=[cf.Lazy("model")], cachers=[PickleCacher])
def train(record, data):
    """Fit the parameter set's model on the training rows."""
    params: Params = record.params
    X_train, y_train, _, _ = split(data)
    if params.model == "ols":
        return fit_linear(X_train, y_train, alpha=0.0)
    if params.model == "ridge":
        return fit_linear(X_train, y_train, alpha=params.alpha)
    if params.model == "poly_ridge":
        return fit_linear(X_train, y_train, alpha=params.alpha, degree=params.degree)
    if params.model == "knn":
        return fit_knn(X_train, y_train, k=params.k)
    raise ValueError(
        f"parameter set '{params.name}' has model={params.model!r}; "
        "use 'ols', 'ridge', 'poly_ridge' or 'knn'"
    )


@cf.stage(inputs=["model", "data"], outputs=["scores"], cachers=[JsonCacher])
def evaluate(record, model, data):
    """Test and train RMSE / MAE / R^2 of the model."""
    params: Params = record.params
    X_train, y_train, X_test, y_test = split(data)
    test = metrics(y_test, model.predict(X_test, batch_size=params.batch_size))
    train_scores = metrics(y_train, model.predict(X_train, batch_size=params.batch_size))
    scores = {
        **{f"test_{name}": value for name, value in test.items()},
        **{f"train_{name}": value for name, value in train_scores.items()},
        "n_train": len(y_train),
        "n_test": len(y_test),
    }
    record.report(JsonReporter(scores, name="scores"))
    return scores


def hyperparameter(params) -> str:
    if params.model in ("ridge", "poly_ridge"):
        text = f"alpha={params.alpha:g}"
        return text + (f", degree={params.degree}" if params.model == "poly_ridge" else "")
    if params.model == "knn":
        return f"k={params.k}"
    return "-"


def rmse_figure(table: pd.DataFrame) -> Figure:
    """Grouped bars of train and test RMSE per parameter set."""
    fig = Figure(figsize=(7, 3.5), facecolor="white")
    ax = fig.add_subplot()
    positions = np.arange(len(table))
    ax.bar(positions - 0.2, table["train_rmse"], width=0.4, label="train")
    ax.bar(positions + 0.2, table["test_rmse"], width=0.4, label="test")
    ax.set_xticks(positions, table.index, rotation=20)
    ax.set_ylabel("RMSE")
    ax.legend()
    fig.tight_layout()
    return fig


@cf.aggregate(inputs=["scores"], outputs=["comparison"], cachers=[PandasCsvCacher])
def compare_models(record, records, scores):
    """One row per parameter set, best test RMSE first."""
    rows = []
    for source, result in scores.items():
        rows.append(
            {
                "param_set": source.params.name,
                "model": source.params.model,
                "hyperparameter": hyperparameter(source.params),
                "test_rmse": result["test_rmse"],
                "test_r2": result["test_r2"],
                "train_rmse": result["train_rmse"],
                "n_train": result["n_train"],
            }
        )
    table = pd.DataFrame(rows).set_index("param_set").sort_values("test_rmse")
    record.report(DFReporter(table, name="comparison", float_prec=3))
    record.report(FigureReporter(rmse_figure(table), name="rmse"))
    return table


def run(param_sets: list[Params], manager):
    records = [evaluate(train(load_data(cf.Record(manager, params)))) for params in param_sets]
    compare_models(cf.Record(manager, None), records)
