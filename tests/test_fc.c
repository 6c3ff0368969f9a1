/* test_fc.c - the fully connected layer (layers/fc.c) against a naive
 * double-precision reference: y = x W^T + b (+ ReLU), and its gradients
 * d_x = d_out W, d_W = d_out^T x, d_b = column sums of d_out, where d_out is
 * d_y masked by y > 0 when the ReLU is fused.
 *
 * Covers flattened (C,H,W) inputs, batches of 1 to 9, ReLU on and off,
 * scratch that holds one row, a few rows or the whole batch, overwrite and
 * accumulate for d_x and for the parameter gradients, d_x not wanted,
 * bit-identical repeats and the central-difference gradient check; a larger
 * layer runs with teams of 1, 2 and 3 threads (split by columns).
 * Tolerance: |fast - ref| <= 1e-4 * (|ref| + rms(ref) + 1e-6).
 */
#include <omp.h>
#include <stdint.h>

#include "gradcheck.h"

#define TOL 1e-4
#define compare(...) compare_to_ref(TOL, __VA_ARGS__)

extern const LayerOps fc_ops; /* defined in layers/fc.c */

/* x (n, in), w (out, in), b (out) -> y (n, out) */
static void ref_forward(const float *x, const float *w, const float *b, int n, int in, int out, int relu, float *y)
{
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double s = b[o];
            for (int j = 0; j < in; j++)
                s += (double)x[(size_t)i * in + j] * w[(size_t)o * in + j];
            y[(size_t)i * out + o] = (float)(relu && s < 0 ? 0 : s);
        }
}

/* d_y[yi], or 0 where the fused ReLU did not pass (mask[yi] <= 0; mask NULL: none). */
static double masked_dy(const float *d_y, const float *mask, size_t yi)
{
    return (mask && !(mask[yi] > 0)) ? 0.0 : d_y[yi];
}

/* d_y masked by mask > 0 (mask NULL: none) -> d_x, d_w, d_b (overwritten) */
static void ref_backward(const float *x, const float *w, const float *d_y, const float *mask, int n, int in, int out,
                         float *d_x, float *d_w, float *d_b)
{
    for (int o = 0; o < out; o++) {
        double sb = 0;
        for (int i = 0; i < n; i++)
            sb += masked_dy(d_y, mask, (size_t)i * out + o);
        d_b[o] = (float)sb;
        for (int j = 0; j < in; j++) {
            double s = 0;
            for (int i = 0; i < n; i++)
                s += masked_dy(d_y, mask, (size_t)i * out + o) * x[(size_t)i * in + j];
            d_w[(size_t)o * in + j] = (float)s;
        }
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < in; j++) {
            double s = 0;
            for (int o = 0; o < out; o++)
                s += masked_dy(d_y, mask, (size_t)i * out + o) * w[(size_t)o * in + j];
            d_x[(size_t)i * in + j] = (float)s;
        }
}

static float *alloc_fill(size_t n, uint64_t seed)
{
    float *v = malloc((n ? n : 1) * sizeof(float));
    fill_uniform(v, n, seed);
    return v;
}

