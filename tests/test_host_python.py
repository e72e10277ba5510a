"""The worker side runs on the hosts' Python: >= 3.8 (deploy.MIN_PYTHON).

JetPack 5 Jetsons (Orin, Xavier) ship Python 3.8 with NVIDIA's torch wheels, so the inference
worker, loadgen and the model zoo they import must run there, while this repository itself
targets 3.10 (ruff's UP rules would happily rewrite `(int, float)` back into `int | float`).

- An AST scan of everything deploy ships (cheap, no other interpreter needed) fails on the
  3.10-only constructs that compile fine on 3.8 and break only when run: `X | Y` in
  isinstance/issubclass or in module-level aliases, builtin generics (`tuple[...]`) evaluated
  at import, `.removeprefix`/`.removesuffix`, `zip(strict=)`, `itertools.pairwise`, ...
- vermin, when installed (it is not a dependency), checks the same files for 3.8.
- Each Python 3.8 and 3.9 found (pyenv, like tests/test_agent_process.py, or PATH) compiles
  every shipped file with warnings as errors, imports the torch-free modules and runs
  loadgen's scenarios and the worker's spec checks and no-torch failure there, comparing the
  results with this interpreter's. Where that interpreter has torch (none here: add one to
  EDGETOP_HOST_PYTHONS, os.pathsep-separated), it also builds and runs every zoo model,
  measures features on the meta device, loads a user model, and runs a real worker.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pythons import PYENV_ROOT, find_python, version_of

from edgetop.remote import loadgen
from edgetop.remote.deploy import MIN_PYTHON, code_bundle

ROOT = Path(__file__).resolve().parent.parent
# The modules the worker imports on a host (deploy ships the whole of edgetop.models).
HOST_FILES = sorted(
    [
        "models/zoo.py",
        "models/features.py",
        "models/workload.py",
        "models/errors.py",
        "models/blockcost.py",
        "remote/worker.py",
        "remote/loadgen.py",
        "remote/stage.py",
        "remote/tensorwire.py",
        *(str(p.relative_to(ROOT)) for p in (ROOT / "models" / "nets").glob("*.py")),
    ]
)
HOST_MINORS = ("3.8", "3.9")
TIMEOUT = 120.0

BUILTIN_GENERICS = {"list", "dict", "tuple", "set", "frozenset", "type"}
# Calls of these attributes or names need a newer Python than 3.8.
NEWER_CALLS = {
    "removeprefix": "3.9",
    "removesuffix": "3.9",
    "pairwise": "3.10",
    "bit_count": "3.10",
    "lcm": "3.9",
    "cache": "3.9",
    "get_type_hints": "evaluates annotations",
}


# --------------------------------------------------------------------------------------------
# The shipped files, and an AST scan of them
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What deploy ships (deploy.code_bundle), laid out as on a host."""
    root = tmp_path_factory.mktemp("bundle")
    for rel, data in code_bundle().files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def shipped_sources(root: Path) -> list[Path]:
    return sorted(root.rglob("*.py"))


def test_min_python_is_jetpack5() -> None:
    assert MIN_PYTHON == (3, 8)


def test_host_files_are_shipped(bundle_dir: Path) -> None:
    shipped = {
        p.relative_to(bundle_dir / "edgetop").as_posix() for p in shipped_sources(bundle_dir)
    }
    assert set(HOST_FILES) <= shipped
    assert len(HOST_FILES) >= 15  # the nets glob found them


def _bitor_in(node: ast.AST) -> bool:
    return any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr) for n in ast.walk(node))


def _is_type_expr(node: ast.AST) -> bool:
    """`None`, a builtin type name, or a subscripted/attribute type: what `X | Y` unions."""
    if isinstance(node, ast.Constant):
        return node.value is None
    return isinstance(node, (ast.Name, ast.Attribute, ast.Subscript))


