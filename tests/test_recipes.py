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
    for ck in [d.get("init_from"), *(d.get("distill") or [])]:
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


def test_bad_base_and_bad_yaml_name_the_file(tmp_path):
    loop = tmp_path / "loop.yaml"
    loop.write_text("base: other.yaml\n")
    (tmp_path / "other.yaml").write_text("base: loop.yaml\nepochs: 3\n")
    with pytest.raises(ConfigError, match="leads back to itself"):
        load_recipe(loop)
    missing = tmp_path / "missing.yaml"
    missing.write_text("base: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="nowhere.yaml: recipe file not found"):
        load_recipe(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_recipe(broken)
    broken_json = tmp_path / "broken.json"
    broken_json.write_text("{\"data\": ")
    with pytest.raises(ConfigError, match="broken.json: not valid JSON"):
        load_recipe(broken_json)
