"""ResNet-50 v1.5 (the MLPerf / torchvision variant: the stride-2 sits on the 3x3 conv).

25,557,032 parameters and 4.09 GMAC at 3x224x224, like torchvision's `resnet50`. Also the
ResNet-34 basic block, which SSD-ResNet34 reuses.

Blocks: the stem (conv 7x7/2, BN, ReLU, max-pool), each of the 16 bottlenecks, the head
(global average pool, flatten, fc). Every state is a single tensor.
"""

from __future__ import annotations

import torch
from torch import nn

from edgetop.models.nets.base import ZooModel


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
    ]


class Stem(nn.Sequential):
    def __init__(self) -> None:
        super().__init__(*conv_bn(3, 64, 7, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))


def shortcut(c_in: int, c_out: int, stride: int) -> nn.Module | None:
    """The 1x1 projection of a residual block whose shape changes, else None (identity)."""
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
    )


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int = 1) -> None:
        super().__init__()
        c_out = width * self.expansion
        self.conv1, self.bn1 = conv_bn(c_in, width, 1)
        self.conv2, self.bn2 = conv_bn(width, width, 3, stride)  # v1.5: stride on the 3x3
        self.conv3, self.bn3 = conv_bn(width, c_out, 1)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = shortcut(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class BasicBlock(nn.Module):
    """ResNet-18/34 block: two 3x3 convs."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1, self.bn1 = conv_bn(c_in, c_out, 3, stride)
        self.conv2, self.bn2 = conv_bn(c_out, c_out, 3)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = shortcut(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ClassifierHead(nn.Module):
    def __init__(self, c_in: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(self.dropout(x))


def init_conv_weights(model: nn.Module, mode: str = "fan_out") -> None:
    """torchvision's initialisation: Kaiming-normal convs (fan out unless told), unit BN."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ResNet50(ZooModel):
    """ResNet-50 v1.5 for 1000 ImageNet classes; input (B, 3, H, W) float32, output (B, 1000)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = Stem()
        c_in = 64
        stages = []
        for width, depth, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            blocks = []
            for i in range(depth):
                blocks.append(Bottleneck(c_in, width, stride if i == 0 else 1))
                c_in = width * Bottleneck.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.head = ClassifierHead(c_in, num_classes)
        init_conv_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.head(x)

    def blocks(self) -> list[nn.Module]:
        return [
            self.stem,
            *self.layer1,
            *self.layer2,
            *self.layer3,
            *self.layer4,
            self.head,
        ]
