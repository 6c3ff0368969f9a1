/* activation.c - ReLU and (inverted) dropout.
 *
 * Dropout keeps an element with probability 1 - rate and scales it by
 * 1/(1 - rate) in training; at inference y = x. The mask is a pure function
 * of the run seed, the optimiser step, the sample's global index and the
 * layer's index, drawn with Philox4x32:
 *
 *   bits = philox4x32(key = seed; step, sample_id, layer index, j / 4).v[j % 4]
 *   element j is dropped iff rng_u01(bits) < rate
 *
 * (step and sample_id enter as their low 32 bits.) A sample's mask therefore
 * does not depend on the batch it is in, nor on the rank that computes it.
 * Backward draws the same mask again instead of storing it.
 */
#include "internal.h"

/* ---------------------------------------------------------------- relu */

/* g where the fused ReLU passed (y > 0), else 0. Both values are loaded
 * unconditionally, so the compiler blends instead of using masked loads. */
static inline float relu_pass(float g, float y) { return y > 0.0f ? g : 0.0f; }

// x (N,C,H,W) -> y (N,C,H,W)
static void relu_forward(Layer *l, const Pass *p, const float *const *x, float *y)
{
    size_t n = (size_t)p->n * shape_size(l->out);
    const float *xs = x[0];
#pragma omp parallel for schedule(static) if (OMP_WORTH(n))
    for (size_t i = 0; i < n; i++)
        y[i] = xs[i] > 0.0f ? xs[i] : 0.0f;
}

// d_y (N,C,H,W) -> d_x (N,C,H,W), masked by y > 0
static void relu_backward(Layer *l, const Pass *p, const float *const *x, const float *y, const float *d_y,
                          float *const *d_x, unsigned accumulate)
{
    float *dx = d_x[0];
    if (!dx)
        return;
    size_t n = (size_t)p->n * shape_size(l->out);
    if (accumulate & 1u) {
#pragma omp parallel for schedule(static) if (OMP_WORTH(n))
        for (size_t i = 0; i < n; i++)
            dx[i] += relu_pass(d_y[i], y[i]);
    } else {
#pragma omp parallel for schedule(static) if (OMP_WORTH(n))
        for (size_t i = 0; i < n; i++)
            dx[i] = relu_pass(d_y[i], y[i]);
    }
}

const LayerOps relu_ops = {.type = "relu", .forward = relu_forward, .backward = relu_backward};

Layer *relu_create(const char *name, Shape in, char *err, size_t errlen)
{
    Layer *l = layer_alloc(sizeof(Layer), &relu_ops, name, in, err, errlen);
    if (!l)
        return NULL;
    l->out = in;
    l->flops = (double)shape_size(in);
    return l;
}

/* ------------------------------------------------------------- dropout */

typedef struct {
    Layer base;
    float rate;
} Dropout;

/* out[j] (=|+=) in[j] * scale where element j of the sample is kept, 0 where
 * it is dropped; `sid` is the sample's global index. */
static void dropout_sample(const Dropout *d, const Pass *p, uint64_t sid, const float *in, float *out, size_t count,
                           int acc)
{
    float rate = d->rate, scale = 1.0f / (1.0f - rate);
    uint32_t step = (uint32_t)p->step, sample = (uint32_t)sid, layer = (uint32_t)d->base.index;
    for (size_t j0 = 0; j0 < count; j0 += 4) {
        RngBlock r = philox4x32(p->seed, step, sample, layer, (uint32_t)(j0 >> 2));
        float f[4];
        for (int q = 0; q < 4; q++)
            f[q] = rng_u01(r.v[q]) < rate ? 0.0f : scale;
        size_t m = count - j0 < 4 ? count - j0 : 4;
        if (acc)
            for (size_t q = 0; q < m; q++)
                out[j0 + q] += in[j0 + q] * f[q];
        else
            for (size_t q = 0; q < m; q++)
                out[j0 + q] = in[j0 + q] * f[q];
    }
}

/* Copies (or adds) n floats, the identity path of inference. */
static void copy_or_add(float *dst, const float *src, size_t n, int acc)
{
    if (acc) {
#pragma omp parallel for schedule(static) if (OMP_WORTH(n))
        for (size_t i = 0; i < n; i++)
            dst[i] += src[i];
    } else if (dst != src) {
        memcpy(dst, src, n * sizeof(float));
    }
}

// x (N,C,H,W) -> y (N,C,H,W)
static void dropout_forward(Layer *l, const Pass *p, const float *const *x, float *y)
{
    const Dropout *d = (const Dropout *)l;
    size_t per = shape_size(l->out);
    if (!p->training || d->rate == 0.0f) {
        copy_or_add(y, x[0], (size_t)p->n * per, 0);
        return;
    }
#pragma omp parallel for schedule(static) if (OMP_WORTH((size_t)p->n * per))
    for (int i = 0; i < p->n; i++) {
        uint64_t sid = p->sample_id ? (uint64_t)p->sample_id[i] : (uint64_t)i;
        dropout_sample(d, p, sid, x[0] + (size_t)i * per, y + (size_t)i * per, per, 0);
    }
}

// d_y (N,C,H,W) -> d_x (N,C,H,W) through the same mask
static void dropout_backward(Layer *l, const Pass *p, const float *const *x, const float *y, const float *d_y,
                             float *const *d_x, unsigned accumulate)
{
    const Dropout *d = (const Dropout *)l;
    if (!d_x[0])
        return;
    size_t per = shape_size(l->out);
    int acc = accumulate & 1u;
    if (!p->training || d->rate == 0.0f) {
        copy_or_add(d_x[0], d_y, (size_t)p->n * per, acc);
        return;
    }
#pragma omp parallel for schedule(static) if (OMP_WORTH((size_t)p->n * per))
    for (int i = 0; i < p->n; i++) {
        uint64_t sid = p->sample_id ? (uint64_t)p->sample_id[i] : (uint64_t)i;
        dropout_sample(d, p, sid, d_y + (size_t)i * per, d_x[0] + (size_t)i * per, per, acc);
    }
}

static void dropout_describe(const Layer *l, char *buf, size_t len)
{
    snprintf(buf, len, "rate %g", ((const Dropout *)l)->rate);
}

const LayerOps dropout_ops = {.type = "dropout", .forward = dropout_forward, .backward = dropout_backward,
                              .describe = dropout_describe};

Layer *dropout_create(const char *name, Shape in, float rate, char *err, size_t errlen)
{
    if (!(rate >= 0.0f && rate < 1.0f))
        return layer_refuse(&dropout_ops, name, err, errlen, "rate %g must be in [0, 1)", rate);
    Layer *l = layer_alloc(sizeof(Dropout), &dropout_ops, name, in, err, errlen);
    if (!l)
        return NULL;
    ((Dropout *)l)->rate = rate;
    l->out = in;
    l->flops = (double)shape_size(in);
    return l;
}
