/* batchnorm.c - per-channel batch normalisation with an optional fused ReLU.
 *
 * Training: mean and biased variance over (N,H,W) of each channel normalise
 *   the batch; running_mean and running_var (unbiased) move by `momentum`
 *   towards them, as PyTorch. The mean and 1/sqrt(var + eps) are kept in the
 *   layer for the backward pass of the same batch.
 * Inference: the running statistics, y = (x - running_mean) * a + beta with
 *   a = gamma / sqrt(running_var + eps); backward is then that affine map.
 *
 * Statistics and gradient sums use double accumulators in a fixed order (eight
 * interleaved partial sums, so the loops vectorise); each channel is reduced
 * by one thread, so results do not depend on the number of threads.
 *
 * Synchronised over a group (Pass.reduce set, training): each pass runs in
 * three phases, the per-channel sums of this slice, one reduce of all
 * channels' sums at once, then the normalisation (forward) or the input
 * gradient (backward) from the group's sums. Forward sums x - shift and
 * (x - shift)^2 with shift the running mean as stored (the same on every
 * rank, unlike any sample of the slice) and the slice's count; backward sums
 * g and g * (x - mean). The cost is two allreduces of 2C + 1 and 2C doubles
 * per layer per training pass; without reduce the same phases run locally.
 * gamma and beta get this slice's own gradient sums: the gradient allreduce
 * adds the slices.
 *
 * In the channel-blocked layout (layers.h; the network chooses it where the
 * convolutions around run by oneDNN) the same sums run over 16 channels at
 * once, one lane each, in pieces of images (bnb_pieces) added in order.
 */
#include <math.h>

#include "internal.h"

typedef struct {
    Layer base;
    float eps, momentum;
    int relu;
    double *mean;   /* (C) batch mean of the last training forward */
    double *invstd; /* (C) its 1/sqrt(var + eps) */
    double count;   /* values per channel behind them (the group's batch x H x W) */
    double *sums;   /* (2C + 1) forward: per channel sum d, sum d^2, then the count;
                       backward: per channel sum g, sum g * (x - mean) */
    double *part;   /* channel-blocked layout: the sums of each block's pieces (bnb_pieces) */
} BatchNorm;

#define BN_LANES 8

/* g where the fused ReLU passed (y > 0), else 0. Both values are loaded
 * unconditionally, so the compiler blends instead of using masked loads. */
static inline float relu_pass(float g, float y) { return y > 0.0f ? g : 0.0f; }

/* Sums of d and d^2 over n floats, d = x - shift, added to s[0] and s[1]. */
static void bn_moments(const float *x, size_t n, double shift, double s[2])
{
    double a[BN_LANES] = {0}, b[BN_LANES] = {0};
    size_t i = 0;
    for (; i + BN_LANES <= n; i += BN_LANES)
        for (int q = 0; q < BN_LANES; q++) {
            double d = (double)x[i + q] - shift;
            a[q] += d;
            b[q] += d * d;
        }
    for (; i < n; i++) {
        double d = (double)x[i] - shift;
        a[0] += d;
        b[0] += d * d;
    }
    for (int q = 0; q < BN_LANES; q++) {
        s[0] += a[q];
        s[1] += b[q];
    }
}

/* Lane sums of g and g * (x - mean) over n floats, added to a and b. */
static void bn_grad_lanes(const float *x, const float *g, size_t n, double mean, double a[BN_LANES],
                          double b[BN_LANES])
{
    size_t i = 0;
    for (; i + BN_LANES <= n; i += BN_LANES)
        for (int q = 0; q < BN_LANES; q++) {
            double gq = g[i + q];
            a[q] += gq;
            b[q] += gq * ((double)x[i + q] - mean);
        }
    for (; i < n; i++) {
        a[0] += g[i];
        b[0] += (double)g[i] * ((double)x[i] - mean);
    }
}

#define BN_BLOCK 256

/* Sums of g and g * (x - mean) over n floats, g = d_y masked by y > 0 when y
 * is not NULL (a fused ReLU), added to s[0] and s[1]. The mask is applied in
 * float blocks first, so the sums run as the same vector loop either way. */
