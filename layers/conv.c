/* conv.c - 2-D convolution: by oneDNN where the build has it (conv_dnnl.c:
 * its own kernels for this CPU, in blocked layouts it converts to and from
 * inside the layer), else, or with OCCKD_DNNL=0 in the environment, or for a
 * shape oneDNN cannot plan, by im2col + cblas_sgemm, several images per GEMM,
 * as follows.
 *
 * x (N,C,H,W), weight (OC,C,K,K), bias (OC) -> y (N,OC,OH,OW),
 * OH = (H + 2 pad - K) / stride + 1 (floor), the same for OW.
 *
 * The batch is cut into groups of g images. For a group the column matrix
 * col (C*K*K, g*OH*OW) is built, one GEMM gives out (OC, g*OH*OW) = W col, and
 * one pass moves it to NCHW adding the bias and applying the ReLU. With g = 1
 * the GEMM writes y directly and bias + ReLU run in place; a 1x1 stride-1
 * unpadded convolution with g = 1 needs no column matrix at all (col = x).
 * Backward uses the same grouping: d_out (OC, g*OH*OW) from d_y (masked by
 * y > 0 for the fused ReLU), d_W (+)= d_out col^T, d_bias (+)= row sums of
 * d_out, d_col = W^T d_out and col2im into d_x.
 *
 * Scratch per group: col (C*K*K x g*OH*OW floats, none for the direct 1x1
 * path with g = 1) and out (OC x g*OH*OW floats, needed when g > 1 or for the
 * ReLU mask in backward).
 *
 * Threads: when the scratch allows, a large pass is cut into groups of images
 * that the members of one OpenMP team take one at a time (ConvDyn below), each
 * group summing its weight gradients into its own slot; the slots are added in
 * group order. Otherwise the pass is split over the team by images; each member
 * owns a contiguous block of images and its own scratch, and calls a
 * single-threaded sgemm (blas_one_thread in internal.h), so OpenBLAS's workers never
 * compete with the team for the cores. Member 0 sums weight gradients
 * straight into the gradient buffer, the others into private copies that are
 * added afterwards in member order: the same bits on every run with the same
 * thread count and scratch size.
 */
#include <cblas.h>
#include <omp.h>

#include "internal.h"

/* Groups grow while a GEMM stays within this many columns: wider GEMMs run no
 * faster, while the layout pass and the scratch grow with g. Layers with at
 * least this many output pixels run one image per GEMM. */
#define CONV_TARGET_COLS 4096

/* The dynamic split (ConvDyn) only where its groups keep GEMMs of at least
 * this many columns: narrower GEMMs lose more than the split gains. */
#define CONV_DYN_MIN_COLS 1024

typedef struct {
    Layer base;
    ConvGeom geom;
    int oc;
    int has_bias, relu;
    int direct; /* 1x1, stride 1, no padding: the input is its own column matrix */
    ConvDnnl *dnnl; /* NULL: im2col + sgemm only */
} Conv;

/* Scratch floats for a group of g images. */
static size_t conv_group_floats(const Conv *cv, int g)
{
    size_t hw = conv_geom_cols(&cv->geom), cols = (size_t)g * hw;
    size_t col = (cv->direct && g == 1) ? 0 : conv_geom_rows(&cv->geom) * cols;
    size_t out = (g > 1 || cv->relu) ? (size_t)cv->oc * cols : 0;
    return col + out;
}

/* How a pass is split: `threads` members of an OpenMP team each take a
 * contiguous block of images, in groups of up to g, with their own scratch.
 * Members other than the first sum their weight gradients into private
 * copies; all members sum bias gradients into private vectors. */
typedef struct {
    int threads, g;
} ConvPlan;

static size_t conv_weight_count(const Conv *cv) { return (size_t)cv->oc * conv_geom_rows(&cv->geom); }

static size_t conv_plan_floats(const Conv *cv, int threads, int g)
{
    size_t f = (size_t)threads * conv_group_floats(cv, g);
    if (threads > 1)
        f += (size_t)(threads - 1) * conv_weight_count(cv) + (size_t)threads * (size_t)cv->oc;
    return f;
}

/* The most threads (up to max_threads and n), then the largest useful group,
 * that fit `bytes`; threads 0 if not even one image fits. */
