#!/usr/bin/python3
"""make_fixtures.py - golden outputs of occkd's networks and losses, from PyTorch.

How to run (by hand; CI never runs it, it only reads the committed files):

    cd tests/golden && /usr/bin/python3 make_fixtures.py [file.h5 ...]

It needs PyTorch (Debian's python3-torch, 1.13) and h5py (python3-h5py); it does
not need torchvision. It rewrites vgg_f.h5, vgg_face.h5, resnet50.h5,
vgg_f_bn.h5, vgg_face_bn.h5 and losses.h5 next to itself (about 4 MB
together), or only the files named on the command line. The output is deterministic
for a given PyTorch version (seeded generators, float64 arithmetic, no
timestamps in the files): rerunning it rewrites identical bytes unless this
script changed. tests/test_golden.c reads them.

What the files hold. Each network file describes one small network with the
same knobs occkd's NetSpec has, stored as root attributes (arch, input,
channels, width, fc, classes, dropout, batchnorm, fc_layers; dropout is always
0 because dropout masks cannot match between two libraries), and:

    /params/<layer>/<weight|bias>     float32, PyTorch layout, occkd layer names
    /state/<layer>/running_mean|var   with batch norm: its statistics before the pass
    /input (N,C,H,W)  /labels (N) int32
    /logits (N,classes)  /loss (scalar, mean softmax cross-entropy)
    /embedding (N,E)                  fc7 after ReLU (VGG), avgpool output (ResNet)
    /acts/<layer>                     the output of every occkd layer (training pass)
    /d_acts/<layer>                   ResNet, VGG-face with batch norm: d(loss)/d(that
                                      output), for the layer-by-layer checks
    /grads/<layer>/<tensor>           d(loss)/d(parameter)
    /d_embedding (N,E)                VGG-f only: a fixed random vector r
    /grads_emb/<layer>/<tensor>       VGG-f only: d(loss + sum(r * embedding))/d(parameter),
                                      which checks net_backward's d_embedding input
    /state_after/<layer>/...          with batch norm: running statistics after the training pass
    /eval/logits, /eval/embedding     with batch norm: an inference pass with /state

Parameters, inputs (on a grid, as pixels are) and labels are generated in
float32 and stored as such; the
reference itself is computed in float64 from those exact float32 values, so the
only error the C test sees is occkd's own float32 rounding. The same network
is also run in float32 by PyTorch; its worst relative errors are stored as the
attributes torch_f32_forward_err and torch_f32_grad_err (and printed), which
shows how much float32 rounding a fixture amplifies (small-batch batch norm
deep in ResNet amplifies it most).

Layer semantics that must match occkd (layers/net.c):
  * VGG-f: conv1 11x11/4 + ReLU, LRN(5, alpha 5e-4, beta 0.75, k 1) in
    PyTorch's alpha/size form, max pool 3/2 with asymmetric padding (0 top,
    1 bottom, 0 left, 1 right), conv2 5x5 pad 2 + ReLU, LRN, max pool 3/2,
    conv3-5 3x3 pad 1 + ReLU, max pool 3/2, fc6 + ReLU, fc7 + ReLU, fc8.
    The asymmetric padding is done with F.pad(value=-inf) so that padded
    positions never win a max (occkd ignores them). Zero padding would give the
    same forward here, because the pooled values come from LRN of ReLU outputs
    and are >= 0, but -inf is exact whatever the input.
  * VGG-face: the VGG-16 layout, 13 3x3 conv + ReLU, max pool 2/2 after each
    block, the same fc6/fc7/fc8 head.
  * Both VGG networks with batchnorm: batch norm (eps 1e-5, momentum 0.1)
    between each convolution and its ReLU, named bn<suffix of the conv's
    name> (bn1 of conv1, bn3_2 of conv3_2); those convolutions have no bias. fc_layers hidden layers (fc6,
    fc7; 0 to 2): the embedding is the last hidden layer's output, or pool5
    flattened without one; the classifier is fc8 either way.
  * ResNet-50: torchvision's layout (stride on the 3x3 of each bottleneck, 1x1
    projection shortcut on each stage's first block), convolutions without
    bias, batch norm eps 1e-5 momentum 0.1, written out here because
    torchvision is not installed.
Channel counts follow occkd's rule max(1, round(base * width)) with halves
rounded away from zero (C's lroundf).

losses.h5 holds one group per loss with random inputs, the value (sum over
the batch / norm, norm being a group attribute: 8 for a shard of 6 rows, so
that dividing by norm rather than by the row count is checked; KD uses the row
count, which is PyTorch's batchmean) and the gradient with respect to the first
argument:
ce, ce_soft, kd_t1, kd_t4 (T^2 * KL(softmax(t/T) || softmax(s/T)), batchmean),
l1, l2 (1/2 sum (p-t)^2), triplet (rows L2-normalised inside, hinge on squared
distances, margin 0.2).
"""
import math
import os

