/* gradcheck.h - shared helpers for the unit tests: a tiny assertion kit and a
 * central-difference gradient checker for single layers.
 *
 * The checker takes the scalar L = sum_i r_i * y_i with a fixed random r, so
 * that dL/dy = r, runs the layer's backward with d_y = r, and compares every
 * input and parameter gradient with (L(v + h) - L(v - h)) / 2h, where L is
 * summed in double precision. Elements whose numerical derivative changes
 * between h and h/2 (a kink of ReLU, max pooling or a hinge within reach) are
 * stepped around and counted, never silently passed: a check fails if more
 * than a tenth of the elements had to be skipped.
 */
#ifndef OCCKD_GRADCHECK_H
#define OCCKD_GRADCHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"

static int g_failures;

#define CHECK(cond, ...)                                                                                     \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                  \
            fprintf(stderr, __VA_ARGS__);                                                                    \
            fprintf(stderr, "\n");                                                                           \
            g_failures++;                                                                                    \
        }                                                                                                    \
    } while (0)

static inline int test_finish(const char *name)
{
    if (g_failures) {
        fprintf(stderr, "%s: %d failure(s)\n", name, g_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

/* Root mean square of v (n). */
static inline double rms(const float *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)v[i] * v[i];
    return n ? sqrt(s / (double)n) : 0.0;
}

/* Checks a against the reference r elementwise, relative to |r| plus the
 * reference's rms (NaN always fails); returns 1 on a mismatch. */
static inline int compare_to_ref(double tol, const char *what, const float *a, const float *r, size_t n,
                                 const char *ctx)
{
    double scale = rms(r, n) + 1e-6, worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)r[i]) / (fabs((double)r[i]) + scale);
        if (!(e <= worst)) { /* NaN takes this branch */
            worst = isnan(e) ? INFINITY : e;
            at = i;
        }
    }
    int ok = worst <= tol;
    CHECK(ok, "%s: %s[%zu] = %.9g, reference %.9g (relative error %.3g > %g)", ctx, what, at, n ? a[at] : 0.0,
          n ? r[at] : 0.0, worst, tol);
    return !ok;
}

/* Fills v with NaN, so that anything left unwritten fails a comparison. */
static inline void fill_nan(float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i] = NAN;
}

/* Deterministic test data in [-1, 1). */
static inline void fill_uniform(float *v, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        RngBlock b = philox4x32(seed, (uint32_t)i, (uint32_t)(i >> 32), 7, 11);
        v[i] = 2.0f * rng_u01(b.v[0]) - 1.0f;
    }
}

/* A copy (malloc'ed) of n samples of shape sh from NCHW to the
 * channel-blocked layout (to_blocked) or back (layers.h: channel c of pixel
 * i at (c / 16 * HW + i) * 16 + c % 16 of each image), written out here from
 * the layout's definition, apart from the library's conversions. */
static inline float *layout_copy(const float *x, int n, Shape sh, int to_blocked)
{
    size_t hw = (size_t)sh.h * sh.w, per = shape_size(sh);
    float *out = malloc((size_t)n * per * sizeof(float));
    CHECK(out != NULL, "out of memory for a layout copy");
    for (int k = 0; out && k < n; k++)
        for (int c = 0; c < sh.c; c++)
            for (size_t i = 0; i < hw; i++) {
                size_t plain = (size_t)k * per + (size_t)c * hw + i;
                size_t blocked = (size_t)k * per + ((size_t)(c / LAYOUT_BLOCK) * hw + i) * LAYOUT_BLOCK + c % LAYOUT_BLOCK;
                if (to_blocked)
                    out[blocked] = x[plain];
                else
                    out[plain] = x[blocked];
            }
    return out;
}

/* Gives every tensor of a lone layer its own storage (params and state). */
static inline void layer_bind(Layer *l, uint64_t seed)
{
    for (int i = 0; i < l->n_params; i++) {
        Tensor *t = &l->param[i];
        t->data = calloc(t->count, sizeof(float));
        t->grad = calloc(t->count, sizeof(float));
        fill_uniform(t->data, t->count, seed + (uint64_t)i);
        if (t->ndims == 1 && t->init_value == 1.0f) /* scales near 1 keep layers well conditioned */
            for (size_t j = 0; j < t->count; j++)
                t->data[j] = 1.0f + 0.5f * t->data[j];
    }
    for (int i = 0; i < l->n_state; i++) {
        Tensor *t = &l->state[i];
        t->data = calloc(t->count, sizeof(float));
        for (size_t j = 0; j < t->count; j++)
            t->data[j] = t->init_value;
    }
}

static inline void layer_unbind(Layer *l)
{
    for (int i = 0; i < l->n_params; i++) {
        free(l->param[i].data);
        free(l->param[i].grad);
        l->param[i].data = l->param[i].grad = NULL;
    }
    for (int i = 0; i < l->n_state; i++) {
        free(l->state[i].data);
        l->state[i].data = NULL;
    }
}

typedef struct {
    float h;         /* step (default 1e-2) */
    float rtol;      /* relative tolerance on |a - n| / max(|a|, |n|, atol_scale) (default 2e-2) */
    float atol;      /* absolute floor (default 1e-3) */
    int training;    /* pass mode */
    size_t max_checks; /* per tensor; 0 = all elements */
} GradCheckOpts;

