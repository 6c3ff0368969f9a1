/* conv.c - 2-D convolution by im2col + cblas_sgemm, several images per GEMM.
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
 */
#include <cblas.h>

#include "internal.h"

/* Groups stop growing once a GEMM has this many columns: wider GEMMs run no
 * faster, while the layout pass and the scratch grow with g. */
#define CONV_TARGET_COLS 4096

typedef struct {
    Layer base;
    ConvGeom geom;
    int oc;
    int has_bias, relu;
    int direct; /* 1x1, stride 1, no padding: the input is its own column matrix */
} Conv;

/* Scratch floats for a group of g images. */
static size_t conv_group_floats(const Conv *cv, int g)
{
    size_t hw = conv_geom_cols(&cv->geom), cols = (size_t)g * hw;
    size_t col = (cv->direct && g == 1) ? 0 : conv_geom_rows(&cv->geom) * cols;
    size_t out = (g > 1 || cv->relu) ? (size_t)cv->oc * cols : 0;
    return col + out;
}

/* Largest useful group for a batch of n within `bytes` of scratch; 0 if not
 * even one image fits. */
static int conv_group(const Conv *cv, int n, size_t bytes)
{
    size_t hw = conv_geom_cols(&cv->geom);
    int cap = (int)((CONV_TARGET_COLS + hw - 1) / hw);
    if (cap > n)
        cap = n;
    if (cap < 1)
        cap = 1;
    if (conv_group_floats(cv, 1) * sizeof(float) > bytes)
        return 0;
    int g = 1;
    while (g < cap && conv_group_floats(cv, g + 1) * sizeof(float) <= bytes)
        g++;
    return g;
}

static size_t conv_workspace(const Layer *l, int n, size_t budget)
{
    const Conv *cv = (const Conv *)l;
    int g = conv_group(cv, n < 1 ? 1 : n, budget);
    return conv_group_floats(cv, g < 1 ? 1 : g) * sizeof(float);
}

static int conv_group_for_pass(const Conv *cv, const Pass *p)
{
    int g = conv_group(cv, p->n, p->work ? p->work_bytes : 0);
    if (g < 1)
        layer_fatal(&cv->base, "scratch of %zu bytes is smaller than the %zu bytes one image needs", p->work_bytes,
                    conv_group_floats(cv, 1) * sizeof(float));
    return g;
}

/* x (N,C,H,W) -> y (N,OC,OH,OW) */
static void conv_forward(Layer *l, const Pass *p, const float *const *xs, float *y)
{
    const Conv *cv = (const Conv *)l;
    const ConvGeom *gm = &cv->geom;
    const int g = conv_group_for_pass(cv, p);
    const int oc = cv->oc, rows = (int)conv_geom_rows(gm);
    const size_t hw = conv_geom_cols(gm), in_size = shape_size(l->in_shape[0]), out_size = (size_t)oc * hw;
    const float *w = l->param[0].data, *bias = cv->has_bias ? l->param[1].data : NULL;
    float *col = p->work;
    for (int n0 = 0; n0 < p->n; n0 += g) {
        const int gg = p->n - n0 < g ? p->n - n0 : g;
        const float *x = xs[0] + (size_t)n0 * in_size;
        float *yn = y + (size_t)n0 * out_size;
        if (gg == 1) { /* GEMM straight into NCHW */
            const float *b = x;
            if (!cv->direct) {
                im2col_batch(gm, x, 1, col, hw);
                b = col;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, oc, (int)hw, rows, 1.0f, w, rows, b, (int)hw,
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

/* d_y (N,OC,OH,OW) -> d_x (N,C,H,W), d_weight (OC,C,K,K), d_bias (OC) */
static void conv_backward(Layer *l, const Pass *p, const float *const *xs, const float *y, const float *d_y,
                          float *const *d_xs, unsigned accumulate)
{
    const Conv *cv = (const Conv *)l;
    const ConvGeom *gm = &cv->geom;
    const int g = conv_group_for_pass(cv, p);
    const int oc = cv->oc, rows = (int)conv_geom_rows(gm);
    const size_t hw = conv_geom_cols(gm), in_size = shape_size(l->in_shape[0]), out_size = (size_t)oc * hw;
    const float *w = l->param[0].data;
    float *d_w = l->param[0].grad, *d_b = cv->has_bias ? l->param[1].grad : NULL;
    float *d_x = d_xs ? d_xs[0] : NULL;
    const int acc_x = (int)(accumulate & 1u);
    for (int n0 = 0; n0 < p->n; n0 += g) {
        const int gg = p->n - n0 < g ? p->n - n0 : g;
        const size_t ld = (size_t)gg * hw;
        const int acc_w = p->accumulate_grads || n0 > 0;
        const float *x = xs[0] + (size_t)n0 * in_size;
        const float *dyn = d_y + (size_t)n0 * out_size, *yn = y + (size_t)n0 * out_size;
        const int direct = cv->direct && gg == 1;
        float *col = p->work;                                 /* (rows, ld) unless direct */
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
        if (d_b)
            bias_grad(dm, 1, 0, oc, ld, ld, d_b, acc_w);

        /* d_W (OC, rows) (+)= d_out (OC, ld) col^T (ld, rows) */
        const float *b = x;
        if (!direct) {
            im2col_batch(gm, x, gg, col, ld);
            b = col;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, oc, rows, (int)ld, 1.0f, dm, (int)ld, b, (int)ld,
                    acc_w ? 1.0f : 0.0f, d_w, rows);
        if (!d_x)
            continue;

        /* d_col (rows, ld) = W^T (rows, OC) d_out (OC, ld) */
        float *dxn = d_x + (size_t)n0 * in_size;
        if (direct) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, (int)hw, oc, 1.0f, w, rows, dm, (int)hw,
                        acc_x ? 1.0f : 0.0f, dxn, (int)hw);
        } else {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, (int)ld, oc, 1.0f, w, rows, dm, (int)ld, 0.0f,
                        col, (int)ld);
            col2im_batch(gm, col, ld, gg, dxn, acc_x);
        }
    }
}

const LayerOps conv_ops = {
    .type = "conv",
    .forward = conv_forward,
    .backward = conv_backward,
    .workspace = conv_workspace,
    .destroy = NULL,
};

Layer *conv_create(const char *name, Shape in, int out_c, int k, int stride, int pad, int bias, int relu)
{
    const char *nm = name ? name : "(null)";
    if (out_c <= 0 || k <= 0 || stride <= 0 || pad < 0) {
        fprintf(stderr, "conv layer %s: out_c %d, kernel %d and stride %d must be positive, padding %d >= 0\n", nm,
                out_c, k, stride, pad);
        return NULL;
    }
    if (in.c <= 0 || in.h <= 0 || in.w <= 0 || k > in.h + 2 * pad || k > in.w + 2 * pad) {
        fprintf(stderr, "conv layer %s: kernel %d does not fit the input (%d,%d,%d) padded by %d\n", nm, k, in.c,
                in.h, in.w, pad);
        return NULL;
    }
    ConvGeom gm = {in.c, in.h, in.w, k, stride, pad, (in.h + 2 * pad - k) / stride + 1,
                   (in.w + 2 * pad - k) / stride + 1};
    if ((double)in.c * k * k > 2147483647.0 || (double)out_c * gm.oh * gm.ow > 2147483647.0) {
        fprintf(stderr, "conv layer %s: sizes exceed the range of a GEMM dimension\n", nm);
        return NULL;
    }
    Layer *l = layer_alloc(sizeof(Conv), &conv_ops, name, in);
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
    return l;
}
