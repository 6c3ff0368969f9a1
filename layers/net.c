/* net.c - the three architectures as layer graphs over flat buffers.
 *
 * A network is a list of layers in topological order; each names the layers
 * it reads (in[]), -1 being the network input. ResNet's shortcut makes a
 * layer's output feed two consumers, so backward adds the second gradient
 * into the first (the `accumulate` bits of LayerOps.backward).
 *
 * The VGG networks optionally put batch norm between each convolution and
 * its ReLU and have 0 to 2 hidden fully connected layers (NetSpec).
 *
 * Buffer order: the trainable tensors of the last layer come first in
 * `params`/`grads`, those of the first layer last. Backward walks the layers
 * from last to first, so the finished gradients always form a prefix of
 * `grads`; after each layer net_backward reports that prefix through
 * Pass.grads_ready, which is how the allreduce overlaps with backward.
 *
 * Layouts (choose_layouts): activations between the layers that accept the
 * channel-blocked layout (layers.h) stay in it; a consumer that reads NCHW
 * gets a copy made right after its producer's forward, and its gradient is
 * converted and added before the producer's backward.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "layers.h"

#define DEFAULT_WORK_BUDGET ((size_t)256 << 20)

/* ------------------------------------------------------- building helpers */

typedef struct {
    Layer **layers;
    int n, cap;
    int failed;
    Shape input; /* the network's input */
    char *err;
    size_t errlen;
} Builder;

/* Appends l, which reads layers in0 and in1 (-1: the network input, or no
 * second input); its index, or -1 when l is NULL or anything failed before
 * (the first message stays in b->err). */
static int push(Builder *b, Layer *l, int in0, int in1)
{
    if (b->failed || !l) {
        layer_destroy(l);
        b->failed = 1;
        return -1;
    }
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 64;
        Layer **grown = realloc(b->layers, (size_t)cap * sizeof(Layer *));
        if (!grown) {
            snprintf(b->err, b->errlen, "out of memory for %d layers", cap);
            layer_destroy(l);
            b->failed = 1;
            return -1;
        }
        b->layers = grown;
        b->cap = cap;
    }
    l->index = b->n;
    l->in[0] = in0;
    l->in[1] = in1;
    b->layers[b->n] = l;
    return b->n++;
}

static Shape out_of(const Builder *b, int i) { return i < 0 ? b->input : b->layers[i]->out; }

/* Appends a layer of `type` (the registry's names) with settings a, reading
 * layer x (-1: the network input), named by fmt. Its index, or -1. */