static void bn_grad_sums(const float *x, const float *y, const float *d_y, size_t n, double mean, double s[2])
{
    double a[BN_LANES] = {0}, b[BN_LANES] = {0};
    if (y) {
        float gm[BN_BLOCK];
        for (size_t i = 0; i < n; i += BN_BLOCK) {
            size_t m = n - i < BN_BLOCK ? n - i : BN_BLOCK;
            for (size_t j = 0; j < m; j++)
                gm[j] = relu_pass(d_y[i + j], y[i + j]);
            bn_grad_lanes(x + i, gm, m, mean, a, b);
        }
    } else {
        bn_grad_lanes(x, d_y, n, mean, a, b);
    }
    for (int q = 0; q < BN_LANES; q++) {
        s[0] += a[q];
        s[1] += b[q];
    }
}

/* y = (x - mean) * a + b over n floats, then max(y, 0) when relu. */
static void bn_affine(const float *restrict x, float *restrict y, size_t n, float mean, float a, float b, int relu)
{
    if (relu)
        for (size_t i = 0; i < n; i++) {
            float v = (x[i] - mean) * a + b;
            y[i] = v > 0.0f ? v : 0.0f;
        }
    else
        for (size_t i = 0; i < n; i++)
            y[i] = (x[i] - mean) * a + b;
}

/* This slice's sums of d = x - shift and d^2 for channel c into s[0], s[1]
 * (x is (N, C, HW)); shift is the running mean, which keeps E[d^2] - E[d]^2
 * accurate once it tracks the batches. */
static void bn_channel_sums(const BatchNorm *bn, const float *x, int N, int c, size_t hw, double s[2])
{
    size_t stride = (size_t)bn->base.in_shape[0].c * hw;
    const float *xc = x + (size_t)c * hw;
    double shift = bn->base.state[0].data[c];
    s[0] = s[1] = 0;
    for (int n = 0; n < N; n++)
        bn_moments(xc + (size_t)n * stride, hw, shift, s);
}

/* Batch statistics of channel c from the sums s of m values: mean and
 * biased variance; moves the running statistics. */
static void bn_channel_stats(BatchNorm *bn, int c, const double s[2], double m)
{
    float *rm = bn->base.state[0].data, *rv = bn->base.state[1].data;
    double shift = rm[c];
    double dm = m > 0 ? s[0] / m : 0.0, var = m > 0 ? s[1] / m - dm * dm : 0.0;
    var = var > 0.0 ? var : 0.0;
    bn->mean[c] = shift + dm;
    bn->invstd[c] = 1.0 / sqrt(var + (double)bn->eps);
    double mom = bn->momentum, unbiased = m > 1.0 ? var * m / (m - 1.0) : var;
    rm[c] = (float)((1.0 - mom) * rm[c] + mom * bn->mean[c]);
    rv[c] = (float)((1.0 - mom) * rv[c] + mom * unbiased);
}

/* Mean and 1/sqrt(var + eps) of channel c in the mode in use. */
static void bn_channel_norm(const BatchNorm *bn, int training, int c, double *mean, double *invstd)
{
    if (training) {
        *mean = bn->mean[c];
        *invstd = bn->invstd[c];
    } else {
        *mean = bn->base.state[0].data[c];
        *invstd = 1.0 / sqrt((double)bn->base.state[1].data[c] + (double)bn->eps);
    }
}

/* ------------------------------------------- the channel-blocked layout */

#define BB LAYOUT_BLOCK
#define BNB_MAX_PIECES 16

/* Sums run over a block's channels in pieces of images: the number of pieces
 * depends on the block count only (never on the threads), so that layers of
 * few blocks still keep the team busy and the bits stay the same for any
 * thread count. The pieces' sums are added in piece order. */
static int bnb_pieces(int C, int N)
{
    int k = BNB_MAX_PIECES / (C / BB);
    k = k < 1 ? 1 : k;
    return k < N ? k : (N > 0 ? N : 1);
}

/* Images [*n0, *n1) of piece k of K over N. */
static void bnb_piece(int k, int K, int N, int *n0, int *n1)
{
    *n0 = (int)((long)N * k / K);
    *n1 = (int)((long)N * (k + 1) / K);
}

/* s[2c], s[2c + 1] = the pieces' sums of every channel (part: block, piece,
 * then 2 x 16 lanes), in piece order. */
static void bnb_add_pieces(const double *part, int C, int K, double *s)
{
    for (int c = 0; c < C; c++) {
        double a = 0, b = 0;
        for (int k = 0; k < K; k++) {
            const double *pp = part + ((size_t)(c / BB) * K + k) * 2 * BB;
            a += pp[c % BB];
            b += pp[BB + c % BB];
        }
        s[2 * c] = a;
        s[2 * c + 1] = b;
    }
}

