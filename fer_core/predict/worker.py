"""A cluster worker: the callable class Ray Data's ``map_batches`` builds once per worker (the models and the face
detector loaded in ``__init__``, from the worker's own disk, and kept), then calls on each batch of inputs.

Each input row is ``{"index", "path", "name"}`` (its place in the batch, the absolute path the worker reads, the name
its records carry); its records come back as they are made, in rows of up to ``RECORDS_PER_ROW``: ``{"index",
"seq", "payload"}``, ``seq`` the place of the row's first record among the input's and the payload the pickled
:class:`Output` list (each record as one process writes it, an image's maps as PNG bytes when ``--maps`` asks for
them, the models' labels, the worker). This module needs no Ray: the driver (:mod:`.cluster`) hands the class to
Ray Data.
"""
from __future__ import annotations

import os
import pickle
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..images import ImageInputError
from ..records import map_pngs
from .batch import ReadOptions, failure, read_input

# A video's records go out in runs of this many (a fixed number: a retried input yields its runs again alike): about a
# third of a second of a worker's reading, while a block per record would cost Ray's streaming some 5 ms each.
RECORDS_PER_ROW = 8


@dataclass
class Output:
    """One record as a worker made it, and the worker's ``host:pid``."""

    index: int  # the input's place in the batch
    seq: int  # the record's place among the input's records
    record: dict
    pngs: dict[str, bytes] | None  # an image's maps (--maps), else None
    labels: tuple[str, ...]  # the class names of the shown models (the CSV's columns)
    worker: str = ""


def output_row(outs: list[Output]) -> dict:
    """The one-row batch a worker yields for a run of records of one input."""
    return {"index": np.array([outs[0].index], np.int64), "seq": np.array([outs[0].seq], np.int64),
            "payload": np.array([pickle.dumps(outs, protocol=5)], dtype=object)}


def from_row(row: dict) -> list[Output]:
    """The driver's side of :func:`output_row` (one row of the dataset)."""
    return pickle.loads(row["payload"])


class Worker:
    """The models held once per worker; called with a batch of input rows, yields their records in rows."""

    def __init__(self, config: dict):
        import torch

        from .analyzer import Analyzer

        torch.set_num_threads(config["threads"])
        self.analyzer = Analyzer.from_pretrained(config["weights"], detector=config["detector"],
                                                 device=config["device"])
        self.opts = ReadOptions(**config["read"])
        self.labels = tuple(self.analyzer.labels)
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, batch: dict):
        for index, path, name in zip(batch["index"], batch["path"], batch["name"]):
            run = []
            for seq, (record, pngs) in enumerate(self.records(Path(str(path)), str(name))):
                run.append(Output(int(index), seq, record, pngs, self.labels, self.name))
                if len(run) == RECORDS_PER_ROW:
                    yield output_row(run)
                    run = []
            if run:
                yield output_row(run)

    def records(self, path: Path, name: str):
        """``(record, map PNGs or None)`` of one input, as one process makes them; an input that cannot be read
        gives the record of its failure."""
        try:
            for record, analysis in read_input(self.analyzer, path, self.opts, name):
                yield record, (map_pngs(analysis) if self.opts.maps and analysis is not None else None)
        except ImageInputError as e:
            yield failure(name, e), None
