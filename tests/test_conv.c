/* test_conv.c - the fast convolution (layers/conv.c) against the plain
 * reference of conv_ref.h, forward and every gradient.
 *
 * Cases cover strides 1, 2, 4; paddings 0 to 3; 1x1 (the direct path at
 * stride 1, a strided copy at stride 2), 3x3, 5x5, 7x7 and 11x11 kernels;
 * square and non-square inputs; batches of 1, 3 and 5; bias and fused ReLU
 * on and off (mixed settings on the largest batch); teams of 1, 2 and 3
 * threads for passes large enough to be split; scratch sizes that force one
 * image per GEMM, groups (with a shorter last group) and the whole batch per
 * GEMM; overwrite and accumulate for d_x and for the parameter gradients, and
 * no d_x at all. Scratch starts as NaN, so stale scratch cannot pass.
 *
 * Tolerance: every element e of a result must satisfy
 *   |fast - ref| <= 1e-4 * (|ref| + rms(ref) + 1e-6),
 * where the reference sums in double. NaN never passes.
 *
 * `test_conv --bench` instead prints the speed of typical layers next to the
 * machine's sgemm rate (not run by ctest).
 */
#include <cblas.h>
#include <omp.h>
#include <stdint.h>

#include "conv_ref.h"
#include "gradcheck.h"

#define TOL 1e-4
#define compare(...) compare_to_ref(TOL, __VA_ARGS__)

extern const LayerOps conv_ops; /* defined in layers/conv.c */

typedef struct {
    int c, h, w, oc, k, stride, pad;
} ConvCase;

static const ConvCase cases[] = {
    {3, 9, 9, 4, 3, 1, 1},    /* 3x3 "same" */
    {5, 13, 11, 6, 3, 2, 0},  /* non-square, stride 2, no padding */
    {4, 12, 10, 8, 1, 1, 0},  /* 1x1 direct path */
    {6, 11, 13, 5, 1, 2, 0},  /* 1x1 stride 2 (ResNet shortcut) */
    {3, 9, 7, 4, 1, 1, 1},    /* 1x1 with padding: not the direct path */
    {3, 17, 15, 4, 5, 1, 2},  /* 5x5 */
    {2, 16, 14, 3, 5, 2, 2},  /* 5x5 stride 2 */
    {3, 20, 18, 4, 7, 2, 3},  /* 7x7 stride 2 pad 3 (ResNet stem) */
    {3, 35, 31, 6, 11, 4, 2}, /* 11x11 stride 4 (VGG-f conv1) */
    {4, 10, 11, 5, 3, 4, 1},  /* 3x3 stride 4 */
    {7, 6, 5, 9, 3, 1, 3},    /* padding 3 > k - 1: whole windows on padding */
    {3, 8, 8, 4, 7, 1, 0},    /* kernel almost the image */
    {2, 4, 4, 3, 5, 1, 2},    /* kernel larger than the image */
    {1, 1, 1, 3, 1, 1, 0},    /* a single pixel */
    {8, 5, 7, 16, 3, 1, 1},   /* more outputs than inputs */
    /* big enough (from n = 3 or 5) for the layer to split a pass across threads */
    {16, 12, 10, 24, 3, 1, 1},
    {96, 8, 10, 48, 1, 1, 0},
    {8, 15, 13, 24, 5, 2, 2},
};

static float *alloc_fill(size_t n, uint64_t seed)
{
    float *v = malloc((n ? n : 1) * sizeof(float));
    fill_uniform(v, n, seed);
    return v;
}

/* Everything one (case, n, bias, relu) combination needs. */
typedef struct {
    Layer *l;
    ConvRefGeom g;
    size_t nx, ny, nw, nb;
    float *x, *w, *b, *dy;            /* inputs */
    float *y, *dx, *dw, *db;          /* fast results */
    float *y_ref, *dx_ref, *dw_ref, *db_ref;
    float *base_x, *base_w, *base_b;  /* starting values for accumulation */
    float *exp_x, *exp_w, *exp_b;     /* base + reference */
    int ref_from_y;                   /* reference gradients masked by y, not y_ref */
} Fixture;