/* Block cb of image n: hw rows of BB channels. */
static inline size_t bnb_at(const BatchNorm *bn, int n, int cb, size_t hw)
{
    return ((size_t)n * (size_t)(bn->base.in_shape[0].c / BB) + (size_t)cb) * hw * BB;
}

/* Sums of d = x - shift and d^2 of block cb's channels over images [n0, n1)
 * into part[q] and part[16 + q]. */
static void bnb_sums(const BatchNorm *bn, const float *x, int n0, int n1, int cb, size_t hw, double *part)
{
    const float *rm = bn->base.state[0].data + cb * BB;
    double a[BB] = {0}, b[BB] = {0}, shift[BB];
    for (int q = 0; q < BB; q++)
        shift[q] = rm[q];
    for (int n = n0; n < n1; n++) {
        const float *xb = x + bnb_at(bn, n, cb, hw);
        for (size_t i = 0; i < hw; i++)
            for (int q = 0; q < BB; q++) {
                double d = (double)xb[i * BB + q] - shift[q];
                a[q] += d;
                b[q] += d * d;
            }
    }
    for (int q = 0; q < BB; q++) {
        part[q] = a[q];
        part[BB + q] = b[q];
    }
}

/* One image's rows of block cb: y = (x - mean) * a + b, then the ReLU
 * (relu constant where inlined). */
static inline __attribute__((always_inline)) void bnb_affine_rows(const float *restrict xb, float *restrict yb,
                                                                  size_t hw, const float *mean, const float *a,
                                                                  const float *b, int relu)
{
    for (size_t i = 0; i < hw; i++)
        for (int q = 0; q < BB; q++) {
            float v = (xb[i * BB + q] - mean[q]) * a[q] + b[q];
            yb[i * BB + q] = relu && v < 0.0f ? 0.0f : v;
        }
}

/* y = (x - mean) * a + b over block cb of image n, then the ReLU. */
static void bnb_affine(const BatchNorm *bn, const float *x, float *y, int n, int cb, size_t hw, const float *mean,
                       const float *a, const float *b)
{
    size_t o = bnb_at(bn, n, cb, hw);
    if (bn->relu)
        bnb_affine_rows(x + o, y + o, hw, mean, a, b, 1);
    else
        bnb_affine_rows(x + o, y + o, hw, mean, a, b, 0);
}

/* hw rows of block cb: sums of g and g * (x - mean) added to a and b. */
static void bnb_grad_rows(const float *restrict xb, const float *restrict gb, size_t hw, const double *mean,
                          double *a, double *b)
{
    for (size_t i = 0; i < hw; i++)
        for (int q = 0; q < BB; q++) {
            size_t e = i * BB + q;
            double g = gb[e];
            a[q] += g;
            b[q] += g * ((double)xb[e] - mean[q]);
        }
}

/* Sums of g and g * (x - mean) of block cb's channels over images [n0, n1)
 * into part[q] and part[16 + q], g = d_y masked by y > 0 when y is not NULL. */
static void bnb_grad_sums(const BatchNorm *bn, const float *x, const float *y, const float *d_y, int n0, int n1,
                          int cb, size_t hw, const double *mean, double *part)
{
    double a[BB] = {0}, b[BB] = {0};
    for (int n = n0; n < n1; n++) {
        size_t o = bnb_at(bn, n, cb, hw);
        if (!y) {
            bnb_grad_rows(x + o, d_y + o, hw, mean, a, b);
            continue;
        }
        /* masked in float pieces first, so the sums run as the same vector loop */
        float gm[BN_BLOCK];
        for (size_t i = 0; i < hw; i += BN_BLOCK / BB) {
            size_t rows = hw - i < BN_BLOCK / BB ? hw - i : BN_BLOCK / BB;
            const float *yb = y + o + i * BB, *gb = d_y + o + i * BB;
            for (size_t e = 0; e < rows * BB; e++)
                gm[e] = relu_pass(gb[e], yb[e]);
            bnb_grad_rows(x + o + i * BB, gm, rows, mean, a, b);
        }
    }
    for (int q = 0; q < BB; q++) {
        part[q] = a[q];
        part[BB + q] = b[q];
    }
}

/* One image's rows of block cb: d_x (=|+=) k1 * g + k2 * (x - mean) + k3,
 * g = d_y masked by y > 0 when relu (relu and acc constant where inlined,
 * so each variant is its own vector loop). */
