/* sampler.c - the distributed sampler: one seeded permutation per epoch, cut
 * into global batches, each cut into contiguous per-rank slices.
 *
 * Nothing here talks to other ranks: every rank computes the same
 * permutation from (seed, epoch) and takes its own slice, so the ranks agree
 * without a message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "layers/rng.h"

#define SAMPLER_TAG 0x73616d706c657221ull

void shard_range(int64_t n, int rank, int world, int64_t *start, int64_t *count)
{
    int64_t base = n / world, rem = n % world;
    *count = base + (rank < rem ? 1 : 0);
    *start = rank * base + (rank < rem ? rank : rem);
}

/* Uniform integer in [0, bound] from 64 random bits (bias below 2^-30 for
 * any split that fits in memory). */
static int64_t draw_below_or_equal(uint64_t key, int64_t epoch, int64_t i, int64_t bound)
{
    RngBlock b = philox4x32(key, (uint32_t)epoch, (uint32_t)((uint64_t)epoch >> 32), (uint32_t)i,
                            (uint32_t)((uint64_t)i >> 32));
    uint64_t r = ((uint64_t)b.v[0] << 32) | b.v[1];
    return (int64_t)(r % (uint64_t)(bound + 1));
}

void sampler_permutation(uint64_t seed, int64_t epoch, const int64_t *ids, int64_t n, int64_t *perm)
{
    uint64_t key = rng_mix(seed, SAMPLER_TAG);
    memcpy(perm, ids, (size_t)n * sizeof *perm);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = draw_below_or_equal(key, epoch, i, i);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

int sampler_init(Sampler *s, const int64_t *ids, int64_t n, const SamplerOptions *o, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (o->global_batch < 1 || o->world < 1 || o->rank < 0 || o->rank >= o->world) {
        snprintf(err, errlen, "sampler: need global batch >= 1 and 0 <= rank < world (got batch %d, rank %d, world %d)",
                 o->global_batch, o->rank, o->world);
        return -1;
    }
    if (n < 1 || (o->drop_last && n < o->global_batch)) {
        snprintf(err, errlen, "sampler: the split has %lld samples, too few for one %sglobal batch of %d",
                 (long long)n, o->drop_last ? "full " : "", o->global_batch);
        return -1;
    }
    s->o = *o;
    s->n = n;
    s->ids = malloc((size_t)n * sizeof *s->ids);
    s->perm = malloc((size_t)n * sizeof *s->perm);
    if (!s->ids || !s->perm) {
        sampler_free(s);
        snprintf(err, errlen, "sampler: out of memory for %lld sample ids", (long long)n);
        return -1;
    }
    memcpy(s->ids, ids, (size_t)n * sizeof *ids);
    s->perm_epoch = -1;
    return 0;
}

void sampler_free(Sampler *s)
{
    free(s->ids);
    free(s->perm);
    s->ids = s->perm = NULL;
}

int64_t sampler_batches_per_epoch(const Sampler *s)
{
    int64_t b = s->o.global_batch;
    return s->o.drop_last ? s->n / b : (s->n + b - 1) / b;
}

int sampler_max_slice(const Sampler *s) { return (s->o.global_batch + s->o.world - 1) / s->o.world; }

/* The order of `epoch`, computed once per epoch. */
static const int64_t *epoch_order(Sampler *s, int64_t epoch)
{
    if (!s->o.shuffle)
        return s->ids;
    if (s->perm_epoch != epoch) {
        sampler_permutation(s->o.seed, epoch, s->ids, s->n, s->perm);
        s->perm_epoch = epoch;
    }
    return s->perm;
}

int sampler_slice(Sampler *s, int64_t epoch, int64_t batch, int64_t *ids_out, SamplerSlice *out, char *err,
                  size_t errlen)
{
    int64_t nb = sampler_batches_per_epoch(s);
    if (epoch < 0 || batch < 0 || batch >= nb) {
        snprintf(err, errlen, "sampler: batch %lld of epoch %lld does not exist (%lld batches per epoch)",
                 (long long)batch, (long long)epoch, (long long)nb);
        return -1;
    }
    int64_t first = batch * s->o.global_batch;
    int64_t global_n = s->n - first < s->o.global_batch ? s->n - first : s->o.global_batch;
    int64_t start, count;
    shard_range(global_n, s->o.rank, s->o.world, &start, &count);
    const int64_t *order = epoch_order(s, epoch);
    memcpy(ids_out, order + first + start, (size_t)count * sizeof *ids_out);
    out->epoch = epoch;
    out->batch = batch;
    out->global_n = (int)global_n;
    out->offset = (int)start;
    out->n = (int)count;
    return 0;
}

int sampler_next(Sampler *s, int64_t *ids_out, SamplerSlice *out, char *err, size_t errlen)
{
    if (sampler_slice(s, s->pos.epoch, s->pos.batch, ids_out, out, err, errlen))
        return -1;
    if (++s->pos.batch == sampler_batches_per_epoch(s)) {
        s->pos.batch = 0;
        s->pos.epoch++;
    }
    return 0;
}

SamplerPos sampler_tell(const Sampler *s) { return s->pos; }

void sampler_seek(Sampler *s, SamplerPos pos) { s->pos = pos; }
