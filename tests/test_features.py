"""Workload features measured on the meta device."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from edgetop.models.catalog import CatalogError, load_catalog
from edgetop.models.features import extract
from edgetop.models.workload import WorkloadFeatures


class MlpSpec:
    """A stand-in ModelSpec whose features are known by hand."""

    name = "mlp"
    family = "custom"

    def build(self) -> nn.Module:
        return nn.Sequential(nn.Linear(1000, 4000), nn.ReLU(), nn.Linear(4000, 10)).eval()

    def make_input(self, batch: int, device: str = "cpu") -> tuple[torch.Tensor, ...]:
        return (torch.randn(batch, 1000, device=device),)


def test_features_of_a_known_network() -> None:
    f = extract(MlpSpec())  # type: ignore[arg-type]
    assert f.params == 1000 * 4000 + 4000 + 4000 * 10 + 10
    assert f.param_bytes == 4 * f.params
    assert f.gflops == pytest.approx(2 * (1000 * 4000 + 4000 * 10) / 1e9)
    # Linear's output and ReLU's output are alive together; the second Linear's is tiny.
    assert f.activation_bytes == 2 * 4000 * 4
    assert f.activation_traffic_bytes == (4000 + 4000 + 10) * 4
    assert f.input_shape == ((1, 1000),)
    assert f.input_bytes == 4000
    moved = f.param_bytes + f.input_bytes + f.activation_traffic_bytes
    assert f.arithmetic_intensity == pytest.approx(f.gflops * 1e9 / moved)
    assert f.memory_bytes_at(8) == f.param_bytes + 8 * (f.activation_bytes + f.input_bytes)


def test_in_place_and_view_ops_add_no_activation_memory() -> None:
    class Spec(MlpSpec):
        def build(self) -> nn.Module:
            return nn.Sequential(nn.Linear(100, 100), nn.ReLU(inplace=True), nn.Flatten()).eval()

        def make_input(self, batch: int, device: str = "cpu") -> tuple[torch.Tensor, ...]:
            return (torch.randn(batch, 100, device=device),)

    f = extract(Spec())  # type: ignore[arg-type]
    assert f.activation_bytes == 100 * 4


def test_features_round_trip_through_json() -> None:
    f = extract(MlpSpec())  # type: ignore[arg-type]
    assert WorkloadFeatures.from_dict(json.loads(json.dumps(f.to_dict()))) == f


def test_bad_catalog_files_are_explained(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(path)
    path.write_text('{"version": 99, "models": []}')
    with pytest.raises(CatalogError, match="version 99, expected 1"):
        load_catalog(path)
    path.write_text('{"version": 1, "models": [{"name": "x"}]}')
    with pytest.raises(CatalogError, match="malformed"):
        load_catalog(path)


def test_shipped_catalog_is_current_with_the_zoo() -> None:
    from edgetop.models.catalog import CATALOG_PATH, build_catalog

    shipped = json.loads(CATALOG_PATH.read_text())["models"]
    assert build_catalog()["models"] == shipped, "run: python -m edgetop.models.catalog"


def test_models_command_lists_the_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    from edgetop.tui.cli import main

    assert main(["models", "--json"]) == 0
    models = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert set(models) == {
        "resnet50",
        "bert-base",
        "bert-large",
        "ssd-resnet34",
        "ssd-mobilenet",
        "dlrm",
        "gpt2",
        "gpt2-medium",
        "yolov5s",
        "yolov5m",
        "mobilenetv2",
    }
    resnet = models["resnet50"]
    assert resnet["family"] == "conv" and resnet["params"] == 25_557_032
    assert resnet["gflops"] == pytest.approx(2 * 4.09, rel=0.01)
    assert resnet["input_shape"] == [[1, 3, 224, 224]]
    assert main(["models"]) == 0
    assert "mobilenetv2" in capsys.readouterr().out
