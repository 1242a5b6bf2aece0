"""The front door: the docs site builds strictly, its examples run, and every table in the
README and docs is what the committed JSON gives today."""
import doctest
import importlib.util
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT


def _tables_module():
    spec = importlib.util.spec_from_file_location("readme_tables",
                                                  ROOT / "scripts" / "readme_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_is_short_and_has_the_quickstart():
    text = (ROOT / "README.md").read_text()
    assert len(text.encode()) <= 12 * 1024
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci in text and "pytest" in ci and "ferkit analyze ../shared/media" in text


def test_tables_are_generated_from_the_committed_json():
    mod = _tables_module()
    tables = mod.tables()
    for name in mod.FILES:
        text = (ROOT / name).read_text()
        assert mod.render(text, tables) == text, f"{name}: run python scripts/readme_tables.py"


def test_api_page_examples_run(monkeypatch):
    monkeypatch.chdir(ROOT)
    res = doctest.testfile(str(ROOT / "docs" / "api.md"), module_relative=False)
    assert res.attempted >= 6 and res.failed == 0


@pytest.mark.skipif(shutil.which("mkdocs") is None and
                    importlib.util.find_spec("mkdocs") is None, reason="needs ferkit[dev]")
def test_mkdocs_build_strict(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                        str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-3000:]
    cli = (ROOT / "docs" / "reference" / "cli.md").read_text()
    for cmd in ("ferkit train", "ferkit analyze", "ferkit serve", "ferkit survey create",
                "ferkit privacy-audit", "ferkit evaluate"):
        assert f"`{cmd}`" in cli, cmd
    assert "--compare-model" in cli and "--engine" in cli
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "load_model" in api and "predict_mc" in api
