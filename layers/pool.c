/* pool.c - max and average pooling with a square window, asymmetric padding
 * and PyTorch's ceil_mode.
 *
 * Geometry (per axis; rows shown, columns alike):
 *   OH = floor_or_ceil((H + pad_t + pad_b - k) / stride) + 1, and in ceil mode
 *   the last window is dropped when it would start at or past H + pad_t (it
 *   must start inside the input or the top padding), exactly as PyTorch.
 *   Window oh covers input rows [oh*stride - pad_t, oh*stride - pad_t + k).
 *
 * Max pooling: padded positions never win (they act as -inf); ties go to the
 * first position in row-major window order. Backward routes d_y to that
 * position, found again from x and y (no state is kept between passes).
 *
 * Average pooling: the sum over the window's input positions is divided by
 * the number of window positions that lie inside the input extended by the
 * explicit padding, i.e. rows [-pad_t, H + pad_b) x columns [-pad_l, W + pad_r).
 * Explicit padding therefore counts as zeros (PyTorch count_include_pad=True),
 * while the part of a window that ceil_mode pushes past the explicit padding
 * is clipped off and does not count (PyTorch does the same).
 *
 * Both passes are separable: a pass over window rows (vectorised along the
 * row) and then one over window columns. Planes (n, c) run in parallel.
 * Max pooling whose windows tile the input (stride k, no padding: VGG's
 * 2x2) has its own paths: forward reads each 2x2 window once, backward
 * writes each input position once, with no clearing pass. The
 * channel-blocked layout (layers.h) has the same paths, each over 16
 * channels a vector.
 */
#include <float.h>
#include <math.h>

#include "internal.h"

typedef struct {
    Layer base;
    PoolKind kind;
    int k, stride;
    int pad_t, pad_b, pad_l, pad_r;
    int ceil_mode; /* kept for describe: the output size already reflects it */
} Pool;

/* One window along an axis: input range [lo, hi) clipped to the input and the
 * number of window positions inside the explicitly padded extent. */
typedef struct {
    int lo, hi, count;
} Span;

static Span pool_span(int o, int k, int stride, int pad_lo, int pad_hi, int size)
{
    int start = o * stride - pad_lo;
    int end = start + k;
    int padded_end = end < size + pad_hi ? end : size + pad_hi;
    Span s;
    s.count = padded_end - start;
    s.lo = start < 0 ? 0 : start;
    s.hi = end < size ? end : size;
    return s;
}

/* PyTorch's output size for one axis; 0 when the window does not fit. */
static int pool_out_size(int size, int k, int stride, int pad_lo, int pad_hi, int ceil_mode)
{
    int span = size + pad_lo + pad_hi - k;
    if (span < 0)
        return 0;
    int out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    if (ceil_mode && (out - 1) * stride >= size + pad_lo)
        out--;
    return out;
}

/* ------------------------------------------------------------------ forward */

/* acc[i] = max(acc[i], v[i]) (a NaN in acc stays) or acc[i] += v[i], i < n. */
static inline void reduce_into(float *restrict acc, const float *restrict v, int n, int is_max)
{
    if (is_max)
        for (int i = 0; i < n; i++)
            acc[i] = v[i] > acc[i] ? v[i] : acc[i];
    else
        for (int i = 0; i < n; i++)
            acc[i] += v[i];
}