#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
static int add(Builder *b, const char *type, int x, LayerArgs a, const char *fmt, ...)
{
    if (b->failed)
        return -1;
    char name[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return push(b, layer_create(type, name, out_of(b, x), &a, b->err, b->errlen), x, -1);
}

static int scaled(int base, float width)
{
    int c = (int)lroundf((float)base * width);
    return c < 1 ? 1 : c;
}

/* A VGG convolution with its ReLU: fused into the convolution, or, with
 * s->batchnorm, a batch norm between them (the ReLU fused into it) named
 * bn<suffix>, the convolution's name after "conv". A convolution followed
 * by batch norm has no bias (its gradient would be zero: the batch mean
 * takes it away). Its index, or -1. */
static int vgg_conv(Builder *b, const NetSpec *s, int x, LayerArgs conv, const char *name)
{
    conv.relu = !s->batchnorm;
    conv.bias = !s->batchnorm;
    x = add(b, "conv", x, conv, "%s", name);
    if (s->batchnorm)
        x = add(b, "batchnorm", x, (LayerArgs){.eps = 1e-5f, .momentum = 0.1f, .relu = 1}, "bn%s", name + 4);
    return x;
}

/* ------------------------------------------------------------ architectures */

/* VGG-f (CNN-F): 5 conv layers, LRN after the first two, 3 fully connected;
 * with batch norm, bn1 ... bn5 after conv1 ... conv5. */
static int build_vgg_f(Builder *b, const NetSpec *s)
{
    const int c64 = scaled(64, s->width), c256 = scaled(256, s->width);
    /* LRN as in the published model: size 5, k 1, alpha 1e-4 per element (PyTorch's alpha/size form), beta 0.75 */
    const LayerArgs lrn = {.size = 5, .alpha = 5e-4f, .beta = 0.75f, .lrn_k = 1.0f};
    const LayerArgs pool = {.pool = POOL_MAX, .k = 3, .stride = 2};
    const LayerArgs conv3 = {.out = c256, .k = 3, .pad = {1, 1, 1, 1}, .bias = 1};
    int x = vgg_conv(b, s, -1, (LayerArgs){.out = c64, .k = 11, .stride = 4, .bias = 1}, "conv1");
    x = add(b, "lrn", x, lrn, "norm1");
    x = add(b, "pool", x, (LayerArgs){.pool = POOL_MAX, .k = 3, .stride = 2, .pad = {0, 1, 0, 1}}, "pool1");
    x = vgg_conv(b, s, x, (LayerArgs){.out = c256, .k = 5, .pad = {2, 2, 2, 2}, .bias = 1}, "conv2");
    x = add(b, "lrn", x, lrn, "norm2");
    x = add(b, "pool", x, pool, "pool2");
    x = vgg_conv(b, s, x, conv3, "conv3");
    x = vgg_conv(b, s, x, conv3, "conv4");
    x = vgg_conv(b, s, x, conv3, "conv5");
    return add(b, "pool", x, pool, "pool5");
}

/* VGG-face: the VGG-16 layout, 13 3x3 conv layers in 5 blocks; with batch
 * norm, bn<block>_<j> after conv<block>_<j> (torchvision's vgg16_bn). */
static int build_vgg_face(Builder *b, const NetSpec *s)
{
    static const int blocks[5] = {2, 2, 3, 3, 3};
    static const int width[5] = {64, 128, 256, 512, 512};
    int x = -1;
    for (int blk = 0; blk < 5; blk++) {
        const LayerArgs conv = {.out = scaled(width[blk], s->width), .k = 3, .pad = {1, 1, 1, 1}, .bias = 1};
        for (int j = 0; j < blocks[blk]; j++) {
            char name[32];
            snprintf(name, sizeof name, "conv%d_%d", blk + 1, j + 1);
            x = vgg_conv(b, s, x, conv, name);
        }
        x = add(b, "pool", x, (LayerArgs){.pool = POOL_MAX, .k = 2, .stride = 2}, "pool%d", blk + 1);
    }
    return x;
}

/* The hidden fully connected layers of both VGG networks (fc6, fc7; as
 * many as s->fc_layers), each followed by dropout, and the classifier fc8.
 * The embedding is the last hidden layer's output (pool5 without one). */
static int build_vgg_head(Builder *b, const NetSpec *s, int x, int *embedding)
{
    const LayerArgs hidden = {.out = s->fc, .relu = 1}, drop = {.rate = s->dropout};
    *embedding = x;
    for (int i = 0; i < s->fc_layers; i++) {
        x = add(b, "fc", x, hidden, "fc%d", 6 + i);
        *embedding = x;
        if (s->dropout > 0)
            x = add(b, "dropout", x, drop, "drop%d", 6 + i);
    }
    return add(b, "fc", x, (LayerArgs){.out = s->classes}, "fc8");
}

/* One bottleneck block (torchvision's layout: the stride sits on the 3x3). */
static int bottleneck(Builder *b, int x, const char *prefix, int planes, int stride, int downsample)
{
    const LayerArgs bn_relu = {.eps = 1e-5f, .momentum = 0.1f, .relu = 1}, bn = {.eps = 1e-5f, .momentum = 0.1f};
    int y = add(b, "conv", x, (LayerArgs){.out = planes, .k = 1}, "%s.conv1", prefix);
    y = add(b, "batchnorm", y, bn_relu, "%s.bn1", prefix);
    y = add(b, "conv", y, (LayerArgs){.out = planes, .k = 3, .stride = stride, .pad = {1, 1, 1, 1}}, "%s.conv2",
            prefix);
    y = add(b, "batchnorm", y, bn_relu, "%s.bn2", prefix);
    y = add(b, "conv", y, (LayerArgs){.out = planes * 4, .k = 1}, "%s.conv3", prefix);
    y = add(b, "batchnorm", y, bn, "%s.bn3", prefix);
    int shortcut = x;
    if (downsample) {
        shortcut = add(b, "conv", x, (LayerArgs){.out = planes * 4, .k = 1, .stride = stride}, "%s.downsample.0",
                       prefix);
        shortcut = add(b, "batchnorm", shortcut, bn, "%s.downsample.1", prefix);
    }
    if (b->failed)
        return -1;
    char name[64];
    snprintf(name, sizeof name, "%s.add", prefix);
    Layer *sum = layer_create("add", name, out_of(b, y), &(LayerArgs){.relu = 1}, b->err, b->errlen);
    return push(b, sum, y, shortcut); /* the one layer with two inputs */
}

static int build_resnet50(Builder *b, const NetSpec *s, int *embedding)
{
    static const int blocks[4] = {3, 4, 6, 3};
    int x = add(b, "conv", -1, (LayerArgs){.out = scaled(64, s->width), .k = 7, .stride = 2, .pad = {3, 3, 3, 3}},
                "conv1");
    x = add(b, "batchnorm", x, (LayerArgs){.eps = 1e-5f, .momentum = 0.1f, .relu = 1}, "bn1");
    x = add(b, "pool", x, (LayerArgs){.pool = POOL_MAX, .k = 3, .stride = 2, .pad = {1, 1, 1, 1}}, "maxpool");
    char prefix[24];
    for (int stage = 0; stage < 4; stage++) {
        int planes = scaled(64 << stage, s->width);
        for (int j = 0; j < blocks[stage]; j++) {
            snprintf(prefix, sizeof prefix, "layer%d.%d", stage + 1, j);
            int stride = (j == 0 && stage > 0) ? 2 : 1;
            x = bottleneck(b, x, prefix, planes, stride, j == 0);
        }
    }
    x = add(b, "gap", x, (LayerArgs){0}, "avgpool");
    if (s->fc > 0)
        x = add(b, "fc", x, (LayerArgs){.out = s->fc, .relu = 1}, "fc_hidden");
    *embedding = x;
    return add(b, "fc", x, (LayerArgs){.out = s->classes}, "fc");
}

/* --------------------------------------------------------------- names */

static const char *const arch_names[] = {"vgg_f", "vgg_face", "resnet50"};

const char *arch_name(Arch a) { return (unsigned)a < 3 ? arch_names[a] : "?"; }

int arch_parse(const char *name, Arch *out)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(name, arch_names[i]) == 0) {
            *out = (Arch)i;
            return 0;
        }
    return -1;
}

