/* test_net.c - the three architectures: published parameter counts, shapes,
 * buffer order, gradient prefixes, determinism, the embedding gradient, and a
 * tiny network that overfits a batch with the SGD loop. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "layers/layers.h"

/* A network initialised from seed; NULL, and a failed check, when it cannot
 * be built. */
static Net *make(Arch a, int input, float width, int fc, int classes, float dropout, int batch, uint64_t seed)
{
    NetSpec s = netspec_default(a);
    s.input = input;
    s.width = width;
    s.fc = fc;
    s.classes = classes;
    s.dropout = dropout;
    char err[256] = "";
    Net *n = net_create(&s, batch, 0, err, sizeof err);
    CHECK(n != NULL, "build %s: %s", arch_name(a), err);
    if (n)
        net_init(n, seed);
    return n;
}

/* A batch of inputs for n, uniform values keyed by seed (malloc'ed). */
static float *random_input(const Net *n, int batch, uint64_t seed)
{
    size_t nx = (size_t)batch * shape_size(n->input);
    float *x = malloc(nx * sizeof(float));
    fill_uniform(x, nx, seed);
    return x;
}

static void test_published_counts(void)
{
    static const struct {
        Arch arch;
        size_t params;
    } want[] = {{ARCH_VGG_F, 60834536}, {ARCH_VGG_FACE, 138357544}, {ARCH_RESNET50, 25557032}};
    for (int i = 0; i < 3; i++) {
        NetSpec s = netspec_default(want[i].arch);
        char err[256];
        Net *n = net_create(&s, 1, 0, err, sizeof err);
        CHECK(n != NULL, "%s: %s", arch_name(want[i].arch), err);
        if (!n)
            continue;
        size_t sum = 0;
        for (int t = 0; t < n->n_tensors; t++)
            sum += n->tensors[t]->count;
        CHECK(n->n_params == want[i].params, "%s has %zu parameters, expected %zu", arch_name(want[i].arch),
              n->n_params, want[i].params);
        CHECK(sum == n->n_params, "tensor counts add to %zu, buffer %zu", sum, n->n_params);
        printf("%-9s input 224: %zu parameters, %.2f GFLOP forward per image\n", arch_name(want[i].arch),
               n->n_params, net_flops(n) / 1e9);
        if (want[i].arch == ARCH_VGG_F) {
            int p5 = net_find_layer(n, "pool5");
            Shape o = n->layers[p5]->out;
            CHECK(o.c == 256 && o.h == 6 && o.w == 6, "vgg_f pool5 is %dx%dx%d, expected 256x6x6", o.c, o.h, o.w);
            int p1 = net_find_layer(n, "pool1");
            CHECK(n->layers[p1]->out.h == 27, "vgg_f pool1 side %d, expected 27", n->layers[p1]->out.h);
        }
        if (want[i].arch == ARCH_VGG_FACE) {
            int p5 = net_find_layer(n, "pool5");
            CHECK(n->layers[p5]->out.h == 7 && n->layers[p5]->out.c == 512, "vgg_face pool5 is not 512x7x7");
        }
        if (want[i].arch == ARCH_RESNET50) {
            CHECK(net_embedding_size(n) == 2048, "resnet50 embedding %zu, expected 2048", net_embedding_size(n));
            int l4 = net_find_layer(n, "layer4.2.add");
            CHECK(l4 >= 0 && n->layers[l4]->out.h == 7, "resnet50 layer4 output side is not 7");
            CHECK(net_find_layer(n, "layer3.5.bn3") >= 0, "resnet50 lacks layer3.5.bn3");
        } else {
            CHECK(net_embedding_size(n) == 4096, "%s embedding %zu, expected 4096", arch_name(want[i].arch),
                  net_embedding_size(n));
            CHECK(strcmp(n->layers[n->embedding]->name, "fc7") == 0, "embedding layer is %s, expected fc7",
                  n->layers[n->embedding]->name);
        }
        /* buffer order: the classifier's tensors come first */
        Layer *last = n->layers[n->n_layers - 1];
        CHECK(last->param[0].offset == 0 || last->param[1].offset == 0, "the output layer is not at offset 0");
        net_free(n);
    }
}