static ConvPlan conv_plan(const Conv *cv, int n, size_t bytes, int max_threads)
{
    size_t hw = conv_geom_cols(&cv->geom);
    int t = max_threads < n ? max_threads : n;
    for (; t >= 1; t--) {
        if (conv_plan_floats(cv, t, 1) * sizeof(float) > bytes)
            continue;
        int cap = (int)(CONV_TARGET_COLS / hw), per = (n + t - 1) / t;
        if (cap > per)
            cap = per;
        if (cap < 1)
            cap = 1;
        int g = 1;
        while (g < cap && conv_plan_floats(cv, t, g + 1) * sizeof(float) <= bytes)
            g++;
        return (ConvPlan){t, g};
    }
    return (ConvPlan){0, 0};
}

/* The dynamic split: the batch is cut into `groups` groups of up to g images
 * that the members of a team take one at a time (a member slowed down by
 * other work on the machine then does fewer groups instead of holding up the
 * rest). Each group sums its weight and bias gradients into its own slot,
 * and the slots are added in group order afterwards, so the bits do not
 * depend on which member took which group. The group count is a multiple of
 * the team size, at least two per member, with groups within the column
 * target where the batch allows. */
typedef struct {
    int threads, g, groups;
} ConvDyn;

static ConvDyn conv_dyn_shape(const Conv *cv, int n, int threads)
{
    size_t hw = conv_geom_cols(&cv->geom);
    int cap = (int)(CONV_TARGET_COLS / hw);
    cap = cap < 1 ? 1 : cap;
    int g = 1;
    for (int k = 2;; k++) {
        g = (n + threads * k - 1) / (threads * k);
        if (g <= cap || g == 1)
            break;
    }
    return (ConvDyn){threads, g, (n + g - 1) / g};
}

/* Images [*a, *b) of group i of the dynamic split of n images. */
static void conv_dyn_group(ConvDyn d, int n, int i, int *a, int *b)
{
    *a = i * d.g;
    *b = *a + d.g < n ? *a + d.g : n;
}

static size_t conv_dyn_floats(const Conv *cv, ConvDyn d)
{
    return (size_t)d.threads * conv_group_floats(cv, d.g) +
           (size_t)d.groups * (conv_weight_count(cv) + (size_t)cv->oc);
}

/* The dynamic split for a batch of n within `bytes`; threads 0 when the team
 * is a single thread, the batch too small to share out, or the scratch too
 * small. */
static ConvDyn conv_dyn_plan(const Conv *cv, int n, size_t bytes, int max_threads)
{
    if (max_threads < 2 || n < 2 * max_threads)
        return (ConvDyn){0, 0, 0};
    ConvDyn d = conv_dyn_shape(cv, n, max_threads);
    if ((size_t)d.g * conv_geom_cols(&cv->geom) < CONV_DYN_MIN_COLS)
        return (ConvDyn){0, 0, 0};
    return conv_dyn_floats(cv, d) * sizeof(float) <= bytes ? d : (ConvDyn){0, 0, 0};
}

static size_t conv_workspace(const Layer *l, int n, size_t budget)
{
    const Conv *cv = (const Conv *)l;
    n = n < 1 ? 1 : n;
    const int team = layer_team(&cv->base, n);
    ConvPlan pl = conv_plan(cv, n, budget, team);
    size_t bytes = (pl.threads ? conv_plan_floats(cv, pl.threads, pl.g) : conv_group_floats(cv, 1)) * sizeof(float);
    ConvDyn d = conv_dyn_plan(cv, n, budget, team);
    size_t dyn = d.threads ? conv_dyn_floats(cv, d) * sizeof(float) : 0;
    return dyn > bytes ? dyn : bytes; /* grows with the budget either way */
}

static ConvPlan conv_plan_for_pass(const Conv *cv, const Pass *p)
{
    ConvPlan pl = conv_plan(cv, p->n, p->work ? p->work_bytes : 0, layer_team(&cv->base, p->n));
    if (pl.threads < 1)
        layer_fatal(&cv->base, "scratch of %zu bytes is smaller than the %zu bytes one image needs", p->work_bytes,
                    conv_group_floats(cv, 1) * sizeof(float));
    return pl;
}

/* Images [a, b) of x (N,C,H,W) -> y (N,OC,OH,OW), groups of up to g, using
 * `scratch` (conv_group_floats(g) floats). */