NetSpec netspec_default(Arch arch)
{
    NetSpec s = {.arch = arch, .input = 224, .channels = 3, .width = 1.0f, .fc = 4096, .classes = 1000,
                 .dropout = 0.5f, .batchnorm = 0, .fc_layers = 2};
    if (arch == ARCH_RESNET50) {
        s.fc = 0;
        s.dropout = 0;
        s.batchnorm = 1;
        s.fc_layers = 0;
    }
    return s;
}

/* ----------------------------------------------------------- allocation */

static int check_spec(const NetSpec *s, int max_batch, char *err, size_t errlen)
{
    const char *why = NULL;
    if ((unsigned)s->arch > ARCH_RESNET50)
        why = "unknown architecture";
    else if (s->input < 16 || s->input > 4096)
        why = "input must be between 16 and 4096 pixels";
    else if (s->channels < 1 || s->channels > 4)
        why = "channels must be 1 to 4";
    else if (!(s->width > 0 && s->width <= 16))
        why = "width must be in (0, 16]";
    else if (s->classes < 1)
        why = "classes must be at least 1";
    else if (s->fc < 0 || (s->arch != ARCH_RESNET50 && s->fc < 1))
        why = "fc must be at least 1 (resnet50: 0 for no hidden layer)";
    else if (!(s->dropout >= 0 && s->dropout < 1))
        why = "dropout must be in [0, 1)";
    else if (s->arch == ARCH_RESNET50 && s->batchnorm != 1)
        why = "batchnorm cannot be turned off (every convolution of the published network has one)";
    else if (s->arch == ARCH_RESNET50 && s->fc_layers != 0)
        why = "fc_layers is for the VGG networks (resnet50 has a hidden layer when fc > 0)";
    else if (s->batchnorm != 0 && s->batchnorm != 1)
        why = "batchnorm must be 0 or 1";
    else if (s->fc_layers < 0 || s->fc_layers > 2)
        why = "fc_layers must be 0 to 2";
    else if (max_batch < 1)
        why = "the batch must hold at least one sample";
    if (why) {
        snprintf(err, errlen, "%s: %s", arch_name(s->arch), why);
        return -1;
    }
    return 0;
}