static void test_bad_specs(void)
{
    char err[256] = "";
    NetSpec s = netspec_default(ARCH_VGG_F);
    s.input = 32; /* too small for three stride-2 poolings after a stride-4 conv */
    Net *n = net_create(&s, 2, 0, err, sizeof err);
    CHECK(n == NULL && strstr(err, "vgg_f") != NULL, "vgg_f at input 32 should be refused with a message: '%s'",
          err);
    CHECK(strstr(err, " layer ") != NULL, "the message names the layer that could not be built: '%s'", err);
    net_free(n);
    s = netspec_default(ARCH_RESNET50);
    s.width = 0;
    n = net_create(&s, 2, 0, err, sizeof err);
    CHECK(n == NULL && strstr(err, "width") != NULL, "width 0 should be refused naming width: '%s'", err);
    net_free(n);
    CHECK(arch_parse("vgg_face", &s.arch) == 0 && s.arch == ARCH_VGG_FACE, "arch_parse vgg_face");
    CHECK(arch_parse("vgg19", &s.arch) != 0, "arch_parse accepted vgg19");
}

typedef struct {
    Net *net;
    float *snapshot;
    size_t last;
    int calls, bad_order;
} PrefixLog;

static void on_ready(void *user, size_t n_ready)
{
    PrefixLog *g = user;
    if (n_ready <= g->last)
        g->bad_order++;
    memcpy(g->snapshot + g->last, g->net->grads + g->last, (n_ready - g->last) * sizeof(float));
    g->last = n_ready;
    g->calls++;
}

/* One training-mode forward/backward with cross-entropy; returns the loss. */
static float step_grads(Net *n, Pass *p, const float *x, const int *y, float *d_out)
{
    const float *logits = net_forward(n, p, x);
    float loss;
    char err[256] = "";
    CHECK(loss_softmax_ce_checked(logits, y, p->n, n->spec.classes, (float)p->n, d_out, &loss, err, sizeof err) == 0,
          "%s", err);
    net_backward(n, p, d_out, NULL);
    return loss;
}

static void test_determinism_and_prefix(Arch a, int input, float width, int fc)
{
    int batch = 4, k = 5;
    Net *n = make(a, input, width, fc, k, 0.5f, batch, 42);
    if (!n)
        return;
    float *x = random_input(n, batch, 5);
    int y[4] = {0, 3, 1, 4};
    float *d_out = malloc((size_t)batch * k * sizeof(float));
    float *g1 = malloc(n->n_params * sizeof(float));
    Pass p = {.n = batch, .training = 1, .seed = 9, .step = 1};
    float l1 = step_grads(n, &p, x, y, d_out);
    memcpy(g1, n->grads, n->n_params * sizeof(float));

    /* the same again with the prefix callback: identical bits, prefixes final when reported */
    PrefixLog log = {.net = n, .snapshot = calloc(n->n_params, sizeof(float))};
    p.grads_ready = on_ready;
    p.user = &log;
    float l2 = step_grads(n, &p, x, y, d_out);
    CHECK(l1 == l2, "%s: loss differs between identical runs (%g vs %g)", arch_name(a), l1, l2);
    CHECK(memcmp(g1, n->grads, n->n_params * sizeof(float)) == 0, "%s: gradients are not bit-identical",
          arch_name(a));
    CHECK(log.last == n->n_params, "%s: prefixes reached %zu of %zu", arch_name(a), log.last, n->n_params);
    CHECK(log.bad_order == 0, "%s: prefix reports went backwards", arch_name(a));
    CHECK(memcmp(log.snapshot, n->grads, n->n_params * sizeof(float)) == 0,
          "%s: a gradient changed after its prefix was reported final", arch_name(a));
    int nonzero = 0;
    for (size_t j = 0; j < n->n_params; j++)
        nonzero += n->grads[j] != 0;
    CHECK(nonzero > (int)(n->n_params / 4), "%s: only %d of %zu gradients are non-zero", arch_name(a), nonzero,
          n->n_params);

    /* a different step gives other dropout masks, hence other gradients (VGG has dropout) */
    if (a != ARCH_RESNET50) {
        p.grads_ready = NULL;
        p.step = 2;
        step_grads(n, &p, x, y, d_out);
        CHECK(memcmp(g1, n->grads, n->n_params * sizeof(float)) != 0,
              "%s: dropout ignores the step (same gradients)", arch_name(a));
    }

    /* accumulation: twice the same with accumulate_grads doubles the gradient */
    p.step = 1;
    p.grads_ready = NULL;
    step_grads(n, &p, x, y, d_out);
    p.accumulate_grads = 1;
    step_grads(n, &p, x, y, d_out);
    /* GEMMs may add into the gradient block by block, so compare against the
     * largest gradient, not element by element */
    double worst = 0, gmax = 0;
    for (size_t j = 0; j < n->n_params; j++) {
        worst = fmax(worst, fabs(n->grads[j] - 2 * g1[j]));
        gmax = fmax(gmax, fabs(g1[j]));
    }
    CHECK(worst < 1e-5 * gmax, "%s: accumulated gradients differ from twice one pass (%g of max %g)", arch_name(a),
          worst, gmax);
    p.accumulate_grads = 0;

    /* the embedding gradient adds linearly */
    size_t ne = net_embedding_size(n) * batch;
    float *d_emb = malloc(ne * sizeof(float));
    fill_uniform(d_emb, ne, 77);
    float *zero = calloc((size_t)batch * k, sizeof(float));
    net_forward(n, &p, x);
    net_backward(n, &p, zero, d_emb);
    float *ge = malloc(n->n_params * sizeof(float));
    memcpy(ge, n->grads, n->n_params * sizeof(float));
    net_backward(n, &p, d_out, d_emb);
    worst = 0;
    double norm_e = 0;
    for (size_t j = 0; j < n->n_params; j++) {
        worst = fmax(worst, fabs(n->grads[j] - (g1[j] + ge[j])));
        norm_e = fmax(norm_e, fabs(ge[j]));
    }
    CHECK(norm_e > 0, "%s: the embedding gradient reaches no parameter", arch_name(a));
    CHECK(worst < 1e-3 * (norm_e + 1e-3), "%s: embedding gradient is not added (max diff %g)", arch_name(a),
          worst);
    /* and it leaves the classifier alone */
    Layer *last = n->layers[n->n_layers - 1];
    for (int t = 0; t < last->n_params; t++)
        for (size_t j = 0; j < last->param[t].count; j++)
            CHECK(ge[last->param[t].offset + j] == 0, "%s: the embedding gradient reached the classifier",
                  arch_name(a));
    printf("%-9s input %d width %.3g: %zu params, deterministic, %d prefix reports, loss %.4f\n", arch_name(a),
           input, width, n->n_params, log.calls, l1);
    free(x);
    free(d_out);
    free(g1);
    free(ge);
    free(d_emb);
    free(zero);
    free(log.snapshot);
    net_free(n);
}

