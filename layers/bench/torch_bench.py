#!/usr/bin/python3
"""Training throughput of occkd's networks in PyTorch on this CPU.

The networks are built as layers/net.c builds them (the same layers, channel
widths and parameter counts), and one step is what occkd_bench times:
forward, softmax cross-entropy, backward, an SGD step with momentum, on
random images and labels. Prints `params: N`, `train_images_per_s: X` and
`train_cpu_ms_per_step: T` (CPU time of all threads), the lines compare.sh
reads next to occkd_bench's.

    torch_bench.py --model vgg_f --input 224 --batch 32 [--width 1] [--fc 4096]
                   [--fc-layers 2] [--batchnorm] [--classes 1000] [--channels 3]
                   [--steps 10] [--warmup 2] [--threads 2]
"""
import argparse
import sys
import time

import torch
from torch import nn


def scaled(base, width):
    return max(1, int(round(base * width)))


def vgg_head(features, flat, fc, classes, fc_layers=2, dropout=0.5):
    head, c = [features, nn.Flatten()], flat
    for _ in range(fc_layers):
        head += [nn.Linear(c, fc), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        c = fc
    return nn.Sequential(*head, nn.Linear(c, classes))


def conv_relu(a, cin, cout, k, **kw):
    """A VGG convolution and its ReLU; with --batchnorm a batch norm between
    them and no convolution bias, as layers/net.c builds it."""
    if a.batchnorm:
        return [nn.Conv2d(cin, cout, k, bias=False, **kw), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return [nn.Conv2d(cin, cout, k, **kw), nn.ReLU(inplace=True)]


def vgg_f(a):
    c64, c256 = scaled(64, a.width), scaled(256, a.width)
    lrn = lambda: nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=1.0)
    f = nn.Sequential(
        *conv_relu(a, a.channels, c64, 11, stride=4), lrn(),
        # occkd pads pool1 by one on the bottom and right; ceil_mode covers the same windows
        nn.MaxPool2d(3, 2, ceil_mode=True),
        *conv_relu(a, c64, c256, 5, padding=2), lrn(), nn.MaxPool2d(3, 2),
        *conv_relu(a, c256, c256, 3, padding=1),
        *conv_relu(a, c256, c256, 3, padding=1),
        *conv_relu(a, c256, c256, 3, padding=1), nn.MaxPool2d(3, 2))
    return f


def vgg_face(a):
    layers, c = [], a.channels
    for blocks, width in zip((2, 2, 3, 3, 3), (64, 128, 256, 512, 512)):
        for _ in range(blocks):
            o = scaled(width, a.width)
            layers += conv_relu(a, c, o, 3, padding=1)
            c = o
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


class Bottleneck(nn.Module):
    def __init__(self, cin, planes, stride, downsample):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, planes, 1, bias=False), nn.BatchNorm2d(planes), nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes * 4, 1, bias=False), nn.BatchNorm2d(planes * 4))
        self.down = (nn.Sequential(nn.Conv2d(cin, planes * 4, 1, stride=stride, bias=False),
                                   nn.BatchNorm2d(planes * 4)) if downsample else None)

    def forward(self, x):
        s = self.down(x) if self.down is not None else x
        return torch.relu(self.body(x) + s)


def resnet50(a):
    c = scaled(64, a.width)
    layers = [nn.Conv2d(a.channels, c, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(c),
              nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, padding=1)]
    for stage, blocks in enumerate((3, 4, 6, 3)):
        planes = scaled(64 << stage, a.width)
        for j in range(blocks):
            layers.append(Bottleneck(c, planes, 2 if (j == 0 and stage > 0) else 1, j == 0))
            c = planes * 4
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if a.fc > 0:
        layers += [nn.Linear(c, a.fc), nn.ReLU(inplace=True)]
        c = a.fc
    layers.append(nn.Linear(c, a.classes))
    return nn.Sequential(*layers)


def build(a):
    if a.model == "resnet50":
        return resnet50(a)
    features = vgg_f(a) if a.model == "vgg_f" else vgg_face(a)
    with torch.no_grad():
        flat = features(torch.zeros(1, a.channels, a.input, a.input)).numel()
    return vgg_head(features, flat, a.fc, a.classes, a.fc_layers)


def main():
    p = argparse.ArgumentParser(description="PyTorch training throughput of occkd's networks")
    p.add_argument("--model", required=True, choices=("vgg_f", "vgg_face", "resnet50"))
    p.add_argument("--input", type=int, required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--fc", type=int, default=None)
    p.add_argument("--fc-layers", type=int, default=2, choices=(0, 1, 2))
    p.add_argument("--batchnorm", action="store_true")
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    if a.fc is None:
        a.fc = 0 if a.model == "resnet50" else 4096
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    net = build(a)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    x = torch.rand(a.batch, a.channels, a.input, a.input) * 2 - 1
    y = torch.randint(0, a.classes, (a.batch,))
    loss_fn = nn.CrossEntropyLoss()
    t0 = 0.0
    for s in range(a.warmup + a.steps):
        if s == a.warmup:
            t0 = time.perf_counter()
            c0 = time.process_time()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    print("torch: %s threads %d mkldnn %s" % (torch.__version__, torch.get_num_threads(),
                                              torch.backends.mkldnn.is_available()))
    print("params: %d" % sum(q.numel() for q in net.parameters()))
    print("train_images_per_s: %.2f" % (a.steps * a.batch / elapsed))
    print("train_cpu_ms_per_step: %.1f" % (1e3 * cpu / a.steps))
    print("final_loss: %.4f" % loss.item())
    return 0


if __name__ == "__main__":
    sys.exit(main())
