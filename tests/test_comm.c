/* test_comm.c - comm/ under mpirun (1 to 4 ranks).
 *
 *   test_comm                       every check below; exit 0 when all pass on all ranks
 *   test_comm --watchdog-polled     the last rank never joins a bucketed gradient allreduce:
 *                                   the others must abort the job naming step 7, bucket 1
 *   test_comm --watchdog-blocking   the same for the blocking reference allreduce
 *   test_comm --abort               rank 1 calls comm_abort_all while the others wait
 *
 * The failure modes are checked by tests/comm_watchdog.sh (non-zero exit and
 * the message). Every run is bounded by alarm() and by the watchdog.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comm/comm.h"

static int g_failures;
static int g_rank;

/* One line per failure (ranks print at the same time). */
#define CHECK(cond, ...)                                                                                     \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            char why_[2048];                                                                                 \
            snprintf(why_, sizeof why_, __VA_ARGS__);                                                        \
            fprintf(stderr, "FAIL rank %d %s:%d: %s: %s\n", g_rank, __FILE__, __LINE__, #cond, why_);        \
            g_failures++;                                                                                    \
        }                                                                                                    \
    } while (0)

/* ----------------------------------------------------------- test data */

static uint64_t splitmix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Uniform in [-1, 1), keyed by (seed, i). */
static float unit_value(uint64_t seed, size_t i)
{
    uint64_t h = splitmix(seed * 0x100000001B3ull ^ splitmix(i));
    return (float)((double)(h >> 40) / (double)(1ull << 23) - 1.0);
}

/* A small integer in [-8, 8]: sums of these are exact in float. */
static float int_value(uint64_t seed, size_t i) { return (float)((int)(splitmix(seed ^ (i * 31)) % 17) - 8); }

/* The gradient of group rank r at step s, element i. */
static float grad_value(int exact, int r, int s, size_t i)
{
    uint64_t seed = 1000u * (uint64_t)s + (uint64_t)r + 1;
    return exact ? int_value(seed, i) : unit_value(seed, i);
}

/* ----------------------------------------------------------------- groups */

static void test_groups(Comm *c)
{
    for (int g = 1; g <= c->size; g++) {
        CHECK(comm_split_groups(c, g) == 0, "split into %d: %s", g, c->error);
        /* the expected layout, walked group by group */
        int first = 0, want_group = -1, want_size = 0, want_first = 0;
        for (int k = 0; k < g; k++) {
            int sz = c->size / g + (k < c->size % g ? 1 : 0);
            if (c->rank >= first && c->rank < first + sz) {
                want_group = k;
                want_size = sz;
                want_first = first;
            }
            first += sz;
        }
        CHECK(c->n_groups == g && c->group == want_group, "world %d into %d: rank %d in group %d, expected %d",
              c->size, g, c->rank, c->group, want_group);
        CHECK(c->group_size == want_size && c->group_leader == want_first && c->group_rank == c->rank - want_first,
              "world %d into %d: rank %d has group size %d leader %d rank %d, expected %d %d %d", c->size, g, c->rank,
              c->group_size, c->group_leader, c->group_rank, want_size, want_first, c->rank - want_first);
        /* the group communicator really holds those ranks */
        int64_t v[2] = {1, c->rank};
        CHECK(comm_sum_i64(c, COMM_SCOPE_GROUP, v, 2) == 0, "%s", c->error);
        int64_t rank_sum = (int64_t)want_size * want_first + (int64_t)want_size * (want_size - 1) / 2;
        CHECK(v[0] == want_size && v[1] == rank_sum, "group sums %lld %lld, expected %d %lld", (long long)v[0],
              (long long)v[1], want_size, (long long)rank_sum);
        int leader = c->rank;
        CHECK(comm_bcast_bytes(c, COMM_SCOPE_GROUP, &leader, sizeof leader, 0) == 0, "%s", c->error);
        CHECK(leader == want_first, "group broadcast came from world rank %d, expected %d", leader, want_first);
        /* the world stays whole */
        int64_t w = 1;
        CHECK(comm_sum_i64(c, COMM_SCOPE_WORLD, &w, 1) == 0 && w == c->size, "world sum %lld", (long long)w);
    }
    CHECK(comm_split_groups(c, 0) == -1 && strstr(c->error, "0 groups"), "0 groups accepted: %s", c->error);
    CHECK(comm_split_groups(c, c->size + 1) == -1, "%d groups of %d ranks accepted", c->size + 1, c->size);
    CHECK(comm_split_groups(c, 1) == 0, "%s", c->error);
}

