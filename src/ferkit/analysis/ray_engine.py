"""`ferkit analyze --engine ray`: the inputs are split over a Ray Data actor pool; each actor
loads the detector and the classifier once and runs the same per-input function as the local
engine (analysis/inputs.py), writing each input's partition (and its Parquet file) to the
output folder, which must be on storage every worker can reach. The driver then merges the
partitions exactly as the local engine does. Needs ``ferkit[scale]`` (ray[data], pyarrow)."""
from __future__ import annotations

import dataclasses
import json
import logging

from ferkit.analysis.inputs import analyze_input, done_record, plan
from ferkit.analysis.pipeline import Analyzer, AnalyzerConfig
from ferkit.analysis.run import RunOptions, RunSummary, finish
from ferkit.errors import ConfigError, FerkitError

log = logging.getLogger(__name__)


class _Worker:
    """One Ray actor: an Analyzer built once, then one input per call."""

    def __init__(self, config: dict, opts: RunOptions):
        self.analyzer = Analyzer(AnalyzerConfig(**config))
        self.opts = opts

    def __call__(self, batch: dict) -> dict:
        out = []
        for item, name in zip(batch["item"], batch["name"]):
            try:
                rec = analyze_input(self.analyzer, str(item), str(name), self.opts)
            except FerkitError as exc:
                rec = {"input": str(item), "name": str(name), "error": str(exc)}
            out.append(json.dumps(rec))
        return {"record": out}


def _connect(address: str | None, num_workers: int):
    try:
        import ray
    except ImportError:
        raise ConfigError("--engine ray needs Ray: pip install 'ferkit[scale]'") from None
    if not ray.is_initialized():
        kw = {"address": address} if address else {"num_cpus": max(1, num_workers)}
        ray.init(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True, **kw)
    return ray


def run_analysis_ray(config: AnalyzerConfig, inputs: list, opts: RunOptions, *,
                     address: str | None = None, num_workers: int = 2,
                     resume: bool = False) -> RunSummary:
    """Same outputs as ``run_analysis`` on the same inputs; ``address`` is ``auto``, a
    ``ray://host:port`` or None for a local cluster started here."""
    if any(isinstance(i, int) for i in inputs):
        raise ConfigError("--engine ray analyses files; a webcam runs with the local engine")
    if opts.show:
        raise ConfigError("--show needs the local engine (a window on this machine)")
    opts.check()
    opts.out.mkdir(parents=True, exist_ok=True)
    todo = plan(inputs)
    records, failed = {}, []
    pending = []
    for item, name in todo:
        rec = done_record(opts.out, item, name) if resume else None
        if rec is not None:
            records[name] = {**rec, "resumed": True}
        else:
            pending.append({"item": str(item), "name": name})
    if pending:
        ray = _connect(address, num_workers)
        worker_opts = dataclasses.replace(opts, progress=False, on_frame=None)
        ds = ray.data.from_items(pending, override_num_blocks=len(pending))
        ds = ds.map_batches(_Worker, batch_size=1, concurrency=num_workers, num_cpus=1,
                            fn_constructor_kwargs={"config": dataclasses.asdict(config),
                                                   "opts": worker_opts})
        for row in ds.iter_rows():
            rec = json.loads(row["record"])
            if "error" in rec:
                log.error("%s", rec["error"])
                failed.append({"input": rec["input"], "error": rec["error"]})
            else:
                records[rec["name"]] = rec
    from ferkit.zoo.shipped import resolve
    return finish(opts, todo, records, failed, False, resolve(config.model).classes)