static inline __attribute__((always_inline)) void bnb_dx_rows(const float *restrict xb, const float *restrict yb,
                                                              const float *restrict gb, float *restrict db,
                                                              size_t hw, const float *k1, const float *k2,
                                                              const float *k3, const float *mean, int relu, int acc)
{
    for (size_t i = 0; i < hw; i++)
        for (int q = 0; q < BB; q++) {
            size_t e = i * BB + q;
            float gv = gb[e], yv = relu ? yb[e] : 1.0f;
            float g = relu_pass(gv, yv);
            float v = k1[q] * g + k2[q] * (xb[e] - mean[q]) + k3[q];
            db[e] = acc ? db[e] + v : v;
        }
}

/* d_x (=|+=) k1 * g + k2 * (x - mean) + k3 over block cb of image n. */
static void bnb_dx(const BatchNorm *bn, const float *x, const float *y, const float *d_y, float *d_x, int n, int cb,
                   size_t hw, int acc, const float *k1, const float *k2, const float *k3, const float *mean)
{
    size_t o = bnb_at(bn, n, cb, hw);
    const float *xb = x + o, *gb = d_y + o;
    float *db = d_x + o;
    if (y && acc)
        bnb_dx_rows(xb, y + o, gb, db, hw, k1, k2, k3, mean, 1, 1);
    else if (y)
        bnb_dx_rows(xb, y + o, gb, db, hw, k1, k2, k3, mean, 1, 0);
    else if (acc)
        bnb_dx_rows(xb, NULL, gb, db, hw, k1, k2, k3, mean, 0, 1);
    else
        bnb_dx_rows(xb, NULL, gb, db, hw, k1, k2, k3, mean, 0, 0);
}

// x (N,C,H,W) -> y (N,C,H,W), both NCHW or both channel-blocked
static void bn_forward(Layer *l, const Pass *p, const float *const *x, float *y)
{
    BatchNorm *bn = (BatchNorm *)l;
    Shape in = l->in_shape[0];
    size_t hw = (size_t)in.h * in.w, stride = (size_t)in.c * hw;
    const float *xs = x[0];
    const float *gamma = l->param[0].data, *beta = l->param[1].data;
    int N = p->n, training = p->training, C = in.c;
    const int blocked = l->out_blocked;
    if (training) { /* the slice's sums, the group's (reduce), the statistics */
        double *s = bn->sums;
        if (blocked) {
            const int K = bnb_pieces(C, N);
#pragma omp parallel for schedule(static) if (OMP_WORTH((size_t)N * stride))
            for (int u = 0; u < C / BB * K; u++) {
                int n0, n1;
                bnb_piece(u % K, K, N, &n0, &n1);
                bnb_sums(bn, xs, n0, n1, u / K, hw, bn->part + (size_t)u * 2 * BB);
            }
            bnb_add_pieces(bn->part, C, K, s);
        } else {
#pragma omp parallel for schedule(static) if (OMP_WORTH((size_t)N * stride))
            for (int c = 0; c < C; c++)
                bn_channel_sums(bn, xs, N, c, hw, s + 2 * c);
        }
        s[2 * C] = (double)N * (double)hw;
        if (p->reduce)
            p->reduce(p->reduce_user, s, 2 * C + 1);
        bn->count = s[2 * C];
        for (int c = 0; c < C; c++)
            bn_channel_stats(bn, c, s + 2 * c, bn->count);
    }
    if (blocked) {
#pragma omp parallel for schedule(static) if (OMP_WORTH((size_t)N * stride))
        for (int u = 0; u < C / BB * N; u++) { /* no sums: any split gives the same bits */
            const int cb = u / N, n = u % N;
            float mean[BB], a[BB];
            for (int q = 0; q < BB; q++) {
                double m, invstd;
                bn_channel_norm(bn, training, cb * BB + q, &m, &invstd);
                mean[q] = (float)m;
                a[q] = (float)((double)gamma[cb * BB + q] * invstd);
            }
            bnb_affine(bn, xs, y, n, cb, hw, mean, a, beta + cb * BB);
        }
        return;
    }
#pragma omp parallel for schedule(static) if (OMP_WORTH((size_t)N * stride))
    for (int c = 0; c < C; c++) {
        double mean, invstd;
        bn_channel_norm(bn, training, c, &mean, &invstd);
        float a = (float)((double)gamma[c] * invstd);
        for (int n = 0; n < N; n++) {
            size_t o = (size_t)n * stride + (size_t)c * hw;
            bn_affine(xs + o, y + o, hw, (float)mean, a, beta[c], bn->relu);
        }
    }
}

