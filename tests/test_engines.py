"""The local and the Ray engine on the same real inputs (photos, the real video, a bad
file): the same faces, labels and probabilities; bad files reported without stopping the
others; a killed run resumed, skipping finished inputs."""
import json
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import SHARED

from ferkit.analysis.pipeline import AnalyzerConfig
from ferkit.analysis.run import RunOptions

MEDIA = SHARED / "media"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    names = ["two_people.jpg", "obama-480p.jpg", "short_hamilton_clip.mp4", "obama_and_biden.jpg"]
    for n in names:
        shutil.copy(MEDIA / n, d / n)
    (d / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return [str(d / n) for n in names[:2]] + [str(d / "broken.jpg")] + \
        [str(d / n) for n in names[2:]]


@pytest.fixture(scope="module")
def local_run(inputs, tmp_path_factory):
    from ferkit.analysis.pipeline import Analyzer
    from ferkit.analysis.run import run_analysis
    out = tmp_path_factory.mktemp("local")
    s = run_analysis(Analyzer(AnalyzerConfig()), inputs,
                     RunOptions(out, ("jsonl", "csv", "parquet"), progress=False))
    return out, s


def _rows(out):
    return [json.loads(x) for x in (out / "faces.jsonl").read_text().splitlines()]


def test_local_engine_writes_partitions_and_merges_them(local_run, inputs):
    out, s = local_run
    assert len(s.analysed) == 4 and [f["input"] for f in s.failed] == [inputs[2]]
    rows = _rows(out)
    assert len(rows) == s.faces == 633
    assert sorted(p.name for p in (out / "parts").iterdir()) == \
        ["obama-480p", "obama_and_biden", "short_hamilton_clip", "two_people"]
    # rows come in input order, video rows in frame order
    order = [inputs.index(r["source"]) for r in rows]
    assert order == sorted(order)
    import pyarrow.parquet as pq
    table = pq.read_table(out / "faces.parquet")
    assert table.num_rows == len(rows)
    assert set(table.column_names) >= {"source", "label", "p_happy", "track_id"}


@pytest.mark.slow
def test_ray_engine_matches_the_local_engine_and_resumes(local_run, inputs, tmp_path):
    ray = pytest.importorskip("ray")
    from ferkit.analysis.ray_engine import run_analysis_ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        out = tmp_path / "ray"
        opts = RunOptions(out, ("jsonl", "csv", "parquet"), progress=False)
        s = run_analysis_ray(AnalyzerConfig(), inputs, opts, num_workers=2)
        assert [f["input"] for f in s.failed] == [inputs[2]]
        assert "broken.jpg: truncated image" in s.failed[0]["error"]
        local_out, local_s = local_run
        assert (out / "faces.jsonl").read_text() == (local_out / "faces.jsonl").read_text()
        assert (out / "faces.csv").read_text() == (local_out / "faces.csv").read_text()
        assert s.faces == local_s.faces and s.frames == local_s.frames
        # a run that lost one input's results: the re-run analyses only that one
        shutil.rmtree(out / "parts" / "obama_and_biden")
        (out / "faces.parquet" / "obama_and_biden.parquet").unlink()
        s2 = run_analysis_ray(AnalyzerConfig(), inputs, opts, num_workers=2, resume=True)
        assert len(s2.resumed) == 3 and s2.faces == local_s.faces
        assert (out / "faces.jsonl").read_text() == (local_out / "faces.jsonl").read_text()
        assert (out / "faces.parquet" / "obama_and_biden.parquet").exists()
    finally:
        ray.shutdown()


def test_killed_local_run_resumes_skipping_finished_inputs(local_run, inputs, tmp_path):
    out = tmp_path / "killed"
    order = [inputs[0], inputs[1], inputs[3], inputs[4]]     # photos, the video, a photo
    cmd = [sys.executable, "-m", "ferkit", "analyze", *order, "--out", str(out),
           "--no-progress", "--threads", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        parts = out / "parts"
        done = [p for p in parts.iterdir() if not p.name.startswith(".")] if parts.exists() else []
        if len(done) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)             # no clean-up: as a crash or an OOM kill
    proc.wait()
    assert not (out / "faces.jsonl").exists()
    done_before = {p.name for p in (out / "parts").iterdir() if not p.name.startswith(".")}
    assert {"two_people", "obama-480p"} <= done_before and "obama_and_biden" not in done_before
    r = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] == len(done_before) and summary["analysed"] == 4
    local_rows = [x for x in _rows(local_run[0])]
    assert _rows(out) == local_rows