/* One plane x (H,W) -> y (OH,OW); row is scratch of W floats. */
static void pool_plane_forward(const Pool *pl, const float *x, float *y, float *row)
{
    const Layer *l = &pl->base;
    int H = l->in_shape[0].h, W = l->in_shape[0].w, OH = l->out.h, OW = l->out.w;
    int is_max = pl->kind == POOL_MAX;
    for (int oh = 0; oh < OH; oh++) {
        Span sh = pool_span(oh, pl->k, pl->stride, pl->pad_t, pl->pad_b, H);
        /* reduce the window rows into one row */
        const float *r0 = x + (size_t)sh.lo * W;
        for (int w = 0; w < W; w++)
            row[w] = r0[w];
        for (int h = sh.lo + 1; h < sh.hi; h++)
            reduce_into(row, x + (size_t)h * W, W, is_max);
        /* then the window columns */
        float *yo = y + (size_t)oh * OW;
        for (int ow = 0; ow < OW; ow++) {
            Span sw = pool_span(ow, pl->k, pl->stride, pl->pad_l, pl->pad_r, W);
            float acc = row[sw.lo];
            if (is_max) {
                for (int w = sw.lo + 1; w < sw.hi; w++)
                    acc = row[w] > acc ? row[w] : acc;
                yo[ow] = acc;
            } else {
                for (int w = sw.lo + 1; w < sw.hi; w++)
                    acc += row[w];
                yo[ow] = acc / (float)(sh.count * sw.count);
            }
        }
    }
}

/* Max pooling whose windows tile the input (stride k, no padding): every
 * input position lies in at most one window. */
static int pool_tiles(const Pool *pl)
{
    return pl->kind == POOL_MAX && pl->stride == pl->k && !pl->pad_t && !pl->pad_b && !pl->pad_l && !pl->pad_r;
}

/* 2x2 stride-2 max pooling whose windows lie inside the input: its own
 * forward in both layouts. */
static int pool_is_2x2(const Pool *pl)
{
    const Layer *l = &pl->base;
    return pool_tiles(pl) && pl->k == 2 && 2 * l->out.h <= l->in_shape[0].h && 2 * l->out.w <= l->in_shape[0].w;
}

/* One plane of a 2x2 stride-2 max pooling whose windows lie inside the
 * input: x (H,W) -> y (OH,OW), reduced in the order of the general path
 * (rows first, then columns). */
static void pool_plane_forward_2x2(const float *x, int W, float *y, int OH, int OW)
{
    for (int oh = 0; oh < OH; oh++) {
        const float *r0 = x + (size_t)2 * oh * W, *r1 = r0 + W;
        float *yo = y + (size_t)oh * OW;
        for (int ow = 0; ow < OW; ow++) {
            float a = r1[2 * ow] > r0[2 * ow] ? r1[2 * ow] : r0[2 * ow];
            float b = r1[2 * ow + 1] > r0[2 * ow + 1] ? r1[2 * ow + 1] : r0[2 * ow + 1];
            yo[ow] = b > a ? b : a;
        }
    }
}

/* ------------------------------------------- the channel-blocked layout
 * (layers.h): 16 channels of a block side by side, one lane each; windows
 * are reduced in the order of the NCHW path (rows, then columns), so both
 * layouts give the same bits. */

#define PB LAYOUT_BLOCK

/* One block of one image x (H,W,16) -> y (OH,OW,16); row is scratch of
 * W x 16 floats. */
static void pool_block_forward(const Pool *pl, const float *x, float *y, float *row)
{
    const Layer *l = &pl->base;
    const int H = l->in_shape[0].h, W = l->in_shape[0].w, OH = l->out.h, OW = l->out.w;
    const int is_max = pl->kind == POOL_MAX;
    for (int oh = 0; oh < OH; oh++) {
        Span sh = pool_span(oh, pl->k, pl->stride, pl->pad_t, pl->pad_b, H);
        /* the window rows into one row, once for every window of the row */
        memcpy(row, x + (size_t)sh.lo * W * PB, (size_t)W * PB * sizeof(float));
        for (int h = sh.lo + 1; h < sh.hi; h++)
            reduce_into(row, x + (size_t)h * W * PB, W * PB, is_max);
        for (int ow = 0; ow < OW; ow++) { /* then the window columns */
            Span sw = pool_span(ow, pl->k, pl->stride, pl->pad_l, pl->pad_r, W);
            float *yo = y + ((size_t)oh * OW + ow) * PB, acc[PB];
            for (int q = 0; q < PB; q++)
                acc[q] = row[(size_t)sw.lo * PB + q];
            for (int w = sw.lo + 1; w < sw.hi; w++)
                reduce_into(acc, row + (size_t)w * PB, PB, is_max);
            const float area = (float)(sh.count * sw.count);
            for (int q = 0; q < PB; q++)
                yo[q] = is_max ? acc[q] : acc[q] / area;
        }
    }
}