/* d_x of one channel slice: d_x (=|+=) k1 * g + k2 * (x - mean) + k3, with
 * g = d_y masked by y > 0 when y != NULL. */
static void bn_dx_slice(const float *restrict x, const float *restrict y, const float *restrict d_y,
                        float *restrict d_x, size_t n, int acc, float k1, float k2, float k3, float mean)
{
    if (y && acc)
        for (size_t i = 0; i < n; i++)
            d_x[i] += k1 * relu_pass(d_y[i], y[i]) + k2 * (x[i] - mean) + k3;
    else if (y)
        for (size_t i = 0; i < n; i++)
            d_x[i] = k1 * relu_pass(d_y[i], y[i]) + k2 * (x[i] - mean) + k3;
    else if (acc)
        for (size_t i = 0; i < n; i++)
            d_x[i] += k1 * d_y[i] + k2 * (x[i] - mean) + k3;
    else
        for (size_t i = 0; i < n; i++)
            d_x[i] = k1 * d_y[i] + k2 * (x[i] - mean) + k3;
}

/* Channel c's d_x = k1 * g + k2 * (x - mean) + k3 from the sums s of g
 * and g * (x - mean) over m values. Training, the full gradient through the
 * batch statistics:
 *   d_x = gamma*invstd * (g - s0/m - (x - mean)*invstd^2 * s1/m);
 * inference, an affine map: d_x = gamma*invstd * g. */
static void bn_dx_coefficients(const BatchNorm *bn, const float *gamma, const double *s, double m, int training,
                               int c, double *mean, double *k1, double *k2, double *k3)
{
    double invstd;
    bn_channel_norm(bn, training, c, mean, &invstd);
    *k1 = (double)gamma[c] * invstd;
    *k2 = training ? -*k1 * invstd * invstd * s[2 * c + 1] / m : 0.0;
    *k3 = training ? -*k1 * s[2 * c] / m : 0.0;
}

// d_y (N,C,H,W) -> d_x (N,C,H,W), d_gamma (C), d_beta (C), in the forward's layout
static void bn_backward(Layer *l, const Pass *p, const float *const *x, const float *y, const float *d_y,
                        float *const *d_x, unsigned accumulate)
{
    BatchNorm *bn = (BatchNorm *)l;
    Shape in = l->in_shape[0];
    size_t hw = (size_t)in.h * in.w, stride = (size_t)in.c * hw;
    const float *xs = x[0];
    float *dx = d_x[0];
    const float *ymask = bn->relu ? y : NULL;
    const float *gamma = l->param[0].data;
    float *d_gamma = l->param[0].grad, *d_beta = l->param[1].grad;
    int N = p->n, training = p->training, acc_x = accumulate & 1u, acc_p = p->accumulate_grads, C = in.c;
    double *s = bn->sums; /* per channel: sum g, sum g * (x - mean) */
    const int blocked = l->out_blocked;
    if (blocked) {
        const int K = bnb_pieces(C, N);
#pragma omp parallel for schedule(static) if (OMP_WORTH((size_t)N * stride))
        for (int u = 0; u < C / BB * K; u++) {
            const int cb = u / K;
            int n0, n1;
            bnb_piece(u % K, K, N, &n0, &n1);
            double mean[BB], invstd;
            for (int q = 0; q < BB; q++)
                bn_channel_norm(bn, training, cb * BB + q, &mean[q], &invstd);
            bnb_grad_sums(bn, xs, ymask, d_y, n0, n1, cb, hw, mean, bn->part + (size_t)u * 2 * BB);
        }
        bnb_add_pieces(bn->part, C, K, s);
    } else {
#pragma omp parallel for schedule(static) if (OMP_WORTH((size_t)N * stride))
        for (int c = 0; c < C; c++) {
            double mean, invstd, *sc = s + 2 * c;
            bn_channel_norm(bn, training, c, &mean, &invstd);
            sc[0] = sc[1] = 0;
            for (int n = 0; n < N; n++) {
                size_t o = (size_t)n * stride + (size_t)c * hw;
                bn_grad_sums(xs + o, ymask ? ymask + o : NULL, d_y + o, hw, mean, sc);
            }
        }
    }
    for (int c = 0; c < C; c++) {
        double mean, invstd, *sc = s + 2 * c;
        bn_channel_norm(bn, training, c, &mean, &invstd);
        double dbeta = sc[0], dgamma = sc[1] * invstd; /* this slice's own */
        if (d_gamma) {
            d_gamma[c] = (float)(acc_p ? d_gamma[c] + dgamma : dgamma);
            d_beta[c] = (float)(acc_p ? d_beta[c] + dbeta : dbeta);
        }
    }
    if (!dx)
        return;
    /* the input gradient goes through the statistics of the whole batch */
    if (training && p->reduce)
        p->reduce(p->reduce_user, s, 2 * C);
    double m = bn->count;
    if (blocked) {
#pragma omp parallel for schedule(static) if (OMP_WORTH((size_t)N * stride))
        for (int u = 0; u < C / BB * N; u++) {
            const int cb = u / N, n = u % N;
            float k1[BB], k2[BB], k3[BB], mean[BB];
            for (int q = 0; q < BB; q++) {
                double dm, d1, d2, d3;
                bn_dx_coefficients(bn, gamma, s, m, training, cb * BB + q, &dm, &d1, &d2, &d3);
                mean[q] = (float)dm;
                k1[q] = (float)d1;
                k2[q] = (float)d2;
                k3[q] = (float)d3;
            }
            bnb_dx(bn, xs, ymask, d_y, dx, n, cb, hw, acc_x, k1, k2, k3, mean);
        }
        return;
    }
#pragma omp parallel for schedule(static) if (OMP_WORTH((size_t)N * stride))
    for (int c = 0; c < C; c++) {
        double mean, k1, k2, k3;
        bn_dx_coefficients(bn, gamma, s, m, training, c, &mean, &k1, &k2, &k3);
        for (int n = 0; n < N; n++) {
            size_t o = (size_t)n * stride + (size_t)c * hw;
            bn_dx_slice(xs + o, ymask ? ymask + o : NULL, d_y + o, dx + o, hw, acc_x, (float)k1, (float)k2,
                        (float)k3, (float)mean);
        }
    }
}