/* ------------------------------------------------- broadcast and checksum */

static void test_hash(void)
{
    enum { N = 1001 };
    float a[N], b[N];
    for (int i = 0; i < N; i++)
        a[i] = b[i] = unit_value(5, (size_t)i);
    CHECK(comm_hash_floats(a, N) == comm_hash_floats(b, N), "same bytes, different hashes");
    uint32_t bits;
    for (int at = 0; at < N; at += 250) { /* any single flipped bit shows, also in the odd tail float */
        memcpy(&bits, &b[at], 4);
        bits ^= 1u << (at % 32);
        memcpy(&b[at], &bits, 4);
        CHECK(comm_hash_floats(a, N) != comm_hash_floats(b, N), "bit flip at float %d not seen", at);
        b[at] = a[at];
    }
    CHECK(comm_hash_floats(a, N) != comm_hash_floats(a, N - 1), "length not part of the hash");
    float z[2] = {0, 0};
    CHECK(comm_hash_floats(z, 1) != comm_hash_floats(z, 2), "zeros of different lengths hash alike");
}

static void test_bcast_checksum(Comm *c, size_t max_count)
{
    size_t n = 12345;
    float *w = malloc(n * sizeof *w);
    for (size_t i = 0; i < n; i++) /* the leader holds the weights; the others hold their own noise */
        w[i] = unit_value(c->group_rank == 0 ? 77 : 100 + (uint64_t)c->rank, i);
    size_t saved = c->max_count;
    c->max_count = max_count;
    CHECK(comm_bcast_floats(c, w, n) == 0, "%s", c->error);
    c->max_count = saved;
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++)
        wrong += w[i] != unit_value(77, i);
    CHECK(wrong == 0, "%zu of %zu weights differ from the leader's after broadcast (max count %zu)", wrong, n,
          max_count);
    CHECK(comm_check_same(c, COMM_SCOPE_GROUP, w, n, "weights") == 0, "%s", c->error);
    CHECK(comm_check_same(c, COMM_SCOPE_WORLD, w, n, "weights") == 0, "%s", c->error);
    if (c->size > 1) {
        int bad = c->size - 1;
        if (c->rank == bad)
            w[777] = nextafterf(w[777], 2.0f); /* one ulp on one rank */
        CHECK(comm_check_same(c, COMM_SCOPE_WORLD, w, n, "weights after resume") == -1,
              "a perturbed rank %d went unnoticed", bad);
        char want[64];
        snprintf(want, sizeof want, "rank %d (", bad);
        CHECK(strstr(c->error, "weights after resume differs") && strstr(c->error, want) &&
                  strstr(c->error, "1 rank differs"),
              "message does not name rank %d alone: %s", bad, c->error);
    }
    free(w);
}

/* ---------------------------------------------------- gradient averaging */

typedef struct {
    size_t n;
    size_t bucket_bytes;
    size_t max_count;
    int blocking;
    int exact;      /* integer data: every path must give the hand-computed mean bit for bit */
    int report;     /* 0: never call ready (finish starts everything); 1: uneven layers */
    double scale;   /* 0: the mean */
} SyncCase;

