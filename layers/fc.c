/* fc.c - fully connected layer with an optional fused ReLU.
 *
 * x (N, IN) (any (C,H,W) input, flattened) , weight (OUT, IN), bias (OUT)
 * -> y (N, OUT) = x W^T + b, shaped (OUT,1,1) per sample.
 *
 * Backward: d_out = d_y masked by y > 0 when the ReLU is fused (in scratch,
 * in groups of rows that fit it), d_W (+)= d_out^T x, d_b (+)= column sums of
 * d_out, d_x (+)= d_out W.
 *
 * Large passes are split over an OpenMP team, each member calling a
 * single-threaded sgemm (see blas_one_thread in internal.h): forward and d_W, d_b by
 * output columns, d_x by input columns. No member adds into another's
 * numbers, so results are the same run to run.
 */
#include <cblas.h>
#include <omp.h>

#include "internal.h"

typedef struct {
    Layer base;
    int in, out;
    int relu;
} Fc;

static size_t fc_workspace(const Layer *l, int n, size_t budget)
{
    const Fc *f = (const Fc *)l;
    if (!f->relu)
        return 0;
    size_t row = (size_t)f->out * sizeof(float);
    size_t rows = budget / row;
    if (rows > (size_t)n)
        rows = (size_t)n;
    if (rows < 1)
        rows = 1;
    return rows * row;
}

/* Output columns [o0, o1) of y (N, OUT): y = x W[o0:o1]^T + b, ReLU. */
static void fc_forward_cols(const Fc *f, int n, const float *x, float *y, int o0, int o1)
{
    const Layer *l = &f->base;
    if (o1 <= o0)
        return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, o1 - o0, f->in, 1.0f, x, f->in,
                l->param[0].data + (size_t)o0 * f->in, f->in, 0.0f, y + o0, f->out);
    const float *b = l->param[1].data;
    for (int i = 0; i < n; i++) {
        float *row = y + (size_t)i * f->out;
        for (int o = o0; o < o1; o++) {
            float v = row[o] + b[o];
            row[o] = f->relu && !(v > 0.0f) ? 0.0f : v;
        }
    }
}

/* x (N, IN) -> y (N, OUT); a team splits the output columns. */
static void fc_forward(Layer *l, const Pass *p, const float *const *xs, float *y)
{
    const Fc *f = (const Fc *)l;
    const int team = layer_team(l, p->n);
    if (team == 1) {
        fc_forward_cols(f, p->n, xs[0], y, 0, f->out);
        return;
    }
    blas_one_thread();
#pragma omp parallel num_threads(team)
    {
        int o0, o1;
        team_share(f->out, omp_get_thread_num(), omp_get_num_threads(), 16, &o0, &o1);
        fc_forward_cols(f, p->n, xs[0], y, o0, o1);
    }
}

/* Rows [n0, n0+m) of one backward pass, as one member of a team of nt (nt = 1:
 * all of it). Columns [o0, o1) of d_out, d_W and d_b belong to this member,
 * and so do columns [j0, j1) of d_x. */