/* One block of one image: d_y (OH,OW,16) -> d_x (H,W,16), added to what
 * d_x holds; max pooling passes each lane's gradient to its window's first
 * maximum (row-major), as the NCHW path. */
static void pool_block_backward(const Pool *pl, const float *x, const float *y, const float *d_y, float *d_x)
{
    const Layer *l = &pl->base;
    const int H = l->in_shape[0].h, W = l->in_shape[0].w, OH = l->out.h, OW = l->out.w;
    for (int oh = 0; oh < OH; oh++) {
        Span sh = pool_span(oh, pl->k, pl->stride, pl->pad_t, pl->pad_b, H);
        for (int ow = 0; ow < OW; ow++) {
            Span sw = pool_span(ow, pl->k, pl->stride, pl->pad_l, pl->pad_r, W);
            const size_t o = ((size_t)oh * OW + ow) * PB;
            if (pl->kind == POOL_AVG) {
                const float area = (float)(sh.count * sw.count);
                for (int h = sh.lo; h < sh.hi; h++)
                    for (int w = sw.lo; w < sw.hi; w++) {
                        float *d = d_x + ((size_t)h * W + w) * PB;
                        for (int q = 0; q < PB; q++)
                            d[q] += d_y[o + q] / area;
                    }
                continue;
            }
            int found[PB] = {0};
            for (int h = sh.lo; h < sh.hi; h++)
                for (int w = sw.lo; w < sw.hi; w++) {
                    const size_t at = ((size_t)h * W + w) * PB;
                    for (int q = 0; q < PB; q++) {
                        const int hit = !found[q] && x[at + q] == y[o + q];
                        found[q] |= hit;
                        d_x[at + q] += hit ? d_y[o + q] : 0.0f;
                    }
                }
        }
    }
}

/* One block of a 2x2 stride-2 max pooling whose windows lie inside the
 * input, reduced in the order of pool_plane_forward_2x2. */
static void pool_block_forward_2x2(const float *x, int W, float *y, int OH, int OW)
{
    for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
            const float *r0 = x + ((size_t)2 * oh * W + 2 * (size_t)ow) * PB, *r1 = r0 + (size_t)W * PB;
            float *yo = y + ((size_t)oh * OW + ow) * PB;
            for (int q = 0; q < PB; q++) {
                float a = r1[q] > r0[q] ? r1[q] : r0[q];
                float b = r1[PB + q] > r0[PB + q] ? r1[PB + q] : r0[PB + q];
                yo[q] = b > a ? b : a;
            }
        }
}

/* One block of a tiled max pooling (pool_tiles): each window writes its
 * part of d_x once, each lane's gradient at its first maximum (row-major)
 * and zeros elsewhere; acc adds instead. */
static void pool_block_backward_tiled(const Pool *pl, const float *restrict x, const float *restrict y,
                                      const float *restrict d_y, float *restrict d_x, int acc)
{
    const Layer *l = &pl->base;
    const int H = l->in_shape[0].h, W = l->in_shape[0].w, OH = l->out.h, OW = l->out.w, k = pl->k;
    if (!acc && (OH * k < H || OW * k < W)) /* rows or columns no window covers */
        memset(d_x, 0, (size_t)H * W * PB * sizeof(float));
    for (int oh = 0; oh < OH; oh++) {
        const int h0 = oh * k, h1 = h0 + k < H ? h0 + k : H;
        for (int ow = 0; ow < OW; ow++) {
            const int w0 = ow * k, w1 = w0 + k < W ? w0 + k : W;
            const size_t o = ((size_t)oh * OW + ow) * PB;
            int found[PB] = {0};
            for (int h = h0; h < h1; h++)
                for (int w = w0; w < w1; w++) {
                    const size_t at = ((size_t)h * W + w) * PB;
                    for (int q = 0; q < PB; q++) {
                        const int hit = !found[q] && x[at + q] == y[o + q];
                        found[q] |= hit;
                        const float v = hit ? d_y[o + q] : 0.0f;
                        d_x[at + q] = acc ? d_x[at + q] + v : v;
                    }
                }
        }
    }
}

