/* gradsync.c - averaging of the flat gradient buffer over the group.
 *
 * The buffer is cut into buckets of bucket_bytes (consecutive ranges; the
 * last one shorter). Backward finishes a growing prefix of the buffer; as
 * soon as a bucket lies inside the finished prefix its sum is started with
 * MPI_Iallreduce (in place), while backward goes on with the next layers.
 * Buckets longer than max_count elements become several calls ("calls"
 * below), so counts above INT_MAX are never passed to MPI. Each call is
 * scaled as soon as it completes; gradsync_finish waits for the rest.
 *
 * In blocking mode (the reference) nothing starts early: finish runs one
 * MPI_Allreduce over the whole buffer (split only by max_count).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/internal.h"

#define DEFAULT_BUCKET_BYTES ((size_t)25 << 20)

typedef struct {
    size_t start, len; /* elements of the buffer */
    size_t bucket;
} Call;

struct GradSync {
    Comm *c;
    float *g;
    size_t n;
    int blocking;
    float scale;
    size_t bucket_len;   /* elements per bucket (the last one may be shorter) */
    size_t n_buckets;
    size_t *first_call;  /* calls of bucket b: first_call[b] .. first_call[b+1]-1 */
    size_t n_calls;
    Call *calls;
    MPI_Request *req;    /* one per call; MPI_REQUEST_NULL when idle or done */
    size_t *left;        /* calls of each bucket still in flight or not started */
    /* the current step */
    int active;
    size_t ready;        /* finished prefix reported by backward */
    size_t next_bucket;  /* first bucket not started */
    size_t calls_done;
    size_t elements_done;
    double wait_s;       /* blocked in the last finish */
    int failed;          /* an error seen by gradsync_on_ready, reported by finish */
};

static size_t bucket_end(const GradSync *g, size_t b)
{
    size_t end = (b + 1) * g->bucket_len;
    return end < g->n ? end : g->n;
}

/* Lays out buckets (or, blocking, one range) and their calls. */
static int plan(GradSync *g, size_t max_count)
{
    g->n_buckets = g->n ? (g->n + g->bucket_len - 1) / g->bucket_len : 0;
    g->n_calls = 0;
    for (size_t b = 0; b < g->n_buckets; b++) {
        size_t len = bucket_end(g, b) - b * g->bucket_len;
        g->n_calls += (len + max_count - 1) / max_count;
    }
    g->first_call = calloc(g->n_buckets + 1, sizeof *g->first_call);
    g->left = calloc(g->n_buckets + 1, sizeof *g->left);
    g->calls = calloc(g->n_calls + 1, sizeof *g->calls);
    g->req = malloc((g->n_calls + 1) * sizeof *g->req);
    if (!g->first_call || !g->left || !g->calls || !g->req)
        return comm_fail(g->c, "gradsync: out of memory for %zu buckets", g->n_buckets);
    size_t k = 0;
    for (size_t b = 0; b < g->n_buckets; b++) {
        g->first_call[b] = k;
        for (size_t at = b * g->bucket_len; at < bucket_end(g, b); at += max_count, k++) {
            size_t end = bucket_end(g, b);
            g->calls[k] = (Call){at, end - at < max_count ? end - at : max_count, b};
        }
    }
    g->first_call[g->n_buckets] = k;
    for (size_t i = 0; i < g->n_calls; i++)
        g->req[i] = MPI_REQUEST_NULL;
    return 0;
}

int gradsync_create(Comm *c, float *grads, size_t n, const GradSyncOptions *o, GradSync **out)
{
    GradSyncOptions d = {0};
    if (!o)
        o = &d;
    *out = NULL;
    if (!grads && n > 0)
        return comm_fail(c, "gradsync_create: no gradient buffer for %zu elements", n);
    if (o->scale < 0)
        return comm_fail(c, "gradsync_create: negative scale %g", o->scale);
    GradSync *g = calloc(1, sizeof *g);
    if (!g)
        return comm_fail(c, "gradsync_create: out of memory");
    g->c = c;
    g->g = grads;
    g->n = n;
    g->blocking = o->blocking;
    g->scale = (float)(o->scale > 0 ? o->scale : 1.0 / c->group_size);
    size_t max_count = o->max_count ? o->max_count : c->max_count;
    if (max_count == 0 || max_count > INT_MAX)
        max_count = INT_MAX;
    size_t bytes = o->bucket_bytes ? o->bucket_bytes : DEFAULT_BUCKET_BYTES;
    g->bucket_len = bytes / sizeof(float) ? bytes / sizeof(float) : 1;
    if (g->blocking)
        g->bucket_len = n ? n : 1;
    if (plan(g, max_count) != 0) {
        gradsync_free(g);
        return -1;
    }
    *out = g;
    return 0;
}

void gradsync_free(GradSync *g)
{
    if (!g)
        return;
    free(g->first_call);
    free(g->left);
    free(g->calls);
    free(g->req);
    free(g);
}

size_t gradsync_buckets(const GradSync *g) { return g->n_buckets; }

size_t gradsync_calls(const GradSync *g) { return g->n_calls; }

double gradsync_wait_seconds(const GradSync *g) { return g->wait_s; }

size_t gradsync_completed(const GradSync *g) { return g->elements_done; }

static void begin_step(GradSync *g)
{
    g->active = 1;
    g->ready = 0;
    g->next_bucket = 0;
    g->calls_done = 0;
    g->elements_done = 0;
    for (size_t b = 0; b < g->n_buckets; b++)
        g->left[b] = g->first_call[b + 1] - g->first_call[b];
}

static void scale_range(const GradSync *g, size_t start, size_t len)
{
    if (g->scale == 1.0f)
        return;
    float *p = g->g + start;
    for (size_t i = 0; i < len; i++)
        p[i] *= g->scale;
}

