"""The package's shape: install layout and the one-way import rule."""

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# What each layer may import from edgetop and from the UI/SSH libraries.
FORBIDDEN = {
    "core": ("edgetop.tui", "textual"),
    "remote": ("edgetop.tui", "edgetop.core", "edgetop.models", "textual"),
    "models": ("edgetop.tui", "edgetop.core", "edgetop.remote", "textual", "asyncssh"),
}


# The inference worker runs models on the host: the one part of remote/ that needs them.
ALLOWED = {("remote/worker.py", "edgetop.models")}


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_point_one_way(layer: str) -> None:
    offences = [
        f"{path.relative_to(REPO)} imports {name}"
        for path in sorted((REPO / layer).glob("*.py"))
        for name in imports(path)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[layer])
        and not any(
            str(path.relative_to(REPO)) == where and name.startswith(allowed)
            for where, allowed in ALLOWED
        )
    ]
    assert not offences


def test_agent_is_stdlib_only_at_import_time() -> None:
    tree = ast.parse((REPO / "remote" / "agent.py").read_text())
    top_level = {
        alias.name.split(".")[0]
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (
            node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
        )
    }
    assert top_level <= set(sys.stdlib_module_names) | {"__future__"}


def test_wheel_installs_under_the_edgetop_namespace_only(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("edgetop-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"edgetop"}
    for sub in ("core", "remote", "models", "tui"):
        assert f"edgetop/{sub}/__init__.py" in names
    assert "edgetop/remote/agent.py" in names and "edgetop/tui/edgetop.tcss" in names
