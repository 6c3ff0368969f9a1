/* fc.c - fully connected layer with an optional fused ReLU.
 *
 * x (N, IN) (any (C,H,W) input, flattened) , weight (OUT, IN), bias (OUT)
 * -> y (N, OUT) = x W^T + b, shaped (OUT,1,1) per sample.
 *
 * Backward: d_out = d_y masked by y > 0 when the ReLU is fused (in scratch,
 * in groups of rows that fit it), d_W (+)= d_out^T x, d_b (+)= column sums of
 * d_out, d_x (+)= d_out W.
 */
#include <cblas.h>

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

/* x (N, IN) -> y (N, OUT) */
static void fc_forward(Layer *l, const Pass *p, const float *const *xs, float *y)
{
    const Fc *f = (const Fc *)l;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p->n, f->out, f->in, 1.0f, xs[0], f->in, l->param[0].data,
                f->in, 0.0f, y, f->out);
    bias_relu_nchw(y, p->n, f->out, 1, l->param[1].data, f->relu);
}

/* d_y (N, OUT) -> d_x (N, IN), d_weight (OUT, IN), d_bias (OUT) */
static void fc_backward(Layer *l, const Pass *p, const float *const *xs, const float *y, const float *d_y,
                        float *const *d_xs, unsigned accumulate)
{
    const Fc *f = (const Fc *)l;
    int chunk = p->n;
    if (f->relu) {
        size_t fit = p->work ? p->work_bytes / ((size_t)f->out * sizeof(float)) : 0;
        if (fit < 1)
            layer_fatal(l, "scratch of %zu bytes is smaller than the %zu bytes one sample needs", p->work_bytes,
                        (size_t)f->out * sizeof(float));
        if (fit < (size_t)chunk)
            chunk = (int)fit;
    }
    float *d_x = d_xs ? d_xs[0] : NULL;
    for (int n0 = 0; n0 < p->n; n0 += chunk) {
        const int m = p->n - n0 < chunk ? p->n - n0 : chunk;
        const int acc_w = p->accumulate_grads || n0 > 0;
        const size_t off = (size_t)n0 * f->out;
        const float *dm = d_y + off;
        if (f->relu) {
            relu_mask(d_y + off, y + off, (size_t)m * f->out, p->work);
            dm = p->work;
        }
        const float *x = xs[0] + (size_t)n0 * f->in;
        bias_grad(dm, m, (size_t)f->out, f->out, 1, 1, l->param[1].grad, acc_w);
        /* d_W (OUT, IN) (+)= d_out^T (OUT, m) x (m, IN) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, f->out, f->in, m, 1.0f, dm, f->out, x, f->in,
                    acc_w ? 1.0f : 0.0f, l->param[0].grad, f->in);
        /* d_x (m, IN) (+)= d_out (m, OUT) W (OUT, IN) */
        if (d_x)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, f->in, f->out, 1.0f, dm, f->out,
                        l->param[0].data, f->in, (accumulate & 1u) ? 1.0f : 0.0f, d_x + (size_t)n0 * f->in, f->in);
    }
}

const LayerOps fc_ops = {
    .type = "fc",
    .forward = fc_forward,
    .backward = fc_backward,
    .workspace = fc_workspace,
    .destroy = NULL,
};

Layer *fc_create(const char *name, Shape in, int out, int relu)
{
    size_t n_in = shape_size(in);
    if (out <= 0 || in.c <= 0 || in.h <= 0 || in.w <= 0 || n_in > 2147483647u) {
        fprintf(stderr, "fc layer %s: input (%d,%d,%d) and %d outputs must be positive and fit an int\n",
                name ? name : "(null)", in.c, in.h, in.w, out);
        return NULL;
    }
    Layer *l = layer_alloc(sizeof(Fc), &fc_ops, name, in);
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