static void conv_forward_range(const Conv *cv, const float *xs, float *y, int a, int b, int g, float *scratch)
{
    const ConvGeom *gm = &cv->geom;
    const Layer *l = &cv->base;
    const int oc = cv->oc, rows = (int)conv_geom_rows(gm);
    const size_t hw = conv_geom_cols(gm), in_size = shape_size(l->in_shape[0]), out_size = (size_t)oc * hw;
    const float *w = l->param[0].data, *bias = cv->has_bias ? l->param[1].data : NULL;
    float *col = scratch;
    for (int n0 = a; n0 < b; n0 += g) {
        const int gg = b - n0 < g ? b - n0 : g;
        const float *x = xs + (size_t)n0 * in_size;
        float *yn = y + (size_t)n0 * out_size;
        if (gg == 1) { /* GEMM straight into NCHW */
            const float *bm = x;
            if (!cv->direct) {
                im2col_batch(gm, x, 1, col, hw);
                bm = col;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, oc, (int)hw, rows, 1.0f, w, rows, bm, (int)hw,
                        0.0f, yn, (int)hw);
            bias_relu_nchw(yn, 1, oc, hw, bias, cv->relu);
        } else {
            const size_t ld = (size_t)gg * hw;
            float *out = col + (size_t)rows * ld;
            im2col_batch(gm, x, gg, col, ld);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, oc, (int)ld, rows, 1.0f, w, rows, col, (int)ld,
                        0.0f, out, (int)ld);
            cols_to_nchw(out, ld, gg, oc, hw, bias, cv->relu, yn);
        }
    }
}

/* The layouts of x and y (bits 0 and 1 set: channel-blocked). */
static int conv_layout(const Layer *l) { return (int)(l->in_blocked & 1u) | (l->out_blocked ? 2 : 0); }

/* A buffer of n samples of shape s, or a fatal error. */
static float *conv_temp(const Layer *l, int n, Shape s)
{
    float *t = malloc((size_t)n * shape_size(s) * sizeof(float));
    if (!t)
        layer_fatal(l, "out of memory for a layout copy of %d samples", n);
    return t;
}

static void conv_forward_nchw(Layer *l, const Pass *p, const float *const *xs, float *y);
static void conv_backward_nchw(Layer *l, const Pass *p, const float *const *xs, const float *y, const float *d_y,
                               float *const *d_xs, unsigned accumulate);

/* NCHW copy of a channel-blocked tensor (n samples of shape s), or the tensor
 * itself when blocked is 0 (*owned stays NULL). */
static const float *conv_as_nchw(const Layer *l, int n, Shape s, const float *t, int blocked, float **owned)
{
    *owned = NULL;
    if (!blocked || !t)
        return t;
    *owned = conv_temp(l, n, s);
    layout_to_nchw(t, n, s.c, (size_t)s.h * s.w, *owned, 0);
    return *owned;
}

/* x (N,C,H,W) -> y (N,OC,OH,OW), each in the layout the network chose for
 * it: oneDNN reads and writes both layouts; where it cannot run, the
 * im2col path runs on NCHW copies. */
static void conv_forward(Layer *l, const Pass *p, const float *const *xs, float *y)
{
    const Conv *cv = (const Conv *)l;
    const int lay = conv_layout(l);
    if (cv->dnnl && conv_dnnl_forward(cv->dnnl, p->n, lay, xs[0], l->param[0].data,
                                      cv->has_bias ? l->param[1].data : NULL, y) == 0)
        return;
    if (!lay) {
        conv_forward_nchw(l, p, xs, y);
        return;
    }
    float *xo, *yo = (lay & 2) ? conv_temp(l, p->n, l->out) : NULL;
    const float *xp[1] = {conv_as_nchw(l, p->n, l->in_shape[0], xs[0], lay & 1, &xo)};
    conv_forward_nchw(l, p, xp, yo ? yo : y);
    if (yo)
        layout_to_blocked(yo, p->n, l->out.c, (size_t)l->out.h * l->out.w, y, 0);
    free(xo);
    free(yo);
}

static void conv_forward_nchw(Layer *l, const Pass *p, const float *const *xs, float *y)
{
    const Conv *cv = (const Conv *)l;
    const ConvDyn d = conv_dyn_plan(cv, p->n, p->work ? p->work_bytes : 0, layer_team(&cv->base, p->n));
    if (d.threads) {
        const size_t per = conv_group_floats(cv, d.g);
        blas_one_thread();
#pragma omp parallel num_threads(d.threads)
        {
            float *scratch = p->work + (size_t)omp_get_thread_num() * per;
#pragma omp for schedule(dynamic, 1)
            for (int i = 0; i < d.groups; i++) {
                int a, b;
                conv_dyn_group(d, p->n, i, &a, &b);
                conv_forward_range(cv, xs[0], y, a, b, d.g, scratch);
            }
        }
        return;
    }
    const ConvPlan pl = conv_plan_for_pass(cv, p);
    if (pl.threads == 1) {
        conv_forward_range(cv, xs[0], y, 0, p->n, pl.g, p->work);
        return;
    }
    const size_t per = conv_group_floats(cv, pl.g);
    blas_one_thread();
#pragma omp parallel num_threads(pl.threads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        conv_forward_range(cv, xs[0], y, p->n * t / nt, p->n * (t + 1) / nt, pl.g, p->work + (size_t)t * per);
    }
}