static void pool_forward_blocked(const Pool *pl, const Pass *p, const float *x, float *y)
{
    const Layer *l = &pl->base;
    const Shape in = l->in_shape[0];
    const int units = p->n * (in.c / PB);
    const size_t in_unit = (size_t)in.h * in.w * PB, out_unit = (size_t)l->out.h * l->out.w * PB;
    if (pool_is_2x2(pl)) {
#pragma omp parallel for schedule(static) if (OMP_WORTH((size_t)units * in_unit))
        for (int u = 0; u < units; u++)
            pool_block_forward_2x2(x + (size_t)u * in_unit, in.w, y + (size_t)u * out_unit, l->out.h, l->out.w);
        return;
    }
#pragma omp parallel if (OMP_WORTH((size_t)units * in_unit))
    {
        float *row = malloc((size_t)in.w * PB * sizeof(float));
        if (!row)
            layer_fatal(l, "out of memory for a row of %d x %d floats", in.w, PB);
#pragma omp for schedule(static)
        for (int u = 0; u < units; u++)
            pool_block_forward(pl, x + (size_t)u * in_unit, y + (size_t)u * out_unit, row);
        free(row);
    }
}

static void pool_backward_blocked(const Pool *pl, const Pass *p, const float *x, const float *y, const float *d_y,
                                  float *d_x, int acc)
{
    const Layer *l = &pl->base;
    const Shape in = l->in_shape[0];
    const int units = p->n * (in.c / PB);
    const size_t in_unit = (size_t)in.h * in.w * PB, out_unit = (size_t)l->out.h * l->out.w * PB;
    if (pool_tiles(pl)) {
#pragma omp parallel for schedule(static) if (OMP_WORTH((size_t)units * in_unit))
        for (int u = 0; u < units; u++)
            pool_block_backward_tiled(pl, x + (size_t)u * in_unit, y + (size_t)u * out_unit,
                                      d_y + (size_t)u * out_unit, d_x + (size_t)u * in_unit, acc);
        return;
    }
#pragma omp parallel for schedule(static) if (OMP_WORTH((size_t)units * in_unit))
    for (int u = 0; u < units; u++) {
        if (!acc)
            memset(d_x + (size_t)u * in_unit, 0, in_unit * sizeof(float));
        pool_block_backward(pl, x + (size_t)u * in_unit, y + (size_t)u * out_unit, d_y + (size_t)u * out_unit,
                            d_x + (size_t)u * in_unit);
    }
}

// x (N,C,H,W) -> y (N,C,OH,OW), both NCHW or both channel-blocked
static void pool_forward(Layer *l, const Pass *p, const float *const *x, float *y)
{
    const Pool *pl = (const Pool *)l;
    Shape in = l->in_shape[0];
    size_t planes = (size_t)p->n * in.c, in_plane = (size_t)in.h * in.w, out_plane = (size_t)l->out.h * l->out.w;
    const float *xs = x[0];
    if (l->out_blocked) {
        pool_forward_blocked(pl, p, xs, y);
        return;
    }
    if (pool_is_2x2(pl)) {
#pragma omp parallel for schedule(static) if (OMP_WORTH(planes * in_plane))
        for (size_t i = 0; i < planes; i++)
            pool_plane_forward_2x2(xs + i * in_plane, in.w, y + i * out_plane, l->out.h, l->out.w);
        return;
    }
#pragma omp parallel if (OMP_WORTH(planes * in_plane))
    {
        float *row = malloc((size_t)in.w * sizeof(float));
        if (!row)
            layer_fatal(l, "out of memory for a row of %d floats", in.w);
#pragma omp for schedule(static)
        for (size_t i = 0; i < planes; i++)
            pool_plane_forward(pl, xs + i * in_plane, y + i * out_plane, row);
        free(row);
    }
}

