/* loss.c - the training objectives: softmax cross-entropy (hard and soft
 * targets), knowledge distillation with temperature, L1/L2 regression and the
 * triplet loss on L2-normalised embeddings, plus argmax.
 *
 * Every loss returns (sum over the batch of the per-sample loss) / norm, where
 * norm is the global batch size, and writes the gradient scaled the same way.
 * A batch split over ranks therefore adds up to the loss of the whole batch.
 * Sums run in double and in a fixed order (sample by sample), so the result
 * does not depend on the thread count.
 *
 * Indices that are out of range (a class label outside [0,k), a triplet row
 * outside [0,rows)) are programming errors of the caller. Unoptimised debug
 * builds stop at an assert. Otherwise the *_checked forms return -1 with a
 * message naming the first bad sample and the expected range in err, leave
 * that sample's gradient at zero and set the loss to NaN; nothing is read
 * out of bounds. The float forms are thin wrappers that print the message
 * to stderr and return the loss (NaN after a violation), which the
 * trainer's non-finite check reports.
 */
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"

/* Unoptimised builds without NDEBUG: contract violations stop at once. */
#if !defined(NDEBUG) && !defined(__OPTIMIZE__)
#define LOSS_DEBUG_ASSERT(cond) assert(cond)
#else
#define LOSS_DEBUG_ASSERT(cond) ((void)0)
#endif

/* Rows whose L2 norm is below this are divided by it instead (as PyTorch's
 * F.normalize with a larger floor): a zero embedding maps to zero and its
 * gradient stays finite. */
#define TRIPLET_NORM_EPS 1e-6

/* Room the float forms give the message of their _checked form. */
#define LOSS_ERR_MAX 192

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void loss_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- softmax */

/* x (k) / T -> log of sum_j exp(x_j / T), stable (max subtracted). */
static double log_sum_exp(const float *x, int k, double inv_t)
{
    double m = -INFINITY;
    for (int j = 0; j < k; j++)
        if ((double)x[j] * inv_t > m)
            m = (double)x[j] * inv_t;
    if (!isfinite(m)) /* all -inf, or an inf/NaN logit: let it propagate */
        return m;
    double s = 0;
    for (int j = 0; j < k; j++)
        s += exp((double)x[j] * inv_t - m);
    return m + log(s);
}

/* Softmax of one row without scratch memory: d (k) = scale * (p - target),
 * where p = softmax(x), target is the one-hot of `label` (label >= 0) or the
 * distribution `t` scaled by its sum (label < 0). */
static void softmax_grad_row(const float *x, int k, double lse, int label, const float *t, double t_sum,
                             double scale, float *d)
{
    for (int j = 0; j < k; j++) {
        double p = exp((double)x[j] - lse);
        double target = label >= 0 ? (j == label ? 1.0 : 0.0) : (double)t[j];
        double mass = label >= 0 ? 1.0 : t_sum;
        d[j] = (float)(scale * (p * mass - target));
    }
}

/* ---------------------------------------------------------- cross-entropy */

/* logits (n,k), label (n) -> mean-by-norm of -log softmax(logits)[label];
 * d_logits (n,k) = (softmax - onehot) / norm. */
int loss_softmax_ce_checked(const float *logits, const int *label, int n, int k, float norm, float *d_logits,
                            float *loss, char *err, size_t errlen)
{
    double sum = 0, scale = 1.0 / (double)norm;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        const float *x = logits + (size_t)i * k;
        float *d = d_logits ? d_logits + (size_t)i * k : NULL;
        int y = label[i];
        LOSS_DEBUG_ASSERT(y >= 0 && y < k);
        if (y < 0 || y >= k) {
            if (!bad)
                loss_err(err, errlen, "loss_softmax_ce: sample %d has label %d, expected 0..%d", i, y, k - 1);
            bad = 1;
            if (d)
                memset(d, 0, (size_t)k * sizeof(float));
            continue;
        }
        double lse = log_sum_exp(x, k, 1.0);
        sum += lse - (double)x[y];
        if (d)
            softmax_grad_row(x, k, lse, y, NULL, 1.0, scale, d);
    }
    *loss = bad ? NAN : (float)(sum * scale);
    return bad ? -1 : 0;
}

/* logits (n,k), target (n,k) distributions -> sum_j -t_j log softmax_j / norm;
 * d_logits = (softmax * sum_j t_j - t) / norm (= softmax - t for a
 * distribution). */
