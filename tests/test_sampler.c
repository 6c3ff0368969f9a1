/* test_sampler.c - the distributed sampler for 1, 2, 3 and 4 ranks.
 *
 * Every rank runs its own Sampler, as it would in a real job. For each global
 * batch the test checks: slice sizes (differ by at most one, earlier ranks the
 * larger), offsets (contiguous, in rank order), the union over ranks equals
 * the single-rank global batch (so every rank holds the same permutation),
 * slices are disjoint, and over an epoch every sample is served exactly once
 * (drop last: all but the remainder). Then: a fresh permutation per epoch, a
 * true Fisher-Yates (each position equally likely), checkpoint and restore of
 * the position, evaluation shards and bad options.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "tests/gradcheck.h"

static char err[512];

static SamplerOptions opts(uint64_t seed, int B, int drop_last, int rank, int world)
{
    SamplerOptions o = {seed, B, drop_last, 1, rank, world};
    return o;
}

/* Split ids that are not 0..n-1, so that positions and ids cannot be mixed up. */
static int64_t *make_ids(int64_t n)
{
    int64_t *ids = malloc((size_t)n * sizeof *ids);
    for (int64_t i = 0; i < n; i++)
        ids[i] = 5 + 3 * i;
    return ids;
}

/* One epoch over `world` ranks, compared with a one-rank sampler. */
static void check_epoch(int64_t n, int B, int drop_last, int world, int64_t epoch, uint64_t seed)
{
    int64_t *ids = make_ids(n);
    Sampler one, ranks[4];
    SamplerOptions o1 = opts(seed, B, drop_last, 0, 1);
    CHECK(sampler_init(&one, ids, n, &o1, err, sizeof err) == 0, "%s", err);
    for (int r = 0; r < world; r++) {
        SamplerOptions o = opts(seed, B, drop_last, r, world);
        CHECK(sampler_init(&ranks[r], ids, n, &o, err, sizeof err) == 0, "%s", err);
    }
    int64_t nb = sampler_batches_per_epoch(&one);
    CHECK(nb == (drop_last ? n / B : (n + B - 1) / B), "n %lld B %d: %lld batches", (long long)n, B, (long long)nb);
    int *seen = calloc((size_t)(5 + 3 * n), sizeof *seen);
    int64_t *global = malloc((size_t)B * sizeof *global), *part = malloc((size_t)B * sizeof *part);
    int64_t served = 0;
    for (int64_t b = 0; b < nb; b++) {
        SamplerSlice g, s;
        CHECK(sampler_slice(&one, epoch, b, global, &g, err, sizeof err) == 0, "%s", err);
        int expect_n = (int)(n - b * B < B ? n - b * B : B);
        CHECK(g.global_n == expect_n && g.n == expect_n && g.offset == 0, "batch %lld: global %d n %d", (long long)b,
              g.global_n, g.n);
        int offset = 0, prev = B + 1;
        for (int r = 0; r < world; r++) {
            CHECK(sampler_slice(&ranks[r], epoch, b, part, &s, err, sizeof err) == 0, "%s", err);
            CHECK(s.global_n == g.global_n, "rank %d global_n %d vs %d", r, s.global_n, g.global_n);
            CHECK(s.offset == offset, "rank %d offset %d, expected %d", r, s.offset, offset);
            CHECK(s.n <= prev && s.n >= g.global_n / world && s.n <= (g.global_n + world - 1) / world,
                  "rank %d of %d: slice %d of global %d", r, world, s.n, g.global_n);
            CHECK(s.epoch == epoch && s.batch == b, "slice position");
            for (int i = 0; i < s.n; i++) {
                CHECK(part[i] == global[s.offset + i], "rank %d item %d: %lld vs %lld", r, i, (long long)part[i],
                      (long long)global[s.offset + i]);
                int64_t id = part[i];
                CHECK(id >= 5 && (id - 5) % 3 == 0 && (id - 5) / 3 < n, "id %lld not in the split", (long long)id);
                if (id >= 5 && id < 5 + 3 * n)
                    seen[id]++;
                served++;
            }
            prev = s.n;
            offset += s.n;
        }
        CHECK(offset == g.global_n, "slices cover %d of %d", offset, g.global_n);
    }
    int64_t once = 0, more = 0;
    for (int64_t i = 0; i < n; i++) {
        once += seen[5 + 3 * i] == 1;
        more += seen[5 + 3 * i] > 1;
    }
    int64_t expect = drop_last ? n - n % B : n;
    CHECK(served == expect && once == expect && more == 0,
          "n %lld B %d world %d drop %d: served %lld, once %lld, repeated %lld, expected %lld", (long long)n, B, world,
          drop_last, (long long)served, (long long)once, (long long)more, (long long)expect);
    free(seen);
    free(global);
    free(part);
    sampler_free(&one);
    for (int r = 0; r < world; r++)
        sampler_free(&ranks[r]);
    free(ids);
}

