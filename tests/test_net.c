/* test_net.c - the three architectures: published parameter counts, shapes,
 * buffer order, gradient prefixes, determinism, the embedding gradient, and a
 * tiny network that overfits a batch with the SGD loop; the VGG variants
 * with batch norm and 0 or 1 hidden fc layers; batch norm synchronised over
 * two threads (Pass.reduce) against one pass over their whole batch; the
 * channel-blocked layout against NCHW. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "layers/layers.h"

/* The VGG variants: batch norm after every convolution, hidden fc layers. */
typedef struct {
    int batchnorm, fc_layers;
} Variant;

static Variant variant = {0, 2}; /* what make() builds for a VGG network */

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
    if (a != ARCH_RESNET50) {
        s.batchnorm = variant.batchnorm;
        s.fc_layers = variant.fc_layers;
    }
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

/* A training-mode forward/backward of the whole batch of n with the loss
 * normalised by n. */
static void step_grads_norm(Net *n, const float *x, const int *y, int batch, float *d_out)
{
    Pass p = {.n = batch, .training = 1, .seed = 1, .step = 1};
    step_grads(n, &p, x, y, d_out);
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

    /* a different step gives other dropout masks, hence other gradients (VGG
     * with a hidden fc layer has dropout) */
    if (a != ARCH_RESNET50 && n->spec.fc_layers > 0) {
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


/* The VGG variants: counts (computed layer by layer from the PyTorch
 * layouts), layer names, the embedding, refused settings. */
static void test_variants(void)
{
    static const struct {
        Arch arch;
        int input, channels, batchnorm, fc_layers, fc, classes;
        float width;
        size_t params;
        const char *embedding, *bn_layer;
    } want[] = {
        /* the small FER+ network (jobs/ferplus-small.cfg) */
        {ARCH_VGG_FACE, 48, 1, 1, 1, 512, 8, 0.25f, 991704, "fc6", "bn5_3"},
        /* the published sizes with batch norm: each conv bias becomes gamma and beta */
        {ARCH_VGG_FACE, 224, 3, 1, 2, 4096, 1000, 1.0f, 138361768, "fc7", "bn1_1"},
        {ARCH_VGG_F, 224, 3, 1, 1, 4096, 1000, 1.0f, 44054312, "fc6", "bn5"},
        /* no hidden layer: fc8 reads pool5 (256 x 6 x 6) */
        {ARCH_VGG_F, 224, 3, 0, 0, 4096, 1000, 1.0f, 11420392, "pool5", NULL},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        NetSpec s = netspec_default(want[i].arch);
        s.input = want[i].input;
        s.channels = want[i].channels;
        s.batchnorm = want[i].batchnorm;
        s.fc_layers = want[i].fc_layers;
        s.fc = want[i].fc;
        s.classes = want[i].classes;
        s.width = want[i].width;
        char err[256] = "";
        Net *n = net_create(&s, 1, 0, err, sizeof err);
        CHECK(n != NULL, "%s variant %zu: %s", arch_name(s.arch), i, err);
        if (!n)
            continue;
        CHECK(n->n_params == want[i].params, "%s input %d batchnorm %d fc_layers %d: %zu parameters, expected %zu",
              arch_name(s.arch), s.input, s.batchnorm, s.fc_layers, n->n_params, want[i].params);
        CHECK(strcmp(n->layers[n->embedding]->name, want[i].embedding) == 0, "%s variant %zu: embedding %s, expected %s",
              arch_name(s.arch), i, n->layers[n->embedding]->name, want[i].embedding);
        int fc8 = net_find_layer(n, "fc8");
        CHECK(fc8 == n->n_layers - 1, "%s variant %zu: the classifier is not fc8", arch_name(s.arch), i);
        if (want[i].bn_layer) {
            int b = net_find_layer(n, want[i].bn_layer);
            CHECK(b >= 0 && strcmp(n->layers[b]->ops->type, "batchnorm") == 0, "%s variant %zu lacks %s",
                  arch_name(s.arch), i, want[i].bn_layer);
            CHECK(b > 0 && n->layers[b - 1]->n_params == 1, "%s: the convolution before %s has a bias",
                  arch_name(s.arch), want[i].bn_layer);
        } else {
            CHECK(n->n_state == 0, "%s without batch norm has %zu state values", arch_name(s.arch), n->n_state);
        }
        printf("%-9s input %d batchnorm %d fc_layers %d: %zu parameters, embedding %s (%zu)\n", arch_name(s.arch),
               s.input, s.batchnorm, s.fc_layers, n->n_params, n->layers[n->embedding]->name, net_embedding_size(n));
        net_free(n);
    }
    static const struct {
        Arch arch;
        int batchnorm, fc_layers;
        const char *names;
    } bad[] = {{ARCH_RESNET50, 0, 0, "batchnorm"}, {ARCH_RESNET50, 1, 1, "fc_layers"},
               {ARCH_VGG_FACE, 0, 3, "fc_layers"}, {ARCH_VGG_F, 2, 2, "batchnorm"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        NetSpec s = netspec_default(bad[i].arch);
        s.batchnorm = bad[i].batchnorm;
        s.fc_layers = bad[i].fc_layers;
        char err[256] = "";
        Net *n = net_create(&s, 1, 0, err, sizeof err);
        CHECK(n == NULL && strstr(err, bad[i].names), "%s batchnorm %d fc_layers %d should be refused naming %s: '%s'",
              arch_name(bad[i].arch), bad[i].batchnorm, bad[i].fc_layers, bad[i].names, err);
        net_free(n);
    }
}

/* ------------------------------------------- batch norm over two threads */

/* Two threads sharing one batch, as two ranks of a group: Pass.reduce sums
 * their values at a barrier. */
typedef struct {
    pthread_barrier_t bar;
    double *slot[2];
    int len[2];
    double sum[1 << 14];
    int calls, mismatched;
} Pair;

typedef struct {
    Pair *pair;
    int rank;
    Net *net;
    const float *x;
    const int *y;
    int n, total, sync;
    float loss;
} Member;

static int pair_sum(void *user, double *v, int n)
{
    Member *m = user;
    Pair *g = m->pair;
    g->slot[m->rank] = v;
    g->len[m->rank] = n;
    pthread_barrier_wait(&g->bar);
    if (m->rank == 0) {
        g->calls++;
        if (g->len[0] != g->len[1] || n > (int)(sizeof g->sum / sizeof g->sum[0]))
            g->mismatched++;
        else
            for (int i = 0; i < n; i++)
                g->sum[i] = g->slot[0][i] + g->slot[1][i];
    }
    pthread_barrier_wait(&g->bar);
    memcpy(v, g->sum, (size_t)n * sizeof(double));
    pthread_barrier_wait(&g->bar); /* nobody writes sum before both have read it */
    return 0;
}

static float *member_dout;

/* One training step of a member's slice, its loss normalised by the whole batch. */
static void *member_step(void *arg)
{
    Member *m = arg;
    Pass p = {.n = m->n, .training = 1, .seed = 1, .step = 1};
    if (m->sync) {
        p.reduce = pair_sum;
        p.reduce_user = m;
    }
    int k = m->net->spec.classes;
    float *d_out = member_dout + (size_t)m->rank * m->n * k;
    const float *logits = net_forward(m->net, &p, m->x);
    char err[256] = "";
    CHECK(loss_softmax_ce_checked(logits, m->y, m->n, k, (float)m->total, d_out, &m->loss, err, sizeof err) == 0,
          "%s", err);
    net_backward(m->net, &p, d_out, NULL);
    return NULL;
}

static double max_rel(const float *a, const float *b, size_t n)
{
    double worst = 0, big = 1e-12;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)a[i] - b[i]));
        big = fmax(big, fabs((double)b[i]));
    }
    return worst / big;
}