static inline double gc_objective(Layer *l, Pass *p, float **x, float *y, const float *r, size_t ny)
{
    l->ops->forward(l, p, (const float *const *)x, y);
    double s = 0;
    for (size_t i = 0; i < ny; i++)
        s += (double)r[i] * (double)y[i];
    return s;
}

/* Checks one value v (an input element or a parameter) against analytic a.
 * Returns 1 if it failed, 0 if fine; *skipped incremented at a kink. */
static inline int gc_check_value(Layer *l, Pass *p, float **x, float *y, const float *r, size_t ny, float *v,
                                 double a, const GradCheckOpts *o, int *skipped)
{
    float save = *v;
    double num[2];
    float hs[2] = {o->h, o->h * 0.5f};
    for (int k = 0; k < 2; k++) {
        *v = save + hs[k];
        double lp = gc_objective(l, p, x, y, r, ny);
        *v = save - hs[k];
        double lm = gc_objective(l, p, x, y, r, ny);
        /* the step actually taken, in float */
        double step = (double)(save + hs[k]) - (double)(save - hs[k]);
        num[k] = (lp - lm) / step;
    }
    *v = save;
    double scale = fmax(fmax(fabs(num[0]), fabs(a)), 1.0);
    if (fabs(num[0] - num[1]) > 0.5 * o->rtol * scale + o->atol) { /* a kink within h */
        (*skipped)++;
        return 0;
    }
    double err = fabs(num[1] - a);
    return err > o->rtol * scale + o->atol;
}

/* Runs the full check of a layer for a batch of n; prints a summary line.
 * Returns the number of failed elements (0 = pass). x_init fills the inputs
 * (NULL: uniform in [-1, 1)). */
static inline int gradcheck_layer(Layer *l, int n, const GradCheckOpts *opts, uint64_t seed)
{
    GradCheckOpts o = opts ? *opts : (GradCheckOpts){0};
    if (o.h == 0)
        o.h = 1e-2f;
    if (o.rtol == 0)
        o.rtol = 2e-2f;
    if (o.atol == 0)
        o.atol = 1e-3f;
    size_t ny = (size_t)n * shape_size(l->out);
    float *x[LAYER_MAX_INPUTS] = {0}, *dx[LAYER_MAX_INPUTS] = {0};
    for (int i = 0; i < l->n_in; i++) {
        size_t nx = (size_t)n * shape_size(l->in_shape[i]);
        x[i] = malloc(nx * sizeof(float));
        dx[i] = malloc(nx * sizeof(float));
        fill_uniform(x[i], nx, seed * 31 + (uint64_t)i);
    }
    layer_bind(l, seed + 1000);
    float *y = malloc(ny * sizeof(float));
    float *r = malloc(ny * sizeof(float));
    fill_uniform(r, ny, seed + 77);
    Pass p = {0};
    p.n = n;
    p.training = o.training;
    p.seed = seed;
    p.step = 3;
    p.work_bytes = l->ops->workspace ? l->ops->workspace(l, n, (size_t)64 << 20) : 0;
    p.work = p.work_bytes ? malloc(p.work_bytes) : NULL;

    /* Analytic gradients. Batch norm updates running statistics in training
     * forward; that does not change its output, so repeated forwards agree. */
    l->ops->forward(l, &p, (const float *const *)x, y);
    l->ops->backward(l, &p, (const float *const *)x, y, r, dx, 0);
    int failed = 0, skipped = 0, checked = 0;
    for (int i = 0; i < l->n_in; i++) {
        size_t nx = (size_t)n * shape_size(l->in_shape[i]);
        size_t stride = (o.max_checks && nx > o.max_checks) ? nx / o.max_checks : 1;
        for (size_t j = 0; j < nx; j += stride) {
            int f = gc_check_value(l, &p, x, y, r, ny, &x[i][j], dx[i][j], &o, &skipped);
            if (f && failed < 5)
                fprintf(stderr, "  %s: d_x%d[%zu] analytic %g\n", l->name, i, j, dx[i][j]);
            failed += f;
            checked++;
        }
    }
    for (int t = 0; t < l->n_params; t++) {
        Tensor *tn = &l->param[t];
        float *g = malloc(tn->count * sizeof(float));
        memcpy(g, tn->grad, tn->count * sizeof(float));
        size_t stride = (o.max_checks && tn->count > o.max_checks) ? tn->count / o.max_checks : 1;
        for (size_t j = 0; j < tn->count; j += stride) {
            int f = gc_check_value(l, &p, x, y, r, ny, &tn->data[j], g[j], &o, &skipped);
            if (f && failed < 5)
                fprintf(stderr, "  %s: d_%s[%zu] analytic %g\n", l->name, tn->name, j, g[j]);
            failed += f;
            checked++;
        }
        free(g);
    }
    if (skipped * 10 > checked) {
        fprintf(stderr, "  %s: %d of %d elements sat on kinks; the test data must avoid them\n", l->name, skipped,
                checked);
        failed++;
    }
    printf("gradcheck %-12s %-10s n=%d: %d checked, %d at kinks, %d failed\n", l->ops->type, l->name, n, checked,
           skipped, failed);
    for (int i = 0; i < l->n_in; i++) {
        free(x[i]);
        free(dx[i]);
    }
    free(y);
    free(r);
    free(p.work);
    layer_unbind(l);
    return failed;
}

#endif
