"""The house (issue 23): the code passes the linter, the parts are layered as pyproject.toml's import-linter
contracts say (imports inside functions count, so no cycle of parts), the library imports no sandbox module (the
sandbox plugs in by name), and what one module uses of another is public: no import of another module's `_name`, no
reaching into another object's `_attribute`."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from unireward import plugins
from unireward.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "unireward"


def test_the_layers_and_the_sandbox_boundary_hold(capsys):
    cli = pytest.importorskip("importlinter.cli", reason="import-linter is in the dev extra (pip install -e '.[dev]')")
    code = cli.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    assert code == 0, capsys.readouterr().out


def test_the_code_passes_the_linter():
    """ruff, with pyproject.toml's [tool.ruff] rules, over the package, the tests and the benchmarks."""
    import shutil
    import subprocess
    import sys

    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is in the dev extra (pip install -e '.[dev]')")
    out = subprocess.run([ruff, "check", "src", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-4000:]


def _module(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def private_uses(path: Path, root: Path = SRC) -> list[str]:
    """`from unireward.x import _name` of another module, and `obj._attr` where obj is not self, cls, super() or
    a third-party module, in one source file of the package at `root`."""
    mod, tree = _module(path, root), ast.parse(path.read_text())
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    external, found = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            external |= {(a.asname or a.name).split(".")[0] for a in node.names if not a.name.startswith("unireward")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base] * bool(base))
            if not base.startswith("unireward"):
                external |= {a.asname or a.name for a in node.names}
            found += [f"{mod}:{node.lineno} imports {base}.{a.name}" for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__") and base != mod]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            if isinstance(owner, ast.Name) and (owner.id in ("self", "cls") or owner.id in external):
                continue
            if isinstance(owner, ast.Call) and getattr(owner.func, "id", None) == "super":
                continue
            found.append(f"{mod}:{node.lineno} uses {ast.unparse(node)}")
    return found


def test_no_module_uses_another_modules_private_names():
    found = [use for path in sorted(SRC.rglob("*.py")) for use in private_uses(path)]
    assert found == [], "make these public, with a one-line contract:\n" + "\n".join(found)


def test_the_private_name_check_sees_both_kinds(tmp_path):
    pkg = tmp_path / "unireward" / "part"
    pkg.mkdir(parents=True)
    (pkg / "mod.py").write_text("import torch\nfrom ..other import _hidden, shown\nfrom .mod import _own\n"
                                "def f(x):\n    torch._foreach_add_([], 1)\n    return x.backend._encode(x), x._y\n")
    assert sorted(private_uses(pkg / "mod.py", tmp_path / "unireward")) == [
        "unireward.part.mod:2 imports unireward.other._hidden", "unireward.part.mod:6 uses x._y",
        "unireward.part.mod:6 uses x.backend._encode"]


def test_the_declared_plugins_are_installed_and_load():
    """pyproject.toml's entry points are what the installed metadata declares (else: pip install -e . again)."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    for kind in plugins.KINDS:
        table = declared.get(f"unireward.{kind}", {})
        assert plugins.names(kind) == sorted(table), f"unireward.{kind}: reinstall (pip install -e .) after editing"
        for name in table:
            assert callable(plugins.load(kind, name))


def test_a_plugin_is_named_by_entry_point_or_module_path():
    from unireward.sandbox.oracle_judge import OracleBackend

    assert plugins.load("judges", "oracle") is OracleBackend
    assert plugins.load("judges", "unireward.sandbox.oracle_judge:OracleBackend") is OracleBackend
    assert plugins.known("samplers", "pkg.mod:Cls.build") and not plugins.known("samplers", "http://host:80/v1")
    with pytest.raises(ConfigError, match="no judge named 'nope'.*declared: oracle"):
        plugins.load("judges", "nope")
    with pytest.raises(ConfigError, match="cannot import"):
        plugins.load("judges", "unireward.sandbox.oracle_judge:Missing")