def _runtime_type_problems(value: ast.AST, abc_names: set[str]) -> list[tuple[int, str]]:
    """Builtin or collections.abc generics subscripted, or `X | None`-style unions, in an
    expression that runs (`abc_names`: what the module imports from collections.abc)."""
    found = []
    for n in ast.walk(value):
        if isinstance(n, ast.Subscript):
            base = n.value
            name = base.id if isinstance(base, ast.Name) else None
            if name in BUILTIN_GENERICS or name in abc_names:
                found.append((n.lineno, f"{name}[...] evaluated at runtime (3.9+)"))
            elif isinstance(base, ast.Attribute) and ast.unparse(base.value) == "collections.abc":
                found.append((n.lineno, f"collections.abc.{base.attr}[...] at runtime (3.9+)"))
        if (
            isinstance(n, ast.BinOp)
            and isinstance(n.op, ast.BitOr)
            and _is_type_expr(n.left)
            and _is_type_expr(n.right)
            and any(
                (isinstance(x, ast.Constant) and x.value is None)
                or (isinstance(x, ast.Name) and x.id in BUILTIN_GENERICS | {"int", "float", "str"})
                or isinstance(x, ast.Subscript)
                for x in (n.left, n.right)
            )
        ):
            found.append((n.lineno, "X | Y type union evaluated at runtime (3.10+)"))
    return found


def _offset(lines: list[str], line: int, col: int) -> int:
    return sum(len(text) for text in lines[: line - 1]) + col


def _parenthesized_items(source: str, node: ast.With) -> bool:
    """`with (a as x, b as y):` (3.10+): a paren between `with` and the first item and one
    between the last item and the body (a heuristic: `with (a), (b):` would count too)."""
    if len(node.items) < 2:
        return False
    lines = source.splitlines(keepends=True)
    first, last = node.items[0], node.items[-1]
    start = _offset(lines, node.lineno, node.col_offset) + len("with")
    head = source[start : _offset(lines, first.context_expr.lineno, first.context_expr.col_offset)]
    end_node = last.optional_vars or last.context_expr
    end = _offset(lines, end_node.end_lineno or 0, end_node.end_col_offset or 0)
    tail = source[end : _offset(lines, node.body[0].lineno, node.body[0].col_offset)]
    return "(" in head and ")" in tail.split(":", 1)[0]


def py38_problems(source: str, filename: str = "<source>", future: bool = True) -> list[str]:
    """What in `source` needs a newer Python than 3.8 at runtime (compiling does not tell);
    `future`: it must also import `annotations` from __future__ (so none is evaluated)."""
    tree = ast.parse(source, filename)
    problems: list[tuple[int, str]] = []
    has_future = any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(a.name == "annotations" for a in node.names)
        for node in tree.body
    )
    if future and tree.body and not has_future:
        problems.append((1, "no `from __future__ import annotations`"))
    abc_names = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "collections.abc"
        for alias in node.names
    }
    for node in ast.walk(tree):
        if type(node).__name__ in ("Match", "TypeAlias", "TryStar"):
            problems.append((node.lineno, f"{type(node).__name__} statement"))
        if isinstance(node, ast.With) and _parenthesized_items(source, node):
            problems.append((node.lineno, "parenthesized context managers (3.10+)"))
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name in ("isinstance", "issubclass") and len(node.args) == 2 and _bitor_in(node.args[1]):
            problems.append((node.lineno, f"X | Y in {name}() (3.10+)"))
        if name == "zip" and any(k.arg == "strict" for k in node.keywords):
            problems.append((node.lineno, "zip(strict=) (3.10+)"))
        if name in NEWER_CALLS:
            problems.append((node.lineno, f"{name}() ({NEWER_CALLS[name]})"))
        if name == "dataclass" and any(
            k.arg in ("slots", "kw_only", "match_args") for k in node.keywords
        ):
            problems.append((node.lineno, "dataclass(slots=/kw_only=) (3.10+)"))
        if name == "cast" and node.args:
            problems.extend(_runtime_type_problems(node.args[0], abc_names))
    # Expressions that run at import: module- and class-level assignments (aliases, defaults)
    # and decorators; annotations are strings (`from __future__ import annotations`).
    bodies = [tree.body] + [n.body for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    for body in bodies:
        for stmt in body:
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
                problems.extend(_runtime_type_problems(stmt.value, abc_names))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Attribute) and decorator.attr == "cache":
                    problems.append((decorator.lineno, "@functools.cache (3.9)"))
                elif isinstance(decorator, ast.Name) and decorator.id == "cache":
                    problems.append((decorator.lineno, "@cache (3.9)"))
    return [f"{filename}:{line}: {what}" for line, what in sorted(set(problems))]