/* Runs three steps and returns the result of the last one in out. */
static void run_sync(Comm *c, const SyncCase *k, float *out)
{
    GradSyncOptions o = {.bucket_bytes = k->bucket_bytes, .blocking = k->blocking, .scale = k->scale,
                         .max_count = k->max_count};
    GradSync *g = NULL;
    float *grads = malloc((k->n ? k->n : 1) * sizeof *grads);
    CHECK(gradsync_create(c, grads, k->n, &o, &g) == 0, "%s", c->error);
    if (!g) {
        free(grads);
        return;
    }
    /* the plan, counted independently */
    size_t per = k->blocking ? (k->n ? k->n : 1) : (k->bucket_bytes / 4 ? k->bucket_bytes / 4 : 1);
    size_t max = k->max_count ? k->max_count : 2147483647u;
    size_t buckets = 0, calls = 0;
    for (size_t at = 0; at < k->n; at += per, buckets++) {
        size_t len = k->n - at < per ? k->n - at : per;
        calls += (len + max - 1) / max;
    }
    CHECK(gradsync_buckets(g) == buckets && gradsync_calls(g) == calls,
          "n %zu cap %zu max %zu: %zu buckets %zu calls, expected %zu %zu", k->n, k->bucket_bytes, max,
          gradsync_buckets(g), gradsync_calls(g), buckets, calls);
    for (int step = 0; step < 3; step++) {
        comm_set_step(c, step);
        for (size_t i = 0; i < k->n; i++)
            grads[i] = grad_value(k->exact, c->group_rank, step, i);
        if (k->report) { /* layers of uneven sizes, the same on every rank */
            size_t done = 0;
            for (int layer = 0; done < k->n; layer++) {
                size_t len = 1 + splitmix(layer * 7 + (uint64_t)step) % (k->n / 4 + 1);
                done = done + len < k->n ? done + len : k->n;
                CHECK(gradsync_ready(g, done) == 0, "%s", c->error);
                CHECK(gradsync_progress(g) == 0, "%s", c->error);
                if (layer % 3 == 0) /* a repeated report is allowed */
                    gradsync_on_ready(g, done);
            }
        }
        CHECK(gradsync_finish(g) == 0, "%s", c->error);
        CHECK(gradsync_wait_seconds(g) >= 0, "negative wait time");
    }
    memcpy(out, grads, k->n * sizeof *out);
    gradsync_free(g);
    free(grads);
}

/* The mean (or scaled sum) of the last step, by hand: exact cases in float
 * with the code's own rounding, the others in double. */
static void expected_sync(const Comm *c, const SyncCase *k, float *want_f, double *want_d)
{
    float scale = (float)(k->scale > 0 ? k->scale : 1.0 / c->group_size);
    for (size_t i = 0; i < k->n; i++) {
        double s = 0;
        for (int r = 0; r < c->group_size; r++)
            s += grad_value(k->exact, r, 2, i);
        want_d[i] = s * (k->scale > 0 ? k->scale : 1.0 / c->group_size);
        want_f[i] = scale == 1.0f ? (float)s : (float)s * scale;
    }
}

static void check_sync_case(Comm *c, SyncCase k)
{
    size_t n = k.n ? k.n : 1;
    float *got = malloc(n * sizeof *got), *ref = malloc(n * sizeof *ref), *want_f = malloc(n * sizeof *want_f);
    double *want_d = malloc(n * sizeof *want_d);
    run_sync(c, &k, got);
    SyncCase b = k;
    b.blocking = 1;
    run_sync(c, &b, ref);
    expected_sync(c, &k, want_f, want_d);
    double max_ref = 0, max_hand = 0;
    size_t exact_miss = 0;
    for (size_t i = 0; i < k.n; i++) {
        double dr = fabs((double)got[i] - ref[i]), dh = fabs((double)got[i] - want_d[i]);
        max_ref = dr > max_ref ? dr : max_ref;
        max_hand = dh > max_hand ? dh : max_hand;
        exact_miss += k.exact && (got[i] != want_f[i] || ref[i] != want_f[i]);
    }
    /* float sums of <= 4 values in [-1, 1): rounding error below 4 * 2^-24 * 4 */
    const double tol = 1e-6;
    CHECK(exact_miss == 0, "n %zu cap %zu max %zu: %zu values differ from the exact mean", k.n, k.bucket_bytes,
          k.max_count, exact_miss);
    CHECK(max_ref <= tol && max_hand <= tol,
          "n %zu cap %zu max %zu: bucketed vs blocking %.3g, vs hand mean %.3g (tolerance %.1g)", k.n,
          k.bucket_bytes, k.max_count, max_ref, max_hand, tol);
    if (c->rank == 0 && !k.exact)
        printf("gradsync n %zu cap %zu B max count %zu: |bucketed - blocking| <= %.3g, |bucketed - mean| <= %.3g\n",
               k.n, k.bucket_bytes, k.max_count ? k.max_count : (size_t)c->max_count, max_ref, max_hand);
    free(got);
    free(ref);
    free(want_f);
    free(want_d);
}

