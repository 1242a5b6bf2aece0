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
    header = path.read_text()
    for ck in [d.get("init_from"), *(d.get("distill") or [])]:
        if ck:                   # a run checkpoint: the header names the run that makes it
            run = str(Path(ck).parent)
            assert run in header.split("\ndata:")[0] or (ROOT / ck).exists(), (path.name, ck)


def test_recipes_exist_and_a_bad_one_is_refused(tmp_path):
    assert len(RECIPES) >= 5
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: x\nepochs: 0\n")
    with pytest.raises(ConfigError):
        TrainConfig.from_dict(load_recipe(bad)).validate()