@pytest.mark.parametrize(
    "source",
    [
        "isinstance(x, int | float)",
        "issubclass(t, (tuple, list | set))",
        "s.removeprefix('torch.')",
        "s.removesuffix('.py')",
        "list(zip(a, b, strict=True))",
        "match x:\n    case 1:\n        pass",
        "itertools.pairwise(x)",
        "Alias = int | None",
        "State = tuple[int, int]",
        "Options = dict[str, int]",
        "@functools.cache\ndef f(): pass",
        "@dataclass(slots=True)\nclass A: pass",
        "with (open(a) as x, open(b) as y):\n    pass",
        "y = cast(list[int], x)",
        "from collections.abc import Callable\nBuilder = Callable[..., int]",
        "import collections.abc\nMaker = collections.abc.Callable[[int], int]",
    ],
)
def test_the_scan_catches(source: str) -> None:
    text = "from __future__ import annotations\n" + source + "\n"
    assert py38_problems(text), source


def test_the_scan_passes_3_8_code() -> None:
    text = textwrap.dedent(
        """\
        from __future__ import annotations
        from typing import Dict, Optional, Tuple
        FLAGS = 1 | 2
        State = Tuple[int, int]
        Maker = Optional[Dict[str, int]]
        def f(x: int | None, y: tuple[int, ...]) -> list[int] | None:
            return [n for n in y if isinstance(n, (int, float))] or None
        with open(a) as x, open(b) as y:
            pass
        """
    )
    assert py38_problems(text) == []


def test_shipped_files_use_nothing_newer_than_3_8(bundle_dir: Path) -> None:
    """Everything shipped; the worker's own modules (HOST_FILES) also never evaluate an
    annotation (the agent, which runs on 3.6, cannot import annotations from __future__)."""
    problems = []
    for path in shipped_sources(bundle_dir):
        rel = path.relative_to(bundle_dir / "edgetop").as_posix()
        problems += py38_problems(path.read_text(encoding="utf-8"), rel, rel in HOST_FILES)
    assert problems == []


VERMIN = "import sys, vermin; sys.argv[0] = 'vermin'; sys.exit(vermin.main())"