import h5py
import numpy as np
import torch
import torch.nn.functional as F

DT = torch.float64
HERE = os.path.dirname(os.path.abspath(__file__))


def scaled(base, width):
    """occkd's channel rule: max(1, lroundf(base * width))."""
    return max(1, int(math.floor(base * width + 0.5)))


class Store:
    """Parameters by (layer, tensor) name, generated in float32, used in float64."""

    def __init__(self, seed, dtype=DT):
        self.dtype = dtype
        self.gen = torch.Generator().manual_seed(seed)
        self.params = {}  # "layer/tensor" -> float64 leaf
        self.state = {}   # "layer/running_mean" -> float64 buffer

    def normal(self, shape, std):
        return (torch.randn(shape, generator=self.gen, dtype=torch.float32) * std).to(torch.float32)

    def uniform(self, shape, lo, hi):
        return (torch.rand(shape, generator=self.gen, dtype=torch.float32) * (hi - lo) + lo).to(torch.float32)

    def leaf(self, key, value32):
        t = value32.to(self.dtype).requires_grad_(True)
        self.params[key] = t
        return t

    def conv(self, name, oc, ic, k, bias, gain=2.0):
        w = self.leaf(name + "/weight", self.normal((oc, ic, k, k), math.sqrt(gain / (ic * k * k))))
        b = self.leaf(name + "/bias", self.uniform((oc,), -0.1, 0.1)) if bias else None
        return w, b

    def fc(self, name, out, inp, gain=2.0):
        w = self.leaf(name + "/weight", self.normal((out, inp), math.sqrt(gain / inp)))
        b = self.leaf(name + "/bias", self.uniform((out,), -0.1, 0.1))
        return w, b

    def bn(self, name, c):
        g = self.leaf(name + "/weight", self.uniform((c,), 0.5, 1.5))
        b = self.leaf(name + "/bias", self.uniform((c,), -0.2, 0.2))
        # running statistics away from (0, 1) so that the update and the
        # inference path are really exercised
        self.state[name + "/running_mean"] = self.uniform((c,), -0.3, 0.3).to(self.dtype)
        self.state[name + "/running_var"] = self.uniform((c,), 0.5, 1.5).to(self.dtype)
        return g, b


# ---------------------------------------------------------------- networks


def vgg_f_build(S, spec):
    w = spec["width"]
    c64, c256 = scaled(64, w), scaled(256, w)
    C = spec["channels"]
    for name, oc, ic, k in (("conv1", c64, C, 11), ("conv2", c256, c64, 5), ("conv3", c256, c256, 3),
                            ("conv4", c256, c256, 3), ("conv5", c256, c256, 3)):
        S.conv(name, oc, ic, k, not spec.get("batchnorm"))
        if spec.get("batchnorm"):
            S.bn("bn" + name[4:], oc)
    side = spec["input"]
    side = (side - 11) // 4 + 1          # conv1
    side = (side + 1 - 3) // 2 + 1       # pool1, one row/column of padding
    side = (side - 3) // 2 + 1           # pool2
    side = (side - 3) // 2 + 1           # pool5
    return c256 * side * side


