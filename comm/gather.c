/* gather.c - checksums across ranks, all-gathers with varying counts (the
 * global batch of the triplet loss) and the ordered gather of predictions. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/internal.h"

/* ------------------------------------------------------------- checksum */

static const uint64_t K1 = 0x9E3779B185EBCA87ull, K2 = 0xC2B2AE3D27D4EB4Full, K3 = 0x165667B19E3779F9ull;

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

/* Mixes one 64-bit word into h: multiply, rotate, multiply, so that every
 * input bit reaches every output bit within a few words. */
static inline uint64_t mix_word(uint64_t h, uint64_t w)
{
    w *= K2;
    w = rotl64(w, 31) * K1;
    h ^= w;
    return rotl64(h, 27) * K1 + K3;
}

uint64_t comm_hash_floats(const float *v, size_t n)
{
    const unsigned char *p = (const unsigned char *)v;
    size_t bytes = n * sizeof(float);
    uint64_t h = K3 ^ (bytes * K1);
    size_t i = 0;
    for (; i + 8 <= bytes; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = mix_word(h, w);
    }
    if (i < bytes) { /* one float left over */
        uint32_t w;
        memcpy(&w, p + i, 4);
        h = mix_word(h, (uint64_t)w | 0x100000000ull);
    }
    h ^= h >> 33; /* final avalanche */
    h *= K2;
    h ^= h >> 29;
    h *= K3;
    h ^= h >> 32;
    return h;
}

int comm_check_same(Comm *c, CommScope s, const float *v, size_t n, const char *what)
{
    int size = comm_scope_size(c, s);
    uint64_t mine = comm_hash_floats(v, n);
    uint64_t *all = malloc((size_t)size * sizeof *all);
    if (!all)
        return comm_fail(c, "comm_check_same: out of memory for %d hashes", size);
    MPI_Request req;
    int rc = MPI_Iallgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, comm_of(c, s), &req);
    if (rc != MPI_SUCCESS) {
        free(all);
        return comm_fail_mpi(c, rc, "MPI_Iallgather (checksums of %s)", what);
    }
    if (comm_wait(c, &req, "checksum agreement") != 0) {
        free(all);
        return -1;
    }
    char list[COMM_MSG_MAX / 2] = "";
    size_t used = 0;
    int bad = 0;
    for (int r = 1; r < size; r++) {
        if (all[r] == all[0])
            continue;
        if (++bad <= 8 && used < sizeof list) {
            int w = snprintf(list + used, sizeof list - used, "%srank %d (%016llx)", bad > 1 ? ", " : "", r,
                             (unsigned long long)all[r]);
            used += w > 0 ? (size_t)w : 0;
        }
    }
    uint64_t ref = all[0];
    free(all);
    if (!bad)
        return 0;
    return comm_fail(c, "%s differs between ranks: %d rank%s differ%s from %s rank 0 (checksum %016llx): %s%s", what,
                     bad, bad == 1 ? "" : "s", bad == 1 ? "s" : "", s == COMM_SCOPE_WORLD ? "world" : "group",
                     (unsigned long long)ref, list, bad > 8 ? ", ..." : "");
}

/* ------------------------------------------------------------ all-gather */

/* What each rank tells the others before a gather with varying counts. */
enum { SHAPE_COUNT, SHAPE_WIDTH, SHAPE_CAP, SHAPE_N };

/* Gathers every rank's (count, width, capacity) and checks them; the same
 * data on every rank gives the same verdict, so a failure is collective.
 * counts[r] receives rank r's items. */