static void fc_backward_rows(const Fc *f, const Pass *p, const float *x, const float *y, const float *d_y,
                             float *d_x, unsigned accumulate, int n0, int m, int nt)
{
    const Layer *l = &f->base;
    const int t = nt > 1 ? omp_get_thread_num() : 0;
    int o0, o1, j0, j1;
    team_share(f->out, t, nt, 16, &o0, &o1);
    team_share(f->in, t, nt, 16, &j0, &j1);
    const int acc_w = p->accumulate_grads || n0 > 0;
    const size_t off = (size_t)n0 * f->out;
    const float *dm = d_y + off; /* d_out (m, OUT) */
    if (f->relu) {
        for (int i = 0; i < m; i++) {
            const float *dr = d_y + off + (size_t)i * f->out, *yr = y + off + (size_t)i * f->out;
            float *wr = p->work + (size_t)i * f->out;
            for (int o = o0; o < o1; o++)
                wr[o] = yr[o] > 0.0f ? dr[o] : 0.0f;
        }
        dm = p->work;
    }
    const float *xr = x + (size_t)n0 * f->in;
    if (o1 > o0) {
        bias_grad(dm + o0, m, (size_t)f->out, o1 - o0, 1, 1, l->param[1].grad + o0, acc_w);
        /* d_W[o0:o1] (+)= d_out[:, o0:o1]^T (o1-o0, m) x (m, IN) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, o1 - o0, f->in, m, 1.0f, dm + o0, f->out, xr, f->in,
                    acc_w ? 1.0f : 0.0f, l->param[0].grad + (size_t)o0 * f->in, f->in);
    }
    if (!d_x)
        return;
    if (nt > 1) {
#pragma omp barrier
    }
    /* d_x[:, j0:j1] (+)= d_out (m, OUT) W[:, j0:j1] (OUT, j1-j0) */
    if (j1 > j0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, j1 - j0, f->out, 1.0f, dm, f->out,
                    l->param[0].data + j0, f->in, (accumulate & 1u) ? 1.0f : 0.0f, d_x + (size_t)n0 * f->in + j0,
                    f->in);
}

/* d_y (N, OUT) -> d_x (N, IN), d_weight (OUT, IN), d_bias (OUT) */
static void fc_backward(Layer *l, const Pass *p, const float *const *xs, const float *y, const float *d_y,
                        float *const *d_xs, unsigned accumulate)
{
    const Fc *f = (const Fc *)l;
    int chunk = p->n;
    if (f->relu) { /* d_out lives in scratch: rows that fit at a time */
        size_t fit = p->work ? p->work_bytes / ((size_t)f->out * sizeof(float)) : 0;
        if (fit < 1)
            layer_fatal(l, "scratch of %zu bytes is smaller than the %zu bytes one sample needs", p->work_bytes,
                        (size_t)f->out * sizeof(float));
        if (fit < (size_t)chunk)
            chunk = (int)fit;
    }
    float *d_x = d_xs ? d_xs[0] : NULL;
    const int team = layer_team(l, p->n);
    if (team == 1) {
        for (int n0 = 0; n0 < p->n; n0 += chunk)
            fc_backward_rows(f, p, xs[0], y, d_y, d_x, accumulate, n0, p->n - n0 < chunk ? p->n - n0 : chunk, 1);
        return;
    }
    blas_one_thread();
#pragma omp parallel num_threads(team)
    {
        const int nt = omp_get_num_threads();
        for (int n0 = 0; n0 < p->n; n0 += chunk) {
            fc_backward_rows(f, p, xs[0], y, d_y, d_x, accumulate, n0, p->n - n0 < chunk ? p->n - n0 : chunk, nt);
#pragma omp barrier
        }
    }
}

static void fc_describe(const Layer *l, char *buf, size_t len)
{
    const Fc *f = (const Fc *)l;
    snprintf(buf, len, "%d out%s", f->out, f->relu ? ", relu" : "");
}

const LayerOps fc_ops = {
    .type = "fc",
    .forward = fc_forward,
    .backward = fc_backward,
    .workspace = fc_workspace,
    .describe = fc_describe,
};

Layer *fc_create(const char *name, Shape in, int out, int relu, char *err, size_t errlen)
{
    layers_set_threads(0); /* GEMMs run single-threaded inside OpenMP teams (see threads.c) */
    size_t n_in = shape_size(in);
    if (out <= 0 || in.c <= 0 || in.h <= 0 || in.w <= 0 || n_in > 2147483647u)
        return layer_refuse(&fc_ops, name, err, errlen, "input (%d,%d,%d) and %d outputs must be positive and fit an int",
                            in.c, in.h, in.w, out);
    Layer *l = layer_alloc(sizeof(Fc), &fc_ops, name, in, err, errlen);
    if (!l)
        return NULL;
    Fc *f = (Fc *)l;
    f->in = (int)n_in;
    f->out = out;
    f->relu = relu != 0;
    l->out = (Shape){out, 1, 1};
    const int wd[2] = {out, f->in};
    tensor_describe(&l->param[0], "weight", 2, wd, f->in, 0.0f);
    tensor_describe(&l->param[1], "bias", 1, &out, 0, 0.0f);
    l->n_params = 2;
    l->flops = 2.0 * (double)f->in * out;
    return l;
}