static int fixture_init(Fixture *f, const ConvCase *cc, int n, int bias, int relu, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    f->l = conv_create("conv_t", (Shape){cc->c, cc->h, cc->w}, cc->oc, cc->k, cc->stride, cc->pad, bias, relu, NULL, 0);
    CHECK(f->l != NULL, "conv_create rejected a valid case c=%d h=%d w=%d k=%d", cc->c, cc->h, cc->w, cc->k);
    if (!f->l)
        return -1;
    f->g = (ConvRefGeom){n, cc->c, cc->h, cc->w, cc->oc, cc->k, cc->stride, cc->pad, 0, 0};
    conv_ref_geom(&f->g);
    f->nx = (size_t)n * cc->c * cc->h * cc->w;
    f->ny = (size_t)n * cc->oc * f->g.oh * f->g.ow;
    f->nw = (size_t)cc->oc * cc->c * cc->k * cc->k;
    f->nb = (size_t)cc->oc;
    f->x = alloc_fill(f->nx, seed);
    f->w = alloc_fill(f->nw, seed + 1);
    f->b = alloc_fill(f->nb, seed + 2);
    f->dy = alloc_fill(f->ny, seed + 3);
    f->base_x = alloc_fill(f->nx, seed + 4);
    f->base_w = alloc_fill(f->nw, seed + 5);
    f->base_b = alloc_fill(f->nb, seed + 6);
    f->y = malloc(f->ny * sizeof(float));
    f->y_ref = malloc(f->ny * sizeof(float));
    f->dx = malloc(f->nx * sizeof(float) + 4);
    f->dx_ref = malloc(f->nx * sizeof(float) + 4);
    f->exp_x = malloc(f->nx * sizeof(float) + 4);
    f->dw = malloc(f->nw * sizeof(float));
    f->dw_ref = malloc(f->nw * sizeof(float));
    f->exp_w = malloc(f->nw * sizeof(float));
    f->db = malloc(f->nb * sizeof(float));
    f->db_ref = malloc(f->nb * sizeof(float));
    f->exp_b = malloc(f->nb * sizeof(float));
    f->l->param[0].data = f->w;
    f->l->param[0].grad = f->dw;
    if (bias) {
        f->l->param[1].data = f->b;
        f->l->param[1].grad = f->db;
    }
    return 0;
}

static void fixture_free(Fixture *f)
{
    float *all[] = {f->x, f->w, f->b, f->dy, f->y, f->dx, f->dw, f->db, f->y_ref, f->dx_ref, f->dw_ref, f->db_ref,
                    f->base_x, f->base_w, f->base_b, f->exp_x, f->exp_w, f->exp_b};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    layer_destroy(f->l);
}