static void sum_into(float *out, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

static void check_case(Shape in_shape, int out, int n, int relu, uint64_t seed)
{
    char ctx[120];
    snprintf(ctx, sizeof ctx, "fc (%d,%d,%d) -> %d, n=%d relu=%d", in_shape.c, in_shape.h, in_shape.w, out, n, relu);
    Layer *l = fc_create("fc_t", in_shape, out, relu, NULL, 0);
    CHECK(l != NULL, "%s: rejected", ctx);
    if (!l)
        return;
    const int in = (int)shape_size(in_shape);
    const size_t nx = (size_t)n * in, ny = (size_t)n * out, nw = (size_t)out * in;
    float *x = alloc_fill(nx, seed), *w = alloc_fill(nw, seed + 1), *b = alloc_fill(out, seed + 2);
    float *dy = alloc_fill(ny, seed + 3), *base_x = alloc_fill(nx, seed + 4), *base_w = alloc_fill(nw, seed + 5);
    float *base_b = alloc_fill(out, seed + 6);
    float *y = malloc(ny * 4), *y_ref = malloc(ny * 4), *dx = malloc(nx * 4), *dx_ref = malloc(nx * 4);
    float *dw = malloc(nw * 4), *dw_ref = malloc(nw * 4), *db = malloc(out * 4), *db_ref = malloc(out * 4);
    float *ex = malloc(nx * 4), *ew = malloc(nw * 4), *eb = malloc(out * 4);
    l->param[0].data = w;
    l->param[0].grad = dw;
    l->param[1].data = b;
    l->param[1].grad = db;
    ref_forward(x, w, b, n, in, out, relu, y_ref);

    size_t full = l->ops->workspace(l, n, (size_t)1 << 30), one = l->ops->workspace(l, n, 0);
    CHECK(full == (relu ? ny * sizeof(float) : 0), "%s: workspace %zu for the whole batch", ctx, full);
    CHECK(one == (relu ? (size_t)out * sizeof(float) : 0), "%s: workspace %zu for one row", ctx, one);
    const size_t works[] = {full, one, one * 2 + 5};
    for (int wi = 0; wi < 3; wi++) {
        char c2[160];
        snprintf(c2, sizeof c2, "%s work %zu", ctx, works[wi]);
        Pass p = {.n = n, .training = 1, .work_bytes = works[wi]};
        p.work = malloc(works[wi] + 4);
        fill_nan(p.work, works[wi] / 4);
        const float *xs[1] = {x};
        float *dxs[1] = {dx}, *nodx[1] = {NULL};
        fill_nan(y, ny);
        l->ops->forward(l, &p, xs, y);
        compare("y", y, y_ref, ny, c2);
        ref_backward(x, w, dy, relu ? y : NULL, n, in, out, dx_ref, dw_ref, db_ref);

        fill_nan(dx, nx);
        fill_nan(dw, nw);
        fill_nan(db, out);
        p.accumulate_grads = 0;
        l->ops->backward(l, &p, xs, y, dy, dxs, 0);
        compare("d_x", dx, dx_ref, nx, c2);
        compare("d_w", dw, dw_ref, nw, c2);
        compare("d_b", db, db_ref, out, c2);

        /* determinism: the same pass again is bit-identical */
        float *dx1 = malloc(nx * 4), *dw1 = malloc(nw * 4);
        memcpy(dx1, dx, nx * 4);
        memcpy(dw1, dw, nw * 4);
        l->ops->backward(l, &p, xs, y, dy, dxs, 0);
        CHECK(memcmp(dx1, dx, nx * 4) == 0 && memcmp(dw1, dw, nw * 4) == 0, "%s: repeat not bit-identical", c2);
        free(dx1);
        free(dw1);

        memcpy(dx, base_x, nx * 4);
        memcpy(dw, base_w, nw * 4);
        memcpy(db, base_b, out * 4);
        p.accumulate_grads = 1;
        l->ops->backward(l, &p, xs, y, dy, dxs, 1u);
        sum_into(ex, base_x, dx_ref, nx);
        sum_into(ew, base_w, dw_ref, nw);
        sum_into(eb, base_b, db_ref, out);
        compare("d_x (accumulated)", dx, ex, nx, c2);
        compare("d_w (accumulated)", dw, ew, nw, c2);
        compare("d_b (accumulated)", db, eb, out, c2);

        fill_nan(dw, nw);
        fill_nan(db, out);
        p.accumulate_grads = 0;
        l->ops->backward(l, &p, xs, y, dy, nodx, 1u);
        compare("d_w (no d_x)", dw, dw_ref, nw, c2);
        compare("d_b (no d_x)", db, db_ref, out, c2);
        free(p.work);
    }
    float *all[] = {x, w, b, dy, base_x, base_w, base_b, y, y_ref, dx, dx_ref, dw, dw_ref, db, db_ref, ex, ew, eb};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    layer_destroy(l);
}

static void test_create(void)
{
    Layer *l = fc_create("fc6", (Shape){256, 6, 6}, 4096, 1, NULL, 0);
    CHECK(l != NULL, "VGG-f fc6 rejected");
    if (l) {
        CHECK(l->ops == &fc_ops && strcmp(l->ops->type, "fc") == 0, "wrong ops");
        CHECK(l->out.c == 4096 && l->out.h == 1 && l->out.w == 1, "out (%d,%d,%d)", l->out.c, l->out.h, l->out.w);
        CHECK(l->n_params == 2, "n_params %d", l->n_params);
        const Tensor *w = &l->param[0], *b = &l->param[1];
        CHECK(strcmp(w->name, "weight") == 0 && w->ndims == 2 && w->dims[0] == 4096 && w->dims[1] == 9216 &&
                  w->count == 4096u * 9216 && w->fan_in == 9216,
              "weight tensor wrong");
        CHECK(strcmp(b->name, "bias") == 0 && b->ndims == 1 && b->dims[0] == 4096 && b->init_value == 0.0f,
              "bias tensor wrong");
        CHECK(l->flops == 2.0 * 9216 * 4096, "flops %g", l->flops);
        layer_destroy(l);
    }
    CHECK(fc_create("f", (Shape){3, 2, 2}, 0, 0, NULL, 0) == NULL, "0 outputs accepted");
    CHECK(fc_create("f", (Shape){3, 0, 2}, 4, 0, NULL, 0) == NULL, "empty input accepted");
    CHECK(fc_create(NULL, (Shape){3, 2, 2}, 4, 0, NULL, 0) == NULL, "NULL name accepted");
}

static void test_gradcheck(void)
{
    Layer *l = fc_create("gc", (Shape){3, 2, 2}, 5, 0, NULL, 0);
    if (l) {
        int f = gradcheck_layer(l, 3, NULL, 21);
        CHECK(f == 0, "fc gradcheck: %d elements failed", f);
        layer_destroy(l);
    }
    l = fc_create("gc_relu", (Shape){7, 1, 1}, 6, 1, NULL, 0);
    if (l) {
        int f = gradcheck_layer(l, 4, NULL, 22);
        CHECK(f == 0, "fc+relu gradcheck: %d elements failed", f);
        layer_destroy(l);
    }
}

int main(void)
{
    test_create();
    const Shape shapes[] = {{3, 4, 5}, {10, 1, 1}, {64, 2, 2}};
    const int outs[] = {7, 1, 33};
    const int batches[] = {1, 4, 9};
    for (int s = 0; s < 3; s++)
        for (int bi = 0; bi < 3; bi++)
            for (int relu = 0; relu < 2; relu++)
                check_case(shapes[s], outs[s], batches[bi], relu, 100 * s + 10 * bi + relu);
    /* a layer big enough to split across a team: teams of 1, 2 and 3 */
    for (int team = 1; team <= 3; team++) {
        omp_set_num_threads(team);
        check_case((Shape){64, 4, 4}, 300, 9, 0, 1000 + team);
        check_case((Shape){64, 4, 4}, 300, 9, 1, 2000 + team);
    }
    omp_set_num_threads(2);
    test_gradcheck();
    return test_finish("test_fc");
}