/* Gradients accumulated by one member over its images. */
typedef struct {
    float *d_w;  /* (OC, C*K*K) */
    int acc_w;   /* add into d_w from the first group on */
    float *d_b;  /* (OC) or NULL */
    int acc_b;
    float *d_x;  /* (N,C,H,W) or NULL */
    int acc_x;
} ConvGrads;

/* Images [a, b): d_y -> d_x, and parameter gradients as ConvGrads says. */
static void conv_backward_range(const Conv *cv, const float *xs, const float *y, const float *d_y, int a, int b,
                                int g, float *scratch, const ConvGrads *gr)
{
    const ConvGeom *gm = &cv->geom;
    const Layer *l = &cv->base;
    const int oc = cv->oc, rows = (int)conv_geom_rows(gm);
    const size_t hw = conv_geom_cols(gm), in_size = shape_size(l->in_shape[0]), out_size = (size_t)oc * hw;
    const float *w = l->param[0].data;
    for (int n0 = a; n0 < b; n0 += g) {
        const int gg = b - n0 < g ? b - n0 : g;
        const size_t ld = (size_t)gg * hw;
        const int acc_w = gr->acc_w || n0 > a, acc_b = gr->acc_b || n0 > a;
        const float *x = xs + (size_t)n0 * in_size;
        const float *dyn = d_y + (size_t)n0 * out_size, *yn = y + (size_t)n0 * out_size;
        const int direct = cv->direct && gg == 1;
        float *col = scratch;                                 /* (rows, ld) unless direct */
        float *dout = col + (direct ? 0 : (size_t)rows * ld); /* (OC, ld) when needed */

        /* d_out (OC, ld): the gradient at the GEMM output */
        const float *dm = dyn;
        if (gg > 1) {
            nchw_to_cols(dyn, cv->relu ? yn : NULL, gg, oc, hw, dout, ld);
            dm = dout;
        } else if (cv->relu) {
            relu_mask(dyn, yn, out_size, dout);
            dm = dout;
        }
        if (gr->d_b)
            bias_grad(dm, 1, 0, oc, ld, ld, gr->d_b, acc_b);

        /* d_W (OC, rows) (+)= d_out (OC, ld) col^T (ld, rows) */
        const float *bm = x;
        if (!direct) {
            im2col_batch(gm, x, gg, col, ld);
            bm = col;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, oc, rows, (int)ld, 1.0f, dm, (int)ld, bm, (int)ld,
                    acc_w ? 1.0f : 0.0f, gr->d_w, rows);
        if (!gr->d_x)
            continue;

        /* d_col (rows, ld) = W^T (rows, OC) d_out (OC, ld) */
        float *dxn = gr->d_x + (size_t)n0 * in_size;
        if (direct) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, (int)hw, oc, 1.0f, w, rows, dm, (int)hw,
                        gr->acc_x ? 1.0f : 0.0f, dxn, (int)hw);
        } else {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, (int)ld, oc, 1.0f, w, rows, dm, (int)ld, 0.0f,
                        col, (int)ld);
            col2im_batch(gm, col, ld, gg, dxn, gr->acc_x);
        }
    }
}

/* Called by every member of a team: dst[j] = (acc ? dst[j] : 0) plus
 * parts[i * len + j] for i = 0 .. n_parts-1, added in that order (the same
 * bits on every run). The members share out j; the team's barrier ends it. */
static void sum_parts(float *dst, int acc, const float *parts, int n_parts, size_t len)
{
#pragma omp for schedule(static)
    for (size_t j = 0; j < len; j++) {
        float s = acc ? dst[j] : 0.0f;
        for (int i = 0; i < n_parts; i++)
            s += parts[(size_t)i * len + j];
        dst[j] = s;
    }
}

/* The dynamic split of backward (ConvDyn): group i sums into slot i, then
 * the slots are added in group order. */