static void sum_into(float *out, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

static void run_backward(Fixture *f, Pass *p, int with_dx, unsigned acc)
{
    const float *xs[1] = {f->x};
    float *dxs[1] = {with_dx ? f->dx : NULL};
    f->l->ops->backward(f->l, p, xs, f->y, f->dy, dxs, acc);
}

/* Forward and the four backward variants with one scratch size. */
static void check_with_work(Fixture *f, int n, int bias, int relu, size_t work_bytes, const char *ctx)
{
    Layer *l = f->l;
    Pass p = {0};
    p.n = n;
    p.training = 1;
    p.work_bytes = work_bytes;
    p.work = malloc(work_bytes ? work_bytes : 1);
    fill_nan(p.work, work_bytes / sizeof(float)); /* stale scratch must never leak into results */
    const float *xs[1] = {f->x};

    fill_nan(f->y, f->ny);
    l->ops->forward(l, &p, xs, f->y);
    compare("y", f->y, f->y_ref, f->ny, ctx);

    /* the reference masks d_y with the layer's own output, as the layer must;
     * it was computed with the reference output, redo it if a sign differs */
    int same_mask = 1;
    for (size_t i = 0; relu && i < f->ny; i++)
        same_mask &= (f->y[i] > 0.0f) == (f->y_ref[i] > 0.0f);
    if (!same_mask || f->ref_from_y) {
        conv_ref_backward(&f->g, f->x, f->w, f->dy, same_mask ? f->y_ref : f->y, f->dx_ref, f->dw_ref, f->db_ref);
        f->ref_from_y = !same_mask;
    }
    float *dy_copy = malloc(f->ny * sizeof(float)), *x_copy = malloc(f->nx * sizeof(float));
    memcpy(dy_copy, f->dy, f->ny * sizeof(float));
    memcpy(x_copy, f->x, f->nx * sizeof(float));

    /* A: overwrite everything (old contents NaN) */
    fill_nan(f->dx, f->nx);
    fill_nan(f->dw, f->nw);
    fill_nan(f->db, f->nb);
    p.accumulate_grads = 0;
    run_backward(f, &p, 1, 0);
    compare("d_x", f->dx, f->dx_ref, f->nx, ctx);
    compare("d_w", f->dw, f->dw_ref, f->nw, ctx);
    if (bias)
        compare("d_b", f->db, f->db_ref, f->nb, ctx);

    /* B: accumulate into d_x and into the parameter gradients */
    memcpy(f->dx, f->base_x, f->nx * sizeof(float));
    memcpy(f->dw, f->base_w, f->nw * sizeof(float));
    memcpy(f->db, f->base_b, f->nb * sizeof(float));
    p.accumulate_grads = 1;
    run_backward(f, &p, 1, 1u);
    sum_into(f->exp_x, f->base_x, f->dx_ref, f->nx);
    sum_into(f->exp_w, f->base_w, f->dw_ref, f->nw);
    sum_into(f->exp_b, f->base_b, f->db_ref, f->nb);
    compare("d_x (accumulated)", f->dx, f->exp_x, f->nx, ctx);
    compare("d_w (accumulated)", f->dw, f->exp_w, f->nw, ctx);
    if (bias)
        compare("d_b (accumulated)", f->db, f->exp_b, f->nb, ctx);

    /* C: no d_x wanted; parameter gradients overwritten */
    fill_nan(f->dw, f->nw);
    fill_nan(f->db, f->nb);
    p.accumulate_grads = 0;
    run_backward(f, &p, 0, 1u);
    compare("d_w (no d_x)", f->dw, f->dw_ref, f->nw, ctx);
    if (bias)
        compare("d_b (no d_x)", f->db, f->db_ref, f->nb, ctx);

    /* D: accumulate d_x, overwrite parameter gradients */
    memcpy(f->dx, f->base_x, f->nx * sizeof(float));
    fill_nan(f->dw, f->nw);
    run_backward(f, &p, 1, 1u);
    compare("d_x (accumulated, grads overwritten)", f->dx, f->exp_x, f->nx, ctx);
    compare("d_w (overwritten, d_x accumulated)", f->dw, f->dw_ref, f->nw, ctx);

    CHECK(memcmp(dy_copy, f->dy, f->ny * sizeof(float)) == 0, "%s: backward modified d_y", ctx);
    CHECK(memcmp(x_copy, f->x, f->nx * sizeof(float)) == 0, "%s: a pass modified x", ctx);
    free(dy_copy);
    free(x_copy);
    free(p.work);
}

/* One combination, all scratch sizes. */
static void check_combination(const ConvCase *cc, int n, int bias, int relu, uint64_t seed)
{
    Fixture f;
    if (fixture_init(&f, cc, n, bias, relu, seed))
        return;
    Layer *l = f.l;
    char ctx[160];
    snprintf(ctx, sizeof ctx, "in (%d,%d,%d,%d) oc %d k %d stride %d pad %d bias=%d relu=%d", n, cc->c, cc->h,
             cc->w, cc->oc, cc->k, cc->stride, cc->pad, bias, relu);
    conv_ref_forward(&f.g, f.x, f.w, bias ? f.b : NULL, relu, f.y_ref);
    conv_ref_backward(&f.g, f.x, f.w, f.dy, relu ? f.y_ref : NULL, f.dx_ref, f.dw_ref, f.db_ref);

    /* teams of 1, 2 and 3 threads (smaller passes never split); per team the
     * scratch for one image per GEMM, a little more, half way to the whole
     * batch, the whole batch */
    const int split = l->flops * n >= 2e6; /* large enough for conv.c to use a team */
    for (int team = split ? 1 : 2; team <= (split ? 3 : 2); team++) {
        omp_set_num_threads(team);
        const size_t one = l->ops->workspace(l, n, 0);
        const size_t all = l->ops->workspace(l, n, (size_t)1 << 30);
        const size_t mid = l->ops->workspace(l, n, (one + all) / 2);
        CHECK(one == l->ops->workspace(l, 1, (size_t)1 << 30), "%s: one-image scratch %zu differs from n=1's", ctx,
              one);
        CHECK(n == 1 || one < all, "%s: scratch does not grow with the batch: %zu %zu", ctx, one, all);
        CHECK(one <= mid && mid <= (one + all) / 2, "%s: workspace %zu outside [%zu, budget %zu]", ctx, mid, one,
              (one + all) / 2);
        const size_t works[] = {one, one + 12, mid, all};
        for (int i = 0; i < 4; i++) {
            if (i > 0 && works[i] == works[i - 1])
                continue;
            char c2[200];
            snprintf(c2, sizeof c2, "%s threads %d scratch %zu", ctx, team, works[i]);
            check_with_work(&f, n, bias, relu, works[i], c2);
        }
    }
    omp_set_num_threads(2);
    fixture_free(&f);
}

static void test_against_reference(void)
{
    const int batches[] = {1, 3, 5};
    int combos = 0;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int bi = 0; bi < 3; bi++)
            for (int flags = 0; flags < 4; flags++) {
                if (bi < 2 && (flags == 1 || flags == 2)) /* mixed bias/relu: the largest batch only */
                    continue;
                check_combination(&cases[ci], batches[bi], flags & 1, flags >> 1, 1000 * ci + 10 * bi + flags);
                combos++;
            }
    printf("reference: %d combinations of case, batch, bias and relu checked\n", combos);
}