/* Lays out tensors from the last layer to the first and allocates buffers. */
static void assign_buffers(Net *net)
{
    size_t np = 0, ns = 0;
    int nt = 0;
    for (int i = net->n_layers - 1; i >= 0; i--) {
        Layer *l = net->layers[i];
        for (int t = 0; t < l->n_params; t++) {
            l->param[t].offset = np;
            np += l->param[t].count;
            nt++;
        }
        for (int t = 0; t < l->n_state; t++) {
            l->state[t].offset = ns;
            ns += l->state[t].count;
        }
    }
    net->n_params = np;
    net->n_state = ns;
    net->params = calloc(np ? np : 1, sizeof(float));
    net->grads = calloc(np ? np : 1, sizeof(float));
    net->state = calloc(ns ? ns : 1, sizeof(float));
    net->tensors = calloc((size_t)nt + 1, sizeof(Tensor *));
    net->n_tensors = 0;
    for (int i = net->n_layers - 1; i >= 0; i--) {
        Layer *l = net->layers[i];
        for (int t = 0; t < l->n_params; t++) {
            l->param[t].data = net->params + l->param[t].offset;
            l->param[t].grad = net->grads + l->param[t].offset;
            net->tensors[net->n_tensors++] = &l->param[t];
        }
        for (int t = 0; t < l->n_state; t++) {
            l->state[t].data = net->state + l->state[t].offset;
            l->state[t].grad = NULL;
        }
    }
}

static void compute_ready(Net *net);

/* An output is blocked where its layer allows it (LayerOps.layouts), its
 * channels are a multiple of LAYOUT_BLOCK, it is neither the network's
 * output nor its embedding (which callers read as NCHW) and, for a
 * LAYOUT_SAME layer, every input is blocked. An input is read blocked where
 * its producer's output is and the consumer takes it (LAYOUT_FREE, or
 * LAYOUT_SAME with a blocked output); the other consumers of a blocked
 * output read its NCHW copy. OCCKD_BLOCKED=0 in the environment keeps
 * everything NCHW. */
static void choose_layouts(Net *net)
{
    const char *env = getenv("OCCKD_BLOCKED");
    const int on = !(env && strcmp(env, "0") == 0);
    for (int i = 0; i < net->n_layers; i++) {
        Layer *l = net->layers[i];
        const int kind = on && l->ops->layouts ? l->ops->layouts(l) : 0;
        int b = kind && l->out.c % LAYOUT_BLOCK == 0 && i != net->n_layers - 1 && i != net->embedding;
        for (int j = 0; kind == LAYOUT_SAME && j < l->n_in; j++)
            b = b && l->in[j] >= 0 && net->layers[l->in[j]]->out_blocked;
        l->out_blocked = b;
        l->in_blocked = 0;
        for (int j = 0; j < l->n_in; j++)
            if (l->in[j] >= 0 && net->layers[l->in[j]]->out_blocked && (kind == LAYOUT_FREE || (kind && b)))
                l->in_blocked |= 1u << j;
    }
}

