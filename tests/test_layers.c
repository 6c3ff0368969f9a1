/* test_layers.c - the non-GEMM layers (pooling, LRN, ReLU, dropout, batch
 * normalisation, global average pooling, residual add, flatten) and the
 * layer registry: gradient checks, forward values against hand computations
 * and PyTorch, accumulate semantics, dropout's rank independence; pooling,
 * batch norm and the add in the channel-blocked layout against NCHW. */
#include <omp.h>

#include "gradcheck.h"

extern const LayerOps conv_ops, fc_ops, pool_ops, lrn_ops, relu_ops, dropout_ops, batchnorm_ops, gap_ops, add_ops,
    flatten_ops;

#define NEAR(a, b, tol) (fabs((double)(a) - (double)(b)) <= (tol) * fmax(1.0, fabs((double)(b))))

/* ------------------------------------------------------------- test data */

typedef void (*FillFn)(float *v, size_t n, uint64_t seed);

/* Distinct values 0.05 apart in a random order: max pooling never meets a tie
 * within the checker's step (2h = 0.02). */
static void fill_spaced(float *v, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        v[i] = 0.05f * ((float)i - (float)n / 2);
    for (size_t i = n; i > 1; i--) {
        size_t j = philox4x32(seed, (uint32_t)i, 3, 5, 7).v[0] % i;
        float t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* Values of random sign with 0.1 <= |v| < 1: ReLU's kink stays out of reach. */
static void fill_away_from_zero(float *v, size_t n, uint64_t seed)
{
    fill_uniform(v, n, seed);
    for (size_t i = 0; i < n; i++)
        v[i] = (v[i] < 0 ? -1.0f : 1.0f) * (0.1f + 0.9f * fabsf(v[i]));
}

/* gradcheck_layer with chosen inputs: the same checks (gc_check_value), but
 * x filled by `fill`. Returns the number of failures. */
static int gradcheck_inputs(Layer *l, int n, const GradCheckOpts *opts, uint64_t seed, FillFn fill)
{
    GradCheckOpts o = *opts;
    o.h = o.h ? o.h : 1e-2f;
    o.rtol = o.rtol ? o.rtol : 2e-2f;
    o.atol = o.atol ? o.atol : 1e-3f;
    size_t ny = (size_t)n * shape_size(l->out), nx = (size_t)n * shape_size(l->in_shape[0]);
    float *x[1], *dx[1];
    x[0] = malloc(nx * sizeof(float));
    dx[0] = malloc(nx * sizeof(float));
    fill(x[0], nx, seed);
    float *y = malloc(ny * sizeof(float)), *r = malloc(ny * sizeof(float));
    fill_uniform(r, ny, seed + 77);
    Pass p = {.n = n, .training = o.training, .seed = seed, .step = 3};
    p.work_bytes = l->ops->workspace ? l->ops->workspace(l, n, (size_t)64 << 20) : 0;
    p.work = p.work_bytes ? malloc(p.work_bytes) : NULL;
    l->ops->forward(l, &p, (const float *const *)x, y);
    l->ops->backward(l, &p, (const float *const *)x, y, r, dx, 0);
    int failed = 0, skipped = 0;
    for (size_t j = 0; j < nx; j++)
        failed += gc_check_value(l, &p, x, y, r, ny, &x[0][j], dx[0][j], &o, &skipped);
    CHECK(skipped == 0, "%s: %d elements at kinks although the inputs avoid them", l->name, skipped);
    printf("gradcheck %-12s %-10s n=%d: %zu checked, %d at kinks, %d failed\n", l->ops->type, l->name, n, nx,
           skipped, failed);
    free(x[0]);
    free(dx[0]);
    free(y);
    free(r);
    free(p.work);
    return failed;
}

/* Runs a gradient check and destroys the layer. */
static void expect_gradcheck(Layer *l, int n, int training, uint64_t seed, FillFn fill)
{
    CHECK(l != NULL, "layer creation failed");
    if (!l)
        return;
    GradCheckOpts o = {.training = training};
    int failed = fill ? gradcheck_inputs(l, n, &o, seed, fill) : gradcheck_layer(l, n, &o, seed);
    CHECK(failed == 0, "%s (%s): %d gradient elements wrong", l->name, l->ops->type, failed);
    layer_destroy(l);
}

/* --------------------------------------------------------- gradient checks */

static void test_gradchecks(void)
{
    Shape s = {2, 5, 6};
    /* max pooling: symmetric, asymmetric padding, ceil mode */
    expect_gradcheck(pool_create("mp", s, POOL_MAX, 3, 2, 0, 0, 0, 0, 0, NULL, 0), 2, 1, 1, fill_spaced);
    expect_gradcheck(pool_create("mp_asym", s, POOL_MAX, 3, 2, 0, 1, 1, 0, 0, NULL, 0), 2, 1, 2, fill_spaced);
    expect_gradcheck(pool_create("mp_ceil", s, POOL_MAX, 3, 2, 1, 0, 0, 1, 1, NULL, 0), 2, 1, 3, fill_spaced);
    expect_gradcheck(pool_create("mp_k2", s, POOL_MAX, 2, 1, 1, 1, 1, 1, 1, NULL, 0), 2, 0, 4, fill_spaced);
    /* average pooling */
    expect_gradcheck(pool_create("ap", s, POOL_AVG, 3, 2, 1, 1, 1, 1, 0, NULL, 0), 2, 1, 5, NULL);
    expect_gradcheck(pool_create("ap_asym", s, POOL_AVG, 3, 2, 0, 1, 1, 0, 1, NULL, 0), 2, 1, 6, NULL);
    expect_gradcheck(pool_create("ap_ceil", (Shape){3, 4, 7}, POOL_AVG, 2, 2, 0, 0, 1, 0, 1, NULL, 0), 2, 1, 7, NULL);
    /* LRN: odd and even windows, large alpha so the cross-channel terms matter */
    expect_gradcheck(lrn_create("lrn5", (Shape){7, 2, 3}, 5, 2.0f, 0.75f, 1.0f, NULL, 0), 2, 1, 8, NULL);
    expect_gradcheck(lrn_create("lrn4", (Shape){6, 2, 2}, 4, 1.5f, 0.6f, 2.0f, NULL, 0), 2, 1, 9, NULL);
    expect_gradcheck(relu_create("relu", (Shape){3, 4, 4}, NULL, 0), 2, 1, 10, fill_away_from_zero);
    expect_gradcheck(dropout_create("drop", (Shape){4, 3, 3}, 0.4f, NULL, 0), 3, 1, 11, NULL);
    expect_gradcheck(dropout_create("drop_inf", (Shape){4, 3, 3}, 0.4f, NULL, 0), 3, 0, 12, NULL);
    /* batch normalisation: training and inference, with and without ReLU */
    expect_gradcheck(batchnorm_create("bn", (Shape){3, 3, 3}, 1e-5f, 0.1f, 0, NULL, 0), 3, 1, 13, NULL);
    expect_gradcheck(batchnorm_create("bn_relu", (Shape){3, 3, 3}, 1e-5f, 0.1f, 1, NULL, 0), 3, 1, 14, NULL);
    expect_gradcheck(batchnorm_create("bn_inf", (Shape){3, 3, 3}, 1e-5f, 0.1f, 0, NULL, 0), 3, 0, 15, NULL);
    expect_gradcheck(batchnorm_create("bn_inf_relu", (Shape){3, 3, 3}, 1e-5f, 0.1f, 1, NULL, 0), 3, 0, 16, NULL);
    expect_gradcheck(gap_create("gap", (Shape){3, 3, 4}, NULL, 0), 2, 1, 17, NULL);
    expect_gradcheck(add_create("add", (Shape){2, 3, 3}, 0, NULL, 0), 2, 1, 18, NULL);
    expect_gradcheck(add_create("add_relu", (Shape){2, 3, 3}, 1, NULL, 0), 2, 1, 19, NULL);
    expect_gradcheck(flatten_create("flat", (Shape){2, 3, 3}, NULL, 0), 2, 1, 20, NULL);
}

/* ------------------------------------------------------------------ pooling */

/* The documented semantics, written as plainly as possible: every window
 * position in padded coordinates, counted when inside the explicit padding,
 * summed or maxed when inside the input. */
static void pool_reference(const float *x, Shape in, Shape out, PoolKind kind, int k, int s, int pt, int pb, int pl,
                           int pr, float *y)
{
    for (int c = 0; c < in.c; c++)
        for (int oh = 0; oh < out.h; oh++)
            for (int ow = 0; ow < out.w; ow++) {
                double sum = 0, m = -INFINITY;
                int count = 0;
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++) {
                        int h = oh * s - pt + i, w = ow * s - pl + j;
                        if (h >= -pt && h < in.h + pb && w >= -pl && w < in.w + pr)
                            count++;
                        if (h >= 0 && h < in.h && w >= 0 && w < in.w) {
                            double v = x[((size_t)c * in.h + h) * in.w + w];
                            sum += v;
                            m = v > m ? v : m;
                        }
                    }
                y[((size_t)c * out.h + oh) * out.w + ow] = (float)(kind == POOL_MAX ? m : sum / count);
            }
}

static Shape pool_shape(Shape in, int k, int s, int pt, int pb, int pl, int pr, int ceil_mode)
{
    Layer *l = pool_create("p", in, POOL_MAX, k, s, pt, pb, pl, pr, ceil_mode, NULL, 0);
    Shape out = l ? l->out : (Shape){0, 0, 0};
    layer_destroy(l);
    return out;
}

static void run_forward(Layer *l, int n, const float *const *x, float *y, int training)
{
    Pass p = {.n = n, .training = training, .seed = 99, .step = 1};
    l->ops->forward(l, &p, x, y);
}

static void test_pool_shapes(void)
{
    /* VGG-f (CNN-F): pool1 3x3/2 pad (0,1,0,1) on 54x54, pool2 on 27, pool5 on 13 */
    Shape o = pool_shape((Shape){64, 54, 54}, 3, 2, 0, 1, 0, 1, 0);
    CHECK(o.c == 64 && o.h == 27 && o.w == 27, "VGG-f pool1: got (%d,%d,%d)", o.c, o.h, o.w);
    o = pool_shape((Shape){256, 27, 27}, 3, 2, 0, 0, 0, 0, 0);
    CHECK(o.h == 13 && o.w == 13, "VGG-f pool2: got %dx%d", o.h, o.w);
    o = pool_shape((Shape){256, 13, 13}, 3, 2, 0, 0, 0, 0, 0);
    CHECK(o.h == 6 && o.w == 6, "VGG-f pool5: got %dx%d", o.h, o.w);
    /* PyTorch's sizes: ceil mode adds a window, unless it would start in the padding */
    o = pool_shape((Shape){1, 54, 54}, 3, 2, 0, 0, 0, 0, 0);
    CHECK(o.h == 26, "54, k3 s2 floor: got %d", o.h);
    o = pool_shape((Shape){1, 54, 54}, 3, 2, 0, 0, 0, 0, 1);
    CHECK(o.h == 27, "54, k3 s2 ceil: got %d", o.h);
    o = pool_shape((Shape){1, 6, 6}, 3, 2, 0, 0, 0, 0, 1);
    CHECK(o.h == 3, "6, k3 s2 ceil: got %d", o.h);
    o = pool_shape((Shape){1, 5, 5}, 2, 2, 1, 1, 1, 1, 1);
    CHECK(o.h == 3, "5, k2 s2 pad1 ceil (last window would start in the padding): got %d", o.h);
    o = pool_shape((Shape){1, 112, 112}, 3, 2, 1, 1, 1, 1, 0);
    CHECK(o.h == 56, "ResNet-50 stem pool: got %d", o.h);
    o = pool_shape((Shape){1, 5, 8}, 3, 2, 0, 1, 1, 0, 0);
    CHECK(o.h == 2 && o.w == 4, "asymmetric: got %dx%d", o.h, o.w);
    /* invalid settings are refused */
    CHECK(pool_create("bad", (Shape){1, 2, 2}, POOL_MAX, 3, 1, 0, 0, 0, 0, 0, NULL, 0) == NULL, "kernel larger than input");
    CHECK(pool_create("bad", (Shape){1, 8, 8}, POOL_MAX, 3, 1, 2, 0, 0, 0, 0, NULL, 0) == NULL, "padding above k/2");
    CHECK(pool_create("bad", (Shape){1, 8, 8}, POOL_MAX, 3, 0, 0, 0, 0, 0, 0, NULL, 0) == NULL, "stride 0");
}

/* x = 1..16 in a 4x4 plane; expected values from torch.nn.functional
 * max_pool2d / avg_pool2d (count_include_pad=True). */
static void test_pool_values(void)
{
    Shape in = {1, 4, 4};
    float x[16], y[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)(i + 1);
    const float *xs[1] = {x};
    struct {
        PoolKind kind;
        int k, s, pad, ceil_mode, oh;
        float want[9];
    } cases[] = {
        {POOL_MAX, 2, 2, 0, 0, 2, {6, 8, 14, 16}},
        {POOL_AVG, 3, 2, 0, 1, 2, {6.0f, 7.5f, 12.0f, 13.5f}},
        {POOL_AVG, 3, 2, 1, 0, 2, {14.0f / 9, 30.0f / 9, 57.0f / 9, 11.0f}},
        {POOL_AVG, 3, 2, 1, 1, 3, {14.0f / 9, 30.0f / 9, 2.0f, 57.0f / 9, 11.0f, 6.0f, 4.5f, 7.5f, 4.0f}},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        int pd = cases[t].pad;
        Layer *l = pool_create("p", in, cases[t].kind, cases[t].k, cases[t].s, pd, pd, pd, pd, cases[t].ceil_mode, NULL, 0);
        CHECK(l && l->out.h == cases[t].oh && l->out.w == cases[t].oh, "case %zu: output size", t);
        if (!l)
            continue;
        run_forward(l, 1, xs, y, 0);
        for (int i = 0; i < cases[t].oh * cases[t].oh; i++)
            CHECK(NEAR(y[i], cases[t].want[i], 1e-6), "case %zu: y[%d] = %g, want %g", t, i, y[i],
                  cases[t].want[i]);
        layer_destroy(l);
    }
    /* max pooling over negative values with padding: padding never wins */
    for (int i = 0; i < 16; i++)
        x[i] = -(float)(i + 1);
    Layer *l = pool_create("p", in, POOL_MAX, 3, 2, 1, 1, 1, 1, 1, NULL, 0);
    run_forward(l, 1, xs, y, 0);
    float want[9] = {-1, -2, -4, -5, -6, -8, -13, -14, -16};
    for (int i = 0; i < 9; i++)
        CHECK(y[i] == want[i], "max with padding: y[%d] = %g, want %g", i, y[i], want[i]);
    layer_destroy(l);
}

/* Fast pooling against the plain reference over many geometries. */
static void test_pool_reference(void)
{
    struct {
        int h, w, k, s, pt, pb, pl, pr, ceil_mode;
    } g[] = {
        {54, 54, 3, 2, 0, 1, 0, 1, 0}, {13, 13, 3, 2, 0, 0, 0, 0, 0}, {7, 9, 3, 2, 1, 0, 0, 1, 1},
        {8, 5, 2, 2, 1, 1, 0, 0, 1},   {6, 6, 4, 3, 2, 1, 1, 2, 1},   {5, 7, 3, 1, 1, 1, 1, 1, 0},
        {9, 9, 5, 4, 2, 0, 1, 2, 1},
    };
    for (size_t t = 0; t < sizeof g / sizeof g[0]; t++)
        for (int kind = 0; kind < 2; kind++) {
            Shape in = {3, g[t].h, g[t].w};
            Layer *l = pool_create("p", in, (PoolKind)kind, g[t].k, g[t].s, g[t].pt, g[t].pb, g[t].pl, g[t].pr,
                                   g[t].ceil_mode, NULL, 0);
            CHECK(l != NULL, "geometry %zu", t);
            if (!l)
                continue;
            size_t nx = 2 * shape_size(in), ny = 2 * shape_size(l->out);
            float *x = malloc(nx * sizeof(float)), *y = malloc(ny * sizeof(float)), *r = malloc(ny * sizeof(float));
            fill_uniform(x, nx, 40 + t);
            const float *xs[1] = {x};
            run_forward(l, 2, xs, y, 1);
            int bad = 0;
            for (int n = 0; n < 2; n++) {
                pool_reference(x + n * shape_size(in), in, l->out, (PoolKind)kind, g[t].k, g[t].s, g[t].pt, g[t].pb,
                               g[t].pl, g[t].pr, r + n * shape_size(l->out));
            }
            for (size_t i = 0; i < ny; i++)
                bad += !NEAR(y[i], r[i], 1e-5);
            CHECK(bad == 0, "geometry %zu kind %d: %d outputs differ from the reference", t, kind, bad);
            free(x);
            free(y);
            free(r);
            layer_destroy(l);
        }
}

/* Ties go to the first window position (row-major). */
static void test_pool_ties(void)
{
    float x[9] = {1, 5, 5, 2, 5, 0, 3, 3, 1}, y[1], dy[1] = {2.0f}, dx[9];
    Layer *l = pool_create("p", (Shape){1, 3, 3}, POOL_MAX, 3, 1, 0, 0, 0, 0, 0, NULL, 0);
    const float *xs[1] = {x};
    float *dxs[1] = {dx};
    run_forward(l, 1, xs, y, 1);
    Pass p = {.n = 1, .training = 1};
    l->ops->backward(l, &p, xs, y, dy, dxs, 0);
    CHECK(y[0] == 5.0f, "max %g", y[0]);
    for (int i = 0; i < 9; i++)
        CHECK(dx[i] == (i == 1 ? 2.0f : 0.0f), "tie: d_x[%d] = %g", i, dx[i]);
    layer_destroy(l);
}

/* ------------------------------------------------- the channel-blocked layout */

/* Worst |a - b| / max(1, |b|) over n values. */
static double worst_near(const float *a, const float *b, size_t n)
{
    double w = 0;
    for (size_t i = 0; i < n; i++)
        w = fmax(w, fabs((double)a[i] - (double)b[i]) / fmax(1.0, fabs((double)b[i])));
    return w;
}

/* n samples of shape sh from NCHW into the blocked layout, or copied as
 * they are (malloc'ed either way). */
static float *in_layout(const float *v, int n, Shape sh, int blocked)
{
    if (blocked)
        return layout_copy(v, n, sh, 1);
    float *c = malloc((size_t)n * shape_size(sh) * sizeof(float));
    memcpy(c, v, (size_t)n * shape_size(sh) * sizeof(float));
    return c;
}

/* Layer `made` twice (same parameters and state): one in NCHW, one told by
 * in_blocked/out_blocked that its tensors are channel-blocked (layers.h).
 * Forward, backward overwriting and backward accumulating must agree within
 * tol (0: bit for bit), the parameter gradients too. */
static void expect_same_in_layouts(const char *what, Layer *(*made)(int k), int k, int training, double tol)
{
    enum { N = 2 };
    Layer *l[2] = {made(k), made(k)};
    CHECK(l[0] && l[1], "%s: cannot build the layer", what);
    if (!l[0] || !l[1]) {
        layer_destroy(l[0]);
        layer_destroy(l[1]);
        return;
    }
    const Layer *a = l[0];
    const int n_in = a->n_in;
    const size_t nx = (size_t)N * shape_size(a->in_shape[0]), ny = (size_t)N * shape_size(a->out);
    float *x[2][LAYER_MAX_INPUTS] = {{0}}, *y[2], *dy[2], *dx[2][LAYER_MAX_INPUTS] = {{0}};
    float *x0 = malloc(nx * n_in * sizeof(float)), *dy0 = malloc(ny * sizeof(float)), *dx0 = malloc(nx * sizeof(float));
    fill_uniform(x0, nx * n_in, 500 + (uint64_t)k);
    fill_uniform(dy0, ny, 600 + (uint64_t)k);
    fill_uniform(dx0, nx, 700 + (uint64_t)k);
    for (int b = 0; b < 2; b++) {
        layer_bind(l[b], 42);
        l[b]->in_blocked = b ? (1u << n_in) - 1 : 0;
        l[b]->out_blocked = b;
        for (int j = 0; j < n_in; j++)
            x[b][j] = in_layout(x0 + j * nx, N, a->in_shape[j], b);
        y[b] = malloc(ny * sizeof(float));
        dy[b] = in_layout(dy0, N, a->out, b);
    }
    double worst = 0;
    for (int pass = 0; pass < 2; pass++) { /* 0: d_x overwritten, 1: added to what it holds */
        for (int b = 0; b < 2; b++) {
            Pass p = {.n = N, .training = training, .seed = 99, .step = 1, .accumulate_grads = pass};
            l[b]->ops->forward(l[b], &p, (const float *const *)x[b], y[b]);
            for (int j = 0; j < n_in; j++) {
                free(dx[b][j]);
                dx[b][j] = in_layout(dx0, N, a->in_shape[j], b);
            }
            l[b]->ops->backward(l[b], &p, (const float *const *)x[b], y[b], dy[b], dx[b], pass ? (1u << n_in) - 1 : 0);
        }
        float *yb = layout_copy(y[1], N, a->out, 0);
        worst = fmax(worst, worst_near(yb, y[0], ny));
        free(yb);
        for (int j = 0; j < n_in; j++) {
            float *db = layout_copy(dx[1][j], N, a->in_shape[j], 0);
            worst = fmax(worst, worst_near(db, dx[0][j], nx));
            free(db);
        }
        for (int t = 0; t < a->n_params; t++)
            worst = fmax(worst, worst_near(l[1]->param[t].grad, l[0]->param[t].grad, a->param[t].count));
        for (int t = 0; t < a->n_state; t++)
            worst = fmax(worst, worst_near(l[1]->state[t].data, l[0]->state[t].data, a->state[t].count));
    }
    CHECK(worst <= tol, "%s: blocked against NCHW, worst relative difference %.3g (tolerance %.0g)", what, worst, tol);
    for (int b = 0; b < 2; b++) {
        for (int j = 0; j < n_in; j++) {
            free(x[b][j]);
            free(dx[b][j]);
        }
        free(y[b]);
        free(dy[b]);
        layer_unbind(l[b]);
        layer_destroy(l[b]);
    }
    free(x0);
    free(dy0);
    free(dx0);
}

/* Pooling geometries (as test_pool_reference's, 32 channels): k is
 * 2 * geometry + kind. */
static const struct {
    int h, w, k, s, pt, pb, pl, pr, ceil_mode;
} blocked_pools[] = {
    {54, 54, 3, 2, 0, 1, 0, 1, 0}, {13, 13, 3, 2, 0, 0, 0, 0, 0}, {7, 9, 3, 2, 1, 0, 0, 1, 1},
    {8, 5, 2, 2, 1, 1, 0, 0, 1},   {6, 6, 4, 3, 2, 1, 1, 2, 1},   {5, 7, 3, 1, 1, 1, 1, 1, 0},
    {9, 9, 5, 4, 2, 0, 1, 2, 1},   {12, 12, 2, 2, 0, 0, 0, 0, 0}, {7, 7, 2, 2, 0, 0, 0, 0, 1},
};

static Layer *blocked_pool(int k)
{
    int t = k / 2;
    return pool_create("p", (Shape){32, blocked_pools[t].h, blocked_pools[t].w}, (PoolKind)(k % 2),
                       blocked_pools[t].k, blocked_pools[t].s, blocked_pools[t].pt, blocked_pools[t].pb,
                       blocked_pools[t].pl, blocked_pools[t].pr, blocked_pools[t].ceil_mode, NULL, 0);
}

static Layer *blocked_bn(int relu) { return batchnorm_create("bn", (Shape){48, 5, 7}, 1e-5f, 0.1f, relu, NULL, 0); }

static Layer *blocked_add(int relu) { return add_create("add", (Shape){32, 4, 5}, relu, NULL, 0); }

/* Pooling (every geometry, max and average) and the add give the same bits
 * in both layouts; batch norm (training and inference, with and without its
 * ReLU) sums in another order and agrees to rounding. */
static void test_blocked_layout(void)
{
    char what[64];
    for (int k = 0; k < 2 * (int)(sizeof blocked_pools / sizeof blocked_pools[0]); k++) {
        snprintf(what, sizeof what, "pool geometry %d %s", k / 2, k % 2 ? "avg" : "max");
        expect_same_in_layouts(what, blocked_pool, k, 1, 0.0);
    }
    for (int relu = 0; relu < 2; relu++) {
        for (int training = 0; training < 2; training++) {
            snprintf(what, sizeof what, "batchnorm%s, %s", relu ? " relu" : "", training ? "training" : "inference");
            expect_same_in_layouts(what, blocked_bn, relu, training, 1e-6);
        }
        snprintf(what, sizeof what, "add%s", relu ? " relu" : "");
        expect_same_in_layouts(what, blocked_add, relu, 1, 0.0);
    }
}

/* --------------------------------------------------------------------- LRN */

/* Expected values from torch.nn.LocalResponseNorm(size, alpha=1, beta=0.75,
 * k=2) on x = (1, 2, -3, 4, 0.5) as channels. */
static void test_lrn_values(void)
{
    float x[5] = {1, 2, -3, 4, 0.5f}, y[5];
    const float want3[5] = {0.37739524f, 0.48205709f, -0.47523797f, 0.68986386f, 0.11125344f};
    const float want2[5] = {0.50297338f, 0.64732236f, -0.60263878f, 0.53831190f, 0.08808942f};
    const float *xs[1] = {x};
    for (int size = 2; size <= 3; size++) {
        Layer *l = lrn_create("lrn", (Shape){5, 1, 1}, size, 1.0f, 0.75f, 2.0f, NULL, 0);
        run_forward(l, 1, xs, y, 1);
        const float *want = size == 3 ? want3 : want2;
        for (int c = 0; c < 5; c++)
            CHECK(NEAR(y[c], want[c], 1e-6), "size %d: y[%d] = %.8f, want %.8f", size, c, y[c], want[c]);
        layer_destroy(l);
    }
    /* by hand, a non-0.75 beta: c = 0 with size 3 sees channels 0 and 1 */
    Layer *l = lrn_create("lrn", (Shape){5, 1, 1}, 3, 0.3f, 0.5f, 1.0f, NULL, 0);
    run_forward(l, 1, xs, y, 0);
    double s0 = 1.0 + 0.1 * (1.0 + 4.0), s2 = 1.0 + 0.1 * (4.0 + 9.0 + 16.0);
    CHECK(NEAR(y[0], 1.0 / sqrt(s0), 1e-6), "beta 0.5: y[0] = %g, want %g", y[0], 1.0 / sqrt(s0));
    CHECK(NEAR(y[2], -3.0 / sqrt(s2), 1e-6), "beta 0.5: y[2] = %g, want %g", y[2], -3.0 / sqrt(s2));
    layer_destroy(l);
    CHECK(lrn_create("bad", (Shape){5, 1, 1}, 0, 1, 1, 1, NULL, 0) == NULL, "size 0 refused");
}

/* ---------------------------------------------------------- batch norm */

static void test_batchnorm_values(void)
{
    /* x (N=2, C=2, 1, 2): channel 0 holds 1,2,3,4; channel 1 holds 10,10,10,14 */
    float x[8] = {1, 2, 10, 10, 3, 4, 10, 14}, y[8];
    Layer *l = batchnorm_create("bn", (Shape){2, 1, 2}, 1e-5f, 0.1f, 0, NULL, 0);
    layer_bind(l, 1);
    float *gamma = l->param[0].data, *beta = l->param[1].data;
    gamma[0] = 2.0f, gamma[1] = 1.0f, beta[0] = 0.5f, beta[1] = -1.0f;
    CHECK(l->state[0].data[0] == 0.0f && l->state[1].data[0] == 1.0f, "running stats start at 0 and 1");
    const float *xs[1] = {x};
    run_forward(l, 2, xs, y, 1);
    /* channel 0: mean 2.5, biased var 1.25, unbiased 5/3; channel 1: mean 11, var 3, unbiased 4 */
    const float *rm = l->state[0].data, *rv = l->state[1].data;
    CHECK(NEAR(rm[0], 0.25, 1e-6) && NEAR(rm[1], 1.1, 1e-6), "running_mean (%g, %g)", rm[0], rm[1]);
    CHECK(NEAR(rv[0], 0.9 + 0.1 * 5.0 / 3.0, 1e-6) && NEAR(rv[1], 1.3, 1e-6), "running_var (%g, %g)", rv[0],
          rv[1]);
    CHECK(NEAR(y[0], 2.0 * (1 - 2.5) / sqrt(1.25 + 1e-5) + 0.5, 1e-5), "y[0] = %g", y[0]);
    CHECK(NEAR(y[7], (14 - 11) / sqrt(3 + 1e-5) - 1.0, 1e-5), "y[7] = %g", y[7]);
    /* a second step moves the running statistics again */
    run_forward(l, 2, xs, y, 1);
    CHECK(NEAR(rm[1], 0.9 * 1.1 + 0.1 * 11, 1e-6), "running_mean after two steps %g", rm[1]);
    /* inference uses the running statistics */
    run_forward(l, 2, xs, y, 0);
    double want = 2.0 * (3 - rm[0]) / sqrt(rv[0] + 1e-5) + 0.5;
    CHECK(NEAR(y[4], want, 1e-5), "inference y[4] = %g, want %g", y[4], want);
    layer_unbind(l);
    layer_destroy(l);
    CHECK(batchnorm_create("bad", (Shape){2, 1, 1}, 0.0f, 0.1f, 0, NULL, 0) == NULL, "eps 0 refused");
}

/* Batch norm, pooling and LRN give bit-identical results on 1 and 2 threads. */
static void test_thread_determinism(void)
{
    Shape in = {8, 24, 24};
    Layer *ls[3] = {batchnorm_create("bn", in, 1e-5f, 0.1f, 1, NULL, 0), pool_create("mp", in, POOL_MAX, 3, 2, 1, 1, 1, 1, 0, NULL, 0),
                    lrn_create("lrn", in, 5, 1e-4f, 0.75f, 1.0f, NULL, 0)};
    int n = 32, saved = omp_get_max_threads();
    size_t nx = n * shape_size(in);
    float *x = malloc(nx * sizeof(float)), *dx[2] = {malloc(nx * sizeof(float)), malloc(nx * sizeof(float))};
    fill_uniform(x, nx, 5);
    for (int t = 0; t < 3; t++) {
        Layer *l = ls[t];
        layer_bind(l, 3);
        size_t ny = n * shape_size(l->out);
        float *y[2] = {malloc(ny * sizeof(float)), malloc(ny * sizeof(float))}, *dy = malloc(ny * sizeof(float));
        fill_uniform(dy, ny, 6);
        Pass p = {.n = n, .training = 1};
        p.work_bytes = l->ops->workspace ? l->ops->workspace(l, n, 1 << 26) : 0;
        p.work = p.work_bytes ? malloc(p.work_bytes) : NULL;
        const float *xs[1] = {x};
        for (int r = 0; r < 2; r++) {
            omp_set_num_threads(r + 1);
            l->ops->forward(l, &p, xs, y[r]);
            l->ops->backward(l, &p, xs, y[r], dy, &dx[r], 0);
        }
        CHECK(memcmp(y[0], y[1], ny * sizeof(float)) == 0, "%s: forward differs between 1 and 2 threads", l->name);
        CHECK(memcmp(dx[0], dx[1], nx * sizeof(float)) == 0, "%s: backward differs between 1 and 2 threads",
              l->name);
        free(y[0]);
        free(y[1]);
        free(dy);
        free(p.work);
        layer_unbind(l);
        layer_destroy(l);
    }
    omp_set_num_threads(saved);
    free(x);
    free(dx[0]);
    free(dx[1]);
}

/* ------------------------------------------------------------ accumulate */

/* backward with the accumulate bits set adds to what d_x (and, with
 * accumulate_grads, the parameter gradients) held before. */
static void expect_accumulates(Layer *l, int n, int training)
{
    layer_bind(l, 21);
    size_t ny = (size_t)n * shape_size(l->out);
    float *x[2] = {0}, *g[2] = {0}, *prior[2] = {0}, *acc[2] = {0};
    for (int i = 0; i < l->n_in; i++) {
        size_t nx = (size_t)n * shape_size(l->in_shape[i]);
        x[i] = malloc(nx * sizeof(float));
        g[i] = malloc(nx * sizeof(float));
        prior[i] = malloc(nx * sizeof(float));
        acc[i] = malloc(nx * sizeof(float));
        fill_uniform(x[i], nx, 30 + i);
        fill_uniform(prior[i], nx, 40 + i);
    }
    float *y = malloc(ny * sizeof(float)), *dy = malloc(ny * sizeof(float));
    fill_uniform(dy, ny, 50);
    Pass p = {.n = n, .training = training, .seed = 1, .step = 2};
    p.work_bytes = l->ops->workspace ? l->ops->workspace(l, n, 1 << 26) : 0;
    p.work = p.work_bytes ? malloc(p.work_bytes) : NULL;
    l->ops->forward(l, &p, (const float *const *)x, y);
    l->ops->backward(l, &p, (const float *const *)x, y, dy, g, 0);
    float pg[2][64] = {{0}};
    for (int t = 0; t < l->n_params; t++)
        memcpy(pg[t], l->param[t].grad, l->param[t].count * sizeof(float));
    for (unsigned bits = 1; bits < (1u << l->n_in); bits++) {
        for (int i = 0; i < l->n_in; i++)
            memcpy(acc[i], prior[i], (size_t)n * shape_size(l->in_shape[i]) * sizeof(float));
        p.accumulate_grads = 1;
        l->ops->backward(l, &p, (const float *const *)x, y, dy, acc, bits);
        for (int i = 0; i < l->n_in; i++) {
            size_t nx = (size_t)n * shape_size(l->in_shape[i]);
            int bad = 0;
            for (size_t j = 0; j < nx; j++) {
                float want = (bits >> i) & 1u ? prior[i][j] + g[i][j] : g[i][j];
                bad += !NEAR(acc[i][j], want, 1e-6);
            }
            CHECK(bad == 0, "%s: bits %u, d_x[%d]: %d elements differ from %s", l->name, bits, i, bad,
                  (bits >> i) & 1u ? "prior + gradient" : "the gradient");
        }
        for (int t = 0; t < l->n_params; t++)
            for (size_t j = 0; j < l->param[t].count; j++) {
                CHECK(NEAR(l->param[t].grad[j], pg[t][j] * 2.0f, 1e-6), "%s: accumulated d_%s[%zu]", l->name,
                      l->param[t].name, j);
                l->param[t].grad[j] = pg[t][j];
            }
    }
    /* no gradient wanted for the inputs: parameter gradients still come */
    if (l->n_params) {
        float *none[2] = {NULL, NULL};
        p.accumulate_grads = 0;
        memset(l->param[0].grad, 0, l->param[0].count * sizeof(float));
        l->ops->backward(l, &p, (const float *const *)x, y, dy, none, 0);
        CHECK(memcmp(l->param[0].grad, pg[0], l->param[0].count * sizeof(float)) == 0,
              "%s: parameter gradients without d_x", l->name);
    }
    for (int i = 0; i < l->n_in; i++) {
        free(x[i]);
        free(g[i]);
        free(prior[i]);
        free(acc[i]);
    }
    free(y);
    free(dy);
    free(p.work);
    layer_unbind(l);
    layer_destroy(l);
}

static void test_accumulate(void)
{
    Shape s = {3, 5, 5};
    expect_accumulates(pool_create("mp", s, POOL_MAX, 3, 2, 0, 1, 0, 1, 1, NULL, 0), 2, 1);
    expect_accumulates(pool_create("ap", s, POOL_AVG, 3, 2, 1, 0, 1, 0, 0, NULL, 0), 2, 1);
    expect_accumulates(lrn_create("lrn", s, 3, 1.0f, 0.75f, 1.0f, NULL, 0), 2, 1);
    expect_accumulates(relu_create("relu", s, NULL, 0), 2, 1);
    expect_accumulates(dropout_create("drop", s, 0.5f, NULL, 0), 2, 1);
    expect_accumulates(dropout_create("drop", s, 0.5f, NULL, 0), 2, 0);
    expect_accumulates(batchnorm_create("bn", s, 1e-5f, 0.1f, 1, NULL, 0), 2, 1);
    expect_accumulates(batchnorm_create("bn", s, 1e-5f, 0.1f, 0, NULL, 0), 2, 0);
    expect_accumulates(gap_create("gap", s, NULL, 0), 2, 1);
    expect_accumulates(add_create("add", s, 1, NULL, 0), 2, 1);
    expect_accumulates(add_create("add", s, 0, NULL, 0), 2, 1);
    expect_accumulates(flatten_create("flat", s, NULL, 0), 2, 1);
}

/* ---------------------------------------------------------------- dropout */

static void dropout_run(Layer *l, int n, const int64_t *ids, uint64_t step, int training, const float *x, float *y)
{
    Pass p = {.n = n, .training = training, .seed = 1234, .step = step, .sample_id = ids};
    const float *xs[1] = {x};
    l->ops->forward(l, &p, xs, y);
}

static void test_dropout(void)
{
    Shape s = {10, 20, 10}; /* 2000 per sample */
    size_t per = shape_size(s);
    float rate = 0.3f;
    Layer *l = dropout_create("drop", s, rate, NULL, 0);
    l->index = 7;
    float *x = malloc(6 * per * sizeof(float)), *y = malloc(6 * per * sizeof(float));
    float *y2 = malloc(6 * per * sizeof(float));
    fill_away_from_zero(x, 6 * per, 8);
    int64_t ids[6] = {10, 11, 12, 13, 14, 15};

    /* the dropped fraction is close to the rate; kept values are scaled */
    dropout_run(l, 6, ids, 5, 1, x, y);
    size_t dropped = 0, badscale = 0;
    for (size_t i = 0; i < 6 * per; i++) {
        if (y[i] == 0.0f)
            dropped++;
        else
            badscale += !NEAR(y[i], x[i] / (1.0f - rate), 1e-6);
    }
    double frac = (double)dropped / (6.0 * per);
    CHECK(fabs(frac - rate) < 0.02, "dropped fraction %.4f, rate %.2f", frac, rate);
    CHECK(badscale == 0, "%zu kept values not scaled by 1/(1-rate)", badscale);

    /* rank independence: a batch of 6 equals two batches of 3 with the same ids */
    dropout_run(l, 3, ids, 5, 1, x, y2);
    dropout_run(l, 3, ids + 3, 5, 1, x + 3 * per, y2 + 3 * per);
    CHECK(memcmp(y, y2, 6 * per * sizeof(float)) == 0, "masks depend on how the batch is split");

    /* the same position in a batch with other ids, another step or another
     * layer gets another mask */
    int64_t other[6] = {20, 21, 22, 23, 24, 25};
    dropout_run(l, 6, other, 5, 1, x, y2);
    CHECK(memcmp(y, y2, per * sizeof(float)) != 0, "sample id does not change the mask");
    dropout_run(l, 6, ids, 6, 1, x, y2);
    CHECK(memcmp(y, y2, per * sizeof(float)) != 0, "step does not change the mask");
    l->index = 8;
    dropout_run(l, 6, ids, 5, 1, x, y2);
    CHECK(memcmp(y, y2, per * sizeof(float)) != 0, "layer index does not change the mask");
    /* NULL ids mean 0..n-1 */
    int64_t seq[3] = {0, 1, 2};
    dropout_run(l, 3, NULL, 5, 1, x, y);
    dropout_run(l, 3, seq, 5, 1, x, y2);
    CHECK(memcmp(y, y2, 3 * per * sizeof(float)) == 0, "NULL sample ids differ from 0..n-1");

    /* inference is the identity */
    dropout_run(l, 6, ids, 5, 0, x, y);
    CHECK(memcmp(x, y, 6 * per * sizeof(float)) == 0, "inference changes the input");
    CHECK(dropout_create("bad", s, 1.0f, NULL, 0) == NULL && dropout_create("bad", s, -0.1f, NULL, 0) == NULL, "rates outside [0,1)");
    free(x);
    free(y);
    free(y2);
    layer_destroy(l);
}

/* --------------------------------------------------------------- others */

static void test_shape_ops(void)
{
    float x[12], x1[12], y[12];
    for (int i = 0; i < 12; i++)
        x[i] = (float)i, x1[i] = (float)(6 - 2 * i); /* x0 + x1 = 6 - i */
    const float *xs[2] = {x, x1};
    Layer *l = gap_create("gap", (Shape){3, 2, 2}, NULL, 0);
    CHECK(l->out.c == 3 && l->out.h == 1 && l->out.w == 1, "gap shape");
    run_forward(l, 1, xs, y, 0);
    CHECK(y[0] == 1.5f && y[1] == 5.5f && y[2] == 9.5f, "gap values %g %g %g", y[0], y[1], y[2]);
    layer_destroy(l);
    l = add_create("add", (Shape){3, 2, 2}, 1, NULL, 0);
    CHECK(l->n_in == 2, "add takes two inputs");
    run_forward(l, 1, xs, y, 0);
    CHECK(y[0] == 6.0f && y[5] == 1.0f && y[6] == 0.0f && y[11] == 0.0f, "add+relu values %g %g %g %g", y[0], y[5],
          y[6], y[11]);
    layer_destroy(l);
    l = flatten_create("flat", (Shape){3, 2, 2}, NULL, 0);
    CHECK(l->out.c == 12 && l->out.h == 1 && l->out.w == 1, "flatten shape");
    run_forward(l, 1, xs, y, 0);
    CHECK(memcmp(x, y, sizeof x) == 0, "flatten copies");
    layer_destroy(l);
    CHECK(relu_create("", (Shape){1, 1, 1}, NULL, 0) == NULL, "empty name refused");
    CHECK(gap_create("g", (Shape){0, 1, 1}, NULL, 0) == NULL, "empty shape refused");
}

static void test_registry(void)
{
    const LayerOps *all[] = {&conv_ops, &fc_ops,  &pool_ops, &lrn_ops, &relu_ops, &dropout_ops,
                             &batchnorm_ops, &gap_ops, &add_ops,  &flatten_ops};
    const char *names = layer_type_names();
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *t = all[i]->type;
        CHECK(layer_ops_find(t) == all[i], "layer_ops_find(\"%s\")", t);
        CHECK(strstr(names, t) != NULL, "\"%s\" missing from \"%s\"", t, names);
    }
    CHECK(layer_ops_find("pool") == &pool_ops && strcmp(layer_ops_find("pool")->type, "pool") == 0, "pool");
    CHECK(layer_ops_find("pooling") == NULL && layer_ops_find("") == NULL && layer_ops_find(NULL) == NULL,
          "unknown names give NULL");
    /* every layer type keeps its ops in the registry */
    Layer *l = batchnorm_create("bn", (Shape){2, 2, 2}, 1e-5f, 0.1f, 0, NULL, 0);
    CHECK(layer_ops_find(l->ops->type) == l->ops, "batchnorm ops registered");
    layer_destroy(l);
    layer_destroy(NULL);

    /* layer_create builds by name what the typed constructor builds */
    char err[256] = "", d[256];
    l = layer_create("pool", "p1", (Shape){3, 8, 8},
                     &(LayerArgs){.pool = POOL_MAX, .k = 3, .stride = 2, .pad = {0, 1, 0, 1}}, err, sizeof err);
    Layer *ref = pool_create("p1", (Shape){3, 8, 8}, POOL_MAX, 3, 2, 0, 1, 0, 1, 0, NULL, 0);
    CHECK(l && ref && l->ops == &pool_ops && l->out.h == ref->out.h && l->out.w == ref->out.w, "pool by name: %s",
          err);
    if (l) {
        layer_describe(l, d, sizeof d);
        CHECK(strcmp(d, "p1 pool (3,8,8) -> (3,4,4): max 3x3, stride 2, pad (0,1,0,1)") == 0, "describe: '%s'", d);
    }
    layer_destroy(l);
    layer_destroy(ref);
    l = layer_create("conv", "c1", (Shape){3, 9, 9},
                     &(LayerArgs){.out = 4, .k = 3, .pad = {1, 1, 1, 1}, .bias = 1, .relu = 1}, err, sizeof err);
    CHECK(l && l->n_params == 2 && l->out.c == 4 && l->out.h == 9, "conv by name: %s", err);
    if (l) {
        layer_describe(l, d, sizeof d);
        CHECK(strcmp(d, "c1 conv (3,9,9) -> (4,9,9): 4 out, kernel 3, stride 1, pad 1, bias, relu") == 0,
              "describe: '%s'", d);
    }
    layer_destroy(l);
    l = layer_create("gap", "g", (Shape){3, 2, 2}, NULL, err, sizeof err);
    CHECK(l && l->out.c == 3 && l->out.h == 1, "gap by name without settings: %s", err);
    if (l) {
        layer_describe(l, d, sizeof d);
        CHECK(strcmp(d, "g gap (3,2,2) -> (3,1,1)") == 0, "describe: '%s'", d);
    }
    layer_destroy(l);
    /* an unknown name is refused with the known ones listed */
    CHECK(layer_create("pooling", "p2", (Shape){1, 4, 4}, NULL, err, sizeof err) == NULL &&
              strstr(err, "\"pooling\"") && strstr(err, layer_type_names()),
          "unknown type: '%s'", err);
    /* invalid settings: NULL and a message naming the layer and the setting */
    CHECK(layer_create("conv", "c2", (Shape){1, 4, 4}, &(LayerArgs){.out = 2, .k = 3, .pad = {1, 0, 1, 0}}, err,
                       sizeof err) == NULL &&
              strstr(err, "conv layer c2") && strstr(err, "padding"),
          "uneven conv padding: '%s'", err);
    CHECK(pool_create("bad", (Shape){1, 8, 8}, POOL_MAX, 3, 0, 0, 0, 0, 0, 0, err, sizeof err) == NULL &&
              strstr(err, "pool layer bad") && strstr(err, "stride"),
          "stride 0: '%s'", err);
    CHECK(relu_create("", (Shape){1, 1, 1}, err, sizeof err) == NULL && strstr(err, "name"), "empty name: '%s'", err);
    CHECK(dropout_create("dr", (Shape){1, 1, 1}, 1.0f, err, sizeof err) == NULL && strstr(err, "rate"),
          "rate 1: '%s'", err);
}

int main(void)
{
    test_registry();
    test_pool_shapes();
    test_pool_values();
    test_pool_reference();
    test_pool_ties();
    test_blocked_layout();
    test_lrn_values();
    test_batchnorm_values();
    test_shape_ops();
    test_dropout();
    test_accumulate();
    test_thread_determinism();
    test_gradchecks();
    return test_finish("test_layers");
}