float loss_softmax_ce_soft(const float *logits, const float *target, int n, int k, float norm, float *d_logits)
{
    double sum = 0, scale = 1.0 / (double)norm;
    for (int i = 0; i < n; i++) {
        const float *x = logits + (size_t)i * k;
        const float *t = target + (size_t)i * k;
        double lse = log_sum_exp(x, k, 1.0), t_sum = 0, row = 0;
        for (int j = 0; j < k; j++) {
            t_sum += (double)t[j];
            if (t[j] != 0.0f) /* 0 * log(0) is 0: a -inf logit with no target mass costs nothing */
                row += (double)t[j] * (lse - (double)x[j]);
        }
        sum += row;
        if (d_logits)
            softmax_grad_row(x, k, lse, -1, t, t_sum, scale, d_logits + (size_t)i * k);
    }
    return (float)(sum * scale);
}

/* ------------------------------------------------------------ distillation */

/* student, teacher (n,k) -> T^2 * sum_i KL(pt_i || ps_i) / norm with
 * pt = softmax(teacher/T), ps = softmax(student/T).
 *
 * Gradient: with z = s/T, d KL / d z_j = ps_j - pt_j, and d z / d s = 1/T, so
 * d_student = T^2 * (1/T) * (ps - pt) / norm = T * (ps - pt) / norm. The T^2
 * factor keeps the gradient's size comparable across temperatures (Hinton et
 * al. 2015). The teacher receives no gradient. */
int loss_kd_checked(const float *student, const float *teacher, int n, int k, float T, float norm, float *d_student,
                    float *loss, char *err, size_t errlen)
{
    LOSS_DEBUG_ASSERT(T > 0);
    if (!(T > 0)) {
        loss_err(err, errlen, "loss_kd: temperature %g, expected > 0", (double)T);
        if (d_student)
            memset(d_student, 0, (size_t)n * (size_t)k * sizeof(float));
        *loss = NAN;
        return -1;
    }
    double inv_t = 1.0 / (double)T, t2 = (double)T * (double)T, scale = 1.0 / (double)norm;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        const float *s = student + (size_t)i * k;
        const float *t = teacher + (size_t)i * k;
        double lse_s = log_sum_exp(s, k, inv_t), lse_t = log_sum_exp(t, k, inv_t);
        double row = 0;
        for (int j = 0; j < k; j++) {
            double log_pt = (double)t[j] * inv_t - lse_t;
            double log_ps = (double)s[j] * inv_t - lse_s;
            double pt = exp(log_pt);
            if (pt > 0) /* pt log pt -> 0 as pt -> 0 */
                row += pt * (log_pt - log_ps);
            if (d_student)
                d_student[(size_t)i * k + j] = (float)((double)T * scale * (exp(log_ps) - pt));
        }
        sum += row;
    }
    *loss = (float)(t2 * sum * scale);
    return 0;
}

/* ---------------------------------------------------------------- regression */

/* pred, target (n,d) -> sum |p - t| / norm; d_pred = sign(p - t) / norm with
 * sign(0) = 0 (the subgradient of least norm). */
float loss_l1(const float *pred, const float *target, int n, int d, float norm, float *d_pred)
{
    size_t count = (size_t)n * (size_t)d;
    double sum = 0, scale = 1.0 / (double)norm;
    float g = (float)scale;
    for (size_t i = 0; i < count; i++) {
        double r = (double)pred[i] - (double)target[i];
        sum += fabs(r);
        if (d_pred)
            d_pred[i] = r > 0 ? g : (r < 0 ? -g : 0.0f);
    }
    return (float)(sum * scale);
}

/* pred, target (n,d) -> 1/2 sum (p - t)^2 / norm; d_pred = (p - t) / norm. */
float loss_l2(const float *pred, const float *target, int n, int d, float norm, float *d_pred)
{
    size_t count = (size_t)n * (size_t)d;
    double sum = 0, scale = 1.0 / (double)norm;
    for (size_t i = 0; i < count; i++) {
        double r = (double)pred[i] - (double)target[i];
        sum += 0.5 * r * r;
        if (d_pred)
            d_pred[i] = (float)(r * scale);
    }
    return (float)(sum * scale);
}

/* ------------------------------------------------------------------ triplet */

/* e (rows,d) -> len (rows): the divisor of each row, max(|e_i|, eps). */
static void row_norms(const float *e, int rows, int d, double *len)
{
    for (int i = 0; i < rows; i++) {
        const float *r = e + (size_t)i * d;
        double s = 0;
        for (int j = 0; j < d; j++)
            s += (double)r[j] * (double)r[j];
        len[i] = fmax(sqrt(s), TRIPLET_NORM_EPS);
    }
}

/* The hinge argument |ua-up|^2 - |ua-un|^2 + margin for unit rows u = e/len. */
static double triplet_arg(const float *e, int d, const double *len, Triple t, double margin)
{
    const float *a = e + (size_t)t.a * d, *p = e + (size_t)t.p * d, *q = e + (size_t)t.n * d;
    double ia = 1.0 / len[t.a], ip = 1.0 / len[t.p], iq = 1.0 / len[t.n];
    double dp = 0, dn = 0;
    for (int j = 0; j < d; j++) {
        double ua = a[j] * ia, rp = ua - p[j] * ip, rn = ua - q[j] * iq;
        dp += rp * rp;
        dn += rn * rn;
    }
    return dp - dn + margin;
}