def bn_layer(S, name, x, relu, training, rec):
    P, St = S.params, S.state
    y = F.batch_norm(x, St[name + "/running_mean"], St[name + "/running_var"], P[name + "/weight"],
                     P[name + "/bias"], training=training, momentum=0.1, eps=1e-5)
    return rec(name, F.relu(y) if relu else y)


def vgg_conv(S, name, x, rec, training, **kw):
    """A VGG convolution and its ReLU, with batch norm between them when the
    store has the conv's bn (occkd's vgg_conv)."""
    P = S.params
    y = F.conv2d(x, P[name + "/weight"], P.get(name + "/bias"), **kw)
    bn = "bn" + name[4:]
    if bn + "/weight" not in P:
        return rec(name, F.relu(y))
    return bn_layer(S, bn, rec(name, y), True, training, rec)


def vgg_f_features(S, x, rec, training):
    lrn = dict(size=5, alpha=5e-4, beta=0.75, k=1.0)
    x = vgg_conv(S, "conv1", x, rec, training, stride=4)
    x = rec("norm1", F.local_response_norm(x, **lrn))
    x = F.pad(x, (0, 1, 0, 1), value=-math.inf)  # (left, right, top, bottom)
    x = rec("pool1", F.max_pool2d(x, 3, 2))
    x = vgg_conv(S, "conv2", x, rec, training, padding=2)
    x = rec("norm2", F.local_response_norm(x, **lrn))
    x = rec("pool2", F.max_pool2d(x, 3, 2))
    for name in ("conv3", "conv4", "conv5"):
        x = vgg_conv(S, name, x, rec, training, padding=1)
    return rec("pool5", F.max_pool2d(x, 3, 2))


VGG16_BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


def vgg_face_build(S, spec):
    ic = spec["channels"]
    side = spec["input"]
    for b, (n, base) in enumerate(VGG16_BLOCKS):
        oc = scaled(base, spec["width"])
        for j in range(n):
            S.conv("conv%d_%d" % (b + 1, j + 1), oc, ic, 3, not spec.get("batchnorm"))
            if spec.get("batchnorm"):
                S.bn("bn%d_%d" % (b + 1, j + 1), oc)
            ic = oc
        side //= 2
    return ic * side * side


def vgg_face_features(S, x, rec, training):
    for b, (n, _) in enumerate(VGG16_BLOCKS):
        for j in range(n):
            x = vgg_conv(S, "conv%d_%d" % (b + 1, j + 1), x, rec, training, padding=1)
        x = rec("pool%d" % (b + 1), F.max_pool2d(x, 2, 2))
    return x


def vgg_head_build(S, spec, flat, head_gain):
    inp = flat
    for i in range(spec.get("fc_layers", 2)):
        S.fc("fc%d" % (6 + i), spec["fc"], inp)
        inp = spec["fc"]
    S.fc("fc8", spec["classes"], inp, gain=head_gain)


def vgg_head(S, x, rec):
    P = S.params
    emb = x.flatten(1)
    i = 6
    while i < 8 and "fc%d/weight" % i in P:
        name = "fc%d" % i
        emb = rec(name, F.relu(F.linear(emb, P[name + "/weight"], P[name + "/bias"])))
        i += 1
    return rec("fc8", F.linear(emb, P["fc8/weight"], P["fc8/bias"])), emb


RESNET_BLOCKS = (3, 4, 6, 3)


def resnet_build(S, spec):
    w = spec["width"]
    c = scaled(64, w)
    S.conv("conv1", c, spec["channels"], 7, False)
    S.bn("bn1", c)
    inplanes = c
    for stage, nblocks in enumerate(RESNET_BLOCKS):
        planes = scaled(64 << stage, w)
        for j in range(nblocks):
            p = "layer%d.%d" % (stage + 1, j)
            S.conv(p + ".conv1", planes, inplanes, 1, False)
            S.bn(p + ".bn1", planes)
            S.conv(p + ".conv2", planes, planes, 3, False)
            S.bn(p + ".bn2", planes)
            S.conv(p + ".conv3", planes * 4, planes, 1, False)
            S.bn(p + ".bn3", planes * 4)
            if j == 0:
                S.conv(p + ".downsample.0", planes * 4, inplanes, 1, False)
                S.bn(p + ".downsample.1", planes * 4)
            inplanes = planes * 4
    if spec["fc"] > 0:
        S.fc("fc_hidden", spec["fc"], inplanes)
        inplanes = spec["fc"]
    S.fc("fc", spec["classes"], inplanes, gain=1.0)


