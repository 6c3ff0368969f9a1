#!/usr/bin/python3
"""torchvision_to_occkd.py - converts a PyTorch state dict with torchvision's
resnet50 or vgg16 key names into occkd's weight file layout, which the job
key `init = "file.h5"` (weights_load) reads.

Usage (Debian's python3-torch and python3-h5py; torchvision is not needed):

    /usr/bin/python3 torchvision_to_occkd.py resnet50 resnet50.pth resnet50.h5
    /usr/bin/python3 torchvision_to_occkd.py vgg16 vgg16.pth vgg16.h5 --skip-classifier
    /usr/bin/python3 torchvision_to_occkd.py --make-fixtures      # rewrites the test fixtures

The .pth file may hold a state dict or a whole model. --skip-classifier leaves
out the last layer (resnet50 `fc`, vgg16 `fc8`) so that the file can start a
network with another number of classes (load it with partial loading).

Output layout (HDF5, every dataset float32, chunked, Fletcher-32):

    /params/<layer>/<tensor>   weight, bias (PyTorch shapes, which are occkd's:
                               conv (OC, C, KH, KW), fully connected (OUT, IN))
    /state/<layer>/<tensor>    batch norm running_mean, running_var
    attribute format = "occkd-weights-1", source = the architecture converted

Names: torchvision's resnet50 module names are occkd's layer names
(conv1, bn1, layer1.0.conv1, ..., layer1.0.downsample.0/1, fc);
num_batches_tracked is dropped. vgg16's features.N convolutions become
conv1_1 ... conv5_3 in order (occkd's vgg_face is the VGG-16 layout), and
classifier.0/3/6 become fc6/fc7/fc8. VGG-16's fc6 reads the 512x7x7 output of
the last pooling at 224 pixels (torchvision's adaptive average pooling to 7x7
is then the identity), flattened in (C, H, W) order as occkd's fc6 does, so a
converted vgg16 is meant for occkd's vgg_face at input 224.

--make-fixtures writes the committed test fixtures next to this script:
resnet50_small.h5 and vgg16_small.h5. Each is a converted file of a randomly
initialised model with torchvision's exact module structure and names, at a
reduced width (and VGG: smaller input and fully connected layers), plus

    /fixture/input (N, C, H, W) float32    a fixed input
    /fixture/logits (N, classes) float64   the model's output in eval mode,
                                            computed in float64 from the
                                            float32 weights and input
    /fixture attributes arch, input, channels, width, fc, classes: the occkd
                                            NetSpec of the same network

tests/test_checkpoints.c loads each with weights_load into occkd's network of
that spec and compares the logits. The models are built here with
torchvision's module names because torchvision's own classes cannot shrink
ResNet's channel counts and torchvision is not installed; the structure
follows torchvision 0.14 (Bottleneck with the stride on the 3x3 convolution,
1x1 projection shortcut, VGG's features/avgpool/classifier). Batch norm
affine parameters and running statistics are randomised too, so that a
mistake in mapping /state or the batch norm tensors changes the logits. The
output is deterministic: rerunning writes the same numbers.
"""
import argparse
import math
import os
import re
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn

WEIGHTS_FORMAT = "occkd-weights-1"
HERE = os.path.dirname(os.path.abspath(__file__))
STATE_TENSORS = ("running_mean", "running_var")
VGG16_BLOCKS = (2, 2, 3, 3, 3)
VGG16_CLASSIFIER = {"classifier.0": "fc6", "classifier.3": "fc7", "classifier.6": "fc8"}

# ----------------------------------------------------------------- mapping


def split_key(key):
    """'layer1.0.bn1.running_mean' -> ('layer1.0.bn1', 'running_mean')."""
    module, _, tensor = key.rpartition(".")
    return module, tensor


def resnet50_names(state_dict):
    """torchvision resnet50 keys -> {occkd layer: torchvision module}: 1:1."""
    return {split_key(k)[0]: split_key(k)[0] for k in state_dict}


def vgg16_names(state_dict):
    """features.N -> conv<block>_<i> in order; classifier.0/3/6 -> fc6/7/8."""
    convs = sorted({int(m.group(1)) for k in state_dict if (m := re.match(r"features\.(\d+)\.weight$", k))})
    if len(convs) != sum(VGG16_BLOCKS):
        raise ValueError(f"expected {sum(VGG16_BLOCKS)} convolutions in features, found {len(convs)}")
    names = {}
    i = 0
    for block, count in enumerate(VGG16_BLOCKS):
        for j in range(count):
            names[f"conv{block + 1}_{j + 1}"] = f"features.{convs[i]}"
            i += 1
    for module, layer in VGG16_CLASSIFIER.items():
        names[layer] = module
    return names


def convert(state_dict, arch, skip_classifier=False):
    """Returns ({'params/<layer>/<tensor>': array}, list of dropped keys)."""
    names = resnet50_names(state_dict) if arch == "resnet50" else vgg16_names(state_dict)
    classifier = "fc" if arch == "resnet50" else "fc8"
    out, used = {}, set()
    for layer, module in names.items():
        if skip_classifier and layer == classifier:
            continue
        for key, value in state_dict.items():
            mod, tensor = split_key(key)
            if mod != module or tensor == "num_batches_tracked":
                continue
            group = "state" if tensor in STATE_TENSORS else "params"
            out[f"{group}/{layer}/{tensor}"] = value.detach().cpu().to(torch.float32).numpy()
            used.add(key)
    if not out:
        raise ValueError(f"no {arch} tensor found: are these torchvision {arch} key names?")
    return out, sorted(set(state_dict) - used)


