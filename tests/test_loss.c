/* test_loss.c - the losses of layers/loss.c against plain double-precision
 * references written here, whose own gradients are checked by central
 * differences; known values; the batch-splitting property of `norm`; and the
 * handling of out-of-range labels.
 *
 * For every loss and test input:
 *   1. the library's float value equals the reference value (relative 1e-6),
 *   2. the library's gradient equals the reference gradient (relative 1e-5),
 *   3. the reference gradient equals (L(x+h) - L(x-h)) / 2h of the reference
 *      in double, h = 1e-6; elements within 2h of a kink (L1 at p = t, a
 *      triplet hinge at 0) are stepped around, counted and allowed for at most
 *      a tenth of the elements.
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gradcheck.h"

#define FD_H 1e-6

/* ------------------------------------------------------------ test inputs */

typedef struct {
    int n, k;           /* rows and columns of the differentiated input */
    float norm;
    const int *label;   /* CE */
    const float *other; /* soft CE targets, KD teacher, regression targets (n,k) */
    float T;            /* KD */
    const Triple *tri;  /* triplet: rows = n, d = k */
    int n_tri;
    float margin;
} Ctx;

typedef float (*ImplFn)(const Ctx *c, const float *x, float *g);
typedef double (*RefFn)(const Ctx *c, const double *x, double *g);
/* 1 if the loss has a kink within 2h of x when element i moves by up to h. */
typedef int (*KinkFn)(const Ctx *c, const double *x, int i, double h);

/* --------------------------------------------------------- references */

/* row (k) -> softmax(row / T) in p (k); returns log(sum exp(row / T)). */
/* The losses that can fail, as values for the checks below: the message of
 * a violated contract printed, the loss NaN. */
static float loss_softmax_ce(const float *logits, const int *label, int n, int k, float norm, float *d_logits)
{
    char err[256];
    float v;
    if (loss_softmax_ce_checked(logits, label, n, k, norm, d_logits, &v, err, sizeof err))
        printf("  (refused: %s)\n", err);
    return v;
}

static float loss_kd(const float *student, const float *teacher, int n, int k, float T, float norm, float *d_student)
{
    char err[256];
    float v;
    if (loss_kd_checked(student, teacher, n, k, T, norm, d_student, &v, err, sizeof err))
        printf("  (refused: %s)\n", err);
    return v;
}

static float loss_triplet(const float *e, int rows, int d, const Triple *t, int n_triples, float margin, float norm,
                          float *d_e, uint8_t *active)
{
    char err[256];
    float v;
    if (loss_triplet_checked(e, rows, d, t, n_triples, margin, norm, d_e, active, &v, err, sizeof err))
        printf("  (refused: %s)\n", err);
    return v;
}

static double ref_softmax(const double *row, int k, double T, double *p)
{
    double m = row[0] / T;
    for (int j = 1; j < k; j++)
        m = fmax(m, row[j] / T);
    double z = 0;
    for (int j = 0; j < k; j++)
        z += exp(row[j] / T - m);
    for (int j = 0; j < k; j++)
        p[j] = exp(row[j] / T - m) / z;
    return m + log(z);
}

static double ref_ce(const Ctx *c, const double *x, double *g)
{
    double loss = 0, p[64];
    for (int i = 0; i < c->n; i++) {
        const double *row = x + (size_t)i * c->k;
        ref_softmax(row, c->k, 1.0, p);
        loss -= log(p[c->label[i]]);
        for (int j = 0; g && j < c->k; j++)
            g[(size_t)i * c->k + j] = (p[j] - (j == c->label[i])) / c->norm;
    }
    return loss / c->norm;
}

static double ref_ce_soft(const Ctx *c, const double *x, double *g)
{
    double loss = 0, p[64];
    for (int i = 0; i < c->n; i++) {
        const double *row = x + (size_t)i * c->k;
        const float *t = c->other + (size_t)i * c->k;
        ref_softmax(row, c->k, 1.0, p);
        double mass = 0;
        for (int j = 0; j < c->k; j++) {
            mass += t[j];
            loss -= t[j] * log(p[j]);
        }
        for (int j = 0; g && j < c->k; j++)
            g[(size_t)i * c->k + j] = (mass * p[j] - t[j]) / c->norm;
    }
    return loss / c->norm;
}

