"""Encoders f(.) and projection heads g(.) for SimCLR-style training on 32x32 images.

    >>> import torch, models
    >>> f = models.build_encoder("resnet18")
    >>> f(torch.zeros(2, 3, 32, 32)).shape, f.feature_dim
    (torch.Size([2, 512]), 512)
    >>> g = models.build_head("bn", in_dim=512, out_dim=128)
    >>> g(torch.zeros(4, 512)).shape
    torch.Size([4, 128])

The ResNets are torchvision's, changed the way the SimCLR paper does for CIFAR-10
(Appendix B.9): "we replace the first 7x7 Conv of stride 2 with 3x3 Conv of stride 1, and
also remove the first max pooling operation". The classification layer is removed, so the
encoder returns h, the 512-d (ResNet-18/34) or 2048-d (ResNet-50) representation after
global average pooling.

`convnet` is a small 4-block CNN, not from the paper, that trains at several hundred images
per second on a laptop CPU, so the whole pipeline can be studied without a GPU; `quicknet`, its
variant for the quick recipe (`pretrain.py --recipe quick`), learns more per CPU-second.
"""
from torch import nn
import torchvision

ENCODERS = ("resnet18", "resnet34", "resnet50", "convnet", "quicknet")
HEADS = ("bn", "nobn", "none")


def cifar_resnet(name):
    """A torchvision ResNet with the CIFAR stem and no classification layer: (B,3,32,32) -> (B,D)."""
    net = getattr(torchvision.models, name)(weights=None)
    net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    net.feature_dim = net.fc.in_features  # 512 for resnet18/34, 2048 for resnet50
    net.fc = nn.Identity()
    return net


class ConvNet(nn.Module):
    """Four 3x3 conv blocks that halve the image (32->16->8->4->2 pixels), then global average
    pooling. pool_first=False: conv-BN-ReLU-maxpool (`convnet`); True: conv-maxpool-BN-ReLU."""

    def __init__(self, widths=(32, 64, 128, 256), pool_first=False):
        super().__init__()
        layers, c_in = [], 3
        for c_out in widths:
            conv, bn = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out)
            block = [conv, nn.MaxPool2d(2), bn, nn.ReLU(inplace=True)] if pool_first else \
                [conv, bn, nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            layers += block
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.feature_dim = c_in

    def forward(self, x):
        x = self.features(x)  # (B, widths[-1], 2, 2)
        return x.mean(dim=(2, 3))  # (B, widths[-1])


def quicknet():
    """The quick recipe's encoder, shaped for a few minutes of a laptop CPU: ConvNet with two
    changes, measured by bench.py and time_to_accuracy.py (docs/performance.md):

    - each block pools right after its convolution, before BatchNorm and ReLU (as
      KellerJordan/cifar10-airbench orders its blocks): BatchNorm and ReLU run on a quarter of the
      pixels, and max-pooling commutes with ReLU, so the function class barely changes;
    - the last block is twice as wide (512 channels): h = 512, the width of ResNet-18's h, for
      the linear probe, at the resolution (4x4) where a channel costs least.
    """
    return ConvNet(widths=(32, 64, 128, 512), pool_first=True)


def build_encoder(name):
    """Return the encoder f called `name` (one of ENCODERS); it has attribute `feature_dim`."""
    if name == "convnet":
        return ConvNet()
    if name == "quicknet":
        return quicknet()
    if name in ENCODERS:
        return cifar_resnet(name)
    raise ValueError(f"unknown encoder '{name}' (choose from {', '.join(ENCODERS)})")


class ProjectionHead(nn.Module):
    """The MLP g(.) with one hidden layer that maps h to z (SimCLR Sec. 2.1, Fig. 8):
    Linear -> [BatchNorm1d] -> ReLU -> Linear."""

    def __init__(self, in_dim, hidden_dim, out_dim, bn=True):
        super().__init__()
        layers = [nn.Linear(in_dim, hidden_dim, bias=not bn)]  # BN's shift makes a bias redundant
        if bn:
            layers.append(nn.BatchNorm1d(hidden_dim))
        layers += [nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)]
        self.net = nn.Sequential(*layers)
        self.out_dim = out_dim

    def forward(self, h):
        return self.net(h)


class NoHead(nn.Identity):
    """g(h) = h: the loss is applied to the representation itself (the 'none' ablation)."""

    def __init__(self, dim):
        super().__init__()
        self.out_dim = dim


def build_head(kind, in_dim, hidden_dim=None, out_dim=128):
    """`bn`, `nobn` or `none`; the hidden width defaults to in_dim (SimCLR's CIFAR code)."""
    if kind == "none":
        return NoHead(in_dim)
    if kind in ("bn", "nobn"):
        return ProjectionHead(in_dim, hidden_dim or in_dim, out_dim, bn=(kind == "bn"))
    raise ValueError(f"unknown head '{kind}' (choose from {', '.join(HEADS)})")


class Classifier(nn.Module):
    """encoder -> nn.Linear(feature_dim, 10). When frozen, the encoder stays in eval() mode even
    while the classifier trains: BatchNorm in train mode would use batch statistics and update
    its running averages, which is training the encoder in all but name."""

    def __init__(self, encoder, num_classes=10, frozen=True):
        super().__init__()
        self.encoder, self.frozen = encoder, frozen
        self.fc = nn.Linear(encoder.feature_dim, num_classes)
        if frozen:
            encoder.requires_grad_(False)

    def train(self, mode=True):
        super().train(mode)
        if self.frozen:
            self.encoder.eval()
        return self

    def forward(self, x):
        return self.fc(self.encoder(x))