static int exchange_shapes(Comm *c, const char *what, int n, int width, size_t cap, int *counts, int *displs,
                           int64_t *total_out)
{
    int size = c->group_size;
    int64_t mine[SHAPE_N] = {n, width, cap > (size_t)INT64_MAX ? INT64_MAX : (int64_t)cap};
    int64_t *all = malloc((size_t)size * SHAPE_N * sizeof *all);
    if (!all)
        return comm_fail(c, "%s: out of memory", what);
    MPI_Request req;
    int rc = MPI_Iallgather(mine, SHAPE_N, MPI_INT64_T, all, SHAPE_N, MPI_INT64_T, c->impl->group, &req);
    if (rc != MPI_SUCCESS || comm_wait(c, &req, what) != 0) {
        free(all);
        return rc != MPI_SUCCESS ? comm_fail_mpi(c, rc, "MPI_Iallgather (%s sizes)", what) : -1;
    }
    int64_t total = 0, min_cap = INT64_MAX;
    int status = 0;
    for (int r = 0; r < size && !status; r++) {
        const int64_t *a = all + (size_t)r * SHAPE_N;
        if (a[SHAPE_WIDTH] < 1)
            status = comm_fail(c, "%s: group rank %d passed rows of %lld values (expected >= 1)", what, r,
                               (long long)a[SHAPE_WIDTH]);
        else if (a[SHAPE_COUNT] < 0)
            status = comm_fail(c, "%s: group rank %d passed a negative count %lld", what, r, (long long)a[SHAPE_COUNT]);
        else if (a[SHAPE_WIDTH] != all[SHAPE_WIDTH])
            status = comm_fail(c, "%s: group rank %d has rows of %lld values, rank 0 of %lld", what, r,
                               (long long)a[SHAPE_WIDTH], (long long)all[SHAPE_WIDTH]);
        total += a[SHAPE_COUNT];
        if (a[SHAPE_CAP] < min_cap)
            min_cap = a[SHAPE_CAP];
    }
    if (!status && total > min_cap)
        status = comm_fail(c, "%s: %lld rows from %d ranks do not fit the %lld rows some rank provided", what,
                           (long long)total, size, (long long)min_cap);
    if (!status && total * width > INT_MAX)
        status = comm_fail(c, "%s: %lld values exceed one MPI call (INT_MAX)", what, (long long)(total * width));
    for (int r = 0, at = 0; r < size && !status; r++) {
        counts[r] = (int)all[(size_t)r * SHAPE_N + SHAPE_COUNT];
        displs[r] = at;
        at += counts[r];
    }
    free(all);
    *total_out = total;
    return status;
}

/* All-gather of n items of `width` elements of `type` per rank into out (cap
 * items), in group-rank order. */
static int allgather_items(Comm *c, const void *v, int n, int width, MPI_Datatype type, void *out, size_t cap,
                           int *counts_out, int *total_out, const char *what)
{
    int size = c->group_size;
    /* bad shapes are caught in exchange_shapes, together with the other ranks */
    int *counts = malloc(2 * (size_t)size * sizeof *counts);
    if (!counts)
        return comm_fail(c, "%s: out of memory", what);
    int *displs = counts + size;
    int64_t total = 0;
    if (exchange_shapes(c, what, n, width, cap, counts, displs, &total) != 0) {
        free(counts);
        return -1;
    }
    if (counts_out)
        memcpy(counts_out, counts, (size_t)size * sizeof *counts);
    if (total_out)
        *total_out = (int)total;
    for (int r = 0; r < size; r++) { /* items -> elements */
        counts[r] *= width;
        displs[r] *= width;
    }
    MPI_Request req;
    int rc = MPI_Iallgatherv(v, n * width, type, out, counts, displs, type, c->impl->group, &req);
    int status = rc != MPI_SUCCESS ? comm_fail_mpi(c, rc, "MPI_Iallgatherv (%s)", what) : comm_wait(c, &req, what);
    free(counts); /* the count arrays must live until the call completes */
    return status;
}

int comm_allgather_rows(Comm *c, const float *rows, int n_rows, int d, float *out, size_t cap_rows,
                        int *rows_per_rank, int *total_rows)
{
    return allgather_items(c, rows, n_rows, d, MPI_FLOAT, out, cap_rows, rows_per_rank, total_rows,
                           "embedding all-gather");
}