/* Shapes, tensors, flops, argument checks. */
static void test_create(void)
{
    Layer *l = conv_create("conv1", (Shape){3, 227, 227}, 64, 11, 4, 0, 1, 1, NULL, 0);
    CHECK(l != NULL, "VGG-f conv1 rejected");
    if (l) {
        CHECK(l->ops == &conv_ops && strcmp(l->ops->type, "conv") == 0, "wrong ops");
        CHECK(strcmp(l->name, "conv1") == 0, "name %s", l->name);
        CHECK(l->out.c == 64 && l->out.h == 55 && l->out.w == 55, "out (%d,%d,%d)", l->out.c, l->out.h, l->out.w);
        CHECK(l->n_in == 1 && l->in_shape[0].c == 3 && l->in_shape[0].h == 227, "input not recorded");
        CHECK(l->n_params == 2, "n_params %d", l->n_params);
        const Tensor *w = &l->param[0], *b = &l->param[1];
        CHECK(strcmp(w->name, "weight") == 0 && w->ndims == 4 && w->dims[0] == 64 && w->dims[1] == 3 &&
                  w->dims[2] == 11 && w->dims[3] == 11 && w->count == 64u * 3 * 121 && w->fan_in == 3 * 121,
              "weight tensor wrong");
        CHECK(strcmp(b->name, "bias") == 0 && b->ndims == 1 && b->dims[0] == 64 && b->count == 64 &&
                  b->init_value == 0.0f,
              "bias tensor wrong");
        CHECK(l->flops == 2.0 * 64 * 3 * 121 * 55 * 55, "flops %g", l->flops);
        layer_destroy(l);
    }
    l = conv_create("c", (Shape){16, 13, 9}, 8, 3, 2, 1, 0, 0, NULL, 0);
    CHECK(l && l->n_params == 1 && l->out.h == 7 && l->out.w == 5, "no-bias layer or non-square output wrong");
    layer_destroy(l);
    CHECK(conv_create("c", (Shape){3, 8, 8}, 0, 3, 1, 1, 1, 0, NULL, 0) == NULL, "out_c 0 accepted");
    CHECK(conv_create("c", (Shape){3, 8, 8}, 4, 0, 1, 1, 1, 0, NULL, 0) == NULL, "kernel 0 accepted");
    CHECK(conv_create("c", (Shape){3, 8, 8}, 4, 3, 0, 1, 1, 0, NULL, 0) == NULL, "stride 0 accepted");
    CHECK(conv_create("c", (Shape){3, 8, 8}, 4, 3, 1, -1, 1, 0, NULL, 0) == NULL, "negative padding accepted");
    CHECK(conv_create("c", (Shape){3, 4, 8}, 4, 7, 1, 1, 1, 0, NULL, 0) == NULL, "kernel taller than the padded input accepted");
    CHECK(conv_create("c", (Shape){0, 8, 8}, 4, 3, 1, 1, 1, 0, NULL, 0) == NULL, "empty input accepted");
    CHECK(conv_create(NULL, (Shape){3, 8, 8}, 4, 3, 1, 1, 1, 0, NULL, 0) == NULL, "NULL name accepted");
    CHECK(conv_create("a_name_that_is_far_too_long_for_the_layer_struct", (Shape){3, 8, 8}, 4, 3, 1, 1, 1, 0, NULL, 0) ==
              NULL,
          "overlong name accepted");
}