static void conv_backward_dyn(const Conv *cv, const Pass *p, const float *x, const float *y, const float *d_y,
                              float *d_x, int acc_x, ConvDyn d)
{
    const Layer *l = &cv->base;
    float *d_w = l->param[0].grad, *d_b = cv->has_bias ? l->param[1].grad : NULL;
    const size_t per = conv_group_floats(cv, d.g), nw = conv_weight_count(cv);
    const int oc = cv->oc, acc_p = p->accumulate_grads;
    float *slot_w = p->work + (size_t)d.threads * per;
    float *slot_b = slot_w + (size_t)d.groups * nw;
    blas_one_thread();
#pragma omp parallel num_threads(d.threads)
    {
        float *scratch = p->work + (size_t)omp_get_thread_num() * per;
#pragma omp for schedule(dynamic, 1)
        for (int i = 0; i < d.groups; i++) {
            int a, b;
            conv_dyn_group(d, p->n, i, &a, &b);
            ConvGrads gr = {slot_w + (size_t)i * nw, 0, d_b ? slot_b + (size_t)i * oc : NULL, 0, d_x, acc_x};
            conv_backward_range(cv, x, y, d_y, a, b, d.g, scratch, &gr);
        }
        /* the implicit barrier above: every slot is complete */
        sum_parts(d_w, acc_p, slot_w, d.groups, nw);
        if (d_b)
            sum_parts(d_b, acc_p, slot_b, d.groups, (size_t)oc);
    }
}

/* d_y (N,OC,OH,OW) -> d_x (N,C,H,W), d_weight (OC,C,K,K), d_bias (OC); the
 * activations and their gradients in the layouts of the forward. */
static void conv_backward(Layer *l, const Pass *p, const float *const *xs, const float *y, const float *d_y,
                          float *const *d_xs, unsigned accumulate)
{
    const Conv *cv = (const Conv *)l;
    const int lay = conv_layout(l);
    float *d_x = d_xs ? d_xs[0] : NULL;
    const int acc_x = (int)(accumulate & 1u);
    if (cv->dnnl && conv_dnnl_backward(cv->dnnl, p->n, lay, xs[0], y, d_y, l->param[0].data, l->param[0].grad,
                                       cv->has_bias ? l->param[1].grad : NULL, p->accumulate_grads, d_x,
                                       acc_x) == 0)
        return;
    if (!lay) {
        conv_backward_nchw(l, p, xs, y, d_y, d_xs, accumulate);
        return;
    }
    float *xo, *yo, *dyo, *dxo = d_x && (lay & 1) ? conv_temp(l, p->n, l->in_shape[0]) : NULL;
    const float *xp[1] = {conv_as_nchw(l, p->n, l->in_shape[0], xs[0], lay & 1, &xo)};
    const float *yp = conv_as_nchw(l, p->n, l->out, y, lay & 2, &yo);
    const float *dyp = conv_as_nchw(l, p->n, l->out, d_y, lay & 2, &dyo);
    float *dxp[1] = {dxo ? dxo : d_x};
    conv_backward_nchw(l, p, xp, yp, dyp, d_xs ? dxp : NULL, dxo ? 0u : accumulate);
    if (dxo)
        layout_to_blocked(dxo, p->n, l->in_shape[0].c, (size_t)l->in_shape[0].h * l->in_shape[0].w, d_x, acc_x);
    free(xo);
    free(yo);
    free(dyo);
    free(dxo);
}

static void conv_backward_nchw(Layer *l, const Pass *p, const float *const *xs, const float *y, const float *d_y,
                               float *const *d_xs, unsigned accumulate)
{
    const Conv *cv = (const Conv *)l;
    const ConvPlan pl = conv_plan_for_pass(cv, p);
    float *d_w = l->param[0].grad, *d_b = cv->has_bias ? l->param[1].grad : NULL;
    float *d_x = d_xs ? d_xs[0] : NULL;
    const int acc_x = (int)(accumulate & 1u);
    const ConvDyn d = conv_dyn_plan(cv, p->n, p->work ? p->work_bytes : 0, layer_team(&cv->base, p->n));
    if (d.threads) {
        conv_backward_dyn(cv, p, xs[0], y, d_y, d_x, acc_x, d);
        return;
    }
    if (pl.threads == 1) {
        ConvGrads gr = {d_w, p->accumulate_grads, d_b, p->accumulate_grads, d_x, acc_x};
        conv_backward_range(cv, xs[0], y, d_y, 0, p->n, pl.g, p->work, &gr);
        return;
    }
    /* scratch: per-member groups, then weight gradients of members 1.., then
     * bias gradients of every member */
    const size_t per = conv_group_floats(cv, pl.g), nw = conv_weight_count(cv);
    float *part_w = p->work + (size_t)pl.threads * per;
    float *part_b = part_w + (size_t)(pl.threads - 1) * nw;
    const int oc = cv->oc;
    blas_one_thread();
#pragma omp parallel num_threads(pl.threads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        ConvGrads gr = {t == 0 ? d_w : part_w + (size_t)(t - 1) * nw, t == 0 && p->accumulate_grads,
                        d_b ? part_b + (size_t)t * oc : NULL, 0, d_x, acc_x};
        conv_backward_range(cv, xs[0], y, d_y, p->n * t / nt, p->n * (t + 1) / nt, pl.g,
                            p->work + (size_t)t * per, &gr);