/* Two halves of a batch, normalised together (sync) or each on its own,
 * against one pass over the whole batch: the logits, the summed parameter
 * gradients and the running statistics. Returns the worst relative error
 * of the three. */
static double halves_vs_whole(Arch a, int input, float width, int sync, double out[3])
{
    enum { B = 8, H = 4, K = 4 };
    Net *whole = make(a, input, width, 16, K, 0.0f, B, 3);
    Net *half[2] = {make(a, input, width, 16, K, 0.0f, H, 3), make(a, input, width, 16, K, 0.0f, H, 3)};
    if (!whole || !half[0] || !half[1]) {
        net_free(whole), net_free(half[0]), net_free(half[1]);
        return INFINITY;
    }
    float *x = random_input(whole, B, 21);
    int y[B] = {0, 1, 2, 3, 3, 1, 0, 2};
    float *d_out = malloc((size_t)B * K * sizeof(float));
    step_grads_norm(whole, x, y, B, d_out);
    member_dout = malloc((size_t)B * K * sizeof(float));
    Pair pair;
    memset(&pair, 0, sizeof pair);
    pthread_barrier_init(&pair.bar, NULL, 2);
    Member m[2];
    pthread_t th[2];
    size_t nx = (size_t)H * shape_size(whole->input);
    for (int r = 0; r < 2; r++) {
        m[r] = (Member){.pair = &pair, .rank = r, .net = half[r], .x = x + r * nx, .y = y + r * H, .n = H,
                        .total = B, .sync = sync};
        pthread_create(&th[r], NULL, member_step, &m[r]);
    }
    for (int r = 0; r < 2; r++)
        pthread_join(th[r], NULL);
    pthread_barrier_destroy(&pair.bar);
    CHECK(pair.mismatched == 0, "the two halves reduced different lengths");
    float *logits = malloc((size_t)B * K * sizeof(float)), *g = malloc(whole->n_params * sizeof(float));
    for (int r = 0; r < 2; r++)
        memcpy(logits + (size_t)r * H * K, half[r]->act[half[r]->n_layers - 1], (size_t)H * K * sizeof(float));
    for (size_t j = 0; j < whole->n_params; j++)
        g[j] = half[0]->grads[j] + half[1]->grads[j];
    out[0] = max_rel(logits, whole->act[whole->n_layers - 1], (size_t)B * K);
    out[1] = max_rel(g, whole->grads, whole->n_params);
    out[2] = fmax(max_rel(half[0]->state, whole->state, whole->n_state),
                  max_rel(half[1]->state, whole->state, whole->n_state));
    if (sync) {
        CHECK(memcmp(half[0]->state, half[1]->state, whole->n_state * sizeof(float)) == 0,
              "%s: the two halves hold different running statistics", arch_name(a));
        int n_bn = 0;
        for (int i = 0; i < whole->n_layers; i++)
            n_bn += strcmp(whole->layers[i]->ops->type, "batchnorm") == 0;
        CHECK(pair.calls == 2 * n_bn, "%s: %d reductions for %d batch-norm layers (expected two each)",
              arch_name(a), pair.calls, n_bn);
    } else {
        CHECK(pair.calls == 0, "reduce called without being set");
    }
    free(logits), free(g), free(x), free(d_out), free(member_dout);
    net_free(whole), net_free(half[0]), net_free(half[1]);
    return fmax(out[0], fmax(out[1], out[2]));
}