/* The scratch request never exceeds a budget that holds one image, and
 * grows with the budget up to the batch. */
static void test_workspace(void)
{
    Layer *l = conv_create("c", (Shape){8, 12, 12}, 16, 3, 1, 1, 1, 1, NULL, 0);
    if (!l)
        return;
    size_t one = l->ops->workspace(l, 8, 0), prev = one;
    for (size_t budget = one; budget < 40 * one; budget += one / 3 + 1) {
        size_t w = l->ops->workspace(l, 8, budget);
        CHECK(w <= budget, "workspace %zu over budget %zu", w, budget);
        CHECK(w >= prev, "workspace shrank from %zu to %zu as the budget grew", prev, w);
        prev = w;
    }
    CHECK(prev > one, "workspace never grew past one image (%zu)", one);
    layer_destroy(l);
}

/* Two identical passes give bit-identical results, on a layer big enough for
 * the OpenMP loops and the threaded GEMM to engage. */
static void test_determinism(void)
{
    omp_set_num_threads(2);
    const ConvCase cc = {12, 16, 18, 16, 3, 1, 1};
    Fixture f;
    if (fixture_init(&f, &cc, 4, 1, 1, 99))
        return;
    Layer *l = f.l;
    const size_t budgets[] = {l->ops->workspace(l, 4, 0), l->ops->workspace(l, 4, (size_t)1 << 30)};
    for (int bi = 0; bi < 2; bi++) {
        Pass p = {.n = 4, .training = 1, .work_bytes = budgets[bi]};
        p.work = malloc(budgets[bi]);
        const float *xs[1] = {f.x};
        float *y2 = malloc(f.ny * sizeof(float)), *dx2 = malloc(f.nx * sizeof(float));
        float *dw2 = malloc(f.nw * sizeof(float)), *db2 = malloc(f.nb * sizeof(float));
        l->ops->forward(l, &p, xs, f.y);
        run_backward(&f, &p, 1, 0);
        memcpy(y2, f.y, f.ny * sizeof(float));
        memcpy(dx2, f.dx, f.nx * sizeof(float));
        memcpy(dw2, f.dw, f.nw * sizeof(float));
        memcpy(db2, f.db, f.nb * sizeof(float));
        for (int rep = 0; rep < 3; rep++) {
            l->ops->forward(l, &p, xs, f.y);
            run_backward(&f, &p, 1, 0);
            CHECK(memcmp(y2, f.y, f.ny * sizeof(float)) == 0, "forward not bit-identical (budget %d)", bi);
            CHECK(memcmp(dx2, f.dx, f.nx * sizeof(float)) == 0, "d_x not bit-identical (budget %d)", bi);
            CHECK(memcmp(dw2, f.dw, f.nw * sizeof(float)) == 0, "d_w not bit-identical (budget %d)", bi);
            CHECK(memcmp(db2, f.db, f.nb * sizeof(float)) == 0, "d_b not bit-identical (budget %d)", bi);
        }
        /* and they are right */
        conv_ref_forward(&f.g, f.x, f.w, f.b, 1, f.y_ref);
        compare("y (determinism layer)", f.y, f.y_ref, f.ny, "12x16x18 -> 16");
        conv_ref_backward(&f.g, f.x, f.w, f.dy, f.y, f.dx_ref, f.dw_ref, f.db_ref);
        compare("d_x (determinism layer)", f.dx, f.dx_ref, f.nx, "12x16x18 -> 16");
        compare("d_w (determinism layer)", f.dw, f.dw_ref, f.nw, "12x16x18 -> 16");
        compare("d_b (determinism layer)", f.db, f.db_ref, f.nb, "12x16x18 -> 16");
        free(y2);
        free(dx2);
        free(dw2);
        free(db2);
        free(p.work);
    }
    fixture_free(&f);
}

