"""The learned latency predictor: an ensemble of small fully connected networks.

Each member maps one row of `schedfeatures.FEATURE_NAMES` (a workload at a batch size on a
device in its current state) to log p50 and log p99 latency in milliseconds:

    z = (x - x_mean) / x_std                      inputs standardised per column
    h = relu(z W1 + b1); h = relu(h W2 + b2) ...  hidden layers
    out = h Wo + bo + z Ws                        plus a linear shortcut from the inputs
    log_ms = out * y_std + y_mean                 targets standardised per column too

The linear shortcut carries the roofline columns' near-linear relation to log latency
straight through, so workloads outside the training range (GPT-2, YOLOv5) extrapolate along
it instead of along whatever the last ReLU happened to do.

The loss is the absolute error of standardised log latency (L1): the network predicts the
conditional median. Part of a row's latency depends on what no column describes (queueing
behind co-runners, see docs/scheduler-model.md); a squared loss lets those heavy tails (and
overloaded devices, 1,000x slower) pull every prediction; L1 lifted the share within 10% from
28% to 39% on the same rows.

The ensemble's prediction is the mean of its members in log space; its `confidence` is
`exp(-CONFIDENCE_SCALE * s)`, where s is the standard deviation of log p99 across members:
members that agree within 1% give ~0.9, within 5% ~0.6, within 10% ~0.37.

Training uses torch (imported inside `train_ensemble` only); inference is numpy matmuls on
the exported float32 weights, so the controller decides without importing torch. The weights
file is an `.npz` read with `allow_pickle=False`: a JSON header (format, feature schema and
names, version, training notes) plus plain arrays, never a pickle.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import os
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgetop.models.errors import ModelError
from edgetop.models.schedfeatures import FEATURE_NAMES, SCHEMA_VERSION

__all__ = [
    "CONFIDENCE_SCALE",
    "SHIPPED_WEIGHTS",
    "TARGET_NAMES",
    "LatencyPredictor",
    "Prediction",
    "PredictorError",
    "load_default",
    "train_ensemble",
    "user_weights_path",
]

WEIGHTS_FORMAT = 1  # layout of the weights file itself (the feature schema is versioned apart)
TARGET_NAMES = ("log_p50_ms", "log_p99_ms")
CONFIDENCE_SCALE = 10.0
SHIPPED_WEIGHTS = Path(__file__).with_name("weights") / "scheduler-weights.npz"
WEIGHTS_ENV = "EDGETOP_WEIGHTS"
DEFAULT_HIDDEN = (48, 48)
DEFAULT_EPOCHS = 40
ROW_BLOCK = 128  # rows per forward pass in inference (_member_outputs)


class PredictorError(ModelError):
    """Weights that cannot be used: missing, corrupt, or trained on another feature schema."""


@dataclass(frozen=True)
class Prediction:
    """Predicted latency of n rows (arrays of shape (n,)); p99 is never below p50."""

    p50_ms: np.ndarray
    p99_ms: np.ndarray
    confidence: np.ndarray  # 0..1, exp(-CONFIDENCE_SCALE * member std of log p99)


@dataclass(frozen=True)
class _Standardiser:
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray) -> _Standardiser:
        std = values.std(axis=0)
        # A column that never varies in training (e.g. no throttled device) scales by 1.
        return cls(values.mean(axis=0), np.where(std > 1e-9, std, 1.0))


@dataclass(frozen=True, eq=False)
class LatencyPredictor:
    """An ensemble of members sharing one shape; layer arrays are stacked over members.

    `weights[i]` has shape (members, fan_in, fan_out) and `biases[i]` (members, fan_out); the
    last pair is the output layer. `shortcut` is (members, n_features, 2).
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    shortcut: np.ndarray
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: np.ndarray
    y_std: np.ndarray
    version: str
    schema_version: int = SCHEMA_VERSION
    feature_names: tuple[str, ...] = FEATURE_NAMES
    notes: Mapping[str, Any] = field(default_factory=dict)  # how it was trained (shown, kept)

    # Derived once for inference (float32): the first layer and the shortcut, each with its
    # bias as an extra input row, so a prediction is one matmul per layer with no broadcasts.
    _first: np.ndarray = field(init=False, repr=False, compare=False)  # (m, d + 1, h)
    _skip: np.ndarray = field(init=False, repr=False, compare=False)  # (m, d + 1, 2)
    _scale: np.ndarray = field(init=False, repr=False, compare=False)  # 1 / x_std

    def __post_init__(self) -> None:
        _check_shapes(self)
        biased = {
            "_first": (self.weights[0], self.biases[0]),
            "_skip": (self.shortcut, self.biases[-1]),
        }
        for name, (w, b) in biased.items():
            value = np.concatenate([w, b[:, None, :]], axis=1).astype(np.float32)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_scale", 1.0 / self.x_std)

    @property
    def members(self) -> int:
        return int(self.shortcut.shape[0])

    @property
    def hidden(self) -> tuple[int, ...]:
        return tuple(int(w.shape[2]) for w in self.weights[:-1])

    def _member_outputs(self, x: np.ndarray) -> np.ndarray:
        """Log-ms predictions of every member: (members, n, 2), in blocks of ROW_BLOCK rows:
        a block's activations stay in the core's cache (1,000 rows at once took 1.47x as long
        as in blocks of 128; docs/benchmarks.md)."""
        if len(x) <= ROW_BLOCK:
            return self._block_outputs(x)
        blocks = [self._block_outputs(x[i : i + ROW_BLOCK]) for i in range(0, len(x), ROW_BLOCK)]
        return np.concatenate(blocks, axis=1)

    def _block_outputs(self, x: np.ndarray) -> np.ndarray:
        """`_member_outputs` of one block. In-place ReLUs and no strided views: the cost is
        the matmuls, not temporaries."""
        z = np.empty((len(x), x.shape[1] + 1), dtype=np.float32)
        np.multiply(x - self.x_mean, self._scale, out=z[:, :-1], casting="unsafe")
        z[:, -1] = 1.0  # the bias input
        h = np.matmul(z, self._first)  # (n, d+1) @ (m, d+1, h) -> (m, n, h)
        np.maximum(h, 0.0, out=h)
        for i in range(1, len(self.weights) - 1):  # (no zip(strict=): this file runs on 3.8)
            h = np.matmul(h, self.weights[i])
            h += self.biases[i][:, None, :]
            np.maximum(h, 0.0, out=h)
        out = np.matmul(h, self.weights[-1])
        out += np.matmul(z, self._skip)
        return out * self.y_std.astype(np.float32) + self.y_mean.astype(np.float32)

    def predict(self, x: np.ndarray) -> Prediction:
        """Latency of each row of `x` (n, len(feature_names)); rows with NaN get confidence 0."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise ValueError(
                f"expected rows of {len(self.feature_names)} features, got shape {x.shape}"
            )
        out = self._member_outputs(x).astype(np.float64)
        log_p50 = out[:, :, 0].mean(axis=0)
        log_p99 = np.maximum(out[:, :, 1].mean(axis=0), log_p50)
        spread = out[:, :, 1].std(axis=0)
        confidence = np.exp(-CONFIDENCE_SCALE * spread)
        return Prediction(
            p50_ms=np.exp(log_p50),
            p99_ms=np.exp(log_p99),
            confidence=np.where(np.isfinite(confidence), confidence, 0.0),
        )

    # -- the weights file ---------------------------------------------------------------

    def _header(self) -> dict[str, Any]:
        return {
            "format": WEIGHTS_FORMAT,
            "schema_version": self.schema_version,
            "feature_names": list(self.feature_names),
            "targets": list(TARGET_NAMES),
            "version": self.version,
            "layers": len(self.weights),
            "notes": dict(self.notes),
        }

    def save(self, path: Path) -> None:
        """Write the weights (float32) and header; the parent folder is created if needed."""
        arrays: dict[str, np.ndarray] = {
            "header": np.frombuffer(json.dumps(self._header()).encode(), dtype=np.uint8),
            "x_mean": self.x_mean,
            "x_std": self.x_std,
            "y_mean": self.y_mean,
            "y_std": self.y_std,
            "shortcut": self.shortcut.astype(np.float32),
        }
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):  # noqa: B905 - equal (load checks)
            arrays[f"w{i}"] = w.astype(np.float32)
            arrays[f"b{i}"] = b.astype(np.float32)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a reader never sees half a file, a crash never leaves one.
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(buffer.getvalue())
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> LatencyPredictor:
        """Read weights written by `save`; PredictorError says what is wrong and what to do."""
        if not path.is_file():
            raise PredictorError(f"scheduler weights {path}: no such file")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            header = json.loads(arrays["header"].tobytes().decode())
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise PredictorError(
                f"scheduler weights {path} are unreadable ({exc}); "
                "retrain with `edgetop train` or delete the file"
            ) from None
        if not isinstance(header, dict) or header.get("format") != WEIGHTS_FORMAT:
            found = header.get("format") if isinstance(header, dict) else None
            raise PredictorError(
                f"scheduler weights {path} are in file format {found}, this edgetop reads "
                f"format {WEIGHTS_FORMAT}; retrain with `edgetop train`"
            )
        schema = header.get("schema_version")
        names = tuple(header.get("feature_names") or ())
        if schema != SCHEMA_VERSION or names != FEATURE_NAMES:
            raise PredictorError(
                f"scheduler weights {path} were trained on schema {schema} with features "
                f"{', '.join(names) or '(none)'}; this edgetop uses schema {SCHEMA_VERSION} "
                f"with features {', '.join(FEATURE_NAMES)}; retrain with `edgetop train`"
            )
        try:
            layers = int(header["layers"])
            predictor = cls(
                weights=tuple(arrays[f"w{i}"] for i in range(layers)),
                biases=tuple(arrays[f"b{i}"] for i in range(layers)),
                shortcut=arrays["shortcut"],
                x_mean=arrays["x_mean"].astype(np.float64),
                x_std=arrays["x_std"].astype(np.float64),
                y_mean=arrays["y_mean"].astype(np.float64),
                y_std=arrays["y_std"].astype(np.float64),
                version=str(header["version"]),
                schema_version=int(schema),
                feature_names=names,
                notes=header.get("notes") or {},
            )
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise PredictorError(
                f"scheduler weights {path} are corrupt ({exc or type(exc).__name__}); "
                "retrain with `edgetop train`"
            ) from None
        return predictor


def _check_shapes(p: LatencyPredictor) -> None:
    d = len(p.feature_names)
    if len(p.weights) < 2:
        raise ValueError(f"{len(p.weights)} layer(s); the network has at least one hidden layer")
    fan_in = d
    if len(p.weights) != len(p.biases):
        raise ValueError(f"{len(p.weights)} weight arrays but {len(p.biases)} bias arrays")
    for w, b in zip(p.weights, p.biases):  # noqa: B905 - lengths checked above (3.8 has no strict)
        if w.ndim != 3 or w.shape[0] != p.members or w.shape[1] != fan_in:
            raise ValueError(f"layer of shape {w.shape} does not follow one of width {fan_in}")
        if b.shape != (p.members, w.shape[2]):
            raise ValueError(f"bias of shape {b.shape} does not match its layer {w.shape}")
        fan_in = w.shape[2]
    if fan_in != len(TARGET_NAMES) or p.shortcut.shape != (p.members, d, len(TARGET_NAMES)):
        raise ValueError("output layer or shortcut has the wrong shape")
    for name, vector, size in (("x_mean", p.x_mean, d), ("x_std", p.x_std, d),
                               ("y_mean", p.y_mean, 2), ("y_std", p.y_std, 2)):  # fmt: skip
        if vector.shape != (size,) or not np.all(np.isfinite(vector)):
            raise ValueError(f"{name} has shape {vector.shape} or non-finite values")


# -- where weights live ------------------------------------------------------------------


def user_weights_path(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_STATE_HOME/edgetop/scheduler-weights.npz` (~/.local/state by default)."""
    env = os.environ if env is None else env
    state = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME", "~")) / ".local" / "state")
    return Path(state).expanduser() / "edgetop" / "scheduler-weights.npz"