static void test_gradsync(Comm *c)
{
    const SyncCase cases[] = {
        {.n = 257, .bucket_bytes = 4, .exact = 1, .report = 1},        /* one float per bucket */
        {.n = 2501, .bucket_bytes = 1000, .exact = 1, .report = 1},    /* 250 floats, last bucket short */
        {.n = 2501, .bucket_bytes = 1 << 30, .exact = 1, .report = 1}, /* one bucket */
        {.n = 2501, .bucket_bytes = 1000, .exact = 1, .report = 0},    /* finish starts everything */
        {.n = 3001, .bucket_bytes = 100, .max_count = 7, .exact = 1, .report = 1}, /* 25-float buckets in 4 calls */
        {.n = 2501, .bucket_bytes = 4000, .max_count = 1000, .exact = 1, .report = 1},
        {.n = 1003, .bucket_bytes = 256, .exact = 1, .report = 1, .scale = 1.0},   /* plain sum */
        {.n = 0, .bucket_bytes = 256, .exact = 1, .report = 0},
        {.n = 20011, .bucket_bytes = 4096, .exact = 0, .report = 1},  /* random data */
        {.n = 20011, .bucket_bytes = 1 << 20, .max_count = 1000, .exact = 0, .report = 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_sync_case(c, cases[i]);
}

/* The same averaging inside groups: each group must see only its own ranks. */
static void test_gradsync_groups(Comm *c)
{
    if (c->size < 2)
        return;
    CHECK(comm_split_groups(c, 2) == 0, "%s", c->error);
    check_sync_case(c, (SyncCase){.n = 1501, .bucket_bytes = 400, .max_count = 33, .exact = 1, .report = 1});
    CHECK(comm_split_groups(c, 1) == 0, "%s", c->error);
}

/* Buckets inside the reported prefix complete without finish (progress
 * alone), and only they: the overlap with backward really happens. */
static void test_gradsync_overlap(Comm *c)
{
    enum { N = 1000 };
    float grads[N];
    for (size_t i = 0; i < N; i++)
        grads[i] = grad_value(1, c->group_rank, 0, i);
    GradSync *g = NULL;
    CHECK(gradsync_create(c, grads, N, &(GradSyncOptions){.bucket_bytes = 400}, &g) == 0, "%s", c->error);
    if (!g)
        return;
    comm_set_step(c, 0);
    CHECK(gradsync_ready(g, 350) == 0, "%s", c->error); /* buckets 1-3 of 10 */
    double t0 = comm_now();
    while (gradsync_completed(g) < 300 && comm_now() - t0 < 10)
        CHECK(gradsync_progress(g) == 0, "%s", c->error);
    CHECK(gradsync_completed(g) == 300, "%zu elements done before finish, expected the 300 of buckets 1-3",
          gradsync_completed(g));
    float scale = 1.0f / (float)c->group_size;
    int wrong = 0;
    for (size_t i = 0; i < 300; i++) {
        double s = 0;
        for (int r = 0; r < c->group_size; r++)
            s += grad_value(1, r, 0, i);
        wrong += grads[i] != (float)s * scale;
    }
    for (size_t i = 300; i < N; i++) /* nothing beyond the started buckets touched yet */
        wrong += grads[i] != grad_value(1, c->group_rank, 0, i);
    CHECK(wrong == 0, "%d values wrong before finish", wrong);
    CHECK(gradsync_finish(g) == 0 && gradsync_completed(g) == N, "%s", c->error);
    gradsync_free(g);
}

static void test_gradsync_misuse(Comm *c)
{
    float grads[100] = {0};
    GradSync *g = NULL;
    CHECK(gradsync_create(c, grads, 100, &(GradSyncOptions){.bucket_bytes = 40}, &g) == 0, "%s", c->error);
    CHECK(gradsync_ready(g, 60) == 0, "%s", c->error);
    CHECK(gradsync_ready(g, 50) == -1 && strstr(c->error, "prefix 50 after 60"), "shrinking prefix accepted: %s",
          c->error);
    CHECK(gradsync_ready(g, 101) == -1, "prefix beyond the buffer accepted");
    CHECK(gradsync_finish(g) == 0, "%s", c->error); /* the step still completes */
    gradsync_free(g);
}

/* --------------------------------------------------- metrics and gathers */

static void test_metrics(Comm *c)
{
    double m[5];
    for (int j = 0; j < 5; j++)
        m[j] = c->rank + 0.5 * j;
    CHECK(comm_sum_f64(c, COMM_SCOPE_GROUP, m, 5) == 0, "%s", c->error);
    double ranks = c->size * (c->size - 1) / 2.0;
    for (int j = 0; j < 5; j++)
        CHECK(m[j] == ranks + c->size * 0.5 * j, "metric %d = %g, expected %g", j, m[j], ranks + c->size * 0.5 * j);
    int64_t big[2] = {(int64_t)1 << 40, -c->rank};
    CHECK(comm_sum_i64(c, COMM_SCOPE_WORLD, big, 2) == 0, "%s", c->error);
    CHECK(big[0] == ((int64_t)c->size << 40) && big[1] == -(int64_t)ranks, "int64 sums %lld %lld",
          (long long)big[0], (long long)big[1]);
    CHECK(comm_sum_f64(c, COMM_SCOPE_GROUP, m, 0) == 0, "empty sum failed: %s", c->error);
    CHECK(comm_barrier(c, COMM_SCOPE_WORLD) == 0, "%s", c->error);
}

static void test_allgather(Comm *c)
{
    const int d = 3, rows = c->rank + 1; /* rank r contributes r + 1 rows */
    int total_want = c->size * (c->size + 1) / 2;
    float *mine = malloc((size_t)rows * d * sizeof *mine);
    int *labels = malloc((size_t)rows * sizeof *labels);
    for (int i = 0; i < rows; i++) {
        labels[i] = 100 * c->rank + i;
        for (int k = 0; k < d; k++)
            mine[i * d + k] = (float)(1000 * c->rank + 10 * i + k);
    }
    float *all = malloc((size_t)total_want * d * sizeof *all);
    int *all_labels = malloc((size_t)total_want * sizeof *all_labels);
    int *counts = calloc(2 * (size_t)c->size, sizeof *counts), *lcounts = counts + c->size;
    int total = -1, ltotal = -1;
    CHECK(comm_allgather_rows(c, mine, rows, d, all, (size_t)total_want, counts, &total) == 0, "%s", c->error);
    CHECK(comm_allgather_ints(c, labels, rows, all_labels, (size_t)total_want, lcounts, &ltotal) == 0, "%s",
          c->error);
    CHECK(total == total_want && ltotal == total_want, "totals %d %d, expected %d", total, ltotal, total_want);
    int at = 0, wrong = 0;
    for (int r = 0; r < c->size; r++) {
        CHECK(counts[r] == r + 1 && lcounts[r] == r + 1, "rank %d counted %d/%d rows", r, counts[r], lcounts[r]);
        for (int i = 0; i <= r; i++, at++) {
            wrong += all_labels[at] != 100 * r + i;
            for (int k = 0; k < d; k++)
                wrong += all[at * d + k] != (float)(1000 * r + 10 * i + k);
        }
    }
    CHECK(wrong == 0, "%d gathered values out of rank order", wrong);
    /* a buffer too small on one rank fails everywhere */
    size_t cap = c->rank == c->size - 1 ? (size_t)total_want - 1 : (size_t)total_want;
    CHECK(comm_allgather_rows(c, mine, rows, d, all, cap, NULL, NULL) == -1 && strstr(c->error, "do not fit"),
          "a short buffer went unnoticed: %s", c->error);
    /* rows of another width on one rank fail everywhere */
    if (c->size > 1) {
        int width = c->rank == 1 ? 2 : d;
        CHECK(comm_allgather_rows(c, mine, rows, width, all, (size_t)total_want, NULL, NULL) == -1 &&
                  strstr(c->error, "group rank 1 has rows of 2 values"),
              "mixed row widths went unnoticed: %s", c->error);
    }
    free(all);
    free(all_labels);
    free(mine);
    free(labels);
    free(counts);
}

static void test_gather_predictions(Comm *c)
{
    /* rank order: rank r holds r + 2 consecutive samples */
    size_t total = 0, first = 0;
    for (int r = 0; r < c->size; r++) {
        if (r < c->rank)
            first += (size_t)r + 2;
        total += (size_t)r + 2;
    }
    float *v = malloc(((size_t)c->rank + 2) * sizeof *v), *out = c->group_rank == 0 ? malloc(64 * sizeof *out) : NULL;
    int n = c->rank + 2;
    for (int i = 0; i < n; i++)
        v[i] = (float)(first + (size_t)i);
    CHECK(comm_gather_to_leader(c, v, NULL, n, out, total) == 0, "%s", c->error);
    if (out)
        for (size_t i = 0; i < total; i++)
            CHECK(out[i] == (float)i, "rank-order gather: position %zu holds %g", i, out[i]);
    /* strided shards with sample indices: sample i lives on rank i % size */
    const size_t n_total = 23;
    int64_t idx[23];
    int m = 0;
    for (size_t i = (size_t)c->rank; i < n_total; i += (size_t)c->size, m++)
        idx[m] = (int64_t)i;
    float *vals = malloc(23 * sizeof *vals);
    for (int j = 0; j < m; j++)
        vals[j] = 0.5f * (float)idx[j];
    CHECK(comm_gather_to_leader(c, vals, idx, m, out, n_total) == 0, "%s", c->error);
    if (out)
        for (size_t i = 0; i < n_total; i++)
            CHECK(out[i] == 0.5f * (float)i, "indexed gather: sample %zu holds %g", i, out[i]);
    /* a sample claimed twice fails on every rank */
    if (c->size > 1 && c->rank == c->size - 1)
        idx[0] = 0;
    if (c->size > 1)
        CHECK(comm_gather_to_leader(c, vals, idx, m, out, n_total) == -1 && strstr(c->error, "appears twice"),
              "a duplicate sample index went unnoticed: %s", c->error);
    /* a wrong total fails on every rank */
    CHECK(comm_gather_to_leader(c, vals, idx, m, out, n_total + 1) == -1 && strstr(c->error, "expected 24"),
          "a missing sample went unnoticed: %s", c->error);
    free(vals);
    free(out);
    free(v);
}

/* ------------------------------------------------------------ agreement */

static void test_agree(Comm *c)
{
    char msg[COMM_MSG_MAX] = "";
    int failed = 99;
    CHECK(comm_agree(c, COMM_SCOPE_WORLD, 0, msg, sizeof msg, &failed) == 0 && failed == -1,
          "all fine, but agreement says rank %d failed", failed);
    /* the last rank fails */
    int last = c->size - 1;
    snprintf(msg, sizeof msg, c->rank == last ? "bad sample 17 in faces.csv line 19 (rank %d)" : "", c->rank);
    char want[128];
    snprintf(want, sizeof want, "bad sample 17 in faces.csv line 19 (rank %d)", last);
    int rc = comm_agree(c, COMM_SCOPE_WORLD, c->rank == last, msg, sizeof msg, &failed);
    CHECK(rc == 1 && failed == last && strcmp(msg, want) == 0, "rc %d failed %d message '%s', expected 1 %d '%s'", rc,
          failed, msg, last, want);
    /* two ranks fail: the lower one's message wins */
    if (c->size >= 2) {
        int lo = c->size >= 3 ? 1 : 0, hi = last;
        int mine = c->rank == lo || c->rank == hi;
        snprintf(msg, sizeof msg, "failure of rank %d", c->rank);
        snprintf(want, sizeof want, "failure of rank %d", lo);
        rc = comm_agree(c, COMM_SCOPE_WORLD, mine, msg, sizeof msg, &failed);
        CHECK(rc == 1 && failed == lo && strcmp(msg, want) == 0, "rc %d failed %d message '%s', expected rank %d",
              rc, failed, msg, lo);
    }
    /* a short caller buffer gets a truncated copy */
    char small[8];
    snprintf(small, sizeof small, "abcdefg");
    rc = comm_agree(c, COMM_SCOPE_WORLD, c->rank == 0, small, sizeof small, NULL);
    CHECK(rc == 1 && strcmp(small, "abcdefg") == 0, "rc %d message '%s'", rc, small);
    /* group scope: a failure in the last group stays there */
    if (c->size >= 2) {
        CHECK(comm_split_groups(c, 2) == 0, "%s", c->error);
        snprintf(msg, sizeof msg, "cell failed in group %d", c->group);
        rc = comm_agree(c, COMM_SCOPE_GROUP, c->group == 1 && c->group_rank == 0, msg, sizeof msg, &failed);
        int want_rc = c->group == 1;
        CHECK(rc == want_rc && (!want_rc || (failed == 0 && strcmp(msg, "cell failed in group 1") == 0)),
              "group %d: rc %d failed %d '%s'", c->group, rc, failed, msg);
        CHECK(comm_split_groups(c, 1) == 0, "%s", c->error);
    }
}

/* --------------------------------------------------- failure modes */

/* The last rank stays away; the others wait in a gradient allreduce. */
static int run_watchdog(Comm *c, int blocking)
{
    comm_set_watchdog(c, 2.0);
    enum { N = 1000 };
    static float grads[N];
    GradSync *g = NULL;
    if (gradsync_create(c, grads, N, &(GradSyncOptions){.bucket_bytes = 400, .blocking = blocking}, &g) != 0) {
        fprintf(stderr, "%s\n", c->error);
        return 1;
    }
    comm_set_step(c, 7);
    if (c->rank == c->size - 1) {
        sleep(30); /* the job should be gone long before */
        fprintf(stderr, "rank %d: the watchdog never ended the job\n", c->rank);
        return 1;
    }
    gradsync_ready(g, 350);
    gradsync_finish(g);
    fprintf(stderr, "rank %d: gradient allreduce returned without the last rank\n", c->rank);
    return 1;
}

static int run_abort(Comm *c)
{
    if (c->rank == 1 % c->size) {
        sleep(1);
        comm_abort_all(c, "injected fatal error: checkpoint unreadable");
    }
    comm_barrier(c, COMM_SCOPE_WORLD); /* waits for a rank that is gone */
    fprintf(stderr, "rank %d: barrier returned after an abort\n", c->rank);
    return 1;
}

/* ----------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    alarm(90); /* nothing here may outlive the ctest timeout */
    Comm c;
    if (comm_init(&argc, &argv, &(CommOptions){.watchdog_seconds = 20}, &c) != 0) {
        fprintf(stderr, "test_comm: %s\n", c.error);
        return 1;
    }
    g_rank = c.rank;
    char line[256];
    comm_describe(&c, line, sizeof line);
    printf("test_comm: %s\n", line);
    fflush(stdout);
    CHECK(c.threads >= 1 && c.threads <= c.node_cores, "suggested %d threads of %d cores", c.threads, c.node_cores);
    CHECK(c.local_rank >= 0 && c.local_rank < c.local_size && c.local_size <= c.size, "node rank %d/%d of %d",
          c.local_rank, c.local_size, c.size);

    if (argc > 1 && strcmp(argv[1], "--watchdog-polled") == 0)
        return run_watchdog(&c, 0);
    if (argc > 1 && strcmp(argv[1], "--watchdog-blocking") == 0)
        return run_watchdog(&c, 1);
    if (argc > 1 && strcmp(argv[1], "--abort") == 0)
        return run_abort(&c);

    test_hash();
    test_groups(&c);
    test_bcast_checksum(&c, c.max_count);
    test_bcast_checksum(&c, 1000); /* the large-count split path */
    test_gradsync(&c);
    test_gradsync_groups(&c);
    test_gradsync_overlap(&c);
    test_gradsync_misuse(&c);
    test_metrics(&c);
    test_allgather(&c);
    test_gather_predictions(&c);
    test_agree(&c);

    int64_t failures = g_failures;
    if (comm_sum_i64(&c, COMM_SCOPE_WORLD, &failures, 1) != 0) {
        fprintf(stderr, "test_comm: %s\n", c.error);
        failures = 1;
    }
    if (c.rank == 0)
        printf("test_comm (%d ranks): %s\n", c.size, failures ? "FAILED" : "all checks passed");
    comm_finalize(&c);
    return failures ? 1 : 0;
}