static void test_gradcheck(void)
{
    struct {
        Shape in;
        int oc, k, stride, pad, bias, relu, n;
    } g[] = {
        {{2, 5, 5}, 3, 3, 1, 1, 1, 1, 2},
        {{3, 6, 7}, 2, 3, 2, 1, 0, 0, 2},
        {{4, 3, 3}, 3, 1, 1, 0, 1, 1, 3},
        {{2, 7, 6}, 2, 5, 2, 2, 1, 0, 1},
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        Layer *l = conv_create("gc", g[i].in, g[i].oc, g[i].k, g[i].stride, g[i].pad, g[i].bias, g[i].relu, NULL, 0);
        if (!l)
            continue;
        int failed = gradcheck_layer(l, g[i].n, NULL, 500 + i);
        CHECK(failed == 0, "gradcheck of conv config %zu: %d elements failed", i, failed);
        layer_destroy(l);
    }
}

/* ------------------------------------------------------------- benchmark */

static void bench_sgemm(void)
{
    const int m = 1024, n = 2048, k = 1024;
    float *a = alloc_fill((size_t)m * k, 1), *b = alloc_fill((size_t)k * n, 2), *c = malloc((size_t)m * n * 4);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n);
    double t0 = clock_seconds();
    int reps = 5;
    for (int r = 0; r < reps; r++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n);
    double dt = (clock_seconds() - t0) / reps;
    printf("sgemm %dx%dx%d: %.1f GFLOP/s\n", m, n, k, 2.0 * m * n * k / dt * 1e-9);
    free(a);
    free(b);
    free(c);
}

/* Seconds per forward (*tf) and backward (*tb) pass of l over n random
 * samples with the scratch the layer asks for within budget, averaged over
 * reps after one warm-up pass of each; the scratch in bytes. Destroys l. */
static size_t time_layer(Layer *l, int n, size_t budget, int reps, double *tf, double *tb)
{
    layer_bind(l, 3);
    size_t nx = (size_t)n * shape_size(l->in_shape[0]), ny = (size_t)n * shape_size(l->out);
    float *x = alloc_fill(nx, 4), *y = malloc(ny * 4), *dy = alloc_fill(ny, 5), *dx = malloc(nx * 4);
    Pass p = {.n = n, .training = 1};
    p.work_bytes = l->ops->workspace(l, n, budget);
    p.work = malloc(p.work_bytes + 4);
    const float *xs[1] = {x};
    float *dxs[1] = {dx};
    l->ops->forward(l, &p, xs, y);
    l->ops->backward(l, &p, xs, y, dy, dxs, 0);
    double t0 = clock_seconds();
    for (int r = 0; r < reps; r++)
        l->ops->forward(l, &p, xs, y);
    *tf = (clock_seconds() - t0) / reps;
    t0 = clock_seconds();
    for (int r = 0; r < reps; r++)
        l->ops->backward(l, &p, xs, y, dy, dxs, 0);
    *tb = (clock_seconds() - t0) / reps;
    free(x);
    free(y);
    free(dy);
    free(dx);
    free(p.work);
    layer_unbind(l);
    layer_destroy(l);
    return p.work_bytes;
}