static int is_permutation_of_ids(const int64_t *perm, int64_t n)
{
    int *hit = calloc((size_t)n, sizeof *hit);
    int ok = 1;
    for (int64_t i = 0; i < n; i++) {
        int64_t k = (perm[i] - 5) / 3;
        if (perm[i] < 5 || (perm[i] - 5) % 3 || k >= n || hit[k]++)
            ok = 0;
    }
    free(hit);
    return ok;
}

static void check_permutations(void)
{
    int64_t n = 50, *ids = make_ids(n), *p0 = malloc(50 * sizeof *p0), *p1 = malloc(50 * sizeof *p1);
    sampler_permutation(7, 0, ids, n, p0);
    sampler_permutation(7, 1, ids, n, p1);
    CHECK(is_permutation_of_ids(p0, n) && is_permutation_of_ids(p1, n), "not a permutation");
    CHECK(memcmp(p0, p1, 50 * sizeof *p0) != 0, "epochs 0 and 1 give the same order");
    sampler_permutation(8, 0, ids, n, p1);
    CHECK(memcmp(p0, p1, 50 * sizeof *p0) != 0, "seeds 7 and 8 give the same order");
    sampler_permutation(7, 0, ids, n, p1);
    CHECK(memcmp(p0, p1, 50 * sizeof *p0) == 0, "the same (seed, epoch) gives different orders");
    int moved = 0;
    for (int i = 0; i < 50; i++)
        moved += p0[i] != ids[i];
    CHECK(moved > 25, "only %d of 50 samples moved", moved);

    /* Fisher-Yates makes each of 4 places equally likely for every element
     * (a shuffle that never leaves an element in place, or one biased to the
     * front, fails this): 4000 epochs, 1000 expected per cell. */
    int64_t four[4] = {0, 1, 2, 3}, out[4];
    int count[4][4] = {{0}};
    for (int e = 0; e < 4000; e++) {
        sampler_permutation(11, e, four, 4, out);
        for (int i = 0; i < 4; i++)
            count[out[i]][i]++;
    }
    for (int v = 0; v < 4; v++)
        for (int i = 0; i < 4; i++)
            CHECK(count[v][i] > 870 && count[v][i] < 1130, "element %d at place %d %d times of 4000", v, i,
                  count[v][i]);
    free(ids);
    free(p0);
    free(p1);
}

/* Checkpoint and restore: the position after k batches, given to a fresh
 * sampler, continues exactly as the original (across an epoch boundary). */
static void check_resume(void)
{
    int64_t n = 23, *ids = make_ids(n), a[8], b[8];
    SamplerOptions o = opts(3, 5, 1, 1, 2);
    Sampler s, t;
    CHECK(sampler_init(&s, ids, n, &o, err, sizeof err) == 0, "%s", err);
    CHECK(sampler_init(&t, ids, n, &o, err, sizeof err) == 0, "%s", err);
    SamplerSlice x, y;
    for (int k = 0; k < 6; k++) /* 4 batches per epoch: ends at epoch 1, batch 2 */
        CHECK(sampler_next(&s, a, &x, err, sizeof err) == 0, "%s", err);
    SamplerPos pos = sampler_tell(&s);
    CHECK(pos.epoch == 1 && pos.batch == 2, "position after 6 batches: epoch %lld batch %lld", (long long)pos.epoch,
          (long long)pos.batch);
    SamplerPos saved;
    memcpy(&saved, &pos, sizeof saved); /* as a checkpoint would store it */
    sampler_seek(&t, saved);
    for (int k = 0; k < 5; k++) {
        CHECK(sampler_next(&s, a, &x, err, sizeof err) == 0, "%s", err);
        CHECK(sampler_next(&t, b, &y, err, sizeof err) == 0, "%s", err);
        CHECK(x.epoch == y.epoch && x.batch == y.batch && x.n == y.n && memcmp(a, b, (size_t)x.n * sizeof *a) == 0,
              "resumed sampler differs at step %d", k);
    }
    sampler_free(&s);
    sampler_free(&t);
    free(ids);
}

