/* internal.h - private helpers shared by the layer implementations.
 *
 * Not part of the layers API: only files in layers/ include it. It holds the
 * generic pieces every layer type needs (allocation of a layer struct, the
 * constructors' error message, tensor descriptions, a contract-violation
 * exit, OpenMP thresholds and the team set-up) and the GEMM helpers of
 * gemm_util.c used by the convolution and fully connected layers.
 */
#ifndef OCCKD_LAYERS_INTERNAL_H
#define OCCKD_LAYERS_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"

/* -------------------------------------------------------------- allocation */

/* A broken caller contract inside forward/backward (which return void), e.g.
 * a scratch buffer smaller than the layer's workspace for one sample: prints
 * "layer <name> (<type>): <message>" and aborts. */
#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 2, 3)))
#endif
static inline void layer_fatal(const Layer *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "layer %s (%s): ", l->name, l->ops ? l->ops->type : "?");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

/* The failure of a constructor: writes "<type> layer <name>: <message>"
 * into err (nothing when err is NULL) and returns NULL. */
#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
static inline Layer *layer_refuse(const LayerOps *ops, const char *name, char *err, size_t errlen, const char *fmt,
                                  ...)
{
    if (!err || !errlen)
        return NULL;
    int n = snprintf(err, errlen, "%s layer %s: ", ops->type, name ? name : "(null)");
    if (n >= 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return NULL;
}

/* Allocates (calloc) a layer struct of `size` bytes whose first member is a
 * Layer, and fills the common fields: ops, name, one input of shape `in`
 * produced by layer -1 (the network sets the real producer). Returns NULL
 * with a message in err (layer_refuse) when the name is NULL, empty or too
 * long for Layer.name, or when `in` has a non-positive dimension. */
static inline Layer *layer_alloc(size_t size, const LayerOps *ops, const char *name, Shape in, char *err,
                                 size_t errlen)
{
    if (!name || !name[0] || strlen(name) >= sizeof(((Layer *)0)->name))
        return layer_refuse(ops, name && name[0] ? name : "(unnamed)", err, errlen, "the name must have 1 to %zu characters",
                            sizeof(((Layer *)0)->name) - 1);
    if (in.c <= 0 || in.h <= 0 || in.w <= 0)
        return layer_refuse(ops, name, err, errlen, "input shape (%d,%d,%d) must be positive", in.c, in.h, in.w);
    Layer *l = calloc(1, size < sizeof(Layer) ? sizeof(Layer) : size);
    if (!l)
        return layer_refuse(ops, name, err, errlen, "out of memory");
    l->ops = ops;
    memcpy(l->name, name, strlen(name) + 1);
    l->n_in = 1;
    l->in[0] = -1;
    l->in[1] = -1;
    l->in_shape[0] = in;
    return l;
}

/* Describes a tensor: name (< 16 chars), dims in PyTorch order, count is the
 * product of dims. fan_in 0 and init_value for vectors. */
static inline void tensor_describe(Tensor *t, const char *name, int ndims, const int *dims, int fan_in,
                                   float init_value)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndims = ndims;
    t->count = 1;
    for (int i = 0; i < ndims && i < 4; i++) {
        t->dims[i] = dims[i];
        t->count *= (size_t)dims[i];
    }
    t->fan_in = fan_in;
    t->init_value = init_value;
}

/* ------------------------------------------------------------------ OpenMP */

/* Element-wise loops shorter than this stay on one thread: waking the team
 * costs more than the work. Use as `#pragma omp parallel for if (OMP_WORTH(n))`. */
#define LAYER_OMP_MIN_WORK ((size_t)1 << 15)
#define OMP_WORTH(n) ((size_t)(n) >= LAYER_OMP_MIN_WORK)

/* One pool of threads: OpenMP's. OpenBLAS built with pthreads keeps its own
 * workers, which spin for a while after each call and then fight an OpenMP
 * team for the cores, so OpenBLAS runs on one thread throughout:
 * layers_set_threads() (called by net_create, conv_create and fc_create)
 * sets it to one and never raises it. The GEMM layers split their work
 * across an OpenMP team and call the single-threaded sgemm from each member:
 *
 *     int team = layer_team(l, p->n);      // 1 for a small pass
 *     blas_one_thread();                   // in case a caller raised OpenBLAS's threads
 *     #pragma omp parallel num_threads(team)
 *     { ... cblas_sgemm on this thread's share ... }
 *
 * Nothing is restored afterwards: changing OpenBLAS's thread count
 * reallocates its buffers, too slow to do per pass. */
/* Member t of nt's share [*a, *b) of [0, total), cut at multiples of
 * `align` (vector width) except at the end. */
