"""Sources of the experiments the store-full / reproduce / audit / archive tests run."""

from __future__ import annotations

FULL_PARAMS = '''\
"""Two parameter sets for the store-full experiment."""

from dataclasses import dataclass

import curifactory_like as cf


@dataclass
class Params(cf.ExperimentParameters):
    n: int = 1


def get_params():
    return [Params(name="a", n=2), Params(name="b", n=3)]
'''

FULL_EXPERIMENT = '''\
"""Every kind of artifact: Lazy, file references, templated paths, reportables, an aggregate."""

import os

import curifactory_like as cf
from curifactory_like.caching import FileReferenceCacher, JsonCacher, PathRef, PickleCacher
from curifactory_like.reporting import HTMLReporter, JsonReporter


def count(stage, record):
    with open("calls.txt", "a", encoding="utf-8") as calls:
        name = record.params.name if record.params is not None else "-"
        calls.write(f"{stage} {name}\\n")


@cf.stage(outputs=[cf.Lazy("data"), "meta"], cachers=[PickleCacher, JsonCacher])
def load(record):
    count("load", record)
    record.report(JsonReporter({"n": record.params.n}, name="meta_table"))
    return list(range(record.params.n)), {"n": record.params.n}


@cf.stage(inputs=["data"], outputs=["files"], cachers=[FileReferenceCacher])
def write_files(record, data):
    count("write_files", record)
    paths = []
    for index in range(2):
        path = record.get_path(f"part{index}.txt")
        with open(path, "w", encoding="utf-8") as out:
            out.write(f"part {index}: {sum(data)}\\n")
        paths.append(path)
    return paths


@cf.stage(
    inputs=["files"],
    outputs=["summary", "note"],
    cachers=[
        PathRef(path_override="{cache}/exports/{params.name}_{hash}_{stage}.txt"),
        JsonCacher(path_override="outputs/{params.name}_{hash}_note.json"),
    ],
)
def export(record, files):
    count("export", record)
    path = record.stage_cachers[0].get_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        for name in files:
            with open(name, encoding="utf-8") as part:
                out.write(part.read())
    return path, {"parts": len(files)}


@cf.aggregate(inputs=["summary"], outputs=["table"], cachers=[JsonCacher])
def combine(record, records, summary):
    count("combine", record)
    table = {}
    for source, path in summary.items():
        with open(path, encoding="utf-8") as infile:
            table[source.params.name] = infile.read()
    record.report(HTMLReporter("<p class='combined'>combined " + str(len(table)) + "</p>",
                               name="combined_view"))
    return table


def run(param_sets, manager):
    records = []
    for param_set in param_sets:
        records.append(export(write_files(load(cf.Record(manager, param_set)))))
    combine(cf.Record(manager, None), records)
'''

CLOCK_EXPERIMENT = '''\
"""One deterministic stage and one that reads the wall clock."""

import time

import curifactory_like as cf
from curifactory_like.caching import JsonCacher


@cf.stage(outputs=["x"], cachers=[JsonCacher])
def make(record):
    return record.params.n * 10


@cf.stage(inputs=["x"], outputs=["stamp"], cachers=[JsonCacher]{flag})
def stamp(record, x):
    return {{"x": x, "at": time.time_ns()}}


def run(param_sets, manager):
    for param_set in param_sets:
        stamp(make(cf.Record(manager, param_set)))
'''