/* ----------------------------------------------------------------- backward */

/* One plane d_y (OH,OW) -> d_x (H,W), added to what d_x holds. */
static void pool_plane_backward(const Pool *pl, const float *x, const float *y, const float *d_y, float *d_x)
{
    const Layer *l = &pl->base;
    int H = l->in_shape[0].h, W = l->in_shape[0].w, OH = l->out.h, OW = l->out.w;
    for (int oh = 0; oh < OH; oh++) {
        Span sh = pool_span(oh, pl->k, pl->stride, pl->pad_t, pl->pad_b, H);
        for (int ow = 0; ow < OW; ow++) {
            Span sw = pool_span(ow, pl->k, pl->stride, pl->pad_l, pl->pad_r, W);
            float g = d_y[(size_t)oh * OW + ow];
            if (pl->kind == POOL_AVG) {
                g /= (float)(sh.count * sw.count);
                for (int h = sh.lo; h < sh.hi; h++)
                    for (int w = sw.lo; w < sw.hi; w++)
                        d_x[(size_t)h * W + w] += g;
                continue;
            }
            /* the first window position (row-major) holding the maximum,
             * found without branches by scanning backwards; NaN: none */
            float m = y[(size_t)oh * OW + ow];
            long best = -1;
            for (int h = sh.hi - 1; h >= sh.lo; h--)
                for (int w = sw.hi - 1; w >= sw.lo; w--) {
                    long at = (long)h * W + w;
                    best = x[at] == m ? at : best;
                }
            if (best >= 0)
                d_x[best] += g;
        }
    }
}

/* One plane of a tiled max pooling (pool_tiles): d_y (OH,OW) -> d_x (H,W),
 * each window writing its part of d_x once, the gradient at its first
 * maximum (row-major) and zeros elsewhere; acc adds instead. */
static void pool_plane_backward_tiled(const Pool *pl, const float *x, const float *y, const float *d_y, float *d_x,
                                      int acc)
{
    const Layer *l = &pl->base;
    const int H = l->in_shape[0].h, W = l->in_shape[0].w, OH = l->out.h, OW = l->out.w, k = pl->k;
    if (!acc && (OH * k < H || OW * k < W)) /* rows or columns no window covers */
        memset(d_x, 0, (size_t)H * W * sizeof(float));
    for (int oh = 0; oh < OH; oh++) {
        const int h0 = oh * k, h1 = h0 + k < H ? h0 + k : H;
        for (int ow = 0; ow < OW; ow++) {
            const int w0 = ow * k, w1 = w0 + k < W ? w0 + k : W;
            const float m = y[(size_t)oh * OW + ow], g = d_y[(size_t)oh * OW + ow];
            int found = 0;
            for (int h = h0; h < h1; h++)
                for (int w = w0; w < w1; w++) {
                    const size_t at = (size_t)h * W + w;
                    const int hit = !found && x[at] == m;
                    found |= hit;
                    const float v = hit ? g : 0.0f;
                    d_x[at] = acc ? d_x[at] + v : v;
                }
        }
    }
}

