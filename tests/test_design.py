"""The two one-way flows of docs/design.md, checked on the source: every import statement,
including the ones inside functions, of each module on one side."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "ferkit"

# side -> (modules on it, import prefixes they must never use)
RULES = {
    "analysis": (["analysis", "serve", "api.py"], ("torch", "ferkit.train", "ferkit.models")),
    "training": (["train", "models", "privacy"], ("ferkit.analysis", "ferkit.serve",
                                                   "ferkit.api")),
}


def imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def modules(parts: list[str]) -> list[Path]:
    out = []
    for part in parts:
        p = PKG / part
        out += [p] if p.is_file() else sorted(p.rglob("*.py"))
    return out


@pytest.mark.parametrize("side", sorted(RULES))
def test_one_way_flows(side):
    parts, banned = RULES[side]
    files = modules(parts)
    assert len(files) > 5
    bad = [f"{f.relative_to(PKG)}:{line} imports {name}" for f in files
           for line, name in imports(f)
           if any(name == b or name.startswith(b + ".") for b in banned)]
    assert not bad, "\n".join(bad)


def test_the_scan_sees_imports_inside_functions(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f():\n    import torch\n    from ferkit.analysis import run\n")
    assert [n for _, n in imports(src)] == ["torch", "ferkit.analysis"]