def test_vermin_says_3_8(bundle_dir: Path) -> None:
    """vermin's own rules (stdlib members, syntax) where it is installed; not a dependency."""
    pytest.importorskip("vermin", reason="vermin is not installed (pip install vermin)")
    files = [str(p) for p in shipped_sources(bundle_dir)]
    done = subprocess.run(
        [sys.executable, "-c", VERMIN, "-t=3.8-", "--no-tips", "--violations", *files],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --------------------------------------------------------------------------------------------
# The real interpreters
# --------------------------------------------------------------------------------------------


def _interpreters() -> list[Any]:
    params = [pytest.param(minor, id=f"py{minor}") for minor in HOST_MINORS]
    extra = os.environ.get("EDGETOP_HOST_PYTHONS", "")
    params += [pytest.param(exe, id=exe) for exe in extra.split(os.pathsep) if exe]
    return params


@pytest.fixture(params=_interpreters())
def host_python(request: pytest.FixtureRequest) -> str:
    """An interpreter of a host Python: a minor found like test_agent_process does, or a path
    from EDGETOP_HOST_PYTHONS."""
    wanted: str = request.param
    if os.sep in wanted:
        version = version_of(wanted)
        if version is None:
            pytest.skip(f"{wanted} does not run")
        exe = wanted
    else:
        found = find_python(wanted)
        if found is None:
            pytest.skip(f"no Python {wanted} found ({PYENV_ROOT}/versions, python{wanted} on PATH)")
        exe, version = found
    if tuple(int(p) for p in version.split(".")[:2]) < MIN_PYTHON:
        pytest.skip(f"{exe} is Python {version}, below deploy.MIN_PYTHON")
    return exe


def _run(exe: str, script: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`script` in `exe` with warnings as errors, importing edgetop from the bundle in `cwd`
    only (no user site, no PYTHON* variables but PYTHONPATH)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(cwd)
    return subprocess.run(
        [exe, "-s", "-W", "error", "-c", script, *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _has_torch(exe: str, cwd: Path) -> bool:
    return (
        _run(exe, "import warnings; warnings.simplefilter('ignore'); import torch", cwd).returncode
        == 0
    )


COMPILE = """
import sys
for name in sys.argv[1:]:
    with open(name, encoding="utf-8") as handle:
        compile(handle.read(), name, "exec", dont_inherit=True)
print(len(sys.argv) - 1)
"""


def test_every_shipped_file_compiles(host_python: str, bundle_dir: Path) -> None:
    files = [str(p.relative_to(bundle_dir)) for p in shipped_sources(bundle_dir)]
    done = _run(host_python, COMPILE, bundle_dir, *files)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(len(files))]


# Runs on the host Python: the torch-free modules, with results printed as JSON to compare.
TORCH_FREE = """
import json, sys
import edgetop
assert edgetop.__file__.startswith(sys.argv[1]), edgetop.__file__
from edgetop.models import errors, workload
from edgetop.remote import loadgen, worker

out = {}
e = errors.UnknownModelError("no such model")
option_error = errors.ModelOptionError("x")
out["errors"] = [str(e), isinstance(e, KeyError), isinstance(option_error, ValueError)]
f = workload.WorkloadFeatures("m", "conv", 10, 40, 1.5, 100, 300, ((1, 3, 8, 8),), 768, 0.5)
out["workload"] = [workload.WorkloadFeatures.from_dict(f.to_dict()) == f, f.memory_bytes_at(4)]

values = [float(v) for v in range(1, 11)]
out["percentiles"] = [loadgen.percentile(values, p) for p in (1, 50, 90, 99, 100)]

class Clock:
    def __init__(self):
        self.t = 0.0
    def __call__(self):
        return self.t
    def sleep(self, s):
        self.t += s

runs = {}
for name in loadgen.SCENARIOS:
    clock = Clock()
    def run_batch(clock=clock):
        clock.t += 0.01
    scenario = loadgen.make_scenario(
        name, run_batch, batch=4, qps=50.0 if name == "server" else None, seed=7,
        window=loadgen.SlidingWindow(2.0, slo_ms=15.0), clock=clock, sleep=clock.sleep,
    )
    runs[name] = scenario.run(max_queries=300).to_dict()
out["scenarios"] = runs

spec = worker.WorkerSpec.from_dict(
    {"id": "h", "model": "pkg.mod:fn", "batch": 2, "model_kwargs": {"seq_len": 16}}
)
out["spec"] = spec.to_dict()
try:
    worker.WorkerSpec.from_dict({"id": "h", "model": "x", "qps": -1, "scenario": "server"})
except worker.SpecError as exc:
    out["bad_spec"] = str(exc)
out["torch_too_old"] = [
    worker._torch_too_old(v) is None
    for v in ("1.13.1", "2.0.0+nv23.05", "2.1.0a0+41361538.nv23.06", "2.5.1", "weird")
]
out["cpu_threads"] = [worker.cpu_threads(q, 8) for q in (None, 0.4, 1.0, 2.5, 64.0)]
out["human"] = [worker.human_bytes(n) for n in (512, 3 << 20, 5 << 30)]
print(json.dumps(out, sort_keys=True))
"""


def _torch_free_expected() -> dict[str, Any]:
    """The same figures from this interpreter (3.10+, where the modules were written)."""
    from edgetop.models import errors, workload
    from edgetop.remote import worker

    class Clock:
        def __init__(self) -> None:
            self.t = 0.0

        def __call__(self) -> float:
            return self.t

        def sleep(self, s: float) -> None:
            self.t += s

    runs = {}
    for name in loadgen.SCENARIOS:
        clock = Clock()

        def run_batch(clock: Clock = clock) -> None:
            clock.t += 0.01

        scenario = loadgen.make_scenario(
            name,
            run_batch,
            batch=4,
            qps=50.0 if name == "server" else None,
            seed=7,
            window=loadgen.SlidingWindow(2.0, slo_ms=15.0),
            clock=clock,
            sleep=clock.sleep,
        )
        runs[name] = scenario.run(max_queries=300).to_dict()
    f = workload.WorkloadFeatures("m", "conv", 10, 40, 1.5, 100, 300, ((1, 3, 8, 8),), 768, 0.5)
    spec = worker.WorkerSpec.from_dict(
        {"id": "h", "model": "pkg.mod:fn", "batch": 2, "model_kwargs": {"seq_len": 16}}
    )
    with pytest.raises(worker.SpecError) as bad:
        worker.WorkerSpec.from_dict({"id": "h", "model": "x", "qps": -1, "scenario": "server"})
    e = errors.UnknownModelError("no such model")
    out = {
        "errors": [str(e), True, True],
        "workload": [True, f.memory_bytes_at(4)],
        "percentiles": [
            loadgen.percentile([float(v) for v in range(1, 11)], p) for p in (1, 50, 90, 99, 100)
        ],
        "scenarios": runs,
        "spec": spec.to_dict(),
        "bad_spec": str(bad.value),
        "torch_too_old": [False, True, True, True, True],
        "cpu_threads": [worker.cpu_threads(q, 8) for q in (None, 0.4, 1.0, 2.5, 64.0)],
        "human": [worker.human_bytes(n) for n in (512, 3 << 20, 5 << 30)],
    }
    return json.loads(json.dumps(out, sort_keys=True))


def test_torch_free_modules_run_the_same(host_python: str, bundle_dir: Path) -> None:
    """errors, workload, loadgen and the worker's stdlib half: imported from the shipped files
    and giving exactly this interpreter's results (fake clock, seeded arrivals)."""
    done = _run(host_python, TORCH_FREE, bundle_dir, str(bundle_dir))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == _torch_free_expected()


def _deployment(root: Path, spec: dict[str, Any]) -> Path:
    directory = root / spec["id"]
    directory.mkdir(parents=True)
    (directory / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    return directory


def _worker(
    exe: str, bundle: Path, directory: Path, *flags: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(bundle)
    return subprocess.run(
        [exe, "-s", "-m", "edgetop.remote.worker", "--dir", str(directory), *flags],
        cwd=bundle,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_worker_without_torch_fails_cleanly(
    host_python: str, bundle_dir: Path, tmp_path: Path
) -> None:
    """The real worker entry point on the host Python: no torch there, so it says so (exit 3)
    and --describe reads the failure back."""
    if _has_torch(host_python, bundle_dir):
        pytest.skip(f"{host_python} has torch (the torch test runs a real worker instead)")
    directory = _deployment(tmp_path, {"id": "nt", "model": "resnet50"})
    done = _worker(host_python, bundle_dir, directory)
    assert done.returncode == 3, done.stdout + done.stderr
    described = _worker(host_python, bundle_dir, directory, "--describe")
    assert described.returncode == 0, described.stderr
    info = json.loads(described.stdout)
    assert info["state"] == "failed"
    assert "torch is not installed" in info["reason"]


# Small options, so that every model is cheap on the CPU.
SMALL = {
    "resnet50": {"image_size": 32},
    "mobilenetv2": {"image_size": 32},
    "ssd-resnet34": {"image_size": 385},
    "ssd-mobilenet": {"image_size": 64},
    "yolov5s": {"image_size": 64},
    "yolov5m": {"image_size": 64},
    "dlrm": {"rows_scale": 1e-5},
    "bert-base": {"seq_len": 8},
    "bert-large": {"seq_len": 8},
    "gpt2": {"seq_len": 8},
    "gpt2-medium": {"seq_len": 8},
}
# Runs on a host Python with torch: every zoo model, features, a user model.
WITH_TORCH = """
import json, sys
import torch
from edgetop.models import zoo
from edgetop.models.features import extract

small = json.loads(sys.argv[1])
out = {"models": {}}
for name, spec in zoo.CATALOG.items():
    opts = small[name]
    f = extract(spec, **opts)  # meta device: every model, full size weights
    with torch.device("meta"):
        model = spec.build(**opts)
    row = {"params": f.params, "gflops": f.gflops > 0, "meta_blocks": len(model.blocks())}
    if name not in ("bert-large", "gpt2-medium", "yolov5m"):  # the rest run for real on CPU
        model = spec.build(**opts)
        inputs = spec.make_input(2, **opts)
        with torch.no_grad():
            whole, chained = model(*inputs), model.run_blocks(*inputs)
        whole = whole if isinstance(whole, tuple) else (whole,)
        chained = chained if isinstance(chained, tuple) else (chained,)
        row["same"] = all(torch.allclose(a, b, atol=1e-5) for a, b in zip(whole, chained))
        row["shapes"] = [list(t.shape) for t in whole]
    out["models"][name] = row
try:
    zoo.get_model("resnet50").make_input(1, image_size=31)
except zoo.ModelOptionError as exc:
    out["option_error"] = str(exc)
user = zoo.get_model("hostmodel:make")
out["user"] = [user.family, user.input_desc, len(user.build().blocks())]
print(json.dumps(out, sort_keys=True))
"""

USER_MODEL = '''
import torch
from torch import nn

FAMILY = "conv"


def make():
    """A two-layer user model."""
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), torch.zeros(1, 4)
'''


def num_params_on_meta(spec: Any, **options: Any) -> int:
    import torch

    from edgetop.models.nets import num_params

    with torch.device("meta"):
        return num_params(spec.build(**options))


def test_zoo_and_worker_run_where_torch_is(
    host_python: str, bundle_dir: Path, tmp_path: Path
) -> None:
    """The torch-dependent half (zoo, features, a real worker run) on the host Python; only
    where that interpreter has torch (a Jetson's, or one named in EDGETOP_HOST_PYTHONS)."""
    if not _has_torch(host_python, bundle_dir):
        pytest.skip(f"{host_python} has no torch: the zoo was only compiled there")
    user_dir = tmp_path / "user"
    user_dir.mkdir()
    (user_dir / "hostmodel.py").write_text(USER_MODEL, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join([str(bundle_dir), str(user_dir)])
    done = subprocess.run(
        [host_python, "-s", "-c", WITH_TORCH, json.dumps(SMALL)],
        cwd=bundle_dir,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    from edgetop.models.zoo import CATALOG

    for name, row in got["models"].items():
        assert row["gflops"], name
        assert row.get("same", True), name
    # The same parameter counts as this interpreter's zoo (test_zoo checks them against facts).
    params = {name: row["params"] for name, row in got["models"].items()}
    assert params == {
        name: num_params_on_meta(spec, **SMALL[name]) for name, spec in CATALOG.items()
    }
    assert set(got["models"]) == set(CATALOG)
    assert "image_size" in got["option_error"]
    assert got["user"] == ["conv", "4 float32", 3]

    directory = _deployment(
        tmp_path / "deployments",
        {
            "id": "py-host",
            "model": "mobilenetv2",
            "model_kwargs": {"image_size": 32},
            "device": "cpu",
            "warmup": 1,
            "duration_s": 1.0,
            "metrics_interval_s": 0.2,
        },
    )
    run = _worker(host_python, bundle_dir, directory)
    assert run.returncode == 0, run.stdout + run.stderr
    info = json.loads(_worker(host_python, bundle_dir, directory, "--describe").stdout)
    assert info["state"] == "stopped", info
    assert info["metrics"]["count"] > 0, info
