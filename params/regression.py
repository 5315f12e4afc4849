"""Six regressors on one synthetic dataset: OLS, ridge, polynomial ridge and k-NN."""

from dataclasses import dataclass

import curifactory_like as cf


@dataclass
class Params(cf.ExperimentParameters):
    # the dataset (the same in every parameter set below, so every model sees the same data)
    n_rows: int = 600
    n_features: int = 4
    noise: float = 0.5
    test_fraction: float = 0.25
    data_seed: int = 42
    # the model
    model: str = "ols"  # "ols", "ridge", "poly_ridge" or "knn"
    alpha: float = 1.0  # ridge penalty ("ridge", "poly_ridge")
    degree: int = 2  # polynomial degree ("poly_ridge")
    k: int = 5  # neighbours ("knn")
    # operational: rows predicted per block; changes memory use, never results, so it is
    # left out of the hash and changing it keeps the cache
    batch_size: int = 256
    hash_representations: dict = cf.set_hash_functions(batch_size=None)


def get_params():
    return [
        Params(name="ols", model="ols"),
        Params(name="ridge_a1", model="ridge", alpha=1.0),
        Params(name="ridge_a100", model="ridge", alpha=100.0),
        Params(name="poly2_ridge_a1", model="poly_ridge", alpha=1.0, degree=2),
        Params(name="knn_k5", model="knn", k=5),
        Params(name="knn_k25", model="knn", k=25),
    ]