static double ref_kd(const Ctx *c, const double *x, double *g)
{
    double loss = 0, ps[64], pt[64], t[64];
    for (int i = 0; i < c->n; i++) {
        for (int j = 0; j < c->k; j++)
            t[j] = c->other[(size_t)i * c->k + j];
        ref_softmax(x + (size_t)i * c->k, c->k, c->T, ps);
        ref_softmax(t, c->k, c->T, pt);
        for (int j = 0; j < c->k; j++)
            loss += pt[j] * log(pt[j] / ps[j]);
        for (int j = 0; g && j < c->k; j++)
            g[(size_t)i * c->k + j] = c->T * (ps[j] - pt[j]) / c->norm;
    }
    return (double)c->T * c->T * loss / c->norm;
}

static double ref_l1(const Ctx *c, const double *x, double *g)
{
    double loss = 0;
    for (int i = 0; i < c->n * c->k; i++) {
        double r = x[i] - c->other[i];
        loss += fabs(r);
        if (g)
            g[i] = (r > 0 ? 1.0 : r < 0 ? -1.0 : 0.0) / c->norm;
    }
    return loss / c->norm;
}

static int kink_l1(const Ctx *c, const double *x, int i, double h) { return fabs(x[i] - c->other[i]) < 2 * h; }

static double ref_l2(const Ctx *c, const double *x, double *g)
{
    double loss = 0;
    for (int i = 0; i < c->n * c->k; i++) {
        double r = x[i] - c->other[i];
        loss += 0.5 * r * r;
        if (g)
            g[i] = r / c->norm;
    }
    return loss / c->norm;
}

#define TRI_EPS 1e-6
#define MAX_D 16
#define MAX_ROWS 16

/* e (rows,d) -> u (rows,d) unit rows, len (rows) = max(|e_i|, eps). */
static void ref_normalise(const Ctx *c, const double *e, double *u, double *len)
{
    for (int i = 0; i < c->n; i++) {
        double s = 0;
        for (int j = 0; j < c->k; j++)
            s += e[i * c->k + j] * e[i * c->k + j];
        len[i] = fmax(sqrt(s), TRI_EPS);
        for (int j = 0; j < c->k; j++)
            u[i * c->k + j] = e[i * c->k + j] / len[i];
    }
}

static double sqdist(const double *a, const double *b, int d)
{
    double s = 0;
    for (int j = 0; j < d; j++)
        s += (a[j] - b[j]) * (a[j] - b[j]);
    return s;
}

/* Hinge arguments of every triple at e. */
static void ref_triplet_args(const Ctx *c, const double *e, double *arg)
{
    double u[MAX_ROWS * MAX_D], len[MAX_ROWS];
    ref_normalise(c, e, u, len);
    int d = c->k;
    for (int t = 0; t < c->n_tri; t++) {
        Triple q = c->tri[t];
        arg[t] = sqdist(u + q.a * d, u + q.p * d, d) - sqdist(u + q.a * d, u + q.n * d, d) + c->margin;
    }
}

/* The chain rule through normalisation written as an explicit Jacobian:
 * du_j/de_m = (delta_jm - u_j u_m) / |e|. */
static double ref_triplet(const Ctx *c, const double *e, double *g)
{
    int d = c->k;
    double u[MAX_ROWS * MAX_D], len[MAX_ROWS], gu[MAX_ROWS * MAX_D] = {0}, arg[64];
    ref_normalise(c, e, u, len);
    ref_triplet_args(c, e, arg);
    double loss = 0;
    for (int t = 0; t < c->n_tri; t++) {
        if (arg[t] <= 0)
            continue;
        loss += arg[t];
        Triple q = c->tri[t];
        for (int j = 0; j < d; j++) {
            double ua = u[q.a * d + j], up = u[q.p * d + j], un = u[q.n * d + j];
            gu[q.a * d + j] += (-2 * (up - ua) + 2 * (un - ua)) / c->norm;
            gu[q.p * d + j] += 2 * (up - ua) / c->norm;
            gu[q.n * d + j] += -2 * (un - ua) / c->norm;
        }
    }
    for (int i = 0; g && i < c->n; i++)
        for (int m = 0; m < d; m++) {
            double s = 0;
            for (int j = 0; j < d; j++)
                s += gu[i * d + j] * ((j == m) - u[i * d + j] * u[i * d + m]) / len[i];
            g[i * d + m] = s;
        }
    return loss / c->norm;
}

/* A hinge of a triple using element i's row changes sign within [x-h, x+h]
 * or sits within 2h of 0. */
