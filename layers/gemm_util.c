/* gemm_util.c - data movement around cblas_sgemm for the convolution and
 * fully connected layers: im2col and its adjoint, layout changes between
 * (OC, images x pixels) GEMM results and NCHW, fused bias/ReLU passes and the
 * bias gradient.
 *
 * Every loop writes disjoint memory per iteration and sums in a fixed order,
 * so results do not depend on the number of threads or their timing.
 */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "internal.h"

int layer_team(const Layer *l, int n)
{
    if (l->flops * n < LAYER_TEAM_MIN_FLOPS || omp_in_parallel())
        return 1;
    return omp_get_max_threads();
}

/* OpenBLAS built on OpenMP (openblas_get_parallel() == 2) already runs one
 * thread inside a parallel region, the sequential build has nothing to stop.
 * The pthreads build is switched to one thread and left there: switching it
 * back and forth reallocates its per-thread buffers, which costs more than a
 * small convolution. All parallelism of the GEMM layers comes from the team. */
void blas_one_thread(void)
{
    if (openblas_get_parallel() == 1 && openblas_get_num_threads() > 1)
        openblas_set_num_threads(1);
}

/* Output columns [lo, hi) of one kernel tap whose input column
 * iw = ow*stride - pad + kx lands inside [0, w). */
static void valid_range(int out, int in, int stride, int pad, int kx, int *lo, int *hi)
{
    /* iw >= 0  <=> ow >= ceil((pad - kx) / stride) */
    int a = pad - kx;
    int l = a <= 0 ? 0 : (a + stride - 1) / stride;
    /* iw <= in - 1  <=> ow <= floor((in - 1 + pad - kx) / stride) */
    int b = in - 1 + pad - kx;
    int h = b < 0 ? 0 : b / stride + 1;
    if (h > out)
        h = out;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}

/* One row (c, ky, kx) of the column matrix for one image:
 * plane (H,W) -> dst (OH*OW), zeros where the window sits on padding. */
static void im2col_row(const ConvGeom *g, const float *plane, int ky, int kx, float *dst)
{
    int lo, hi;
    valid_range(g->ow, g->w, g->stride, g->pad, kx, &lo, &hi);
    for (int oy = 0; oy < g->oh; oy++, dst += g->ow) {
        int iy = oy * g->stride - g->pad + ky;
        if (iy < 0 || iy >= g->h || lo == hi) {
            memset(dst, 0, (size_t)g->ow * sizeof(float));
            continue;
        }
        const float *src = plane + (size_t)iy * g->w - g->pad + kx; /* src[ow*stride] is (iy, iw) */
        for (int ox = 0; ox < lo; ox++)
            dst[ox] = 0.0f;
        if (g->stride == 1) {
            memcpy(dst + lo, src + lo, (size_t)(hi - lo) * sizeof(float));
        } else {
            const int s = g->stride;
            for (int ox = lo; ox < hi; ox++)
                dst[ox] = src[(ptrdiff_t)ox * s];
        }
        for (int ox = hi; ox < g->ow; ox++)
            dst[ox] = 0.0f;
    }
}

/* x (g, C,H,W) -> col (C*K*K, ld), image i in columns [i*OH*OW, (i+1)*OH*OW). */
void im2col_batch(const ConvGeom *geom, const float *x, int g, float *col, size_t ld)
{
    const int kk = geom->k * geom->k;
    const long rows = (long)geom->c * kk;
    const size_t plane = (size_t)geom->h * geom->w, hw = conv_geom_cols(geom);
    const long units = rows * g;
    /* image-major, then rows: consecutive units of a thread read the same
     * input plane while it is hot in cache */
#pragma omp parallel for schedule(static) if (OMP_WORTH((size_t)units * hw))
    for (long u = 0; u < units; u++) {
        long i = u / rows, r = u % rows;
        int c = (int)(r / kk), t = (int)(r % kk);
        const float *src = x + ((size_t)i * geom->c + (size_t)c) * plane;
        im2col_row(geom, src, t / geom->k, t % geom->k, col + (size_t)r * ld + (size_t)i * hw);
    }
}

/* Adds one column row (c, ky, kx) of one image back into its input plane. */
static void col2im_row(const ConvGeom *g, const float *src, int ky, int kx, float *plane)
{
    int lo, hi;
    valid_range(g->ow, g->w, g->stride, g->pad, kx, &lo, &hi);
    if (lo == hi)
        return;
    for (int oy = 0; oy < g->oh; oy++, src += g->ow) {
        int iy = oy * g->stride - g->pad + ky;
        if (iy < 0 || iy >= g->h)
            continue;
        float *dst = plane + (size_t)iy * g->w - g->pad + kx;
        if (g->stride == 1) {
            for (int ox = lo; ox < hi; ox++)
                dst[ox] += src[ox];
        } else {
            const int s = g->stride;
            for (int ox = lo; ox < hi; ox++)
                dst[(ptrdiff_t)ox * s] += src[ox];
        }
    }
}

/* d_col (C*K*K, ld) -> d_x (g, C,H,W); one thread owns each input plane and
 * adds the taps in the order (ky, kx, oy, ox), whatever the thread count. */