static void test_sync_bn(void)
{
    static const struct {
        Arch arch;
        int input;
        float width;
    } nets[] = {{ARCH_VGG_FACE, 32, 0.0625f}, {ARCH_VGG_F, 64, 0.125f}, {ARCH_RESNET50, 32, 0.0625f}};
    Variant keep = variant;
    variant = (Variant){1, 1};
    layers_set_threads(1); /* each thread its own pass */
    for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++) {
        double e_sync[3], e_local[3];
        double s = halves_vs_whole(nets[i].arch, nets[i].input, nets[i].width, 1, e_sync);
        double l = halves_vs_whole(nets[i].arch, nets[i].input, nets[i].width, 0, e_local);
        printf("%-9s two halves vs the whole batch: synchronised %.2e logits, %.2e gradients, %.2e statistics; "
               "each half alone %.2e, %.2e, %.2e\n", arch_name(nets[i].arch), e_sync[0], e_sync[1], e_sync[2],
               e_local[0], e_local[1], e_local[2]);
        /* float32 sums in another order: ~1e-6; the per-half statistics are a different computation */
        CHECK(s < 1e-4, "%s: synchronised batch norm over two halves differs from the whole batch by %.3g",
              arch_name(nets[i].arch), s);
        CHECK(l > 100 * s && l > 1e-3, "%s: the test cannot tell per-half statistics (%.3g) from synchronised (%.3g)",
              arch_name(nets[i].arch), l, s);
    }
    layers_set_threads(2);
    variant = keep;
}

/* The layouts (layers.h). A network that keeps activations channel-blocked
 * against the same network in NCHW (OCCKD_BLOCKED=0); and the blocked one
 * whose convolutions oneDNN refuses (OCCKD_DNNL_REFUSE=1: they run by
 * im2col on NCHW copies) against im2col in NCHW (OCCKD_DNNL=0). Each pair
 * runs the same arithmetic in another layout, so it must agree to rounding
 * (here it agrees bit for bit) on the logits, the embedding, every parameter
 * gradient (an embedding gradient and a second, accumulating pass included)
 * and the running statistics. Where the build has oneDNN, the blocked runs
 * keep some layers blocked. */