static int start_bucket(GradSync *g, size_t b)
{
    MPI_Comm comm = g->c->impl->group;
    for (size_t k = g->first_call[b]; k < g->first_call[b + 1]; k++) {
        const Call *call = &g->calls[k];
        int rc = MPI_Iallreduce(MPI_IN_PLACE, g->g + call->start, (int)call->len, MPI_FLOAT, MPI_SUM, comm, &g->req[k]);
        if (rc != MPI_SUCCESS)
            return comm_fail_mpi(g->c, rc, "MPI_Iallreduce of gradient bucket %zu of %zu (elements %zu-%zu)", b + 1,
                                 g->n_buckets, call->start, call->start + call->len - 1);
    }
    return 0;
}

static void call_done(GradSync *g, int k)
{
    const Call *call = &g->calls[k];
    scale_range(g, call->start, call->len);
    g->left[call->bucket]--;
    g->calls_done++;
    g->elements_done += call->len;
}

/* Harvests every call that has completed by now. */
static int harvest(GradSync *g)
{
    while (g->calls_done < g->n_calls) {
        int k = MPI_UNDEFINED, flag = 0;
        int rc = MPI_Testany((int)g->n_calls, g->req, &k, &flag, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS)
            return comm_fail_mpi(g->c, rc, "MPI_Testany over the gradient buckets");
        if (!flag || k == MPI_UNDEFINED)
            break;
        call_done(g, k);
    }
    return 0;
}

int gradsync_ready(GradSync *g, size_t n_ready)
{
    if (g->failed)
        return -1;
    if (!g->active)
        begin_step(g);
    if (n_ready > g->n || n_ready < g->ready)
        return comm_fail(g->c, "gradsync_ready: prefix %zu after %zu (expected %zu to %zu)", n_ready, g->ready,
                         g->ready, g->n);
    g->ready = n_ready;
    if (g->blocking)
        return 0;
    while (g->next_bucket < g->n_buckets && bucket_end(g, g->next_bucket) <= n_ready) {
        if (start_bucket(g, g->next_bucket) != 0)
            return -1;
        g->next_bucket++;
    }
    return harvest(g);
}

void gradsync_on_ready(void *user, size_t n_ready)
{
    GradSync *g = user;
    if (!g->failed && gradsync_ready(g, n_ready) != 0)
        g->failed = 1;
}

int gradsync_progress(GradSync *g)
{
    if (g->failed)
        return -1;
    return g->active && !g->blocking ? harvest(g) : 0;
}

static void label_bucket(GradSync *g, size_t b, int arm)
{
    char step[64];
    comm_step_text(g->c, step, sizeof step);
    size_t start = b * g->bucket_len, end = bucket_end(g, b);
    const char *fmt = "gradient allreduce at %s, bucket %zu of %zu (elements %zu-%zu)";
    if (arm)
        wd_arm(g->c, 1, fmt, step, b + 1, g->n_buckets, start, end - 1);
    else
        wd_relabel(g->c, fmt, step, b + 1, g->n_buckets, start, end - 1);
}

/* Waits on the main thread for every call, naming the oldest open bucket. */
static int wait_buckets(GradSync *g)
{
    size_t open = 0;
    while (open < g->n_buckets && g->left[open] == 0)
        open++;
    if (open < g->n_buckets)
        label_bucket(g, open, 1);
    long spins = 0;
    while (g->calls_done < g->n_calls) {
        int k = MPI_UNDEFINED, flag = 0;
        int rc = MPI_Testany((int)g->n_calls, g->req, &k, &flag, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) {
            wd_disarm(g->c);
            return comm_fail_mpi(g->c, rc, "MPI_Testany over the gradient buckets (waiting on bucket %zu of %zu)",
                                 open + 1, g->n_buckets);
        }
        if (flag && k != MPI_UNDEFINED) {
            call_done(g, k);
            if (g->left[open] == 0) {
                while (open < g->n_buckets && g->left[open] == 0)
                    open++;
                if (open < g->n_buckets)
                    label_bucket(g, open, 0);
            }
            continue;
        }
        wd_check(g->c);
        comm_poll_pause(++spins);
    }
    wd_disarm(g->c);
    return 0;
}

/* The reference: one blocking allreduce (per max_count piece). */
static int blocking_allreduce(GradSync *g)
{
    char step[64];
    comm_step_text(g->c, step, sizeof step);
    for (size_t k = 0; k < g->n_calls; k++) {
        const Call *call = &g->calls[k];
        wd_arm(g->c, 0, "blocking gradient allreduce at %s, call %zu of %zu (elements %zu-%zu)", step, k + 1,
               g->n_calls, call->start, call->start + call->len - 1);
        int rc = MPI_Allreduce(MPI_IN_PLACE, g->g + call->start, (int)call->len, MPI_FLOAT, MPI_SUM, g->c->impl->group);
        wd_disarm(g->c);
        if (rc != MPI_SUCCESS)
            return comm_fail_mpi(g->c, rc, "MPI_Allreduce of the gradients at %s (elements %zu-%zu)", step,
                                 call->start, call->start + call->len - 1);
        scale_range(g, call->start, call->len);
        g->elements_done += call->len;
    }
    return 0;
}

int gradsync_finish(GradSync *g)
{
    if (g->failed)
        return -1;
    if (!g->active)
        begin_step(g);
    double t0 = comm_now();
    int status;
    if (g->blocking) {
        status = blocking_allreduce(g);
    } else {
        status = gradsync_ready(g, g->n);
        t0 = comm_now(); /* only the waiting counts, not the starts */
        if (!status)
            status = wait_buckets(g);
    }
    g->wait_s = comm_now() - t0;
    g->active = 0;
    return status;
}