/* Adds the gradient of one active hinge w.r.t. the unit rows into g_u (rows,d),
 * times `scale`: d/dua = 2(un - up), d/dup = 2(up - ua), d/dun = 2(ua - un). */
static void triplet_grad_u(const float *e, int d, const double *len, Triple t, double scale, double *g_u)
{
    const float *a = e + (size_t)t.a * d, *p = e + (size_t)t.p * d, *q = e + (size_t)t.n * d;
    double ia = 1.0 / len[t.a], ip = 1.0 / len[t.p], iq = 1.0 / len[t.n];
    double *ga = g_u + (size_t)t.a * d, *gp = g_u + (size_t)t.p * d, *gn = g_u + (size_t)t.n * d;
    for (int j = 0; j < d; j++) {
        double ua = a[j] * ia, up = p[j] * ip, un = q[j] * iq;
        ga[j] += 2.0 * scale * (un - up);
        gp[j] += 2.0 * scale * (up - ua);
        gn[j] += 2.0 * scale * (ua - un);
    }
}

/* Through u = e / len: for |e| > eps, d_e = (g_u - u (u . g_u)) / |e|; below
 * the floor len is a constant and d_e = g_u / eps. g_u, d_e (rows,d). */
static void triplet_grad_e(const float *e, int rows, int d, const double *len, const double *g_u, float *d_e)
{
    for (int i = 0; i < rows; i++) {
        const float *r = e + (size_t)i * d;
        const double *g = g_u + (size_t)i * d;
        float *out = d_e + (size_t)i * d;
        double inv = 1.0 / len[i], dot = 0;
        if (len[i] > TRIPLET_NORM_EPS) /* else len is the constant floor */
            for (int j = 0; j < d; j++)
                dot += r[j] * inv * g[j];
        for (int j = 0; j < d; j++)
            out[j] = (float)((g[j] - r[j] * inv * dot) * inv);
    }
}

static int triple_valid(Triple t, int rows)
{
    return t.a >= 0 && t.a < rows && t.p >= 0 && t.p < rows && t.n >= 0 && t.n < rows;
}

/* e (rows,d), t (n_triples) -> sum of max(0, |ua-up|^2 - |ua-un|^2 + margin)
 * over the triples / norm, where u is e with each row L2-normalised. d_e
 * (rows,d) is overwritten: rows in no active triple get zero. */
int loss_triplet_checked(const float *e, int rows, int d, const Triple *t, int n_triples, float margin, float norm,
                         float *d_e, uint8_t *active, float *loss, char *err, size_t errlen)
{
    size_t count = (size_t)rows * (size_t)d;
    double *len = malloc((size_t)(rows > 0 ? rows : 1) * sizeof(double));
    double *g_u = d_e ? calloc(count ? count : 1, sizeof(double)) : NULL;
    if (!len || (d_e && !g_u)) {
        loss_err(err, errlen, "loss_triplet: out of memory for %d rows of %d", rows, d);
        free(len);
        free(g_u);
        if (d_e)
            memset(d_e, 0, count * sizeof(float));
        *loss = NAN;
        return -1;
    }
    row_norms(e, rows, d, len);
    double sum = 0, scale = 1.0 / (double)norm;
    int bad = 0;
    for (int i = 0; i < n_triples; i++) {
        LOSS_DEBUG_ASSERT(triple_valid(t[i], rows));
        if (!triple_valid(t[i], rows)) {
            if (!bad)
                loss_err(err, errlen, "loss_triplet: triple %d is (%d,%d,%d), expected rows in 0..%d", i, t[i].a,
                         t[i].p, t[i].n, rows - 1);
            bad = 1;
            if (active)
                active[i] = 0;
            continue;
        }
        double h = triplet_arg(e, d, len, t[i], (double)margin);
        if (active)
            active[i] = h > 0;
        if (h > 0) {
            sum += h;
            if (g_u)
                triplet_grad_u(e, d, len, t[i], scale, g_u);
        }
    }
    if (d_e)
        triplet_grad_e(e, rows, d, len, g_u, d_e);
    free(len);
    free(g_u);
    *loss = bad ? NAN : (float)(sum * scale);
    return bad ? -1 : 0;
}

/* ------------------------------------------------------------------ argmax */

/* v (k) -> index of the largest value; the first one on ties; -1 if k < 1.
 * NaN entries never win. */
int argmax(const float *v, int k)
{
    if (k < 1)
        return -1;
    int best = 0;
    for (int j = 1; j < k; j++)
        if (v[j] > v[best] || (isnan(v[best]) && !isnan(v[j])))
            best = j;
    return best;
}