static int kink_triplet(const Ctx *c, const double *x, int i, double h)
{
    double xs[MAX_ROWS * MAX_D], a0[64], ap[64], am[64];
    memcpy(xs, x, sizeof(double) * (size_t)(c->n * c->k));
    ref_triplet_args(c, xs, a0);
    xs[i] = x[i] + h;
    ref_triplet_args(c, xs, ap);
    xs[i] = x[i] - h;
    ref_triplet_args(c, xs, am);
    for (int t = 0; t < c->n_tri; t++)
        if (fabs(a0[t]) < 2 * h || (ap[t] > 0) != (am[t] > 0))
            return 1;
    return 0;
}

/* ------------------------------------------------------- library wrappers */

static float impl_ce(const Ctx *c, const float *x, float *g) { return loss_softmax_ce(x, c->label, c->n, c->k, c->norm, g); }
static float impl_ce_soft(const Ctx *c, const float *x, float *g)
{
    return loss_softmax_ce_soft(x, c->other, c->n, c->k, c->norm, g);
}
static float impl_kd(const Ctx *c, const float *x, float *g) { return loss_kd(x, c->other, c->n, c->k, c->T, c->norm, g); }
static float impl_l1(const Ctx *c, const float *x, float *g) { return loss_l1(x, c->other, c->n, c->k, c->norm, g); }
static float impl_l2(const Ctx *c, const float *x, float *g) { return loss_l2(x, c->other, c->n, c->k, c->norm, g); }
static float impl_triplet(const Ctx *c, const float *x, float *g)
{
    return loss_triplet(x, c->n, c->k, c->tri, c->n_tri, c->margin, c->norm, g, NULL);
}

/* ------------------------------------------------------------ the checker */

static void check_loss(const char *name, const Ctx *c, const float *x, ImplFn impl, RefFn ref, KinkFn kink)
{
    int nx = c->n * c->k;
    float *gf = malloc(sizeof(float) * (size_t)nx);
    double *xd = malloc(sizeof(double) * (size_t)nx), *gr = malloc(sizeof(double) * (size_t)nx);
    for (int i = 0; i < nx; i++) {
        xd[i] = x[i];
        gf[i] = NAN; /* must be overwritten */
    }
    float vf = impl(c, x, gf);
    double vr = ref(c, xd, gr);
    CHECK(fabs(vf - vr) <= 1e-6 * fmax(1.0, fabs(vr)), "%s: value %.9g, reference %.12g", name, vf, vr);
    float v_nograd = impl(c, x, NULL);
    CHECK(v_nograd == vf, "%s: value without gradient %.9g differs from %.9g", name, v_nograd, vf);

    double gmax = 0;
    for (int i = 0; i < nx; i++)
        gmax = fmax(gmax, fabs(gr[i]));
    int bad = 0, skipped = 0;
    for (int i = 0; i < nx; i++) {
        if (!(fabs(gf[i] - gr[i]) <= 1e-5 * fabs(gr[i]) + 1e-6 * gmax + 1e-12) && bad++ < 5)
            fprintf(stderr, "  %s: d[%d] = %.9g, reference %.12g\n", name, i, gf[i], gr[i]);
        if (kink && kink(c, xd, i, FD_H)) {
            skipped++;
            continue;
        }
        double save = xd[i];
        xd[i] = save + FD_H;
        double lp = ref(c, xd, NULL);
        xd[i] = save - FD_H;
        double lm = ref(c, xd, NULL);
        xd[i] = save;
        double num = (lp - lm) / (2 * FD_H);
        if (!(fabs(num - gr[i]) <= 1e-5 * fabs(gr[i]) + 1e-6 * fmax(gmax, 1e-3)) && bad++ < 5)
            fprintf(stderr, "  %s: reference d[%d] = %.12g, central difference %.12g\n", name, i, gr[i], num);
    }
    CHECK(bad == 0, "%s: %d gradient element(s) wrong", name, bad);
    CHECK(skipped * 10 <= nx, "%s: %d of %d elements sat at kinks", name, skipped, nx);
    CHECK(gmax > 0, "%s: the test input gives a zero gradient, it checks nothing", name);
    printf("%-22s value %.6f, %d elements, %d stepped around at kinks\n", name, vf, nx, skipped);
    free(gf);
    free(xd);
    free(gr);
}

/* ------------------------------------------------------------- the tests */

enum { N = 8, K = 7 };

static void make_distributions(float *t, int n, int k, uint64_t seed)
{
    fill_uniform(t, (size_t)n * k, seed);
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < k; j++) {
            float *v = &t[i * k + j];
            *v = (i == 2 && j % 3 == 0) ? 0.0f : *v + 1.1f; /* row 2 has exact zeros */
            s += *v;
        }
        for (int j = 0; j < k; j++)
            t[i * k + j] = (float)(t[i * k + j] / s);
    }
}