def default_weights_path(env: Mapping[str, str] | None = None) -> Path:
    """$EDGETOP_WEIGHTS if set; else the user's trained weights if present; else the shipped."""
    env = os.environ if env is None else env
    if env.get(WEIGHTS_ENV):
        return Path(env[WEIGHTS_ENV]).expanduser()
    user = user_weights_path(env)
    return user if user.is_file() else SHIPPED_WEIGHTS


def load_default(env: Mapping[str, str] | None = None) -> LatencyPredictor:
    """The weights `default_weights_path` names. A user's file of another schema raises
    (rather than silently falling back to the shipped weights and dropping their fleet's
    measurements): the message says to retrain."""
    return _load_cached(default_weights_path(env))


def _load_cached(path: Path) -> LatencyPredictor:
    """One load per version of the file: deciding (the interface, `--auto`) asks every round,
    and a retrained file is picked up by its new mtime."""
    try:
        stat = path.stat()
    except OSError:
        return LatencyPredictor.load(path)  # its own error names the missing file
    return _load_version(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _load_version(path: Path, mtime_ns: int, size: int) -> LatencyPredictor:
    return LatencyPredictor.load(path)


# -- training (torch, imported here only) ----------------------------------------------


def train_ensemble(
    train: np.ndarray,
    y: np.ndarray,
    members: int = 5,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    *,
    hidden: Sequence[int] = DEFAULT_HIDDEN,
    batch_size: int = 256,
    lr: float = 3e-3,
    weight_decay: float = 1e-5,
    sample_weight: np.ndarray | None = None,
    loss: str = "l1",
    notes: Mapping[str, Any] | None = None,
) -> LatencyPredictor:
    """Fit `members` networks on rows `train` (n, len(FEATURE_NAMES)) and targets `y` (n, 2):
    log p50 and log p99 in ms. Members differ in initialisation and in the order they see the
    rows; all are trained at once as one batched model (far fewer torch calls on a CPU).

    Adam on the mean absolute error of standardised log latency (`loss="l1"`; "mse" is
    there to compare), with a cosine learning-rate decay; `progress(epoch, epochs)` after each
    epoch. Deterministic for a given seed and thread count. `sample_weight` (n,) weights rows
    in the loss (e.g. measured over generated).
    """
    import torch

    x = np.asarray(train, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(FEATURE_NAMES):
        raise ValueError(f"expected rows of {len(FEATURE_NAMES)} features, got {x.shape}")
    if y.shape != (x.shape[0], len(TARGET_NAMES)):
        raise ValueError(f"expected targets of shape ({x.shape[0]}, 2), got {y.shape}")
    if not hidden or min(hidden) < 1:
        raise ValueError(f"hidden must name at least one layer width, got {tuple(hidden)}")
    if loss not in ("l1", "mse"):
        raise ValueError(f"loss must be 'l1' or 'mse', got {loss!r}")
    if x.shape[0] < 2 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("training needs at least two rows, all finite")
    x_scale = _Standardiser.fit(x)
    y_scale = _Standardiser.fit(y)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    xs = torch.from_numpy(((x - x_scale.mean) / x_scale.std).astype(np.float32))
    ys = torch.from_numpy(((y - y_scale.mean) / y_scale.std).astype(np.float32))
    n, d = xs.shape
    weights_np = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
    row_weight = torch.from_numpy((weights_np / weights_np.mean()).astype(np.float32))

    sizes = [d, *hidden, len(TARGET_NAMES)]
    params: list[torch.Tensor] = []
    for fan_in, fan_out in ((sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1)):
        bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default initialisation
        w = (torch.rand(members, fan_in, fan_out, generator=generator) * 2 - 1) * bound
        b = (torch.rand(members, fan_out, generator=generator) * 2 - 1) * bound
        params += [w.requires_grad_(), b.requires_grad_()]
    shortcut = torch.zeros(members, d, len(TARGET_NAMES), requires_grad=True)
    params.append(shortcut)
    optimiser = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    steps_per_epoch = max(1, math.ceil(n / batch_size))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, epochs * steps_per_epoch)
    layers = len(sizes) - 1

    def forward(xb: torch.Tensor) -> torch.Tensor:  # xb: (members, batch, d)
        h = xb
        for i in range(layers):
            h = torch.baddbmm(params[2 * i + 1].unsqueeze(1), h, params[2 * i])
            if i < layers - 1:
                h = torch.relu(h)
        return h + torch.bmm(xb, shortcut)

    started = time.time()
    for epoch in range(epochs):
        order = torch.argsort(torch.rand(members, n, generator=generator), dim=1)
        for step in range(steps_per_epoch):
            idx = order[:, step * batch_size : (step + 1) * batch_size]
            pred = forward(xs[idx])
            diff = pred - ys[idx]
            per_row = diff.abs() if loss == "l1" else diff * diff
            objective = (per_row.mean(dim=2) * row_weight[idx]).mean()
            optimiser.zero_grad(set_to_none=True)
            objective.backward()
            optimiser.step()
            schedule.step()
        if progress is not None:
            progress(epoch + 1, epochs)

    exported = [p.detach().numpy().astype(np.float32) for p in params]
    digest = hashlib.sha256(b"".join(a.tobytes() for a in exported)).hexdigest()[:10]
    info = {
        "rows": int(n),
        "members": members,
        "epochs": epochs,
        "hidden": list(hidden),
        "seed": seed,
        "loss": loss,
        "train_seconds": round(time.time() - started, 1),
        "torch": torch.__version__.split("+")[0],
        **(notes or {}),
    }
    return LatencyPredictor(
        weights=tuple(exported[0 : 2 * layers : 2]),
        biases=tuple(exported[1 : 2 * layers : 2]),
        shortcut=exported[-1],
        x_mean=x_scale.mean,
        x_std=x_scale.std,
        y_mean=y_scale.mean,
        y_std=y_scale.std,
        version=f"{time.strftime('%Y-%m-%d', time.gmtime())}-s{seed}-{digest}",
        schema_version=SCHEMA_VERSION,
        feature_names=FEATURE_NAMES,
        notes=info,
    )
