/* occkd_allreduce_bench - gradient averaging in buckets against one blocking
 * allreduce, on a flat float buffer of a given size.
 *
 *   mpirun -np 2 occkd_allreduce_bench [--mb 64] [--bucket-mb 4] [--steps 10]
 *                                      [--layers 16] [--compute-ms 0]
 *
 * Each step "runs backward" over --layers layers of equal size: a layer
 * spends compute-ms / layers milliseconds (a busy wait standing in for the
 * arithmetic) and then reports its part of the buffer as ready. With
 * --compute-ms 0 the step is pure communication. Rank 0 prints, per mode,
 * seconds per step, seconds blocked waiting per step and their share, and
 * the bandwidth bytes / (step time - compute time) (the algorithm
 * bandwidth; the bus bandwidth of a ring allreduce is 2 (p-1) / p times it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm.h"

typedef struct {
    double mb, bucket_mb, compute_ms;
    int steps, layers;
} BenchArgs;

static void busy_wait(double seconds)
{
    double until = comm_now() + seconds;
    while (comm_now() < until) {
    }
}

static int parse_args(int argc, char **argv, BenchArgs *a, char *err, size_t len)
{
    *a = (BenchArgs){.mb = 64, .bucket_mb = 4, .compute_ms = 0, .steps = 10, .layers = 16};
    for (int i = 1; i < argc; i++) {
        const char *key = argv[i];
        if (i + 1 >= argc) {
            snprintf(err, len, "%s needs a value", key);
            return -1;
        }
        char *end;
        double v = strtod(argv[++i], &end);
        if (*end || v < 0) {
            snprintf(err, len, "%s: '%s' is not a non-negative number", key, argv[i]);
            return -1;
        }
        if (!strcmp(key, "--mb"))
            a->mb = v;
        else if (!strcmp(key, "--bucket-mb"))
            a->bucket_mb = v;
        else if (!strcmp(key, "--compute-ms"))
            a->compute_ms = v;
        else if (!strcmp(key, "--steps"))
            a->steps = (int)v;
        else if (!strcmp(key, "--layers"))
            a->layers = (int)v;
        else {
            snprintf(err, len, "unknown option %s (known: --mb --bucket-mb --steps --layers --compute-ms)", key);
            return -1;
        }
    }
    if (a->steps < 1 || a->layers < 1 || a->mb <= 0) {
        snprintf(err, len, "--steps, --layers and --mb must be positive");
        return -1;
    }
    return 0;
}

/* One step: fill, backward with readiness reports, finish. Returns its time. */
static double one_step(Comm *c, GradSync *g, float *grads, size_t n, const BenchArgs *a, int step)
{
    for (size_t i = 0; i < n; i++)
        grads[i] = (float)((c->rank + step + (int)(i & 7)) & 15);
    comm_set_step(c, step);
    double t0 = comm_now();
    for (int l = 1; l <= a->layers; l++) {
        busy_wait(a->compute_ms * 1e-3 / a->layers);
        if (gradsync_ready(g, n / (size_t)a->layers * (size_t)l) != 0)
            comm_abort_all(c, c->error);
    }
    if (gradsync_finish(g) != 0)
        comm_abort_all(c, c->error);
    return comm_now() - t0;
}

static void run_mode(Comm *c, float *grads, size_t n, const BenchArgs *a, int blocking)
{
    GradSyncOptions o = {.bucket_bytes = (size_t)(a->bucket_mb * (1 << 20)), .blocking = blocking};
    GradSync *g = NULL;
    if (gradsync_create(c, grads, n, &o, &g) != 0)
        comm_abort_all(c, c->error);
    one_step(c, g, grads, n, a, -1); /* warm-up */
    double t[2] = {0, 0};             /* step seconds, wait seconds (summed over steps) */
    for (int s = 0; s < a->steps; s++) {
        t[0] += one_step(c, g, grads, n, a, s);
        t[1] += gradsync_wait_seconds(g);
    }
    if (comm_sum_f64(c, COMM_SCOPE_WORLD, t, 2) != 0)
        comm_abort_all(c, c->error);
    double step = t[0] / (a->steps * c->size), wait = t[1] / (a->steps * c->size);
    double comm_time = step - a->compute_ms * 1e-3;
    double bytes = (double)n * sizeof(float);
    if (c->rank == 0)
        printf("%-9s %zu bucket%s, %zu call%s: %.2f ms/step, waiting %.2f ms/step (%.0f%% of the step), %.2f GB/s\n",
               blocking ? "blocking" : "bucketed", gradsync_buckets(g), gradsync_buckets(g) == 1 ? "" : "s",
               gradsync_calls(g), gradsync_calls(g) == 1 ? "" : "s", 1e3 * step, 1e3 * wait, 100 * wait / step,
               comm_time > 0 ? bytes / comm_time * 1e-9 : 0.0);
    gradsync_free(g);
}

int main(int argc, char **argv)
{
    Comm c;
    if (comm_init(&argc, &argv, NULL, &c) != 0) {
        fprintf(stderr, "occkd_allreduce_bench: %s\n", c.error);
        return 1;
    }
    BenchArgs a;
    char err[256];
    if (parse_args(argc, argv, &a, err, sizeof err) != 0) {
        if (c.rank == 0)
            fprintf(stderr, "occkd_allreduce_bench: %s\n", err);
        comm_finalize(&c);
        return 2;
    }
    size_t n = (size_t)(a.mb * (1 << 20) / sizeof(float));
    float *grads = malloc(n * sizeof *grads);
    if (!grads)
        comm_abort_all(&c, "occkd_allreduce_bench: out of memory for the gradient buffer");
    if (c.rank == 0) {
        char line[256];
        comm_describe(&c, line, sizeof line);
        printf("allreduce of %.1f MiB (%zu floats) over %d ranks, buckets of %.2f MiB, %d layers, %.1f ms compute, "
               "%d steps\n%s\n",
               a.mb, n, c.size, a.bucket_mb, a.layers, a.compute_ms, a.steps, line);
    }
    run_mode(&c, grads, n, &a, 1);
    run_mode(&c, grads, n, &a, 0);
    free(grads);
    comm_finalize(&c);
    return 0;
}