static inline void team_share(int total, int t, int nt, int align, int *a, int *b)
{
    long lo = (long)total * t / nt, hi = (long)total * (t + 1) / nt;
    lo -= lo % align;
    hi = t == nt - 1 ? total : hi - hi % align;
    *a = (int)lo;
    *b = (int)(hi > lo ? hi : lo);
}

/* Passes of fewer floating-point operations than this stay on the calling
 * thread: starting a team would cost more than it saves. */
#define LAYER_TEAM_MIN_FLOPS 2e6

/* Threads worth using for a pass of n samples through l: 1 below
 * LAYER_TEAM_MIN_FLOPS or inside a parallel region, else
 * omp_get_max_threads(). */
int layer_team(const Layer *l, int n);
/* OpenBLAS to one thread where it runs more (its pthreads build only). */
void blas_one_thread(void);

/* ------------------------------------------------------- layouts (layout.c) */

/* n images of c channels (a multiple of LAYOUT_BLOCK) and hw pixels, from
 * NCHW x to channel-blocked y, or back; acc: add into y. */
void layout_to_blocked(const float *x, int n, int c, size_t hw, float *y, int acc);
void layout_to_nchw(const float *x, int n, int c, size_t hw, float *y, int acc);

/* --------------------------------------------------- GEMM helpers (gemm_util.c) */

/* Geometry of a 2-D convolution window over one image. */
typedef struct {
    int c, h, w;        /* input (C,H,W) */
    int k, stride, pad; /* square kernel, same stride and padding on both axes */
    int oh, ow;         /* output (OH,OW) */
} ConvGeom;

/* Column rows are C*K*K; each image contributes OH*OW columns. */
static inline size_t conv_geom_rows(const ConvGeom *g) { return (size_t)g->c * (size_t)g->k * (size_t)g->k; }
static inline size_t conv_geom_cols(const ConvGeom *g) { return (size_t)g->oh * (size_t)g->ow; }

/* The oneDNN passes (conv_dnnl.c): each returns 0, or -1 when oneDNN cannot
 * run the convolution (or the build has no oneDNN), and the layer then runs
 * by im2col + sgemm below. `layout`: bit 0 set, x and d_x are
 * channel-blocked; bit 1, y and d_y (layers.h). */
typedef struct ConvDnnl ConvDnnl;
ConvDnnl *conv_dnnl_create(const ConvGeom *g, int oc, int has_bias, int relu);
void conv_dnnl_free(ConvDnnl *d);
int conv_dnnl_forward(ConvDnnl *d, int n, int layout, const float *x, const float *w, const float *bias, float *y);
int conv_dnnl_backward(ConvDnnl *d, int n, int layout, const float *x, const float *y, const float *d_y,
                       const float *w, float *d_w, float *d_b, int acc_p, float *d_x, int acc_x);

/* x (g images, C,H,W) -> col (C*K*K, ld) where image i fills columns
 * [i*OH*OW, (i+1)*OH*OW) of every row; ld >= g*OH*OW. Padding reads as 0. */
void im2col_batch(const ConvGeom *geom, const float *x, int g, float *col, size_t ld);

/* The adjoint of im2col_batch: d_col (C*K*K, ld) -> d_x (g images, C,H,W).
 * accumulate 0 overwrites d_x, 1 adds to it. The sum into each input element
 * runs in a fixed order, so results are the same run to run. */
void col2im_batch(const ConvGeom *geom, const float *d_col, size_t ld, int g, float *d_x, int accumulate);

/* m (OC, ld) holding g images side by side (OH*OW columns each) -> y (g, OC,
 * OH*OW), adding bias[oc] (NULL: none) and applying ReLU when relu != 0. */
void cols_to_nchw(const float *m, size_t ld, int g, int oc, size_t hw, const float *bias, int relu, float *y);

/* y (n, OC, HW) in place: y += bias[oc] (NULL: none), then max(y, 0) when relu. */
void bias_relu_nchw(float *y, int n, int oc, size_t hw, const float *bias, int relu);

/* The backward counterpart of cols_to_nchw: d_y (g, OC, HW) -> m (OC, ld),
 * multiplied by (y > 0) when y is not NULL (a fused ReLU). */
void nchw_to_cols(const float *d_y, const float *y, int g, int oc, size_t hw, float *m, size_t ld);

/* d_y (n, OC, HW) -> out (n, OC, HW) masked by y > 0. */
void relu_mask(const float *d_y, const float *y, size_t count, float *out);

/* d_bias[oc] (+)= sum over rows and columns of m viewed as (rows, OC, hw) with
 * row stride `row_stride` floats and channel stride `oc_stride`. Each channel
 * is summed by one thread in a fixed order (deterministic). */
void bias_grad(const float *m, int rows, size_t row_stride, int oc, size_t oc_stride, size_t hw, float *d_bias,
               int accumulate);

#endif