/* What input j of layer l reads in forward and writes in backward: the
 * producer's own buffers, or their NCHW copies. */
static int reads_copy(const Net *net, const Layer *l, int j)
{
    return l->in[j] >= 0 && net->act_nchw[l->in[j]] && !(l->in_blocked & (1u << j));
}

Net *net_create(const NetSpec *spec, int max_batch, size_t work_budget, char *err, size_t errlen)
{
    if (check_spec(spec, max_batch, err, errlen))
        return NULL;
    layers_set_threads(0); /* OpenBLAS on one thread: the layers bring their own */
    Shape in = {spec->channels, spec->input, spec->input};
    Builder b = {.input = in, .err = err, .errlen = errlen};
    int out = -1, embedding = -1;
    switch (spec->arch) {
    case ARCH_VGG_F:
        out = build_vgg_head(&b, spec, build_vgg_f(&b, spec), &embedding);
        break;
    case ARCH_VGG_FACE:
        out = build_vgg_head(&b, spec, build_vgg_face(&b, spec), &embedding);
        break;
    case ARCH_RESNET50:
        out = build_resnet50(&b, spec, &embedding);
        break;
    }
    if (b.failed || out < 0) {
        char why[256];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "%s at input %d: %s", arch_name(spec->arch), spec->input, why);
        for (int i = 0; i < b.n; i++)
            layer_destroy(b.layers[i]);
        free(b.layers);
        return NULL;
    }
    Net *net = calloc(1, sizeof(Net));
    net->spec = *spec;
    net->layers = b.layers;
    net->n_layers = b.n;
    net->embedding = embedding;
    net->max_batch = max_batch;
    net->input = in;
    net->work_budget = work_budget ? work_budget : DEFAULT_WORK_BUDGET;
    assign_buffers(net);
    choose_layouts(net);

    net->act = calloc((size_t)b.n, sizeof(float *));
    net->d_act = calloc((size_t)b.n, sizeof(float *));
    net->act_nchw = calloc((size_t)b.n, sizeof(float *));
    net->d_act_nchw = calloc((size_t)b.n, sizeof(float *));
    net->consumers = calloc((size_t)b.n, sizeof(int));
    for (int i = 0; i < b.n; i++) {
        Layer *l = b.layers[i];
        size_t sz = (size_t)max_batch * shape_size(l->out);
        net->act[i] = malloc(sz * sizeof(float));
        net->d_act[i] = malloc(sz * sizeof(float));
        for (int j = 0; j < l->n_in; j++) {
            int src = l->in[j];
            if (src < 0)
                continue;
            net->consumers[src]++;
            if (b.layers[src]->out_blocked && !(l->in_blocked & (1u << j)) && !net->act_nchw[src]) {
                size_t ssz = (size_t)max_batch * shape_size(b.layers[src]->out);
                net->act_nchw[src] = malloc(ssz * sizeof(float));
                net->d_act_nchw[src] = malloc(ssz * sizeof(float));
            }
        }
        size_t w = l->ops->workspace ? l->ops->workspace(l, max_batch, net->work_budget) : 0;
        if (w > net->work_bytes)
            net->work_bytes = w;
        l->needs_input_grad = l->in[0] >= 0;
    }
    net->work = net->work_bytes ? malloc(net->work_bytes) : NULL;
    net->ready_after = calloc((size_t)b.n, sizeof(size_t));
    net->written = calloc(2 * (size_t)b.n, 1); /* d_act, then d_act_nchw */
    compute_ready(net);
    return net;
}

