/* lrn.c - local response normalisation across channels, as PyTorch's
 * nn.LocalResponseNorm(size, alpha, beta, k):
 *
 *   s_c = k + alpha/size * sum_{c' = c - size/2}^{c + (size-1)/2} x_{c'}^2
 *   y_c = x_c * s_c^-beta
 *
 * Channels outside [0, C) count as zeros, and the sum is always divided by
 * `size` (PyTorch pads the squared input and average-pools it). For an even
 * size the window holds size/2 channels before c and size/2 - 1 after it.
 *
 * Backward, with t_c = d_y_c * y_c / s_c:
 *   d_x_j = d_y_j * s_j^-beta - 2*alpha*beta/size * x_j * sum_{c : j in window(c)} t_c
 * where j in window(c) <=> c in [j - (size-1)/2, j + size/2].
 */
#include <math.h>
#include <omp.h>
#if defined(__SSE__)
#include <immintrin.h>
#endif

#include "internal.h"

typedef struct {
    Layer base;
    int size;
    float alpha, beta, k;
} Lrn;

/* s^-beta for a row; beta = 0.75 (every published network) avoids powf.
 * sqrtf may set errno, which keeps the compiler from vectorising it, so on
 * x86 the 0.75 case uses SSE square roots (correctly rounded, hence the same
 * values as the scalar loop). */
static void pow_neg_beta(float *v, size_t n, float beta)
{
    size_t i = 0;
    if (beta == 0.75f) {
#if defined(__SSE__)
        const __m128 one = _mm_set1_ps(1.0f);
        for (; i + 4 <= n; i += 4) {
            __m128 r = _mm_sqrt_ps(_mm_loadu_ps(v + i));
            _mm_storeu_ps(v + i, _mm_div_ps(one, _mm_mul_ps(r, _mm_sqrt_ps(r))));
        }
#endif
        for (; i < n; i++) {
            float r = sqrtf(v[i]);
            v[i] = 1.0f / (r * sqrtf(r));
        }
    } else {
        for (; i < n; i++)
            v[i] = powf(v[i], -beta);
    }
}

/* s (HW) = k + alpha/size * sum over the window of channel c of x^2, where x
 * points at one sample (C, HW). */
static void lrn_scale(const Lrn *ln, const float *x, int c, size_t hw, float *s)
{
    int C = ln->base.in_shape[0].c;
    int lo = c - ln->size / 2, hi = c + (ln->size - 1) / 2;
    lo = lo < 0 ? 0 : lo;
    hi = hi > C - 1 ? C - 1 : hi;
    for (size_t i = 0; i < hw; i++)
        s[i] = 0.0f;
    for (int cc = lo; cc <= hi; cc++) {
        const float *xc = x + (size_t)cc * hw;
        for (size_t i = 0; i < hw; i++)
            s[i] += xc[i] * xc[i];
    }
    float a = ln->alpha / (float)ln->size, k = ln->k;
    for (size_t i = 0; i < hw; i++)
        s[i] = k + a * s[i];
}

// x (N,C,H,W) -> y (N,C,H,W)
static void lrn_forward(Layer *l, const Pass *p, const float *const *x, float *y)
{
    const Lrn *ln = (const Lrn *)l;
    Shape in = l->in_shape[0];
    size_t hw = (size_t)in.h * in.w, planes = (size_t)p->n * in.c;
    const float *xs = x[0];
#pragma omp parallel for schedule(static) if (OMP_WORTH(planes * hw))
    for (size_t i = 0; i < planes; i++) {
        size_t n = i / (size_t)in.c;
        int c = (int)(i % (size_t)in.c);
        const float *xn = xs + n * in.c * hw;
        float *yc = y + i * hw;
        lrn_scale(ln, xn, c, hw, yc); /* y holds s, then s^-beta, then y */
        pow_neg_beta(yc, hw, ln->beta);
        const float *xc = xn + (size_t)c * hw;
        for (size_t j = 0; j < hw; j++)
            yc[j] *= xc[j];
    }
}

/* Scratch per thread: s^-beta and t for one sample, (C, HW) each. */
static size_t lrn_scratch_floats(const Layer *l) { return 2 * shape_size(l->in_shape[0]); }

/* Room for one sample per thread that can work at once, within the budget
 * (but never less than one sample's worth). */
static size_t lrn_workspace(const Layer *l, int n, size_t budget)
{
    size_t one = lrn_scratch_floats(l) * sizeof(float);
    size_t threads = (size_t)omp_get_max_threads();
    threads = threads < (size_t)n ? threads : (size_t)(n > 0 ? n : 1);
    if (budget / one < threads)
        threads = budget / one > 0 ? budget / one : 1;
    return one * threads;
}