def resnet_forward(S, x, rec, training):
    P = S.params

    def bn(name, x, relu):
        return bn_layer(S, name, x, relu, training, rec)

    def conv(name, x, stride=1, padding=0):
        return rec(name, F.conv2d(x, P[name + "/weight"], None, stride=stride, padding=padding))

    x = conv("conv1", x, 2, 3)
    x = bn("bn1", x, True)
    x = rec("maxpool", F.max_pool2d(x, 3, 2, padding=1))
    for stage, nblocks in enumerate(RESNET_BLOCKS):
        for j in range(nblocks):
            p = "layer%d.%d" % (stage + 1, j)
            stride = 2 if (j == 0 and stage > 0) else 1
            y = bn(p + ".bn1", conv(p + ".conv1", x), True)
            y = bn(p + ".bn2", conv(p + ".conv2", y, stride, 1), True)
            y = bn(p + ".bn3", conv(p + ".conv3", y), False)
            short = x
            if j == 0:
                short = bn(p + ".downsample.1", conv(p + ".downsample.0", x, stride), False)
            x = rec(p + ".add", F.relu(y + short))
    x = rec("avgpool", x.mean(dim=(2, 3), keepdim=True))
    emb = x.flatten(1)
    if "fc_hidden/weight" in P:
        emb = rec("fc_hidden", F.relu(F.linear(emb, P["fc_hidden/weight"], P["fc_hidden/bias"])))
    out = rec("fc", F.linear(emb, P["fc/weight"], P["fc/bias"]))
    return out, emb


# ------------------------------------------------------------------ writing


def f32(t):
    return t.detach().to(torch.float32).numpy()