// d_y (N,C,OH,OW) -> d_x (N,C,H,W)
static void pool_backward(Layer *l, const Pass *p, const float *const *x, const float *y, const float *d_y,
                          float *const *d_x, unsigned accumulate)
{
    if (!d_x[0])
        return;
    const Pool *pl = (const Pool *)l;
    Shape in = l->in_shape[0];
    size_t planes = (size_t)p->n * in.c, in_plane = (size_t)in.h * in.w, out_plane = (size_t)l->out.h * l->out.w;
    const float *xs = x[0];
    float *dx = d_x[0];
    int acc = accumulate & 1u;
    if (l->out_blocked) {
        pool_backward_blocked(pl, p, xs, y, d_y, dx, acc);
        return;
    }
    if (pool_tiles(pl)) {
#pragma omp parallel for schedule(static) if (OMP_WORTH(planes * in_plane))
        for (size_t i = 0; i < planes; i++)
            pool_plane_backward_tiled(pl, xs + i * in_plane, y + i * out_plane, d_y + i * out_plane,
                                      dx + i * in_plane, acc);
        return;
    }
#pragma omp parallel for schedule(static) if (OMP_WORTH(planes * in_plane))
    for (size_t i = 0; i < planes; i++) {
        if (!acc)
            memset(dx + i * in_plane, 0, in_plane * sizeof(float));
        pool_plane_backward(pl, xs + i * in_plane, y + i * out_plane, d_y + i * out_plane, dx + i * in_plane);
    }
}

static void pool_describe(const Layer *l, char *buf, size_t len)
{
    const Pool *pl = (const Pool *)l;
    snprintf(buf, len, "%s %dx%d, stride %d, pad (%d,%d,%d,%d)%s", pl->kind == POOL_MAX ? "max" : "avg", pl->k,
             pl->k, pl->stride, pl->pad_t, pl->pad_b, pl->pad_l, pl->pad_r, pl->ceil_mode ? ", ceil" : "");
}

/* Input and output in one layout, either one. */
static int pool_layouts(const Layer *l) { return LAYOUT_SAME; }

const LayerOps pool_ops = {.type = "pool", .forward = pool_forward, .backward = pool_backward,
                           .describe = pool_describe, .layouts = pool_layouts};

Layer *pool_create(const char *name, Shape in, PoolKind kind, int k, int stride, int pad_t, int pad_b,
                   int pad_l, int pad_r, int ceil_mode, char *err, size_t errlen)
{
    if (kind != POOL_MAX && kind != POOL_AVG)
        return layer_refuse(&pool_ops, name, err, errlen, "kind %d is neither max nor avg", (int)kind);
    if (k < 1 || stride < 1)
        return layer_refuse(&pool_ops, name, err, errlen, "kernel %d and stride %d must be >= 1", k, stride);
    int pads[4] = {pad_t, pad_b, pad_l, pad_r};
    for (int i = 0; i < 4; i++)
        if (pads[i] < 0 || pads[i] > k / 2)
            return layer_refuse(&pool_ops, name, err, errlen,
                                "padding (%d,%d,%d,%d) must be between 0 and kernel/2 = %d", pad_t, pad_b, pad_l,
                                pad_r, k / 2);
    int oh = pool_out_size(in.h, k, stride, pad_t, pad_b, ceil_mode);
    int ow = pool_out_size(in.w, k, stride, pad_l, pad_r, ceil_mode);
    if (in.h > 0 && in.w > 0 && (oh < 1 || ow < 1))
        return layer_refuse(&pool_ops, name, err, errlen, "kernel %d does not fit the padded input %dx%d", k,
                            in.h + pad_t + pad_b, in.w + pad_l + pad_r);
    Layer *l = layer_alloc(sizeof(Pool), &pool_ops, name, in, err, errlen);
    if (!l)
        return NULL;
    Pool *pl = (Pool *)l;
    pl->ceil_mode = ceil_mode != 0;
    pl->kind = kind;
    pl->k = k;
    pl->stride = stride;
    pl->pad_t = pad_t;
    pl->pad_b = pad_b;
    pl->pad_l = pad_l;
    pl->pad_r = pad_r;
    l->out = (Shape){in.c, oh, ow};
    l->flops = (double)shape_size(l->out) * k * k;
    return l;
}
