"""YOLOv5 v6.x (ultralytics `yolov5s.yaml` / `yolov5m.yaml`): 80 COCO classes at 640x640.

CSPDarknet53 backbone with C3 blocks and SPPF, PANet neck, and the Detect head on strides
8/16/32 with 3 anchors each. Conv = Conv2d (no bias) + BatchNorm(eps 1e-3) + SiLU. The depth
and width multiples are 0.33/0.50 (s) and 0.67/0.75 (m); channels round up to multiples of 8.

yolov5s: 7,235,389 parameters, 8.24 GMAC = 16.5 GFLOPs at 640 (ultralytics' "GFLOPs" are
2 x the MACs its profiler counts). yolov5m: 21,190,557 parameters, 24.5 GMAC = 49.0 GFLOPs.

Input (B, 3, H, W) float32 with H and W multiples of 32. Output: (B, N, 85) decoded boxes
`(cx, cy, w, h, objectness, 80 class scores)` in input pixels, N = 3 x (H/8 W/8 + H/16 W/16 +
H/32 W/32) (25,200 at 640), i.e. ultralytics' inference output before NMS (NMS is
post-processing, not part of the module).

Blocks: each of the 25 layers of the yaml (0-9 backbone, 10-23 neck, 24 Detect), wrapped in a
`Step` that routes the state. A state is the tuple of the outputs that a later layer still
reads (a lone tensor when only one is live): after layer 4 it is (P3 features, layer-4
output), through the neck it carries layers 4, 6, 10, 14, 17, 20 as they are needed, and the
last block returns the detections.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from edgetop.models.nets.base import ZooModel, zip_strict

NUM_CLASSES = 80
ANCHORS = (
    (10, 13, 16, 30, 33, 23),  # P3/8
    (30, 61, 62, 45, 59, 119),  # P4/16
    (116, 90, 156, 198, 373, 326),  # P5/32
)
STRIDES = (8, 16, 32)


@dataclass(frozen=True)
class YoloSize:
    depth: float
    width: float


YOLOV5S = YoloSize(depth=0.33, width=0.50)
YOLOV5M = YoloSize(depth=0.67, width=0.75)


class Conv(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, k: int = 1, s: int = 1, p: int | None = None):
        super().__init__(
            nn.Conv2d(c_in, c_out, k, s, k // 2 if p is None else p, bias=False),
            nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.03),
            nn.SiLU(inplace=True),
        )


class Bottleneck(nn.Module):
    def __init__(self, c_in: int, c_out: int, shortcut: bool = True) -> None:
        super().__init__()
        self.cv1 = Conv(c_in, c_out, 1)
        self.cv2 = Conv(c_out, c_out, 3)
        self.add = shortcut and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    """CSP bottleneck with three convs."""

    def __init__(self, c_in: int, c_out: int, n: int = 1, shortcut: bool = True) -> None:
        super().__init__()
        hidden = c_out // 2
        self.cv1 = Conv(c_in, hidden, 1)
        self.cv2 = Conv(c_in, hidden, 1)
        self.cv3 = Conv(2 * hidden, c_out, 1)
        self.m = nn.Sequential(*(Bottleneck(hidden, hidden, shortcut) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat([self.m(self.cv1(x)), self.cv2(x)], dim=1))


class SPPF(nn.Module):
    """Spatial pyramid pooling, fast: three chained 5x5 max-pools."""

    def __init__(self, c_in: int, c_out: int, k: int = 5) -> None:
        super().__init__()
        hidden = c_in // 2
        self.cv1 = Conv(c_in, hidden, 1)
        self.cv2 = Conv(hidden * 4, c_out, 1)
        self.m = nn.MaxPool2d(k, 1, k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat([x, y1, y2, self.m(y2)], dim=1))


class Upsample(nn.Upsample):
    def __init__(self) -> None:
        super().__init__(scale_factor=2.0, mode="nearest")


class Concat(nn.Module):
    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, dim=1)


class Detect(nn.Module):
    def __init__(self, channels: Sequence[int], num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.no = num_classes + 5
        self.na = len(ANCHORS[0]) // 2
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in channels)
        anchors = torch.tensor(ANCHORS, dtype=torch.float32).view(len(ANCHORS), 1, -1, 1, 1, 2)
        self.register_buffer("anchor_grid", anchors, persistent=False)  # pixels
        # ultralytics' bias prior: objectness for ~8 objects per 640 image, classes 0.6/nc
        for conv, stride in zip_strict(self.m, STRIDES):
            with torch.no_grad():
                b = conv.bias.view(self.na, -1)
                b[:, 4] += math.log(8 / (640 / stride) ** 2)
                b[:, 5:] += math.log(0.6 / (num_classes - 0.99))

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        out = []
        for i, (x, conv) in enumerate(zip_strict(xs, self.m)):
            b, _, ny, nx = x.shape
            y = conv(x).view(b, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).sigmoid()
            gy, gx = torch.meshgrid(
                torch.arange(ny, device=x.device, dtype=y.dtype),
                torch.arange(nx, device=x.device, dtype=y.dtype),
                indexing="ij",
            )
            grid = torch.stack((gx, gy), dim=-1).view(1, 1, ny, nx, 2) - 0.5
            xy = (y[..., :2] * 2 + grid) * STRIDES[i]
            wh = (y[..., 2:4] * 2) ** 2 * self.anchor_grid[i]
            out.append(torch.cat((xy, wh, y[..., 4:]), dim=-1).view(b, -1, self.no))
        return torch.cat(out, dim=1)


class Step(nn.Module):
    """One layer of the yaml as a block: reads its sources from the state, passes on the rest.

    `carry_in` names the layer indices the incoming state holds (-1 is the image), in order;
    `carry_out` those the outgoing state holds. A state with a single entry is the bare tensor.
    """

    def __init__(
        self,
        index: int,
        layer: nn.Module,
        sources: tuple[int, ...],
        carry_in: tuple[int, ...],
        carry_out: tuple[int, ...],
    ) -> None:
        super().__init__()
        self.index, self.layer = index, layer
        self.sources, self.carry_in, self.carry_out = sources, carry_in, carry_out

    def forward(self, state: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor | tuple:
        values = (state,) if isinstance(state, torch.Tensor) else state
        env = dict(zip_strict(self.carry_in, values))
        args = [env[j] for j in self.sources]
        env[self.index] = self.layer(args if len(args) > 1 else args[0])
        out = tuple(env[j] for j in self.carry_out)
        return out[0] if len(out) == 1 else out

    def extra_repr(self) -> str:
        return f"index={self.index}, sources={self.sources}, carry_out={self.carry_out}"


def _layers(size: YoloSize, num_classes: int) -> list[tuple[int | tuple[int, ...], nn.Module]]:
    """(from, module) for each row of yolov5{s,m}.yaml (v6.0), channels and repeats scaled."""

    def ch(c: int) -> int:
        return math.ceil(c * size.width / 8) * 8

    def n(repeats: int) -> int:
        return max(round(repeats * size.depth), 1)

    return [
        # backbone
        (-1, Conv(3, ch(64), 6, 2, 2)),  # 0  P1/2
        (-1, Conv(ch(64), ch(128), 3, 2)),  # 1  P2/4
        (-1, C3(ch(128), ch(128), n(3))),  # 2
        (-1, Conv(ch(128), ch(256), 3, 2)),  # 3  P3/8
        (-1, C3(ch(256), ch(256), n(6))),  # 4
        (-1, Conv(ch(256), ch(512), 3, 2)),  # 5  P4/16
        (-1, C3(ch(512), ch(512), n(9))),  # 6
        (-1, Conv(ch(512), ch(1024), 3, 2)),  # 7  P5/32
        (-1, C3(ch(1024), ch(1024), n(3))),  # 8
        (-1, SPPF(ch(1024), ch(1024), 5)),  # 9
        # head (PANet)
        (-1, Conv(ch(1024), ch(512), 1, 1)),  # 10
        (-1, Upsample()),  # 11
        ((-1, 6), Concat()),  # 12 cat backbone P4
        (-1, C3(ch(1024), ch(512), n(3), shortcut=False)),  # 13
        (-1, Conv(ch(512), ch(256), 1, 1)),  # 14
        (-1, Upsample()),  # 15
        ((-1, 4), Concat()),  # 16 cat backbone P3
        (-1, C3(ch(512), ch(256), n(3), shortcut=False)),  # 17 (P3/8-small)
        (-1, Conv(ch(256), ch(256), 3, 2)),  # 18
        ((-1, 14), Concat()),  # 19 cat head P4
        (-1, C3(ch(512), ch(512), n(3), shortcut=False)),  # 20 (P4/16-medium)
        (-1, Conv(ch(512), ch(512), 3, 2)),  # 21
        ((-1, 10), Concat()),  # 22 cat head P5
        (-1, C3(ch(1024), ch(1024), n(3), shortcut=False)),  # 23 (P5/32-large)
        ((17, 20, 23), Detect((ch(256), ch(512), ch(1024)), num_classes)),  # 24
    ]


class YOLOv5(ZooModel):
    def __init__(self, size: YoloSize, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        rows = _layers(size, num_classes)
        sources = []
        for i, (frm, _) in enumerate(rows):
            frm = (frm,) if isinstance(frm, int) else frm
            sources.append(tuple(i - 1 if j == -1 else j for j in frm))
        last_use = {}
        for i, srcs in enumerate(sources):
            for j in srcs:
                last_use[j] = i
        last = len(rows) - 1
        steps = []
        carry = (-1,)
        for i, (_, layer) in enumerate(rows):
            carry_out = tuple(j for j in (*carry, i) if last_use.get(j, last) > i)
            steps.append(Step(i, layer, sources[i], carry, carry_out or (i,)))
            carry = carry_out
        self.model = nn.ModuleList(steps)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps, m.momentum = 1e-3, 0.03

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state: torch.Tensor | tuple = x
        for step in self.model:
            state = step(state)
        return state

    def blocks(self) -> list[nn.Module]:
        return list(self.model)
