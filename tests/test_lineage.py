"""Run lineage: a run fine-tuned from another run's checkpoint counts the earlier stages."""
import json
from pathlib import Path

from ferkit.train.lineage import run_stages, stage_summary, time_to_accuracy


def _run(path, init_from, accs, secs=100.0, best_epoch=None):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"init_from": init_from, "lr": 1e-3,
                                                  "epochs": len(accs)}))
    hist = [{"epoch": i + 1, "val_acc": a, "seconds": secs, "images_per_s": 250.0 + i}
            for i, a in enumerate(accs)]
    (path / "history.json").write_text(json.dumps(hist))
    (path / "summary.json").write_text(json.dumps({
        "best_epoch": best_epoch or (accs.index(max(accs)) + 1), "best_accuracy": max(accs),
        "train_seconds": secs * len(accs), "hardware": {"device": "cpu", "threads": 2}}))


def test_two_stages_sum_time_and_epochs(tmp_path):
    _run(tmp_path / "s1", None, [0.5, 0.6, 0.66])
    _run(tmp_path / "s2", str(tmp_path / "s1" / "best.pt"), [0.64, 0.69, 0.71, 0.70], secs=50.0)
    stages = run_stages(tmp_path / "s2")
    assert [s["run"] for s in stages] == [str(tmp_path / "s1"), str(tmp_path / "s2")]
    t = time_to_accuracy(stages, 0.70)
    assert t["reached"] == {"epoch": 6, "seconds": 3 * 100.0 + 3 * 50.0, "run": "s2"}
    assert t["epochs"] == 7 and t["stages"] == 2 and t["best_val_acc"] == 0.71
    assert t["total_seconds"] == 500.0
    summ = stage_summary(stages)
    assert [s["train_seconds"] for s in summ] == [300.0, 200.0]
    assert summ[1]["best_epoch"] == 3 and summ[0]["init_from"] is None
    assert summ[0]["hardware"] == {"device": "cpu", "threads": 2}   # stages may differ


def test_single_run_and_missing_parent(tmp_path):
    _run(tmp_path / "only", None, [0.5, 0.6])
    t = time_to_accuracy(run_stages(tmp_path / "only"), 0.70)
    assert t["reached"] is None and t["epochs"] == 2 and t["stages"] == 1
    # a parent that is gone ends the chain; the stage still says where it started from
    _run(tmp_path / "orphan", str(tmp_path / "gone" / "best.pt"), [0.7])
    stages = run_stages(tmp_path / "orphan")
    assert len(stages) == 1 and stage_summary(stages)[0]["init_from"].endswith("best.pt")


def test_cycle_does_not_loop(tmp_path):
    _run(tmp_path / "a", str(tmp_path / "b" / "best.pt"), [0.5])
    _run(tmp_path / "b", str(tmp_path / "a" / "best.pt"), [0.6])
    assert len(run_stages(tmp_path / "a")) == 2


def test_relative_init_from_is_found_from_another_working_directory(tmp_path, monkeypatch):
    """Configs store init_from as typed (e.g. runs/default/best.pt, relative to the repo);
    a benchmark run from another folder must still find the parent run."""
    _run(tmp_path / "runs" / "s1", None, [0.6])
    _run(tmp_path / "runs" / "s2", "runs/s1/best.pt", [0.7])
    (tmp_path / "benchmarks").mkdir()
    monkeypatch.chdir(tmp_path / "benchmarks")
    stages = run_stages(tmp_path / "runs" / "s2")
    assert [Path(s["run"]).name for s in stages] == ["s1", "s2"]


def test_a_pruned_start_continues_the_wide_run(tmp_path, monkeypatch):
    """`ferkit prune` leaves a note beside the pruned checkpoint: the fine-tuning run's
    lineage goes through it to the wide run and says from which width it was pruned."""
    monkeypatch.chdir(tmp_path)
    _run(tmp_path / "runs" / "wide", None, [0.6, 0.7])
    (tmp_path / "runs" / "pruned").mkdir()
    (tmp_path / "runs" / "pruned" / "prune.json").write_text(json.dumps(
        {"width": 40, "to_width": 32, "source": "runs/wide/best.pt"}))
    _run(tmp_path / "runs" / "ft", "runs/pruned/pruned.pt", [0.65, 0.69])
    stages = run_stages(tmp_path / "runs" / "ft")
    assert [Path(s["run"]).name for s in stages] == ["wide", "ft"]
    summ = stage_summary(stages)
    assert summ[1]["pruned_from"] == {"width": 40, "source": "runs/wide/best.pt"}
    assert "pruned_from" not in summ[0]
    assert time_to_accuracy(stages, 0.70)["reached"]["run"] == "wide"
    # a wide source that is not a run (e.g. a shipped checkpoint) ends the chain there
    (tmp_path / "runs" / "pruned" / "prune.json").write_text(json.dumps(
        {"width": 40, "source": "src/ferkit/assets/x.pt"}))
    stages = run_stages(tmp_path / "runs" / "ft")
    assert len(stages) == 1 and stages[0]["pruned_from"]["width"] == 40


def test_a_prune_of_a_pruned_checkpoint_reaches_the_wide_run(tmp_path, monkeypatch):
    """64 -> 56 -> 48 without fine-tuning in between: two prune notes, followed in turn;
    the stage names the wide run's width and checkpoint, and the pruned one it went via."""
    monkeypatch.chdir(tmp_path)
    _run(tmp_path / "runs" / "wide", None, [0.6, 0.7])
    for name, width, src in (("p56", 64, "runs/wide/best.pt"), ("p48", 56, "runs/p56/p.pt")):
        (tmp_path / "runs" / name).mkdir()
        (tmp_path / "runs" / name / "prune.json").write_text(json.dumps(
            {"width": width, "source": src}))
    _run(tmp_path / "runs" / "ft", "runs/p48/p.pt", [0.68])
    stages = run_stages(tmp_path / "runs" / "ft")
    assert [Path(s["run"]).name for s in stages] == ["wide", "ft"]
    assert stage_summary(stages)[1]["pruned_from"] == {
        "width": 64, "source": "runs/wide/best.pt", "via": ["runs/p56/p.pt"]}
    # two notes naming each other end after a bounded walk, without a parent run
    (tmp_path / "runs" / "p56" / "prune.json").write_text(json.dumps(
        {"width": 64, "source": "runs/p48/p.pt"}))
    assert len(run_stages(tmp_path / "runs" / "ft")) == 1
