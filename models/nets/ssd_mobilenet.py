"""SSD-MobileNet-v1, MLPerf Inference's "ssd-small" (300x300 COCO, 91 classes with background).

The layout of the TensorFlow Object Detection API's `ssd_mobilenet_v1_coco` that MLPerf
serves: the MobileNet-v1 trunk (a 3x3 stride-2 stem, then 13 depthwise-separable blocks,
BatchNorm and ReLU6 throughout), detection features taken after block 11 (512 channels,
19x19 at 300) and block 13 (1024, 10x10); four extra blocks (1x1 then 3x3 stride-2 convs,
BatchNorm, ReLU6) giving 5, 3, 2 and 1; and per-level 1x1 box predictors with 3 default boxes
on the first grid and 6 on the others: 19^2 x 3 + (10^2 + 5^2 + 3^2 + 2^2 + 1) x 6 = 1,917
boxes.

6,819,839 parameters and 1.237 GMAC = 2.47 GFLOPs at 300x300 (the MLPerf Inference paper's
table of models: 6.91M parameters and 2.47 GOPs per input).

Input (B, 3, H, W) float32. Output: `(locs (B, 4, N), confs (B, 91, N))`, the raw predictor
outputs in the layout of `ssd.SSDResNet34` (box decoding and NMS are post-processing with no
learned weights, not part of the module).

Blocks and their states: the stem and blocks 1-11 (tensor -> tensor); block 12 keeps its input
as the first detection feature and continues from it (-> (f0, x)); block 13 works on the last
element (-> (f0, f1)); each extra block appends its output (-> (f0, ..., f5)); the head
(features -> (locs, confs)).
"""

from __future__ import annotations

import torch
from torch import nn

from edgetop.models.nets.base import ZooModel
from edgetop.models.nets.mobilenet import ConvBNReLU6
from edgetop.models.nets.resnet import init_conv_weights
from edgetop.models.nets.ssd import DetectionHead, ExtraBlock

NUM_CLASSES = 91  # 90 COCO ids and background, as the TF model
# (output channels, stride) of MobileNet-v1's 13 depthwise-separable blocks (the paper's table 1)
TRUNK = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2))
TRUNK += ((512, 1),) * 5 + ((1024, 2), (1024, 1))
FEATURE_BLOCK = 11  # the first detection feature is block 11's output
# (1x1 channels, 3x3 output channels) of the four extra blocks, each 3x3 at stride 2
EXTRAS = ((256, 512), (128, 256), (128, 256), (64, 128))
FEATURE_CHANNELS = (512, 1024, *(c for _, c in EXTRAS))
DEFAULT_BOXES = (3, 6, 6, 6, 6, 6)
MIN_IMAGE_SIZE = 32


class DepthwiseSeparable(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__(
            ConvBNReLU6(c_in, c_in, stride=stride, groups=c_in),
            ConvBNReLU6(c_in, c_out, kernel=1),
        )


class Branch(nn.Module):
    """Keeps its input as a detection feature and continues the trunk from it."""

    def __init__(self, layers: nn.Module) -> None:
        super().__init__()
        self.layers = layers

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, self.layers(x)


class OnLast(nn.Module):
    """Runs the trunk on the last element of the state, keeping the features before it."""

    def __init__(self, layers: nn.Module) -> None:
        super().__init__()
        self.layers = layers

    def forward(self, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return (*state[:-1], self.layers(state[-1]))


class SSDMobileNetV1(ZooModel):
    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.stem = ConvBNReLU6(3, 32, stride=2)
        trunk: list[nn.Module] = []
        c_in = 32
        for k, (c_out, stride) in enumerate(TRUNK, 1):
            block: nn.Module = DepthwiseSeparable(c_in, c_out, stride)
            if k == FEATURE_BLOCK + 1:
                block = Branch(block)
            elif k > FEATURE_BLOCK + 1:
                block = OnLast(block)
            trunk.append(block)
            c_in = c_out
        self.trunk = nn.Sequential(*trunk)
        extras = []
        for mid, c_out in EXTRAS:
            layers = nn.Sequential(
                ConvBNReLU6(c_in, mid, kernel=1), ConvBNReLU6(mid, c_out, stride=2)
            )
            extras.append(ExtraBlock(layers))
            c_in = c_out
        self.extras = nn.ModuleList(extras)
        self.head = DetectionHead(num_classes, FEATURE_CHANNELS, DEFAULT_BOXES, kernel=1, stride=1)
        # Fan-in initialisation keeps random-weight activations alive through the depthwise
        # convs (see mobilenet.MobileNetV2).
        init_conv_weights(self, mode="fan_in")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(self.stem(x))
        for extra in self.extras:
            features = extra(features)
        return self.head(features)

    def blocks(self) -> list[nn.Module]:
        return [self.stem, *self.trunk, *self.extras, self.head]