static void test_gradients(void)
{
    float x[N * K], other[N * K];
    int label[N];
    fill_uniform(x, N * K, 11);
    for (int i = 0; i < N * K; i++)
        x[i] *= 3.0f;
    for (int i = 0; i < N; i++)
        label[i] = (3 * i + 1) % K;

    Ctx c = {.n = N, .k = K, .norm = 12.0f, .label = label};
    check_loss("ce", &c, x, impl_ce, ref_ce, NULL);

    make_distributions(other, N, K, 12);
    for (int j = 0; j < K; j++) /* row 5 carries only 60% of the mass: d = p * mass - t */
        other[5 * K + j] *= 0.6f;
    c.other = other;
    check_loss("ce_soft", &c, x, impl_ce_soft, ref_ce_soft, NULL);

    fill_uniform(other, N * K, 13);
    for (int i = 0; i < N * K; i++)
        other[i] *= 4.0f;
    c.T = 1.0f;
    check_loss("kd T=1", &c, x, impl_kd, ref_kd, NULL);
    c.T = 4.0f;
    check_loss("kd T=4", &c, x, impl_kd, ref_kd, NULL);

    /* Regression: some predictions equal their targets exactly (subgradient
     * 0) and two sit within the finite-difference step of them. */
    fill_uniform(other, N * K, 14);
    for (int i = 0; i < N * K; i += 19)
        x[i] = other[i];
    x[4] = other[4] + 1e-7f;
    x[5] = other[5] - 1e-7f;
    check_loss("l1", &c, x, impl_l1, ref_l1, kink_l1);
    float g[N * K];
    loss_l1(x, other, N, K, c.norm, g);
    for (int i = 0; i < N * K; i += 19)
        CHECK(g[i] == 0.0f, "l1: d[%d] = %g at p == t, expected 0", i, g[i]);
    check_loss("l2", &c, x, impl_l2, ref_l2, NULL);
}

/* Embeddings with norms from 0.3 to 3, rows in several roles. */
static void test_triplet_gradient(void)
{
    enum { R = 6, D = 5 };
    float e[R * D];
    fill_uniform(e, R * D, 21);
    for (int i = 0; i < R; i++)
        for (int j = 0; j < D; j++)
            e[i * D + j] *= 0.5f + (float)i * 0.5f;
    const Triple tri[] = {{0, 1, 2}, {1, 0, 3}, {2, 3, 0}, {0, 4, 5}, {5, 4, 1},
                          {3, 2, 4}, {4, 5, 2}, {1, 2, 0}, {2, 2, 5}, {5, 0, 3}};
    int nt = (int)(sizeof tri / sizeof tri[0]);
    Ctx c = {.n = R, .k = D, .norm = 16.0f, .tri = tri, .n_tri = nt, .margin = 0.3f};
    uint8_t active[16];
    memset(active, 7, sizeof active);
    float d[R * D];
    loss_triplet(e, R, D, tri, nt, c.margin, c.norm, d, active);
    double xd[R * D], arg[16];
    for (int i = 0; i < R * D; i++)
        xd[i] = e[i];
    ref_triplet_args(&c, xd, arg);
    int n_active = 0;
    for (int t = 0; t < nt; t++) {
        CHECK(active[t] == (arg[t] > 0), "triplet: active[%d] = %d, hinge argument %g", t, active[t], arg[t]);
        n_active += active[t] == 1;
    }
    CHECK(n_active > 0 && n_active < nt, "triplet: %d of %d hinges active; the test needs both kinds", n_active,
          nt);
    check_loss("triplet", &c, e, impl_triplet, ref_triplet, kink_triplet);
}

/* ------------------------------------------------------------ known values */