static void test_overfit(Arch a, int input, float width, int fc, int steps, float bound)
{
    int batch = 8, k = 4;
    Net *n = make(a, input, width, fc, k, 0.0f, batch, 7);
    if (!n)
        return;
    float *x = random_input(n, batch, 99);
    int y[8] = {0, 1, 2, 3, 3, 2, 1, 0};
    float *d_out = malloc((size_t)batch * k * sizeof(float));
    float *vel = calloc(n->n_params, sizeof(float));
    SgdConfig c = sgd_default();
    c.lr = 0.02f;
    c.weight_decay = 0;
    Pass p = {.n = batch, .training = 1, .seed = 1};
    float first = 0, loss = 0;
    for (int s = 0; s < steps; s++) {
        p.step = (uint64_t)s;
        loss = step_grads(n, &p, x, y, d_out);
        if (s == 0)
            first = loss;
        sgd_step(&c, sgd_lr(&c, s), n->params, n->grads, vel, n->n_params);
    }
    printf("%-9s overfit: loss %.4f -> %.4f after %d steps (bound %.3g)\n", arch_name(a), first, loss, steps, bound);
    CHECK(loss < bound, "%s did not overfit one batch: loss %g after %d steps, bound %g", arch_name(a), loss, steps,
          bound);
    CHECK(isfinite(loss), "%s: loss is not finite", arch_name(a));
    free(x);
    free(d_out);
    free(vel);
    net_free(n);
}

int main(void)
{
    layers_set_threads(2);
    test_published_counts();
    test_bad_specs();
    test_determinism_and_prefix(ARCH_VGG_F, 64, 0.125f, 32);
    test_determinism_and_prefix(ARCH_VGG_FACE, 32, 0.0625f, 32);
    test_determinism_and_prefix(ARCH_RESNET50, 32, 0.125f, 0);
    test_overfit(ARCH_VGG_F, 64, 0.25f, 64, 60, 0.05f);
    test_overfit(ARCH_RESNET50, 32, 0.125f, 0, 60, 0.05f);
    return test_finish("test_net");
}
