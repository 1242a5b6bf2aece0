"""Every committed recipe loads, validates, and names only files that exist or that its own
header says how to make (a teacher or init checkpoint from another run)."""
from pathlib import Path

import pytest

from ferkit.errors import ConfigError
from ferkit.train.config import TrainConfig, load_recipe

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_validates(path):
    d = load_recipe(path)
    cfg = TrainConfig.from_dict(d)
    cfg.validate()
    assert (ROOT / cfg.data).exists() or cfg.data.startswith("../shared"), cfg.data
    header = "\n".join(ln for ln in path.read_text().splitlines() if ln.startswith("#"))
    for ck in [d.get("init_from"), d.get("distill_targets"), *(d.get("distill") or [])]:
        if ck:                   # a run checkpoint: the header names the run that makes it
            run = str(Path(ck).parent)
            assert run in header or (ROOT / ck).exists(), (path.name, ck)


def test_recipes_exist_and_a_bad_one_is_refused(tmp_path):
    assert len(RECIPES) >= 5
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: x\nepochs: 0\n")
    with pytest.raises(ConfigError):
        TrainConfig.from_dict(load_recipe(bad)).validate()


def test_base_recipe_is_merged_key_by_key(tmp_path):
    (tmp_path / "base.yaml").write_text("data: d\nepochs: 50\nlr: 0.1\n"
                                        "augment:\n  rotate: 10\n  mixup: 0.2\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "child.yaml").write_text("base: ../base.yaml\nlr: 0.01\naugment:\n  mixup: 0.0\n")
    d = load_recipe(sub / "child.yaml")
    assert d == {"data": "d", "epochs": 50, "lr": 0.01,
                 "augment": {"rotate": 10, "mixup": 0.0}}
    TrainConfig.from_dict(d).validate()


BAD_RECIPES = {                  # file name -> (its text, what the error must say)
    "loop.yaml": ("base: other.yaml\n", "leads back to itself"),
    "missing.yaml": ("base: nowhere.yaml\n", "missing.yaml: its base recipe .*nowhere.yaml was not found"),
    "broken.yaml": ("data: [unclosed\n", "broken.yaml: not valid YAML"),
    "broken.json": ('{"data": ', "broken.json: not valid JSON"),
}


@pytest.mark.parametrize("name", list(BAD_RECIPES))
def test_bad_base_and_bad_files_name_the_file(tmp_path, name):
    (tmp_path / "other.yaml").write_text("base: loop.yaml\nepochs: 3\n")
    text, message = BAD_RECIPES[name]
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_recipe(tmp_path / name)