def create_file(path):
    """A new HDF5 file without timestamps, in the 1.10 format whose compact
    groups keep the hundreds of tiny groups small."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_V110, h5py.h5f.LIBVER_V110)
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    fcpl.set_obj_track_times(False)
    return h5py.File(h5py.h5f.create(path.encode(), h5py.h5f.ACC_TRUNC, fcpl=fcpl, fapl=fapl))


def group(h5, path):
    """The group at `path` (created with its parents if needed) without
    timestamps, so that rerunning the script rewrites identical bytes."""
    g = h5
    for part in path.split("/"):
        if part not in g:
            gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
            gcpl.set_obj_track_times(False)
            h5py.h5g.create(g.id, part.encode(), gcpl=gcpl)
        g = g[part]
    return g


def put(h5, name, array):
    """Writes a dataset (creating its groups). Larger ones are stored shuffled
    and deflated with zlib: random floats still shrink by a tenth or more, and
    the grid-valued inputs much more."""
    array = np.asarray(array)
    if "/" in name:
        parent, name = name.rsplit("/", 1)
        h5 = group(h5, parent)
    if array.size >= 256:
        h5.create_dataset(name, data=array, chunks=array.shape, shuffle=True, compression="gzip", track_times=False,
                          compression_opts=9)
    else:
        h5.create_dataset(name, data=array, track_times=False)


def write_tree(h5, root, tensors):
    for key, t in sorted(tensors.items()):
        put(h5, root + "/" + key, f32(t))


def grads_of(S, loss, keep=False):
    keys = sorted(S.params)
    gs = torch.autograd.grad(loss, [S.params[k] for k in keys], retain_graph=keep)
    return dict(zip(keys, gs))


def run_network(spec, seed, batch, input_scale, input_step, head_gain, dtype, with_emb_grads):
    """Builds the network with its seeded float32 parameters and runs it in
    `dtype`: an inference pass (ResNet), a training pass, the gradients of the
    mean cross-entropy with respect to every parameter and every layer output."""
    S = Store(seed, dtype)
    arch = spec["arch"]
    if arch == "resnet50":
        resnet_build(S, spec)
    else:
        flat = vgg_f_build(S, spec) if arch == "vgg_f" else vgg_face_build(S, spec)
        vgg_head_build(S, spec, flat, head_gain)
    shape = (batch, spec["channels"], spec["input"], spec["input"])
    # inputs on a grid of input_step, as pixels are: exact in float32 and they compress
    x32 = torch.round(S.normal(shape, input_scale) / input_step) * input_step
    labels = torch.randint(0, spec["classes"], (batch,), generator=S.gen, dtype=torch.int64)
    x = x32.to(dtype)
    r = dict(S=S, x32=x32, labels=labels, state_before={k: v.clone() for k, v in S.state.items()})

    def forward(training, acts):
        def rec(name, t):
            if acts is not None:
                acts[name] = t
            return t

        if arch == "resnet50":
            return resnet_forward(S, x, rec, training)
        feats = vgg_f_features(S, x, rec, training) if arch == "vgg_f" else vgg_face_features(S, x, rec, training)
        return vgg_head(S, feats, rec)

    r["evals"] = None
    if S.state:  # batch norm: inference with the stored running statistics; changes nothing
        with torch.no_grad():
            r["evals"] = forward(False, None)
    acts = {}
    logits, emb = forward(True, acts)
    loss = F.cross_entropy(logits, labels)  # mean over the batch
    pkeys, akeys = sorted(S.params), sorted(acts)
    gs = torch.autograd.grad(loss, [S.params[k] for k in pkeys] + [acts[k] for k in akeys],
                             retain_graph=with_emb_grads)
    r.update(acts=acts, logits=logits, emb=emb, loss=loss, grads=dict(zip(pkeys, gs[:len(pkeys)])),
             d_acts=dict(zip(akeys, gs[len(pkeys):])))
    r["d_emb"] = S.uniform(emb.shape, -0.5, 0.5)
    if with_emb_grads:
        r["grads_emb"] = grads_of(S, loss + (emb * r["d_emb"].to(dtype)).sum())
    return r


def worst_rel(a, b):
    """max over tensors of max|a - b| / max|b| (b the float64 reference)."""
    return max(float((a[k].detach().double() - b[k].detach()).abs().max() / b[k].detach().abs().max().clamp(min=1e-30))
               for k in b)


def make_network(fname, spec, seed, batch, input_scale, input_step, head_gain=1.0, with_emb_grads=False,
                 with_d_acts=False):
    args = (spec, seed, batch, input_scale, input_step, head_gain)
    r = run_network(*args, torch.float64, with_emb_grads)
    # PyTorch's own float32 result, to show how well conditioned the fixture is
    r32 = run_network(*args, torch.float32, False)
    f32_fwd = worst_rel(r32["acts"], r["acts"])
    f32_grad = worst_rel(r32["grads"], r["grads"])
    S = r["S"]

    with create_file(os.path.join(HERE, fname)) as h5:
        h5.attrs["arch"] = np.bytes_(spec["arch"])  # a fixed-length string: simple to read from C
        for k in ("input", "channels", "fc", "classes"):
            h5.attrs[k] = np.int32(spec[k])
        h5.attrs["width"] = np.float32(spec["width"])
        h5.attrs["dropout"] = np.float32(0.0)
        if spec["arch"] != "resnet50" and (spec.get("batchnorm") or spec.get("fc_layers", 2) != 2):
            h5.attrs["batchnorm"] = np.int32(1 if spec.get("batchnorm") else 0)
            h5.attrs["fc_layers"] = np.int32(spec.get("fc_layers", 2))
        h5.attrs["torch_f32_forward_err"] = f32_fwd
        h5.attrs["torch_f32_grad_err"] = f32_grad
        write_tree(h5, "params", S.params)
        if r["state_before"]:
            write_tree(h5, "state", r["state_before"])
            write_tree(h5, "state_after", S.state)
        put(h5, "input", r["x32"].numpy())
        put(h5, "labels", r["labels"].to(torch.int32).numpy())
        put(h5, "logits", f32(r["logits"]))
        put(h5, "loss", float(r["loss"]))
        put(h5, "embedding", f32(r["emb"]))
        write_tree(h5, "acts", r["acts"])
        write_tree(h5, "grads", r["grads"])
        if with_d_acts:
            write_tree(h5, "d_acts", r["d_acts"])
        if with_emb_grads:
            put(h5, "d_embedding", r["d_emb"].numpy())
            write_tree(h5, "grads_emb", r["grads_emb"])
        if r["evals"] is not None:
            put(h5, "eval/logits", f32(r["evals"][0]))
            put(h5, "eval/embedding", f32(r["evals"][1]))
    print("%-12s %3d tensors, loss %.5f, logits std %.3f, embedding max %.3f" %
          (fname, len(S.params), float(r["loss"]), float(r["logits"].std()), float(r["emb"].abs().max())))
    print("  PyTorch float32 vs float64: worst relative error %.2e forward, %.2e gradients" % (f32_fwd, f32_grad))
    if spec["arch"] == "vgg_f" and not spec.get("batchnorm"):  # how much LRN changes its input: it must matter for the test to mean much
        for norm, conv in (("norm1", "conv1"), ("norm2", "conv2")):
            a, b = r["acts"][norm], r["acts"][conv]
            mask = b > 0
            print("  %s scales its input by %.3f on average (min %.3f)" %
                  (norm, float((a[mask] / b[mask]).mean()), float((a[mask] / b[mask]).min())))


# -------------------------------------------------------------------- losses


def loss_group(h5, name, inputs, value, grad, **attrs):
    g = group(h5, name)
    for k, v in inputs.items():
        put(g, k, v.numpy() if v.dtype != DT else f32(v))
    put(g, "loss", float(value))
    put(g, "grad", f32(grad))
    for k, v in attrs.items():
        g.attrs[k] = v


def make_losses(fname, seed):
    gen = torch.Generator().manual_seed(seed)
    n, k = 6, 7
    norm = 8.0  # a global batch larger than this shard: scaling by norm, not n

    def randn(*shape, scale=1.0):
        return (torch.randn(shape, generator=gen, dtype=torch.float32) * scale).to(torch.float32)

    with create_file(os.path.join(HERE, fname)) as h5:
        # hard-label cross-entropy
        x32 = randn(n, k, scale=2.0)
        lab = torch.randint(0, k, (n,), generator=gen)
        x = x32.to(DT).requires_grad_(True)
        v = F.cross_entropy(x, lab, reduction="sum") / norm
        (g,) = torch.autograd.grad(v, x)
        loss_group(h5, "ce", {"logits": x32, "labels": lab.to(torch.int32)}, v, g, norm=norm)

        # soft targets (distributions, as FER+ vote shares)
        x32 = randn(n, k, scale=2.0)
        t32 = torch.softmax(randn(n, k, scale=1.5).to(DT), 1).to(torch.float32)
        x = x32.to(DT).requires_grad_(True)
        v = -(t32.to(DT) * F.log_softmax(x, 1)).sum() / norm
        (g,) = torch.autograd.grad(v, x)
        loss_group(h5, "ce_soft", {"logits": x32, "target": t32}, v, g, norm=norm)

        # distillation: T^2 * KL(teacher_T || student_T); with norm = n this is batchmean
        for T in (1.0, 4.0):
            s32, t32 = randn(n, k, scale=3.0), randn(n, k, scale=3.0)
            s = s32.to(DT).requires_grad_(True)
            kl = F.kl_div(F.log_softmax(s / T, 1), F.log_softmax(t32.to(DT) / T, 1), reduction="batchmean",
                          log_target=True)
            v = T * T * kl
            (g,) = torch.autograd.grad(v, s)
            loss_group(h5, "kd_t%d" % int(T), {"student": s32, "teacher": t32}, v, g, T=T, norm=float(n))

        # regression, (n, d)
        d = 3
        p32, t32 = randn(n, d), randn(n, d)
        p = p32.to(DT).requires_grad_(True)
        v = (p - t32.to(DT)).abs().sum() / norm
        (g,) = torch.autograd.grad(v, p)
        loss_group(h5, "l1", {"pred": p32, "target": t32}, v, g, norm=norm)
        p = p32.to(DT).requires_grad_(True)
        v = 0.5 * ((p - t32.to(DT)) ** 2).sum() / norm
        (g,) = torch.autograd.grad(v, p)
        loss_group(h5, "l2", {"pred": p32, "target": t32}, v, g, norm=norm)

        # triplet on L2-normalised rows; every hinge kept away from its kink
        rows, dim, margin = 8, 6, 0.2
        while True:
            e32 = randn(rows, dim, scale=2.0)
            tri = []
            while len(tri) < 12:
                a, pp, q = torch.randint(0, rows, (3,), generator=gen).tolist()
                if a != pp and a != q and pp != q:
                    tri.append((a, pp, q))
            tri = torch.tensor(tri, dtype=torch.int64)
            e = e32.to(DT).requires_grad_(True)
            u = F.normalize(e, dim=1)
            dp = ((u[tri[:, 0]] - u[tri[:, 1]]) ** 2).sum(1)
            dn = ((u[tri[:, 0]] - u[tri[:, 2]]) ** 2).sum(1)
            h = dp - dn + margin
            active = int((h > 0).sum())
            if float(h.abs().min()) > 1e-2 and 3 <= active <= 9:
                break
        v = F.relu(h).sum() / norm
        (g,) = torch.autograd.grad(v, e)
        loss_group(h5, "triplet", {"embeddings": e32, "triples": tri.to(torch.int32),
                                   "active": (h > 0).to(torch.int32)}, v, g, margin=margin, norm=norm)
        print("%-12s triplet: %d of %d hinges active" % (fname, active, len(tri)))


def main(names):
    torch.set_num_threads(1)
    jobs = {
        "vgg_f.h5": lambda f: make_network(
            f, dict(arch="vgg_f", input=64, channels=3, width=1 / 8, fc=32, classes=5), seed=11, batch=4,
            input_scale=40.0, input_step=1.0, head_gain=1e-3, with_emb_grads=True),
        "vgg_face.h5": lambda f: make_network(
            f, dict(arch="vgg_face", input=32, channels=3, width=1 / 16, fc=32, classes=5), seed=12, batch=3,
            input_scale=1.0, input_step=1 / 64),
        "resnet50.h5": lambda f: make_network(
            f, dict(arch="resnet50", input=32, channels=3, width=1 / 16, fc=0, classes=5), seed=13, batch=4,
            input_scale=1.0, input_step=1 / 64, with_d_acts=True),
        # batch norm, no hidden fc layer: the embedding is pool5 (and takes r)
        "vgg_f_bn.h5": lambda f: make_network(
            f, dict(arch="vgg_f", input=64, channels=3, width=1 / 8, fc=32, classes=5, batchnorm=True,
                    fc_layers=0), seed=15, batch=4, input_scale=40.0, input_step=1.0, with_emb_grads=True),
        # the small FER+ network's layout (grey, batch norm, one hidden fc) at a tiny width and 32 px
        "vgg_face_bn.h5": lambda f: make_network(
            f, dict(arch="vgg_face", input=32, channels=1, width=1 / 16, fc=32, classes=8, batchnorm=True,
                    fc_layers=1), seed=16, batch=4, input_scale=1.0, input_step=1 / 64, with_d_acts=True),
        "losses.h5": lambda f: make_losses(f, seed=14),
    }
    for name in names or list(jobs):
        if name not in jobs:
            raise SystemExit("make_fixtures.py: unknown fixture %s (known: %s)" % (name, ", ".join(jobs)))
        jobs[name](name)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