#pragma omp barrier
        /* members' sums added in member order (member 0's weights are in
         * d_w already): the same bits every run */
        sum_parts(d_w, 1, part_w, nt - 1, nw);
        if (d_b)
            sum_parts(d_b, p->accumulate_grads, part_b, nt, (size_t)oc);
    }
}

static void conv_describe(const Layer *l, char *buf, size_t len)
{
    const Conv *cv = (const Conv *)l;
    snprintf(buf, len, "%d out, kernel %d, stride %d, pad %d%s%s", cv->oc, cv->geom.k, cv->geom.stride, cv->geom.pad,
             cv->has_bias ? ", bias" : "", cv->relu ? ", relu" : "");
}

static void conv_destroy(Layer *l) { conv_dnnl_free(((Conv *)l)->dnnl); }

/* oneDNN reads and writes either layout; the im2col path only NCHW. */
static int conv_layouts(const Layer *l) { return ((const Conv *)l)->dnnl ? LAYOUT_FREE : 0; }

const LayerOps conv_ops = {
    .type = "conv",
    .forward = conv_forward,
    .backward = conv_backward,
    .workspace = conv_workspace,
    .destroy = conv_destroy,
    .describe = conv_describe,
    .layouts = conv_layouts,
};

Layer *conv_create(const char *name, Shape in, int out_c, int k, int stride, int pad, int bias, int relu, char *err,
                   size_t errlen)
{
    layers_set_threads(0); /* GEMMs run single-threaded inside OpenMP teams (see threads.c) */
    if (out_c <= 0 || k <= 0 || stride <= 0 || pad < 0)
        return layer_refuse(&conv_ops, name, err, errlen,
                            "out_c %d, kernel %d and stride %d must be positive, padding %d >= 0", out_c, k, stride,
                            pad);
    if (in.c <= 0 || in.h <= 0 || in.w <= 0 || k > in.h + 2 * pad || k > in.w + 2 * pad)
        return layer_refuse(&conv_ops, name, err, errlen, "kernel %d does not fit the input (%d,%d,%d) padded by %d",
                            k, in.c, in.h, in.w, pad);
    ConvGeom gm = {in.c, in.h, in.w, k, stride, pad, (in.h + 2 * pad - k) / stride + 1,
                   (in.w + 2 * pad - k) / stride + 1};
    if ((double)in.c * k * k > 2147483647.0 || (double)out_c * gm.oh * gm.ow > 2147483647.0)
        return layer_refuse(&conv_ops, name, err, errlen, "sizes exceed the range of a GEMM dimension");
    Layer *l = layer_alloc(sizeof(Conv), &conv_ops, name, in, err, errlen);
    if (!l)
        return NULL;
    Conv *cv = (Conv *)l;
    cv->geom = gm;
    cv->oc = out_c;
    cv->has_bias = bias != 0;
    cv->relu = relu != 0;
    cv->direct = k == 1 && stride == 1 && pad == 0;
    l->out = (Shape){out_c, gm.oh, gm.ow};
    const int wd[4] = {out_c, in.c, k, k};
    tensor_describe(&l->param[0], "weight", 4, wd, in.c * k * k, 0.0f);
    l->n_params = 1;
    if (cv->has_bias) {
        tensor_describe(&l->param[1], "bias", 1, &out_c, 0, 0.0f);
        l->n_params = 2;
    }
    l->flops = 2.0 * out_c * in.c * k * k * gm.oh * gm.ow;
    /* OCCKD_DNNL=0 in the environment keeps the layer on im2col + sgemm */
    const char *env = getenv("OCCKD_DNNL");
    if (!(env && strcmp(env, "0") == 0))
        cv->dnnl = conv_dnnl_create(&gm, out_c, cv->has_bias, cv->relu);
    return l;
}
