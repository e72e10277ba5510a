"""SSD-ResNet34, MLPerf Inference's "ssd-large" (1200x1200 COCO, 81 classes with background).

The layout of the MLPerf reference `ssd_r34.py` (and open_model_zoo's
`ssd-resnet34-1200-onnx`): the ResNet-34 trunk up to conv4_x (layer3) with layer3's first
block at stride 1, so conv4 is 150x150x256 at 1200; five extra blocks (1x1 then 3x3 convs, with
ReLU) giving 75, 38, 19, 9 and 7; and per-level 3x3 loc/conf heads with stride 3 (the MLPerf
1200 variant), so the six detection grids are 50, 25, 13, 7, 3, 3 with 4, 6, 6, 6, 4, 4
default boxes: 15,130 boxes.

19,972,534 parameters (the fact: 20.058e6, 0.4% more) and 216.5 GMAC = 433.0 GFLOPs at
1200x1200 (the fact: 433.411 GFLOPs, i.e. 2 FLOPs per MAC).

Input (B, 3, H, W) float32 with H, W >= 385 (smaller images leave nothing for the last
unpadded 3x3 convs). Output: `(locs (B, 4, N), confs (B, 81, N))`, the raw head outputs in
the reference's layout; box decoding and NMS (post-processing, no learned weights) are not part
of the module.

Blocks and their states: the stem, each of the 13 residual blocks (tensor -> tensor), then
each of the 5 extra blocks, which append their output to the tuple of detection features
(conv4 -> (f0, f1), ..., -> (f0, ..., f5)), then the head (features -> (locs, confs)).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from edgetop.models.nets.base import ZooModel, zip_strict
from edgetop.models.nets.resnet import BasicBlock, Stem, init_conv_weights

NUM_CLASSES = 81  # 80 COCO classes and background
FEATURE_CHANNELS = (256, 512, 512, 256, 256, 256)
DEFAULT_BOXES = (4, 6, 6, 6, 4, 4)
MIN_IMAGE_SIZE = 385


def _extra(c_in: int, mid: int, c_out: int, stride: int, padding: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, mid, 1),
        nn.ReLU(inplace=True),
        nn.Conv2d(mid, c_out, 3, stride=stride, padding=padding),
        nn.ReLU(inplace=True),
    )


class ExtraBlock(nn.Module):
    """Computes the next detection feature from the last one and appends it to the tuple."""

    def __init__(self, layers: nn.Sequential) -> None:
        super().__init__()
        self.layers = layers

    def forward(
        self, features: torch.Tensor | tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, ...]:
        if isinstance(features, torch.Tensor):  # the first extra block receives conv4 alone
            features = (features,)
        return (*features, self.layers(features[-1]))


class DetectionHead(nn.Module):
    """Per-level box (4 per default box) and class predictors, concatenated over the levels.
    MLPerf's SSD-ResNet34 at 1200 uses 3x3 convs at stride 3 (the defaults); SSD-MobileNet 1x1
    convs (`ssd_mobilenet`)."""

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        channels: Sequence[int] = FEATURE_CHANNELS,
        boxes: Sequence[int] = DEFAULT_BOXES,
        kernel: int = 3,
        stride: int = 3,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        pad = kernel // 2
        self.loc = nn.ModuleList(
            nn.Conv2d(c, nd * 4, kernel, stride=stride, padding=pad)
            for c, nd in zip_strict(channels, boxes)
        )
        self.conf = nn.ModuleList(
            nn.Conv2d(c, nd * num_classes, kernel, stride=stride, padding=pad)
            for c, nd in zip_strict(channels, boxes)
        )

    def forward(self, features: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        b = features[0].shape[0]
        locs = [loc(f).reshape(b, 4, -1) for f, loc in zip_strict(features, self.loc)]
        confs = [
            conf(f).reshape(b, self.num_classes, -1) for f, conf in zip_strict(features, self.conf)
        ]
        return torch.cat(locs, 2), torch.cat(confs, 2)


class SSDResNet34(ZooModel):
    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.stem = Stem()
        self.layer1 = nn.Sequential(*(BasicBlock(64, 64) for _ in range(3)))
        self.layer2 = nn.Sequential(
            BasicBlock(64, 128, stride=2), *(BasicBlock(128, 128) for _ in range(3))
        )
        # conv4_x at stride 1 (the reference patches torchvision's layer3 this way)
        self.layer3 = nn.Sequential(
            BasicBlock(128, 256, stride=1), *(BasicBlock(256, 256) for _ in range(5))
        )
        init_conv_weights(self)  # the trunk: torchvision's initialisation
        c = FEATURE_CHANNELS
        self.extras = nn.ModuleList(
            ExtraBlock(layers)
            for layers in (
                _extra(c[0], 256, c[1], stride=2, padding=1),
                _extra(c[1], 256, c[2], stride=2, padding=1),
                _extra(c[2], 128, c[3], stride=2, padding=1),
                _extra(c[3], 128, c[4], stride=2, padding=0),
                _extra(c[4], 128, c[5], stride=1, padding=0),
            )
        )
        self.head = DetectionHead(num_classes)
        for module in (*self.extras, self.head):  # the reference: Xavier-uniform, zero biases
            for p in module.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)
                else:
                    nn.init.zeros_(p)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features: torch.Tensor | tuple[torch.Tensor, ...] = self.layer3(
            self.layer2(self.layer1(self.stem(x)))
        )
        for extra in self.extras:
            features = extra(features)
        return self.head(features)

    def blocks(self) -> list[nn.Module]:
        return [self.stem, *self.layer1, *self.layer2, *self.layer3, *self.extras, self.head]


def feature_sizes(image_size: int) -> tuple[int, ...]:
    """Side of the six detection grids for a square image (50, 25, 13, 7, 3, 3 at 1200)."""

    def conv(n: int, k: int, s: int, p: int) -> int:
        return (n + 2 * p - k) // s + 1

    n = image_size
    for _ in range(3):  # conv1, max-pool, layer2: each halves (rounding up)
        n = conv(n, 3, 2, 1)
    sides = [n]
    for stride, padding in ((2, 1), (2, 1), (2, 1), (2, 0), (1, 0)):
        n = conv(n, 3, stride, padding)
        sides.append(n)
    return tuple(conv(s, 3, 3, 1) for s in sides)