int comm_allgather_ints(Comm *c, const int *v, int n, int *out, size_t cap, int *counts, int *total)
{
    return allgather_items(c, v, n, 1, MPI_INT, out, cap, counts, total, "label all-gather");
}

/* ------------------------------------------------ gather to the leader */

enum { GATHER_N, GATHER_HAS_INDEX, GATHER_TOTAL, GATHER_OUT, GATHER_FIELDS };

/* Exchanges and checks what every rank passes to comm_gather_to_leader;
 * fills counts and displs (rank order). Failures are the same everywhere. */
static int gather_plan(Comm *c, int n, int has_index, size_t n_total, int out_given, int *counts, int *displs)
{
    const char *what = "prediction gather";
    int size = c->group_size;
    int64_t mine[GATHER_FIELDS] = {n, has_index, n_total > (size_t)INT64_MAX ? INT64_MAX : (int64_t)n_total,
                                   out_given};
    int64_t *all = malloc((size_t)size * GATHER_FIELDS * sizeof *all);
    if (!all)
        return comm_fail(c, "%s: out of memory", what);
    MPI_Request req;
    int rc = MPI_Iallgather(mine, GATHER_FIELDS, MPI_INT64_T, all, GATHER_FIELDS, MPI_INT64_T, c->impl->group, &req);
    if (rc != MPI_SUCCESS || comm_wait(c, &req, what) != 0) {
        free(all);
        return rc != MPI_SUCCESS ? comm_fail_mpi(c, rc, "MPI_Iallgather (%s counts)", what) : -1;
    }
    int status = 0;
    int64_t sum = 0;
    for (int r = 0; r < size && !status; r++) {
        const int64_t *a = all + (size_t)r * GATHER_FIELDS;
        if (a[GATHER_N] < 0)
            status = comm_fail(c, "%s: group rank %d passed a negative count %lld", what, r, (long long)a[GATHER_N]);
        else if (a[GATHER_HAS_INDEX] != all[GATHER_HAS_INDEX])
            status = comm_fail(c, "%s: group rank %d %s sample indices, rank 0 %s", what, r,
                               a[GATHER_HAS_INDEX] ? "passed" : "did not pass", all[GATHER_HAS_INDEX] ? "did" : "did not");
        else if (a[GATHER_TOTAL] != all[GATHER_TOTAL])
            status = comm_fail(c, "%s: group rank %d expects %lld values in all, rank 0 %lld", what, r,
                               (long long)a[GATHER_TOTAL], (long long)all[GATHER_TOTAL]);
        sum += a[GATHER_N];
    }
    if (!status && sum != all[GATHER_TOTAL])
        status = comm_fail(c, "%s: the %d ranks hold %lld values, expected %lld (every sample exactly once)", what,
                           size, (long long)sum, (long long)all[GATHER_TOTAL]);
    if (!status && sum > INT_MAX)
        status = comm_fail(c, "%s: %lld values exceed one MPI call (INT_MAX)", what, (long long)sum);
    if (!status && !all[GATHER_OUT] && sum > 0)
        status = comm_fail(c, "%s: the group leader passed no output buffer", what);
    for (int r = 0, at = 0; r < size && !status; r++) {
        counts[r] = (int)all[(size_t)r * GATHER_FIELDS + GATHER_N];
        displs[r] = at;
        at += counts[r];
    }
    free(all);
    return status;
}

/* Gathers n elements of `type` per rank into buf on the leader, rank order. */
static int gatherv_to_leader(Comm *c, const void *v, int n, MPI_Datatype type, void *buf, const int *counts,
                             const int *displs)
{
    MPI_Request req;
    int rc = MPI_Igatherv(v, n, type, buf, counts, displs, type, 0, c->impl->group, &req);
    if (rc != MPI_SUCCESS)
        return comm_fail_mpi(c, rc, "MPI_Igatherv (prediction gather)");
    return comm_wait(c, &req, "prediction gather");
}