static void test_known_values(void)
{
    /* Uniform logits: CE = log k for any label, d = (1/k - onehot) / norm. */
    float x[3 * K], d[3 * K];
    int label[3] = {0, 4, 6};
    for (int i = 0; i < 3 * K; i++)
        x[i] = 3.7f;
    float v = loss_softmax_ce(x, label, 3, K, 3.0f, d);
    CHECK(fabs(v - log((double)K)) < 1e-6, "ce of uniform logits %.9g, expected log %d = %.9g", v, K, log((double)K));
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < K; j++) {
            double want = (1.0 / K - (j == label[i])) / 3.0;
            CHECK(fabs(d[i * K + j] - want) < 1e-7, "ce uniform d[%d][%d] = %g, expected %g", i, j, d[i * K + j],
                  want);
        }

    /* Huge logits stay finite: (1000, 0) with label 1 costs 1000. */
    float big[4] = {1000.0f, 0.0f, 0.0f, 1000.0f};
    int lb[2] = {1, 1};
    v = loss_softmax_ce(big, lb, 2, 2, 1.0f, d);
    CHECK(fabs(v - 1000.0f) < 1e-3, "ce of (1000,0)/(0,1000) labels 1: %g, expected 1000", v);
    CHECK(d[0] == 1.0f && d[1] == -1.0f && fabs(d[2]) < 1e-30 && fabs(d[3]) < 1e-30,
          "ce of huge logits: gradient (%g %g %g %g)", d[0], d[1], d[2], d[3]);

    /* Soft CE with a one-hot target equals hard CE. */
    float xs[2 * K], t[2 * K] = {0}, d2[2 * K];
    fill_uniform(xs, 2 * K, 31);
    int ls[2] = {2, 5};
    t[2] = 1.0f;
    t[K + 5] = 1.0f;
    float hard = loss_softmax_ce(xs, ls, 2, K, 2.0f, d);
    float soft = loss_softmax_ce_soft(xs, t, 2, K, 2.0f, d2);
    CHECK(fabs(hard - soft) < 1e-6, "soft CE with one-hot targets %.9g, hard CE %.9g", soft, hard);
    for (int i = 0; i < 2 * K; i++)
        CHECK(fabs(d[i] - d2[i]) < 1e-7, "soft/hard CE gradient differ at %d: %g vs %g", i, d2[i], d[i]);

    /* KD of a network against itself: 0 with zero gradient, at any T. */
    float s[N * K], g[N * K];
    fill_uniform(s, N * K, 32);
    const float temps[3] = {1.0f, 4.0f, 20.0f};
    for (int ti = 0; ti < 3; ti++) {
        v = loss_kd(s, s, N, K, temps[ti], (float)N, g);
        CHECK(v == 0.0f, "kd of student against itself at T=%g: %g, expected 0", temps[ti], v);
        for (int i = 0; i < N * K; i++)
            CHECK(g[i] == 0.0f, "kd self-gradient at T=%g d[%d] = %g", temps[ti], i, g[i]);
    }

    /* The T^2 factor: for large T, d_student tends to (s - t - mean(s - t)) /
     * (k norm), which does not vanish. Without T^2 it would shrink like 1/T
     * or 1/T^2. */
    float tch[N * K];
    fill_uniform(tch, N * K, 33);
    double lim2 = 0, g1 = 0, g4 = 0, e64 = 0;
    float gg[N * K];
    loss_kd(s, tch, N, K, 1.0f, 2.0f, gg);
    for (int i = 0; i < N * K; i++)
        g1 += (double)gg[i] * gg[i];
    loss_kd(s, tch, N, K, 4.0f, 2.0f, gg);
    for (int i = 0; i < N * K; i++)
        g4 += (double)gg[i] * gg[i];
    loss_kd(s, tch, N, K, 64.0f, 2.0f, gg);
    for (int i = 0; i < N; i++) {
        double mean = 0;
        for (int j = 0; j < K; j++)
            mean += (double)s[i * K + j] - tch[i * K + j];
        mean /= K;
        for (int j = 0; j < K; j++) {
            double want = ((double)s[i * K + j] - tch[i * K + j] - mean) / (K * 2.0);
            lim2 += want * want;
            e64 += (gg[i * K + j] - want) * (gg[i * K + j] - want);
        }
    }
    CHECK(sqrt(e64) < 0.05 * sqrt(lim2), "kd at T=64: gradient off its large-T limit by %g of %g", sqrt(e64),
          sqrt(lim2));
    CHECK(sqrt(g4) > 0.5 * sqrt(g1), "kd gradient norm falls from %g at T=1 to %g at T=4", sqrt(g1), sqrt(g4));

    /* L1 / L2 by hand: p - t = (1.5, -0.5, 0) -> L1 2, L2 (2.25 + 0.25) / 2. */
    float p[3] = {2.0f, 0.5f, -1.0f}, q[3] = {0.5f, 1.0f, -1.0f}, dl[3];
    v = loss_l1(p, q, 1, 3, 2.0f, dl);
    CHECK(v == 1.0f && dl[0] == 0.5f && dl[1] == -0.5f && dl[2] == 0.0f, "l1 by hand: %g (%g %g %g)", v, dl[0],
          dl[1], dl[2]);
    v = loss_l2(p, q, 1, 3, 2.0f, dl);
    CHECK(v == 0.625f && dl[0] == 0.75f && dl[1] == -0.25f && dl[2] == 0.0f, "l2 by hand: %g (%g %g %g)", v, dl[0],
          dl[1], dl[2]);

    /* argmax: the first maximum on ties. */
    float av[5] = {1.0f, 3.0f, -2.0f, 3.0f, 0.5f};
    CHECK(argmax(av, 5) == 1, "argmax of (1,3,-2,3,0.5) = %d, expected 1", argmax(av, 5));
    CHECK(argmax(av + 2, 3) == 1, "argmax of (-2,3,0.5) = %d, expected 1", argmax(av + 2, 3));
    CHECK(argmax(av, 1) == 0, "argmax of one value = %d", argmax(av, 1));
}