void net_free(Net *net)
{
    if (!net)
        return;
    for (int i = 0; i < net->n_layers; i++) {
        layer_destroy(net->layers[i]);
        free(net->act[i]);
        free(net->d_act[i]);
        free(net->act_nchw[i]);
        free(net->d_act_nchw[i]);
    }
    free(net->layers);
    free(net->act);
    free(net->d_act);
    free(net->act_nchw);
    free(net->d_act_nchw);
    free(net->consumers);
    free(net->params);
    free(net->grads);
    free(net->state);
    free(net->tensors);
    free(net->work);
    free(net->ready_after);
    free(net->written);
    net_profile(net, 0);
    free(net);
}

/* He initialisation from a counter-based normal: element j of tensor t is a
 * function of (seed, t, j) only. The classifier gets variance 1/fan_in. */
void net_init(Net *net, uint64_t seed)
{
    int out = net->n_layers - 1;
    for (int i = 0; i < net->n_layers; i++) {
        Layer *l = net->layers[i];
        for (int t = 0; t < l->n_params; t++) {
            Tensor *tn = &l->param[t];
            if (tn->fan_in <= 0) {
                for (size_t j = 0; j < tn->count; j++)
                    tn->data[j] = tn->init_value;
                continue;
            }
            double std = sqrt((i == out ? 1.0 : 2.0) / tn->fan_in);
            uint64_t key = rng_mix(seed, (uint64_t)i * 8 + (uint64_t)t);
            for (size_t j = 0; j < tn->count; j++)
                tn->data[j] = (float)(std * rng_normal(key, (uint32_t)j, (uint32_t)(j >> 32), 0x1417u, 0));
        }
        for (int t = 0; t < l->n_state; t++)
            for (size_t j = 0; j < l->state[t].count; j++)
                l->state[t].data[j] = l->state[t].init_value;
    }
}

void net_profile(Net *net, int on)
{
    free(net->time_fwd);
    free(net->time_bwd);
    net->time_fwd = on ? calloc((size_t)net->n_layers, sizeof(double)) : NULL;
    net->time_bwd = on ? calloc((size_t)net->n_layers, sizeof(double)) : NULL;
}

static void set_work(Net *net, Pass *p)
{
    p->work = net->work;
    p->work_bytes = net->work_bytes;
}

const float *net_forward(Net *net, Pass *p, const float *x)
{
    if (p->n < 0 || p->n > net->max_batch) { /* a programming error: the buffers hold max_batch samples */
        fprintf(stderr, "net_forward: batch of %d samples, the network was built for at most %d\n", p->n,
                net->max_batch);
        abort();
    }
    set_work(net, p);
    net->last_input = x;
    for (int i = 0; i < net->n_layers; i++) {
        Layer *l = net->layers[i];
        const float *xs[LAYER_MAX_INPUTS] = {0};
        for (int j = 0; j < l->n_in; j++)
            xs[j] = l->in[j] < 0 ? x : reads_copy(net, l, j) ? net->act_nchw[l->in[j]] : net->act[l->in[j]];
        double t0 = net->time_fwd ? clock_seconds() : 0;
        l->ops->forward(l, p, xs, net->act[i]);
        if (net->act_nchw[i])
            layout_to_nchw(net->act[i], p->n, l->out.c, (size_t)l->out.h * l->out.w, net->act_nchw[i], 0);
        if (net->time_fwd)
            net->time_fwd[i] += clock_seconds() - t0;
    }
    return net->act[net->n_layers - 1];
}

/* ready_after[i]: the end of the gradient prefix that is final once layer
 * i's backward has run (all layers >= i are done). */
static void compute_ready(Net *net)
{
    size_t end = 0;
    for (int i = net->n_layers - 1; i >= 0; i--) {
        const Layer *l = net->layers[i];
        for (int t = 0; t < l->n_params; t++) {
            size_t e = l->param[t].offset + l->param[t].count;
            if (e > end)
                end = e;
        }
        net->ready_after[i] = end;
    }
}