static void bn_destroy(Layer *l)
{
    BatchNorm *bn = (BatchNorm *)l;
    free(bn->mean);
    free(bn->invstd);
    free(bn->sums);
    free(bn->part);
}

static void bn_describe(const Layer *l, char *buf, size_t len)
{
    const BatchNorm *bn = (const BatchNorm *)l;
    snprintf(buf, len, "eps %g, momentum %g%s", bn->eps, bn->momentum, bn->relu ? ", relu" : "");
}

/* Input and output in one layout, either one. */
static int bn_layouts(const Layer *l) { return LAYOUT_SAME; }

const LayerOps batchnorm_ops = {.type = "batchnorm", .forward = bn_forward, .backward = bn_backward,
                                .destroy = bn_destroy, .describe = bn_describe, .layouts = bn_layouts};

Layer *batchnorm_create(const char *name, Shape in, float eps, float momentum, int relu, char *err, size_t errlen)
{
    if (!(eps > 0.0f) || !(momentum >= 0.0f && momentum <= 1.0f))
        return layer_refuse(&batchnorm_ops, name, err, errlen,
                            "expected eps > 0 and momentum in [0, 1] (got %g, %g)", eps, momentum);
    Layer *l = layer_alloc(sizeof(BatchNorm), &batchnorm_ops, name, in, err, errlen);
    if (!l)
        return NULL;
    BatchNorm *bn = (BatchNorm *)l;
    bn->eps = eps;
    bn->momentum = momentum;
    bn->relu = relu != 0;
    bn->mean = calloc((size_t)in.c, sizeof(double));
    bn->invstd = calloc((size_t)in.c, sizeof(double));
    bn->sums = calloc(2 * (size_t)in.c + 1, sizeof(double));
    bn->part = calloc(2 * (size_t)(in.c / BB + 1) * BNB_MAX_PIECES * BB, sizeof(double));
    bn->count = 1;
    if (!bn->mean || !bn->invstd || !bn->sums || !bn->part) {
        layer_destroy(l);
        return layer_refuse(&batchnorm_ops, name, err, errlen, "out of memory");
    }
    for (int c = 0; c < in.c; c++)
        bn->invstd[c] = 1.0;
    int dims[1] = {in.c};
    l->n_params = 2;
    tensor_describe(&l->param[0], "weight", 1, dims, 0, 1.0f);
    tensor_describe(&l->param[1], "bias", 1, dims, 0, 0.0f);
    l->n_state = 2;
    tensor_describe(&l->state[0], "running_mean", 1, dims, 0, 0.0f);
    tensor_describe(&l->state[1], "running_var", 1, dims, 0, 1.0f);
    l->out = in;
    l->flops = (double)shape_size(in) * (relu ? 5.0 : 4.0);
    return l;
}