/* A 2-D triplet example worked by hand. Rows: a = (1,0), p = (0,2) -> (0,1),
 * n1 = (-3,0) -> (-1,0), n2 = (3,3) -> (1,1)/sqrt2. Margin 0.5, norm 2.
 * (a,p,n1): 2 - 4 + 0.5 < 0, inactive.
 * (a,p,n2): 2 - (2 - sqrt2) + 0.5 = 0.5 + sqrt2, active.
 * Loss (0.5 + sqrt2) / 2. Gradients of the active triple w.r.t. unit rows:
 * ua: 2(un - up) = (sqrt2, sqrt2 - 2); projected off ua, / |a| = 1: (0, sqrt2 - 2)
 * up: 2(up - ua) = (-2, 2); projected off up: (-2, 0); / |p| = 2: (-1, 0)
 * un: 2(ua - un) = (2 - sqrt2, -sqrt2); projected off un: (1, -1); / 3 sqrt2
 * and everything / norm 2; n1 gets nothing. */
static void test_triplet_by_hand(void)
{
    const float e[8] = {1, 0, 0, 2, -3, 0, 3, 3};
    const Triple tri[2] = {{0, 1, 2}, {0, 1, 3}};
    float d[8];
    uint8_t act[2];
    float v = loss_triplet(e, 4, 2, tri, 2, 0.5f, 2.0f, d, act);
    double r2 = sqrt(2.0);
    CHECK(fabs(v - (0.5 + r2) / 2) < 1e-6, "triplet by hand: %.9g, expected %.9g", v, (0.5 + r2) / 2);
    CHECK(act[0] == 0 && act[1] == 1, "triplet by hand: active (%d %d), expected (0 1)", act[0], act[1]);
    const double want[8] = {0, (r2 - 2) / 2, -0.5, 0, 0, 0, 1 / (6 * r2), -1 / (6 * r2)};
    for (int i = 0; i < 8; i++)
        CHECK(fabs(d[i] - want[i]) < 1e-6, "triplet by hand d[%d] = %.9g, expected %.9g", i, d[i], want[i]);

    /* The hinge switches exactly at 0: (a,p,n1) has argument margin - 2. */
    const Triple t1[1] = {{0, 1, 2}};
    v = loss_triplet(e, 4, 2, t1, 1, 2.004f, 1.0f, NULL, act);
    CHECK(act[0] == 1 && fabs(v - 0.004) < 1e-6, "triplet with argument 0.004: %g, active %d", v, act[0]);
    v = loss_triplet(e, 4, 2, t1, 1, 1.996f, 1.0f, NULL, act);
    CHECK(act[0] == 0 && v == 0.0f, "triplet with argument -0.004: %g, active %d", v, act[0]);

    /* A zero embedding stays finite (normalised with the epsilon floor). */
    const float z[6] = {0, 0, 1, 0, 0, 1};
    const Triple tz[1] = {{0, 1, 2}};
    float dz[6];
    v = loss_triplet(z, 3, 2, tz, 1, 0.5f, 1.0f, dz, NULL);
    /* u0 = 0: |u0-u1|^2 - |u0-u2|^2 + 0.5 = 1 - 1 + 0.5 */
    CHECK(fabs(v - 0.5f) < 1e-6, "triplet with a zero row: %g, expected 0.5", v);
    for (int i = 0; i < 6; i++)
        CHECK(isfinite(dz[i]), "triplet with a zero row: d[%d] = %g", i, dz[i]);
}

/* ------------------------------------------------------ norm and sharding */