/* Evaluation: no shuffle, keep the last partial batch; shards in order. */
static void check_evaluation(void)
{
    int64_t n = 10, *ids = make_ids(n), got[4];
    SamplerOptions o = {1, 4, 0, 0, 0, 1};
    Sampler s;
    CHECK(sampler_init(&s, ids, n, &o, err, sizeof err) == 0, "%s", err);
    CHECK(sampler_batches_per_epoch(&s) == 3, "keep-last batches %lld", (long long)sampler_batches_per_epoch(&s));
    int64_t next = 0;
    for (int b = 0; b < 3; b++) {
        SamplerSlice x;
        CHECK(sampler_slice(&s, 2, b, got, &x, err, sizeof err) == 0, "%s", err);
        for (int i = 0; i < x.n; i++, next++)
            CHECK(got[i] == ids[next], "unshuffled batch %d item %d", b, i);
    }
    CHECK(next == n, "evaluation served %lld of %lld", (long long)next, (long long)n);
    sampler_free(&s);
    for (int world = 1; world <= 4; world++) {
        int64_t covered = 0;
        for (int r = 0; r < world; r++) {
            int64_t start, count;
            shard_range(13, r, world, &start, &count);
            CHECK(start == covered, "shard %d of %d starts at %lld, expected %lld", r, world, (long long)start,
                  (long long)covered);
            CHECK(count == 13 / world + (r < 13 % world), "shard %d of %d has %lld", r, world, (long long)count);
            covered += count;
        }
        CHECK(covered == 13, "shards of %d cover %lld", world, (long long)covered);
    }
    free(ids);
}

static void check_errors(void)
{
    int64_t ids[3] = {0, 1, 2}, out[4];
    Sampler s;
    SamplerOptions o = opts(1, 4, 1, 0, 1);
    CHECK(sampler_init(&s, ids, 3, &o, err, sizeof err) != 0 && strstr(err, "3 samples"),
          "3 samples, drop-last batch of 4 accepted: %s", err);
    o = opts(1, 2, 1, 2, 2);
    CHECK(sampler_init(&s, ids, 3, &o, err, sizeof err) != 0 && strstr(err, "rank 2"), "rank 2 of 2 accepted");
    o = opts(1, 0, 0, 0, 1);
    CHECK(sampler_init(&s, ids, 3, &o, err, sizeof err) != 0, "batch 0 accepted");
    o = opts(1, 2, 0, 0, 1);
    CHECK(sampler_init(&s, ids, 3, &o, err, sizeof err) == 0, "%s", err);
    SamplerSlice x;
    CHECK(sampler_slice(&s, 0, 2, out, &x, err, sizeof err) != 0 && strstr(err, "batch 2"), "batch 2 of 2 accepted");
    CHECK(sampler_slice(&s, 0, 1, out, &x, err, sizeof err) == 0 && x.n == 1 && x.global_n == 1,
          "last partial batch kept: n %d", x.n);
    sampler_free(&s);
}

int main(void)
{
    const int64_t sizes[] = {1, 10, 37, 100};
    const int batches[] = {1, 4, 7, 16};
    for (int world = 1; world <= 4; world++)
        for (int si = 0; si < 4; si++)
            for (int bi = 0; bi < 4; bi++)
                for (int drop = 0; drop <= 1; drop++) {
                    if (drop && sizes[si] < batches[bi])
                        continue; /* no full batch: init refuses (checked in check_errors) */
                    for (int64_t epoch = 0; epoch < 3; epoch++)
                        check_epoch(sizes[si], batches[bi], drop, world, epoch, 1234);
                }
    check_permutations();
    check_resume();
    check_evaluation();
    check_errors();
    return test_finish("test_sampler");
}