void net_backward(Net *net, Pass *p, const float *d_out, const float *d_embedding)
{
    set_work(net, p);
    int last = net->n_layers - 1;
    unsigned char *written = net->written, *written_nchw = net->written + net->n_layers;
    memset(written, 0, 2 * (size_t)net->n_layers);
    size_t reported = 0;
    for (int i = last; i >= 0; i--) {
        Layer *l = net->layers[i];
        const float *d_y = d_out;
        if (i != last) {
            float *d = net->d_act[i];
            size_t sz = (size_t)p->n * shape_size(l->out);
            double t0 = net->time_bwd ? clock_seconds() : 0;
            if (written_nchw[i]) { /* the NCHW readers' gradient, added in this layout */
                layout_to_blocked(net->d_act_nchw[i], p->n, l->out.c, (size_t)l->out.h * l->out.w, d, written[i]);
                written[i] = 1;
            }
            if (net->time_bwd)
                net->time_bwd[i] += clock_seconds() - t0;
            if (!written[i]) /* no consumer passed a gradient: it does not reach the loss */
                memset(d, 0, sz * sizeof(float));
            if (i == net->embedding && d_embedding)
                for (size_t j = 0; j < sz; j++)
                    d[j] += d_embedding[j];
            d_y = d;
        }
        const float *xs[LAYER_MAX_INPUTS] = {0};
        float *dxs[LAYER_MAX_INPUTS] = {0};
        unsigned acc = 0;
        for (int j = 0; j < l->n_in; j++) {
            int src = l->in[j];
            if (src < 0) {
                xs[j] = net->last_input; /* no gradient for the network input */
                continue;
            }
            const int copy = reads_copy(net, l, j);
            unsigned char *wr = copy ? &written_nchw[src] : &written[src];
            xs[j] = copy ? net->act_nchw[src] : net->act[src];
            dxs[j] = copy ? net->d_act_nchw[src] : net->d_act[src];
            if (*wr)
                acc |= 1u << j;
            *wr = 1;
        }
        double t0 = net->time_bwd ? clock_seconds() : 0;
        l->ops->backward(l, p, xs, net->act[i], d_y, dxs, acc);
        if (net->time_bwd)
            net->time_bwd[i] += clock_seconds() - t0;
        if (p->grads_ready && net->ready_after[i] > reported) {
            reported = net->ready_after[i];
            p->grads_ready(p->user, reported);
        }
    }
}

const float *net_embedding(const Net *net) { return net->act[net->embedding]; }

size_t net_embedding_size(const Net *net) { return shape_size(net->layers[net->embedding]->out); }

void net_act_nchw(const Net *net, int i, int n, float *out)
{
    const Layer *l = net->layers[i];
    if (l->out_blocked)
        layout_to_nchw(net->act[i], n, l->out.c, (size_t)l->out.h * l->out.w, out, 0);
    else
        memcpy(out, net->act[i], (size_t)n * shape_size(l->out) * sizeof(float));
}

int net_blocked_layers(const Net *net)
{
    int k = 0;
    for (int i = 0; i < net->n_layers; i++)
        k += net->layers[i]->out_blocked;
    return k;
}

int net_find_layer(const Net *net, const char *name)
{
    for (int i = 0; i < net->n_layers; i++)
        if (strcmp(net->layers[i]->name, name) == 0)
            return i;
    return -1;
}

int net_first_nonfinite(const Net *net, int n)
{
    for (int i = 0; i < net->n_layers; i++) {
        const float *a = net->act[i];
        size_t sz = (size_t)n * shape_size(net->layers[i]->out);
        for (size_t j = 0; j < sz; j++)
            if (!isfinite(a[j]))
                return i;
    }
    return -1;
}

double net_flops(const Net *net)
{
    double f = 0;
    for (int i = 0; i < net->n_layers; i++)
        f += net->layers[i]->flops;
    return f;
}

size_t net_memory_bytes(const Net *net)
{
    size_t floats = 3 * net->n_params + net->n_state;
    for (int i = 0; i < net->n_layers; i++)
        floats += (net->act_nchw[i] ? 4 : 2) * (size_t)net->max_batch * shape_size(net->layers[i]->out);
    return floats * sizeof(float) + net->work_bytes;
}