static void bench_layer(const char *name, Shape in, int oc, int k, int s, int pad, int n, size_t budget)
{
    Layer *l = conv_create(name, in, oc, k, s, pad, 1, 1, NULL, 0);
    if (!l)
        return;
    double fl = l->flops * n, tf, tb;
    size_t scratch = time_layer(l, n, budget, 3, &tf, &tb);
    printf("%-10s n=%-3d scratch %6.1f MiB  forward %6.1f ms %5.1f GFLOP/s  backward %6.1f ms %5.1f GFLOP/s\n",
           name, n, scratch / 1048576.0, tf * 1e3, fl / tf * 1e-9, tb * 1e3, 2 * fl / tb * 1e-9);
}

static void bench_fc(const char *name, Shape in, int out, int n)
{
    Layer *l = fc_create(name, in, out, 1, NULL, 0);
    if (!l)
        return;
    double fl = l->flops * n, tf, tb;
    time_layer(l, n, (size_t)256 << 20, 1, &tf, &tb);
    printf("%-10s n=%-3d                   forward %6.1f ms %5.1f GFLOP/s  backward %6.1f ms %5.1f GFLOP/s\n", name,
           n, tf * 1e3, fl / tf * 1e-9, tb * 1e3, 2 * fl / tb * 1e-9);
}

static int bench(int argc, char **argv)
{
    size_t budget = (argc > 2 ? (size_t)atol(argv[2]) : 256) << 20;
    int n = argc > 3 ? atoi(argv[3]) : 16;
    bench_sgemm();
    bench_layer("vggf.c1", (Shape){3, 224, 224}, 64, 11, 4, 2, n, budget);
    bench_layer("vggf.c2", (Shape){64, 27, 27}, 256, 5, 1, 2, n, budget);
    bench_layer("vggf.c3", (Shape){256, 13, 13}, 256, 3, 1, 1, n, budget);
    bench_layer("vgg.c1_2", (Shape){64, 112, 112}, 64, 3, 1, 1, n / 4 ? n / 4 : 1, budget);
    bench_layer("vgg.c3_2", (Shape){256, 56, 56}, 256, 3, 1, 1, n / 4 ? n / 4 : 1, budget);
    bench_layer("vgg.c5_2", (Shape){512, 14, 14}, 512, 3, 1, 1, n, budget);
    bench_layer("rn.stem", (Shape){3, 224, 224}, 64, 7, 2, 3, n / 4 ? n / 4 : 1, budget);
    bench_layer("rn.1x1a", (Shape){256, 56, 56}, 64, 1, 1, 0, n / 4 ? n / 4 : 1, budget);
    bench_layer("rn.3x3b", (Shape){64, 56, 56}, 64, 3, 1, 1, n / 4 ? n / 4 : 1, budget);
    bench_layer("rn.1x1c", (Shape){512, 7, 7}, 2048, 1, 1, 0, n, budget);
    bench_layer("rn.3x3d", (Shape){512, 7, 7}, 512, 3, 1, 1, n, budget);
    bench_layer("rn.down", (Shape){1024, 14, 14}, 2048, 1, 2, 0, n, budget);
    bench_layer("small4x4", (Shape){64, 4, 4}, 64, 3, 1, 1, n, budget);
    bench_layer("small8x8", (Shape){32, 8, 8}, 32, 3, 1, 1, n, budget);
    bench_fc("fc6", (Shape){256, 6, 6}, 4096, n);
    bench_fc("fc7", (Shape){4096, 1, 1}, 4096, n);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--bench") == 0)
        return bench(argc, argv);
    double t0 = clock_seconds();
    test_create();
    test_workspace();
    test_against_reference();
    double t1 = clock_seconds();
    test_determinism();
    double t2 = clock_seconds();
    test_gradcheck();
    printf("seconds: reference %.2f, determinism %.2f, gradcheck %.2f\n", t1 - t0, t2 - t1, clock_seconds() - t2);
    return test_finish("test_conv");
}