/* One sample: x, y, d_y (C, HW) -> d_x (C, HW); sp and t are (C, HW) scratch. */
static void lrn_sample_backward(const Lrn *ln, const float *x, const float *y, const float *d_y, float *d_x,
                                int acc, float *sp, float *t)
{
    int C = ln->base.in_shape[0].c;
    size_t hw = (size_t)ln->base.in_shape[0].h * ln->base.in_shape[0].w;
    for (int c = 0; c < C; c++) {
        float *spc = sp + (size_t)c * hw, *tc = t + (size_t)c * hw;
        const float *yc = y + (size_t)c * hw, *dyc = d_y + (size_t)c * hw;
        lrn_scale(ln, x, c, hw, spc);
        for (size_t i = 0; i < hw; i++)
            tc[i] = dyc[i] * yc[i] / spc[i];
        pow_neg_beta(spc, hw, ln->beta);
    }
    float coef = 2.0f * ln->alpha * ln->beta / (float)ln->size;
    for (int j = 0; j < C; j++) {
        int lo = j - (ln->size - 1) / 2, hi = j + ln->size / 2;
        lo = lo < 0 ? 0 : lo;
        hi = hi > C - 1 ? C - 1 : hi;
        const float *xj = x + (size_t)j * hw, *dyj = d_y + (size_t)j * hw;
        float *dxj = d_x + (size_t)j * hw, *spj = sp + (size_t)j * hw;
        /* spj becomes the gradient: d_y * s^-beta - coef * x * sum of t over the window */
        for (size_t i = 0; i < hw; i++)
            spj[i] *= dyj[i];
        for (int c = lo; c <= hi; c++) {
            const float *tc = t + (size_t)c * hw;
            for (size_t i = 0; i < hw; i++)
                spj[i] -= coef * xj[i] * tc[i];
        }
        if (acc)
            for (size_t i = 0; i < hw; i++)
                dxj[i] += spj[i];
        else
            memcpy(dxj, spj, hw * sizeof(float));
    }
}

// d_y (N,C,H,W) -> d_x (N,C,H,W); samples run in parallel, one scratch each
static void lrn_backward(Layer *l, const Pass *p, const float *const *x, const float *y, const float *d_y,
                         float *const *d_x, unsigned accumulate)
{
    if (!d_x[0])
        return;
    const Lrn *ln = (const Lrn *)l;
    size_t per = shape_size(l->in_shape[0]), one = lrn_scratch_floats(l);
    size_t slots = p->work ? p->work_bytes / (one * sizeof(float)) : 0;
    if (slots < 1)
        layer_fatal(l, "scratch of %zu bytes is smaller than the %zu bytes backward needs", p->work_bytes,
                    one * sizeof(float));
    int threads = omp_get_max_threads();
    threads = (size_t)threads < slots ? threads : (int)slots;
    threads = threads < p->n ? threads : (p->n > 0 ? p->n : 1);
    int acc = accumulate & 1u;
    float *scratch = p->work;
#pragma omp parallel num_threads(threads) if (threads > 1 && OMP_WORTH((size_t)p->n * per))
    {
        float *sp = scratch + (size_t)omp_get_thread_num() * one;
#pragma omp for schedule(static)
        for (int n = 0; n < p->n; n++) {
            size_t o = (size_t)n * per;
            lrn_sample_backward(ln, x[0] + o, y + o, d_y + o, d_x[0] + o, acc, sp, sp + per);
        }
    }
}

static void lrn_describe(const Layer *l, char *buf, size_t len)
{
    const Lrn *ln = (const Lrn *)l;
    snprintf(buf, len, "size %d, alpha %g, beta %g, k %g", ln->size, ln->alpha, ln->beta, ln->k);
}

const LayerOps lrn_ops = {.type = "lrn", .forward = lrn_forward, .backward = lrn_backward,
                          .workspace = lrn_workspace, .describe = lrn_describe};

Layer *lrn_create(const char *name, Shape in, int size, float alpha, float beta, float k, char *err, size_t errlen)
{
    if (size < 1 || !(alpha >= 0.0f) || !(beta >= 0.0f) || !(k > 0.0f) || !isfinite(alpha) || !isfinite(beta) ||
        !isfinite(k))
        return layer_refuse(&lrn_ops, name, err, errlen,
                            "expected size >= 1, alpha >= 0, beta >= 0, k > 0 (got %d, %g, %g, %g)", size, alpha,
                            beta, k);
    Layer *l = layer_alloc(sizeof(Lrn), &lrn_ops, name, in, err, errlen);
    if (!l)
        return NULL;
    Lrn *ln = (Lrn *)l;
    ln->size = size;
    ln->alpha = alpha;
    ln->beta = beta;
    ln->k = k;
    l->out = in;
    l->flops = (double)shape_size(in) * (2.0 * size + 6.0);
    return l;
}