static int same_floats(const float *a, const float *b, int n)
{
    return memcmp(a, b, sizeof(float) * (size_t)n) == 0;
}

/* A batch of 8 with norm 8 equals the sum of its two halves with norm 8, and
 * each half's gradient equals its slice of the whole batch's gradient. */
static void test_norm_split(void)
{
    enum { H = N / 2 };
    float x[N * K], t[N * K], dist[N * K], g[N * K], gh[N * K];
    int label[N];
    fill_uniform(x, N * K, 41);
    fill_uniform(t, N * K, 42);
    make_distributions(dist, N, K, 43);
    for (int i = 0; i < N; i++)
        label[i] = (5 * i) % K;
    const float nm = (float)N;
    float full, a, b;

#define SPLIT_CHECK(name, CALL_FULL, CALL_A, CALL_B)                                                         \
    full = CALL_FULL;                                                                                        \
    a = CALL_A;                                                                                              \
    b = CALL_B;                                                                                              \
    CHECK(fabs(full - (a + b)) <= 1e-6 * fmax(1.0, fabs(full)), "%s: batch %.9g, halves %.9g + %.9g", name, full, \
          a, b);                                                                                             \
    CHECK(same_floats(g, gh, N * K), "%s: half-batch gradients differ from the whole batch's", name)

    SPLIT_CHECK("ce split", loss_softmax_ce(x, label, N, K, nm, g), loss_softmax_ce(x, label, H, K, nm, gh),
                loss_softmax_ce(x + H * K, label + H, H, K, nm, gh + H * K));
    SPLIT_CHECK("ce_soft split", loss_softmax_ce_soft(x, dist, N, K, nm, g),
                loss_softmax_ce_soft(x, dist, H, K, nm, gh),
                loss_softmax_ce_soft(x + H * K, dist + H * K, H, K, nm, gh + H * K));
    SPLIT_CHECK("kd split", loss_kd(x, t, N, K, 3.0f, nm, g), loss_kd(x, t, H, K, 3.0f, nm, gh),
                loss_kd(x + H * K, t + H * K, H, K, 3.0f, nm, gh + H * K));
    SPLIT_CHECK("l1 split", loss_l1(x, t, N, K, nm, g), loss_l1(x, t, H, K, nm, gh),
                loss_l1(x + H * K, t + H * K, H, K, nm, gh + H * K));
    SPLIT_CHECK("l2 split", loss_l2(x, t, N, K, nm, g), loss_l2(x, t, H, K, nm, gh),
                loss_l2(x + H * K, t + H * K, H, K, nm, gh + H * K));
#undef SPLIT_CHECK

    /* Triplet: the triples split in two halves over the same rows; the
     * gradients of the halves add up to the whole. */
    const Triple tri[8] = {{0, 1, 2}, {3, 4, 5}, {6, 7, 0}, {1, 2, 3}, {4, 5, 6}, {7, 0, 1}, {2, 4, 6}, {5, 3, 1}};
    float d[N * K], d1[N * K], d2[N * K];
    full = loss_triplet(x, N, K, tri, 8, 1.0f, nm, d, NULL);
    a = loss_triplet(x, N, K, tri, 4, 1.0f, nm, d1, NULL);
    b = loss_triplet(x, N, K, tri + 4, 4, 1.0f, nm, d2, NULL);
    CHECK(fabs(full - (a + b)) <= 1e-6 * fmax(1.0, fabs(full)), "triplet split: %.9g vs %.9g + %.9g", full, a, b);
    CHECK(full > 0, "triplet split: no active hinge (%g), the check is empty", full);
    for (int i = 0; i < N * K; i++)
        CHECK(fabs(d[i] - (d1[i] + d2[i])) <= 1e-6, "triplet split d[%d]: %g vs %g + %g", i, d[i], d1[i], d2[i]);
}

/* ------------------------------------------------------ contract violations */

/* Out-of-range labels or triplet rows: an optimised build reports NaN and
 * zeroes the sample's gradient; an unoptimised debug build aborts in an
 * assert (checked in a child process). */