def write_weights(path, tensors, source, extra=None):
    """Writes the occkd weight file (plus optional extra datasets/attributes)."""
    with h5py.File(path, "w", libver=("v110", "v110"), track_order=False) as f:
        # fixed-length strings: occkd refuses variable-length ones, which live
        # in HDF5's unchecksummed global heap
        f.attrs["format"] = np.bytes_(WEIGHTS_FORMAT)
        f.attrs["source"] = np.bytes_(source)
        for name in sorted(tensors):
            f.create_dataset(name, data=tensors[name], chunks=True, fletcher32=True)
        if extra:
            extra(f)


def load_state_dict(path):
    obj = torch.load(path, map_location="cpu")
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}


# ------------------------------------------------------- torchvision-named models


def scaled(base, width):
    """occkd's channel rule: max(1, lroundf(base * width))."""
    return max(1, int(math.floor(base * width + 0.5)))


class Bottleneck(nn.Module):
    """torchvision.models.resnet.Bottleneck (stride on conv2)."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (self.downsample(x) if self.downsample is not None else x))


class ResNet50(nn.Module):
    """torchvision.models.resnet50's modules with every width scaled."""

    def __init__(self, width=1.0, num_classes=1000):
        super().__init__()
        self.inplanes = scaled(64, width)
        self.conv1 = nn.Conv2d(3, self.inplanes, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        for stage, blocks in enumerate((3, 4, 6, 3)):
            setattr(self, f"layer{stage + 1}", self._make_layer(scaled(64 << stage, width), blocks, 1 if stage == 0 else 2))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(self.inplanes, num_classes)

    def _make_layer(self, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes * 4))
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class VGG16(nn.Module):
    """torchvision.models.vgg16's modules (features, avgpool, classifier) with
    scaled widths. `pool_side` is the side of the last pooling's output, to
    which the adaptive average pooling then maps identically (7 at 224
    pixels, as in torchvision)."""

    def __init__(self, width=1.0, fc=4096, num_classes=1000, pool_side=7):
        super().__init__()
        layers, c = [], 3
        for block, count in enumerate(VGG16_BLOCKS):
            oc = scaled((64, 128, 256, 512, 512)[block], width)
            for _ in range(count):
                layers += [nn.Conv2d(c, oc, 3, padding=1), nn.ReLU(inplace=True)]
                c = oc
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((pool_side, pool_side))
        self.classifier = nn.Sequential(nn.Linear(c * pool_side * pool_side, fc), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(fc, fc), nn.ReLU(True), nn.Dropout(), nn.Linear(fc, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# ---------------------------------------------------------------- fixtures


def randomise_batch_norm(model, gen):
    """Non-trivial affine parameters and running statistics."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            with torch.no_grad():
                m.weight.copy_(0.5 + torch.rand(c, generator=gen))
                m.bias.copy_(0.2 * torch.randn(c, generator=gen))
                m.running_mean.copy_(0.2 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen))
                m.num_batches_tracked.fill_(7)


def make_fixture(name, arch, model, spec, batch, seed):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model.apply(lambda m: m.reset_parameters() if hasattr(m, "reset_parameters") else None)
    randomise_batch_norm(model, gen)
    model.eval()
    x = torch.rand(batch, spec["channels"], spec["input"], spec["input"], generator=gen) * 2 - 1
    with torch.no_grad():
        logits = model.double()(x.double()).numpy()  # float64 from the float32 weights and input
    model.float()
    tensors, dropped = convert(model.state_dict(), arch)
    if any(not k.endswith("num_batches_tracked") for k in dropped):
        raise RuntimeError(f"unmapped keys: {dropped}")

    def extra(f):
        g = f.create_group("fixture")
        for k, v in spec.items():
            g.attrs[k] = np.bytes_(v) if isinstance(v, str) else v
        g.create_dataset("input", data=x.numpy().astype(np.float32), chunks=True, fletcher32=True)
        g.create_dataset("logits", data=logits, chunks=True, fletcher32=True)

    path = os.path.join(HERE, name)
    write_weights(path, tensors, f"torchvision-named {arch} (random, reduced width) for tests", extra)
    print(f"{name}: {len(tensors)} tensors, logits {logits.shape}, max |logit| {np.abs(logits).max():.4g}, "
          f"{os.path.getsize(path)} bytes")


def make_fixtures():
    rspec = dict(arch="resnet50", input=32, channels=3, width=1.0 / 16, fc=0, classes=5)
    make_fixture("resnet50_small.h5", "resnet50", ResNet50(rspec["width"], rspec["classes"]), rspec, 2, 1)
    # 64 pixels: the last pooling gives 2x2, the adaptive pooling keeps it (as 7x7 at 224).
    vspec = dict(arch="vgg_face", input=64, channels=3, width=1.0 / 32, fc=16, classes=5)
    make_fixture("vgg16_small.h5", "vgg16", VGG16(vspec["width"], vspec["fc"], vspec["classes"], pool_side=2), vspec,
                 2, 2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("arch", nargs="?", choices=("resnet50", "vgg16"))
    ap.add_argument("input", nargs="?", help="PyTorch .pth (state dict or model)")
    ap.add_argument("output", nargs="?", help="occkd weight file (.h5)")
    ap.add_argument("--skip-classifier", action="store_true", help="leave out fc (resnet50) / fc8 (vgg16)")
    ap.add_argument("--make-fixtures", action="store_true", help="rewrite the test fixtures next to this script")
    a = ap.parse_args()
    if a.make_fixtures:
        make_fixtures()
        return 0
    if not (a.arch and a.input and a.output):
        ap.error("arch, input and output are required (or --make-fixtures)")
    tensors, dropped = convert(load_state_dict(a.input), a.arch, a.skip_classifier)
    write_weights(a.output, tensors, f"torchvision {a.arch} from {os.path.basename(a.input)}")
    print(f"{a.output}: {len(tensors)} tensors written; left out: {', '.join(dropped) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