void col2im_batch(const ConvGeom *geom, const float *d_col, size_t ld, int g, float *d_x, int accumulate)
{
    const int kk = geom->k * geom->k;
    const size_t plane = (size_t)geom->h * geom->w, hw = conv_geom_cols(geom);
    const long units = (long)g * geom->c;
#pragma omp parallel for schedule(static) if (OMP_WORTH((size_t)units * hw * kk))
    for (long u = 0; u < units; u++) {
        long i = u / geom->c;
        int c = (int)(u % geom->c);
        float *dst = d_x + (size_t)u * plane;
        if (!accumulate)
            memset(dst, 0, plane * sizeof(float));
        for (int t = 0; t < kk; t++) {
            size_t r = (size_t)c * kk + (size_t)t;
            col2im_row(geom, d_col + r * ld + (size_t)i * hw, t / geom->k, t % geom->k, dst);
        }
    }
}

/* dst (n) = src + b, then max(dst, 0) when relu; dst may be src. */
static inline void bias_relu_row(const float *src, float *dst, size_t n, float b, int relu)
{
    if (relu) {
        for (size_t j = 0; j < n; j++) {
            float v = src[j] + b;
            dst[j] = v > 0.0f ? v : 0.0f;
        }
    } else {
        for (size_t j = 0; j < n; j++)
            dst[j] = src[j] + b;
    }
}

/* m (OC, ld) -> y (g, OC, hw) with bias and ReLU. */
void cols_to_nchw(const float *m, size_t ld, int g, int oc, size_t hw, const float *bias, int relu, float *y)
{
    const long units = (long)g * oc;
#pragma omp parallel for schedule(static) if (OMP_WORTH((size_t)units * hw))
    for (long u = 0; u < units; u++) {
        long i = u / oc;
        int o = (int)(u % oc);
        bias_relu_row(m + (size_t)o * ld + (size_t)i * hw, y + (size_t)u * hw, hw, bias ? bias[o] : 0.0f, relu);
    }
}

/* y (n, OC, hw) += bias, then ReLU, in place. */
void bias_relu_nchw(float *y, int n, int oc, size_t hw, const float *bias, int relu)
{
    if (!bias && !relu)
        return;
    if (hw == 1) { /* fully connected: rows of OC, vectorised along OC */
#pragma omp parallel for schedule(static) if (OMP_WORTH((size_t)n * oc))
        for (int i = 0; i < n; i++) {
            float *row = y + (size_t)i * oc;
            for (int o = 0; o < oc; o++) {
                float v = row[o] + (bias ? bias[o] : 0.0f);
                row[o] = relu && !(v > 0.0f) ? 0.0f : v;
            }
        }
        return;
    }
    const long units = (long)n * oc;
#pragma omp parallel for schedule(static) if (OMP_WORTH((size_t)units * hw))
    for (long u = 0; u < units; u++)
        bias_relu_row(y + (size_t)u * hw, y + (size_t)u * hw, hw, bias ? bias[u % oc] : 0.0f, relu);
}

/* d_y (g, OC, hw) -> m (OC, ld), masked by y > 0 when y is given. */
void nchw_to_cols(const float *d_y, const float *y, int g, int oc, size_t hw, float *m, size_t ld)
{
    const long units = (long)g * oc;
#pragma omp parallel for schedule(static) if (OMP_WORTH((size_t)units * hw))
    for (long u = 0; u < units; u++) {
        long i = u / oc;
        int o = (int)(u % oc);
        const float *src = d_y + (size_t)u * hw;
        float *dst = m + (size_t)o * ld + (size_t)i * hw;
        if (y) {
            const float *yy = y + (size_t)u * hw;
            for (size_t j = 0; j < hw; j++)
                dst[j] = yy[j] > 0.0f ? src[j] : 0.0f;
        } else {
            memcpy(dst, src, hw * sizeof(float));
        }
    }
}

void relu_mask(const float *d_y, const float *y, size_t count, float *out)
{
#pragma omp parallel for schedule(static) if (OMP_WORTH(count))
    for (size_t i = 0; i < count; i++)
        out[i] = y[i] > 0.0f ? d_y[i] : 0.0f;
}

/* Sum of v[0, n) in a fixed order: 16 float lanes over blocks of 4096
 * elements (vectorisable without reassociation), blocks added in double. */
static double sum_floats(const float *v, size_t n)
{
    enum { LANES = 16, BLOCK = 4096 };
    double s = 0.0;
    for (size_t b = 0; b < n; b += BLOCK) {
        size_t e = b + BLOCK < n ? b + BLOCK : n;
        float acc[LANES] = {0};
        size_t j = b;
        for (; j + LANES <= e; j += LANES)
            for (int k = 0; k < LANES; k++)
                acc[k] += v[j + k];
        for (; j < e; j++)
            acc[0] += v[j];
        double t = 0.0;
        for (int k = 0; k < LANES; k++)
            t += acc[k];
        s += t;
    }
    return s;
}

/* d_bias[o] (+)= sum_{r, j} m[r*row_stride + o*oc_stride + j], j < hw. */
void bias_grad(const float *m, int rows, size_t row_stride, int oc, size_t oc_stride, size_t hw, float *d_bias,
               int accumulate)
{
    if (hw == 1 && oc_stride == 1) { /* (rows, OC) matrix: sum down the columns, row by row */
        if (!accumulate)
            memset(d_bias, 0, (size_t)oc * sizeof(float));
        for (int r = 0; r < rows; r++) {
            const float *row = m + (size_t)r * row_stride;
            for (int o = 0; o < oc; o++)
                d_bias[o] += row[o];
        }
        return;
    }
#pragma omp parallel for schedule(static) if (OMP_WORTH((size_t)rows * oc * hw))
    for (int o = 0; o < oc; o++) {
        double s = 0.0;
        for (int r = 0; r < rows; r++)
            s += sum_floats(m + (size_t)r * row_stride + (size_t)o * oc_stride, hw);
        d_bias[o] = (float)(accumulate ? d_bias[o] + s : s);
    }
}