/* Leader: out[index[i]] = val[i] for the n_total gathered pairs; every slot
 * exactly once. Writes a message to err (empty when fine). */
static void place_by_index(const float *val, const int64_t *index, const int *counts, int size, float *out,
                           size_t n_total, char *err, size_t errlen)
{
    unsigned char *seen = calloc(n_total ? n_total : 1, 1);
    if (!seen) {
        snprintf(err, errlen, "prediction gather: out of memory on the leader");
        return;
    }
    err[0] = '\0';
    size_t k = 0;
    for (int r = 0; r < size && !err[0]; r++) {
        for (int i = 0; i < counts[r] && !err[0]; i++, k++) {
            int64_t at = index[k];
            if (at < 0 || (uint64_t)at >= n_total)
                snprintf(err, errlen, "prediction gather: group rank %d, value %d has sample index %lld outside 0..%zu",
                         r, i, (long long)at, n_total - 1);
            else if (seen[at])
                snprintf(err, errlen, "prediction gather: sample index %lld appears twice (again from group rank %d, value %d)",
                         (long long)at, r, i);
            else {
                seen[at] = 1;
                out[at] = val[k];
            }
        }
    }
    free(seen);
}

static int gather_indexed(Comm *c, const float *v, const int64_t *index, int n, float *out, size_t n_total,
                          const int *counts, const int *displs)
{
    int leader = c->group_rank == 0;
    float *val = leader ? malloc((n_total ? n_total : 1) * sizeof *val) : NULL;
    int64_t *idx = leader ? malloc((n_total ? n_total : 1) * sizeof *idx) : NULL;
    char err[COMM_MSG_MAX] = "";
    int ok = !leader || (val && idx);
    MPI_Request req; /* the leader tells whether it could make room before anyone sends */
    int rc = MPI_Ibcast(&ok, 1, MPI_INT, 0, c->impl->group, &req);
    int status = rc != MPI_SUCCESS ? comm_fail_mpi(c, rc, "MPI_Ibcast (prediction gather)")
                                   : comm_wait(c, &req, "prediction gather");
    if (!status && !ok)
        status = comm_fail(c, "prediction gather: out of memory for %zu values on the group leader", n_total);
    if (!status)
        status = gatherv_to_leader(c, index, n, MPI_INT64_T, idx, counts, displs);
    if (!status)
        status = gatherv_to_leader(c, v, n, MPI_FLOAT, val, counts, displs);
    if (!status && leader)
        place_by_index(val, idx, counts, c->group_size, out, n_total, err, sizeof err);
    free(val);
    free(idx);
    if (status)
        return status;
    /* the leader's verdict to everyone */
    rc = MPI_Ibcast(err, COMM_MSG_MAX, MPI_CHAR, 0, c->impl->group, &req);
    if (rc != MPI_SUCCESS)
        return comm_fail_mpi(c, rc, "MPI_Ibcast (prediction gather verdict)");
    if (comm_wait(c, &req, "prediction gather") != 0)
        return -1;
    err[COMM_MSG_MAX - 1] = '\0';
    return err[0] ? comm_fail(c, "%s", err) : 0;
}

int comm_gather_to_leader(Comm *c, const float *v, const int64_t *index, int n, float *out, size_t n_total)
{
    int size = c->group_size;
    int *counts = malloc(2 * (size_t)size * sizeof *counts);
    if (!counts)
        return comm_fail(c, "prediction gather: out of memory");
    int *displs = counts + size;
    int status = gather_plan(c, n, index != NULL, n_total, out != NULL, counts, displs);
    if (!status && index)
        status = gather_indexed(c, v, index, n, out, n_total, counts, displs);
    else if (!status)
        status = gatherv_to_leader(c, v, n, MPI_FLOAT, out, counts, displs);
    free(counts);
    return status;
}
