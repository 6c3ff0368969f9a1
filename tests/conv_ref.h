/* conv_ref.h - the plain reference convolution the fast one is tested
 * against: seven nested loops, sums in double, no scratch, no BLAS.
 *
 * x (N,C,H,W), w (OC,C,K,K), b (OC) or NULL -> y (N,OC,OH,OW),
 * y = conv(x, w) + b, then max(y, 0) when relu.
 */
#ifndef OCCKD_TESTS_CONV_REF_H
#define OCCKD_TESTS_CONV_REF_H

#include <stddef.h>
#include <stdlib.h>

typedef struct {
    int n, c, h, w;     /* input (N,C,H,W) */
    int oc, k, stride, pad;
    int oh, ow;         /* output size, set by conv_ref_geom */
} ConvRefGeom;

static inline void conv_ref_geom(ConvRefGeom *g)
{
    g->oh = (g->h + 2 * g->pad - g->k) / g->stride + 1;
    g->ow = (g->w + 2 * g->pad - g->k) / g->stride + 1;
}

/* Index helpers: x (N,C,H,W), w (OC,C,K,K), y (N,OC,OH,OW). */
static inline size_t conv_ref_xi(const ConvRefGeom *g, int n, int c, int y, int x)
{
    return (((size_t)n * g->c + c) * g->h + y) * g->w + x;
}
static inline size_t conv_ref_wi(const ConvRefGeom *g, int o, int c, int ky, int kx)
{
    return (((size_t)o * g->c + c) * g->k + ky) * g->k + kx;
}
static inline size_t conv_ref_yi(const ConvRefGeom *g, int n, int o, int y, int x)
{
    return (((size_t)n * g->oc + o) * g->oh + y) * g->ow + x;
}

/* 1 when kernel tap (ky, kx) of output (oy, ox) reads an input position
 * (*iy, *ix) inside the image, 0 when it sits on the padding. */
static inline int conv_ref_tap(const ConvRefGeom *g, int oy, int ox, int ky, int kx, int *iy, int *ix)
{
    *iy = oy * g->stride - g->pad + ky;
    *ix = ox * g->stride - g->pad + kx;
    return *iy >= 0 && *iy < g->h && *ix >= 0 && *ix < g->w;
}

/* x, w, b -> y */
static inline void conv_ref_forward(const ConvRefGeom *g, const float *x, const float *w, const float *b, int relu,
                                    float *y)
{
    for (int n = 0; n < g->n; n++)
        for (int o = 0; o < g->oc; o++)
            for (int oy = 0; oy < g->oh; oy++)
                for (int ox = 0; ox < g->ow; ox++) {
                    double s = b ? b[o] : 0.0;
                    for (int c = 0; c < g->c; c++)
                        for (int ky = 0; ky < g->k; ky++)
                            for (int kx = 0; kx < g->k; kx++) {
                                int iy, ix;
                                if (!conv_ref_tap(g, oy, ox, ky, kx, &iy, &ix))
                                    continue;
                                s += (double)x[conv_ref_xi(g, n, c, iy, ix)] * (double)w[conv_ref_wi(g, o, c, ky, kx)];
                            }
                    if (relu && s < 0)
                        s = 0;
                    y[conv_ref_yi(g, n, o, oy, ox)] = (float)s;
                }
}

/* d_y -> d_x (may be NULL), d_w, d_b (may be NULL), all overwritten. When
 * mask is not NULL, d_y is taken as zero wherever mask <= 0 (the fused ReLU,
 * mask = the layer's output). */
static inline void conv_ref_backward(const ConvRefGeom *g, const float *x, const float *w, const float *d_y,
                                     const float *mask, float *d_x, float *d_w, float *d_b)
{
    size_t nx = (size_t)g->n * g->c * g->h * g->w, nw = (size_t)g->oc * g->c * g->k * g->k;
    double *ax = calloc(nx ? nx : 1, sizeof(double)), *aw = calloc(nw, sizeof(double));
    double *ab = calloc((size_t)g->oc, sizeof(double));
    for (int n = 0; n < g->n; n++)
        for (int o = 0; o < g->oc; o++)
            for (int oy = 0; oy < g->oh; oy++)
                for (int ox = 0; ox < g->ow; ox++) {
                    size_t yi = conv_ref_yi(g, n, o, oy, ox);
                    double dy = (mask && !(mask[yi] > 0.0f)) ? 0.0 : (double)d_y[yi];
                    ab[o] += dy;
                    for (int c = 0; c < g->c; c++)
                        for (int ky = 0; ky < g->k; ky++)
                            for (int kx = 0; kx < g->k; kx++) {
                                int iy, ix;
                                if (!conv_ref_tap(g, oy, ox, ky, kx, &iy, &ix))
                                    continue;
                                size_t xi = conv_ref_xi(g, n, c, iy, ix), wi = conv_ref_wi(g, o, c, ky, kx);
                                ax[xi] += dy * (double)w[wi];
                                aw[wi] += dy * (double)x[xi];
                            }
                }
    if (d_x)
        for (size_t i = 0; i < nx; i++)
            d_x[i] = (float)ax[i];
    for (size_t i = 0; i < nw; i++)
        d_w[i] = (float)aw[i];
    if (d_b)
        for (int o = 0; o < g->oc; o++)
            d_b[o] = (float)ab[o];
    free(ax);
    free(aw);
    free(ab);
}

#endif