static void test_bad_indices(void)
{
    float x[3 * K], d[3 * K];
    fill_uniform(x, 3 * K, 51);
    int label[3] = {1, K, 2};
    int label_neg[3] = {0, 1, -1};
    const Triple tri[1] = {{0, 1, 3}};
#if defined(__OPTIMIZE__) || defined(NDEBUG)
    for (int i = 0; i < 3 * K; i++)
        d[i] = 5.0f;
    float v = loss_softmax_ce(x, label, 3, K, 3.0f, d);
    CHECK(isnan(v), "ce with label %d of %d classes returned %g, expected NaN", K, K, v);
    for (int j = 0; j < K; j++)
        CHECK(d[K + j] == 0.0f, "ce: gradient of the bad sample d[%d] = %g, expected 0", j, d[K + j]);
    CHECK(d[0] != 5.0f && d[2 * K] != 5.0f, "ce: the good samples' gradients were not written");
    v = loss_softmax_ce(x, label_neg, 3, K, 3.0f, NULL);
    CHECK(isnan(v), "ce with label -1 returned %g, expected NaN", v);
    uint8_t act[1] = {9};
    v = loss_triplet(x, 3, K, tri, 1, 0.2f, 1.0f, d, act);
    CHECK(isnan(v) && act[0] == 0, "triplet with row 3 of 3 returned %g (active %d), expected NaN", v, act[0]);
    for (int i = 0; i < 3 * K; i++)
        CHECK(d[i] == 0.0f, "triplet with a bad row: d[%d] = %g, expected 0", i, d[i]);
#else
    const int *labels[2] = {label, label_neg};
    printf("debug build: three assertion failures from child processes follow; they are expected\n");
    for (int c = 0; c < 3; c++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            if (c < 2)
                loss_softmax_ce(x, labels[c], 3, K, 3.0f, d);
            else
                loss_triplet(x, 3, K, tri, 1, 0.2f, 1.0f, d, NULL);
            _exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
              "debug build: case %d with an out-of-range index did not stop at an assert", c);
    }
#endif
}

/* The status forms: the same values and gradients as the float forms, and
 * a violated contract as -1 with the message in the caller's buffer. */
static void test_checked(void)
{
    float x[3 * K], t[3 * K], d[3 * K], d2[3 * K], v;
    fill_uniform(x, 3 * K, 61);
    fill_uniform(t, 3 * K, 62);
    int label[3] = {1, 0, 6};
    const Triple tri[2] = {{0, 1, 2}, {2, 1, 0}};
    char err[256] = "";
    float want = loss_softmax_ce(x, label, 3, K, 3.0f, d2);
    CHECK(loss_softmax_ce_checked(x, label, 3, K, 3.0f, d, &v, err, sizeof err) == 0 && v == want &&
              memcmp(d, d2, sizeof d) == 0,
          "ce checked: %g, float form %g (%s)", v, want, err);
    want = loss_kd(x, t, 3, K, 2.0f, 3.0f, d2);
    CHECK(loss_kd_checked(x, t, 3, K, 2.0f, 3.0f, d, &v, err, sizeof err) == 0 && v == want &&
              memcmp(d, d2, sizeof d) == 0,
          "kd checked: %g, float form %g (%s)", v, want, err);
    uint8_t act[2], act2[2];
    want = loss_triplet(x, 3, K, tri, 2, 0.5f, 2.0f, d2, act2);
    CHECK(loss_triplet_checked(x, 3, K, tri, 2, 0.5f, 2.0f, d, act, &v, err, sizeof err) == 0 && v == want &&
              memcmp(d, d2, sizeof d) == 0 && memcmp(act, act2, sizeof act) == 0,
          "triplet checked: %g, float form %g (%s)", v, want, err);
#if defined(__OPTIMIZE__) || defined(NDEBUG)
    label[1] = K;
    CHECK(loss_softmax_ce_checked(x, label, 3, K, 3.0f, d, &v, err, sizeof err) == -1 && isnan(v) &&
              strstr(err, "sample 1 has label 7, expected 0..6") && d[K] == 0.0f,
          "ce with a bad label: %g '%s'", v, err);
    CHECK(loss_kd_checked(x, t, 3, K, 0.0f, 3.0f, d, &v, err, sizeof err) == -1 && isnan(v) &&
              strstr(err, "temperature 0"),
          "kd at temperature 0: %g '%s'", v, err);
    const Triple bad[1] = {{0, 3, 1}};
    CHECK(loss_triplet_checked(x, 3, K, bad, 1, 0.5f, 2.0f, d, act, &v, err, sizeof err) == -1 && isnan(v) &&
              strstr(err, "triple 0 is (0,3,1), expected rows in 0..2"),
          "triplet with row 3 of 3: %g '%s'", v, err);
#endif
}

int main(void)
{
    test_gradients();
    test_triplet_gradient();
    test_known_values();
    test_triplet_by_hand();
    test_norm_split();
    test_bad_indices();
    test_checked();
    return test_finish("test_loss");
}