static void test_layouts(Arch a, int input, float width, int fc)
{
    enum { B = 4, RUNS = 4 };
    const char *blocked_env[RUNS] = {"1", "0", "1", "0"}, *refuse_env[RUNS] = {"0", "0", "1", "0"},
               *dnnl_env[RUNS] = {"1", "1", "1", "0"};
    Net *nets[RUNS] = {0};
    const float *logits[RUNS] = {0}, *emb[RUNS] = {0};
    int blocked[RUNS] = {0};
    float *x = NULL, *d_out = NULL, *d_emb = NULL;
    int y[B];
    for (int r = 0; r < RUNS; r++) {
        setenv("OCCKD_BLOCKED", blocked_env[r], 1);
        setenv("OCCKD_DNNL_REFUSE", refuse_env[r], 1);
        setenv("OCCKD_DNNL", dnnl_env[r], 1);
        Net *n = nets[r] = make(a, input, width, fc, 5, 0.0f, B, 77);
        if (!n)
            break;
        blocked[r] = net_blocked_layers(n);
        if (!x) {
            x = random_input(n, B, 78);
            d_out = calloc((size_t)B * 5, sizeof(float));
            d_emb = malloc((size_t)B * net_embedding_size(n) * sizeof(float));
            fill_uniform(d_emb, (size_t)B * net_embedding_size(n), 79);
            for (int i = 0; i < B; i++)
                y[i] = i % 5;
        }
        Pass p = {.n = B, .training = 1, .seed = 1, .step = 1};
        step_grads(n, &p, x, y, d_out);
        p.accumulate_grads = 1; /* a second micro-batch, with an embedding gradient */
        net_forward(n, &p, x);
        net_backward(n, &p, d_out, d_emb);
        Pass eval = {.n = B, .training = 0};
        logits[r] = net_forward(n, &eval, x);
        emb[r] = net_embedding(n);
    }
    unsetenv("OCCKD_BLOCKED");
    unsetenv("OCCKD_DNNL_REFUSE");
    unsetenv("OCCKD_DNNL");
#ifdef OCCKD_DNNL
    CHECK(blocked[0] > 0 && blocked[2] == blocked[0], "%s: %d and %d layers kept channel-blocked", arch_name(a),
          blocked[0], blocked[2]);
#endif
    CHECK(blocked[1] == 0 && blocked[3] == 0, "%s: OCCKD_BLOCKED=0 or OCCKD_DNNL=0 kept %d, %d layers blocked",
          arch_name(a), blocked[1], blocked[3]);
    for (int r = 0; r < RUNS && nets[r] && nets[r + 1]; r += 2) {
        Net *m = nets[r], *n = nets[r + 1];
        const char *what = r == 0 ? "oneDNN" : "im2col";
        double e[4] = {max_rel(logits[r + 1], logits[r], (size_t)B * 5),
                       max_rel(emb[r + 1], emb[r], (size_t)B * net_embedding_size(m)),
                       max_rel(n->grads, m->grads, m->n_params), max_rel(n->state, m->state, m->n_state)};
        printf("layouts %s, %s: NCHW against blocked (%d layers): logits %.2e, embedding %.2e, gradients %.2e, "
               "running statistics %.2e\n", arch_name(a), what, blocked[r], e[0], e[1], e[2], e[3]);
        for (int k = 0; k < 4; k++)
            CHECK(e[k] < 1e-5, "%s, %s: NCHW against the blocked layout: relative error %.2e (item %d)",
                  arch_name(a), what, e[k], k);
    }
    for (int r = 0; r < RUNS; r++)
        net_free(nets[r]);
    free(x);
    free(d_out);
    free(d_emb);
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
    test_variants();
    variant = (Variant){1, 1}; /* batch norm and one hidden layer (the small FER+ network's layout) */
    test_determinism_and_prefix(ARCH_VGG_FACE, 32, 0.0625f, 32);
    test_overfit(ARCH_VGG_FACE, 32, 0.125f, 64, 60, 0.05f);
    variant = (Variant){1, 0}; /* batch norm, the classifier on pool5 */
    test_determinism_and_prefix(ARCH_VGG_F, 64, 0.125f, 32);
    test_overfit(ARCH_VGG_F, 64, 0.25f, 64, 60, 0.05f);
    variant = (Variant){1, 1};
    test_layouts(ARCH_VGG_FACE, 32, 0.25f, 32);
    variant = (Variant){0, 2};
    test_layouts(ARCH_VGG_F, 64, 0.25f, 32);
    test_layouts(ARCH_RESNET50, 32, 0.25f, 0); /* 16 channels from conv1 on: its max pooling too */
    test_sync_bn();
    return test_finish("test_net");
}
