/* shape_ops.c - global average pooling, the residual add and flatten. */
#include "internal.h"

/* ------------------------------------------------- global average pool */

// x (N,C,H,W) -> y (N,C,1,1)
static void gap_forward(Layer *l, const Pass *p, const float *const *x, float *y)
{
    Shape in = l->in_shape[0];
    size_t hw = (size_t)in.h * in.w, planes = (size_t)p->n * in.c;
    const float *xs = x[0];
#pragma omp parallel for schedule(static) if (OMP_WORTH(planes * hw))
    for (size_t i = 0; i < planes; i++) {
        const float *xp = xs + i * hw;
        double s = 0.0;
        for (size_t j = 0; j < hw; j++)
            s += xp[j];
        y[i] = (float)(s / (double)hw);
    }
}

// d_y (N,C,1,1) -> d_x (N,C,H,W) = d_y / (H*W) everywhere
static void gap_backward(Layer *l, const Pass *p, const float *const *x, const float *y, const float *d_y,
                         float *const *d_x, unsigned accumulate)
{
    float *dx = d_x[0];
    if (!dx)
        return;
    Shape in = l->in_shape[0];
    size_t hw = (size_t)in.h * in.w, planes = (size_t)p->n * in.c;
    int acc = accumulate & 1u;
    float inv = 1.0f / (float)hw;
#pragma omp parallel for schedule(static) if (OMP_WORTH(planes * hw))
    for (size_t i = 0; i < planes; i++) {
        float g = d_y[i] * inv;
        float *dp = dx + i * hw;
        if (acc)
            for (size_t j = 0; j < hw; j++)
                dp[j] += g;
        else
            for (size_t j = 0; j < hw; j++)
                dp[j] = g;
    }
}

const LayerOps gap_ops = {.type = "gap", .forward = gap_forward, .backward = gap_backward};

Layer *gap_create(const char *name, Shape in, char *err, size_t errlen)
{
    Layer *l = layer_alloc(sizeof(Layer), &gap_ops, name, in, err, errlen);
    if (!l)
        return NULL;
    l->out = (Shape){in.c, 1, 1};
    l->flops = (double)shape_size(in);
    return l;
}

/* --------------------------------------------------------- residual add */

typedef struct {
    Layer base;
    int relu;
} Add;

// x0, x1 (N,C,H,W) -> y (N,C,H,W) = x0 + x1, then max(y, 0) when relu
static void add_forward(Layer *l, const Pass *p, const float *const *x, float *y)
{
    size_t n = (size_t)p->n * shape_size(l->out);
    const float *a = x[0], *b = x[1];
    if (((const Add *)l)->relu) {
#pragma omp parallel for schedule(static) if (OMP_WORTH(n))
        for (size_t i = 0; i < n; i++) {
            float v = a[i] + b[i];
            y[i] = v > 0.0f ? v : 0.0f;
        }
    } else {
#pragma omp parallel for schedule(static) if (OMP_WORTH(n))
        for (size_t i = 0; i < n; i++)
            y[i] = a[i] + b[i];
    }
}

/* g where the fused ReLU passed (y > 0), else 0. Both values are loaded
 * unconditionally, so the compiler blends instead of using masked loads. */
static inline float relu_pass(float g, float y) { return y > 0.0f ? g : 0.0f; }

/* d_x (=|+=) d_y, masked by y > 0 when y != NULL. */
static void pass_gradient(float *restrict d_x, const float *restrict d_y, const float *restrict y, size_t n, int acc)
{
    if (!d_x)
        return;
    if (y && acc) {
#pragma omp parallel for schedule(static) if (OMP_WORTH(n))
        for (size_t i = 0; i < n; i++)
            d_x[i] += relu_pass(d_y[i], y[i]);
    } else if (y) {
#pragma omp parallel for schedule(static) if (OMP_WORTH(n))
        for (size_t i = 0; i < n; i++)
            d_x[i] = relu_pass(d_y[i], y[i]);
    } else if (acc) {
#pragma omp parallel for schedule(static) if (OMP_WORTH(n))
        for (size_t i = 0; i < n; i++)
            d_x[i] += d_y[i];
    } else {
        memcpy(d_x, d_y, n * sizeof(float));
    }
}

// d_y (N,C,H,W) -> d_x[0], d_x[1] (N,C,H,W), each with its own accumulate bit
static void add_backward(Layer *l, const Pass *p, const float *const *x, const float *y, const float *d_y,
                         float *const *d_x, unsigned accumulate)
{
    size_t n = (size_t)p->n * shape_size(l->out);
    const float *mask = ((const Add *)l)->relu ? y : NULL;
    pass_gradient(d_x[0], d_y, mask, n, (accumulate >> 0) & 1u);
    pass_gradient(d_x[1], d_y, mask, n, (accumulate >> 1) & 1u);
}

static void add_describe(const Layer *l, char *buf, size_t len)
{
    snprintf(buf, len, "%s", ((const Add *)l)->relu ? "relu" : "");
}

/* Element by element: both inputs and the output in one layout, either one. */
static int add_layouts(const Layer *l) { return LAYOUT_SAME; }

const LayerOps add_ops = {.type = "add", .forward = add_forward, .backward = add_backward, .describe = add_describe,
                          .layouts = add_layouts};

Layer *add_create(const char *name, Shape in, int relu, char *err, size_t errlen)
{
    Layer *l = layer_alloc(sizeof(Add), &add_ops, name, in, err, errlen);
    if (!l)
        return NULL;
    ((Add *)l)->relu = relu != 0;
    l->n_in = 2;
    l->in_shape[1] = in;
    l->out = in;
    l->flops = (double)shape_size(in) * (relu ? 2.0 : 1.0);
    return l;
}

/* -------------------------------------------------------------- flatten */

// x (N,C,H,W) -> y (N,C*H*W,1,1), the same floats
static void flatten_forward(Layer *l, const Pass *p, const float *const *x, float *y)
{
    size_t n = (size_t)p->n * shape_size(l->out);
    if (y != x[0])
        memcpy(y, x[0], n * sizeof(float));
}

static void flatten_backward(Layer *l, const Pass *p, const float *const *x, const float *y, const float *d_y,
                             float *const *d_x, unsigned accumulate)
{
    size_t n = (size_t)p->n * shape_size(l->out);
    pass_gradient(d_x[0], d_y, NULL, n, accumulate & 1u);
}

const LayerOps flatten_ops = {.type = "flatten", .forward = flatten_forward, .backward = flatten_backward};

Layer *flatten_create(const char *name, Shape in, char *err, size_t errlen)
{
    Layer *l = layer_alloc(sizeof(Layer), &flatten_ops, name, in, err, errlen);
    if (!l)
        return NULL;
    l->out = (Shape){(int)shape_size(in), 1, 1};
    l->flops = 0.0;
    return l;
}
