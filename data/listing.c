/* listing.c - a source's listing (labels, split and name per sample, no
 * pixels yet): growing it, selecting from it, and assigning its splits
 * (stratified and seeded, so every rank computes the same) and limits. */
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"
#include "layers/rng.h"

int meta_init(Dataset *d, unsigned labels, int soft_k)
{
    memset(d, 0, sizeof *d);
    const int cap = 64;
    int ok = 1;
    const unsigned has[ATTR_COUNT] = {labels & META_EXPRESSION, labels & META_GENDER, 0, labels & META_CLASS};
    for (int a = 0; a < ATTR_COUNT; a++)
        if (has[a])
            ok &= (d->attr_class[a] = malloc(sizeof(int) * cap)) != NULL;
    if (labels & META_AGE)
        ok &= (d->age = malloc(sizeof(float) * cap)) != NULL;
    if (soft_k) {
        d->soft_k = soft_k;
        ok &= (d->soft = malloc(sizeof(float) * cap * soft_k)) != NULL;
    }
    ok &= (d->split = malloc(cap)) != NULL;
    ok &= (d->name = malloc(sizeof(char *) * cap)) != NULL;
    if (!ok) {
        dataset_free(d);
        return -1;
    }
    return 0;
}

#define GROW(ptr, count)                                                                                     \
    do {                                                                                                     \
        if (ptr) {                                                                                           \
            void *np_ = realloc(ptr, sizeof(*(ptr)) * (size_t)(count));                                      \
            if (!np_)                                                                                        \
                return -1;                                                                                   \
            ptr = np_;                                                                                       \
        }                                                                                                    \
    } while (0)

int meta_push(Dataset *d, int *cap)
{
    if (*cap < 64)
        *cap = 64;
    if (d->n == *cap) {
        int nc = *cap * 2;
        for (int a = 0; a < ATTR_COUNT; a++)
            GROW(d->attr_class[a], nc);
        GROW(d->age, nc);
        GROW(d->soft, (size_t)nc * d->soft_k);
        GROW(d->split, nc);
        GROW(d->name, nc);
        *cap = nc;
    }
    int i = d->n++;
    for (int a = 0; a < ATTR_COUNT; a++)
        if (d->attr_class[a])
            d->attr_class[a][i] = -1;
    if (d->age)
        d->age[i] = NAN;
    for (int k = 0; k < d->soft_k; k++)
        d->soft[(size_t)i * d->soft_k + k] = 0.0f;
    d->split[i] = SPLIT_NONE;
    d->name[i] = NULL;
    return i;
}

void dataset_select(Dataset *d, const uint8_t *keep)
{
    size_t sz = (size_t)d->channels * d->side * d->side;
    int j = 0;
    for (int i = 0; i < d->n; i++) {
        if (!keep[i]) {
            if (d->name)
                free(d->name[i]);
            continue;
        }
        if (i != j) {
            for (int a = 0; a < ATTR_COUNT; a++)
                if (d->attr_class[a])
                    d->attr_class[a][j] = d->attr_class[a][i];
            if (d->age)
                d->age[j] = d->age[i];
            if (d->soft)
                memmove(d->soft + (size_t)j * d->soft_k, d->soft + (size_t)i * d->soft_k,
                        sizeof(float) * d->soft_k);
            d->split[j] = d->split[i];
            if (d->origin)
                d->origin[j] = d->origin[i];
            if (d->name)
                d->name[j] = d->name[i];
            if (d->pixels)
                memmove(d->pixels + (size_t)j * sz, d->pixels + (size_t)i * sz, sz);
        }
        j++;
    }
    d->n = j;
}

/* --------------------------------------------------------------- splits */

/* The stratum of a sample: its class attributes and age decade together. */
static int64_t stratum_of(const Dataset *d, int i)
{
    int64_t s = 0;
    for (int a = 0; a < ATTR_COUNT; a++)
        if (d->attr_class[a])
            s = s * (d->n_classes[a] + 1) + (d->attr_class[a][i] + 1);
    if (d->age) {
        float age = d->age[i];
        int decade = isnan(age) ? -1 : (int)(age / 10.0f);
        s = s * 14 + (decade < 0 ? 0 : decade > 12 ? 13 : decade + 1);
    }
    return s;
}

typedef struct {
    int64_t stratum;
    uint64_t key;
    int index;
} SplitItem;

static int cmp_item(const void *a, const void *b)
{
    const SplitItem *x = a, *y = b;
    if (x->stratum != y->stratum)
        return x->stratum < y->stratum ? -1 : 1;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->index - y->index;
}

static uint64_t sample_key(uint64_t seed, int i, uint32_t purpose)
{
    RngBlock b = philox4x32(seed, (uint32_t)i, 0, purpose, 0x5EED);
    return ((uint64_t)b.v[0] << 32) | b.v[1];
}

/* Moves, within each stratum of the samples currently in `from`, a seeded
 * random share to `to_test` and `to_val` (counts rounded cumulatively over
 * the strata, so each stratum is within one sample of its fraction and the
 * total within half a sample). */
int split_stratified(Dataset *d, Split from, float val_fraction, float test_fraction, uint64_t seed)
{
    SplitItem *it = malloc(sizeof(SplitItem) * (size_t)(d->n ? d->n : 1));
    if (!it)
        return -1;
    int m = 0;
    for (int i = 0; i < d->n; i++)
        if (d->split[i] == from)
            it[m++] = (SplitItem){stratum_of(d, i), sample_key(seed, i, 1), i};
    qsort(it, (size_t)m, sizeof *it, cmp_item);
    double want_test = 0.0, want_val = 0.0;
    int64_t got_test = 0, got_val = 0;
    for (int s = 0; s < m;) {
        int e = s;
        while (e < m && it[e].stratum == it[s].stratum)
            e++;
        int size = e - s;
        want_test += test_fraction * size;
        want_val += val_fraction * size;
        int n_test = (int)(llround(want_test) - got_test), n_val = (int)(llround(want_val) - got_val);
        if (n_test > size)
            n_test = size;
        if (n_val > size - n_test)
            n_val = size - n_test;
        for (int k = 0; k < size; k++)
            d->split[it[s + k].index] = k < n_test ? SPLIT_TEST : k < n_test + n_val ? SPLIT_VAL : SPLIT_TRAIN;
        got_test += n_test;
        got_val += n_val;
        s = e;
    }
    free(it);
    return 0;
}

/* Keeps at most `limit` samples per split, chosen by a seeded permutation. */
int apply_limit(Dataset *d, int limit, uint64_t seed)
{
    if (limit <= 0)
        return 0;
    SplitItem *it = malloc(sizeof(SplitItem) * (size_t)(d->n ? d->n : 1));
    uint8_t *keep = calloc((size_t)(d->n ? d->n : 1), 1);
    if (!it || !keep) {
        free(it);
        free(keep);
        return -1;
    }
    for (int i = 0; i < d->n; i++)
        it[i] = (SplitItem){d->split[i], sample_key(seed, i, 2), i};
    qsort(it, (size_t)d->n, sizeof *it, cmp_item);
    for (int s = 0; s < d->n;) {
        int e = s;
        while (e < d->n && it[e].stratum == it[s].stratum)
            e++;
        for (int k = s; k < e && k < s + limit; k++)
            keep[it[k].index] = 1;
        s = e;
    }
    dataset_select(d, keep);
    free(it);
    free(keep);
    return 0;
}

/* A split that should hold samples: train always; val and test when the
 * source defines them (FER+, official test sets) or a fraction asks for them. */
static int split_expected(const DataOptions *o, Split s)
{
    if (s == SPLIT_TRAIN)
        return 1;
    if (o->source == SOURCE_FERPLUS)
        return 1;
    if (s == SPLIT_TEST)
        return o->source == SOURCE_AFFECTNET || o->source == SOURCE_IDX || o->test_fraction > 0.0f;
    return o->val_fraction > 0.0f;
}

int check_splits(const DataOptions *o, const Dataset *d, char *err, size_t errlen)
{
    for (int s = SPLIT_TRAIN; s <= SPLIT_TEST; s++)
        if (split_expected(o, (Split)s) && dataset_split_count(d, (Split)s) == 0) {
            data_err(err, errlen, "%s: the %s split is empty (%d samples in all)", o->path[0] ? o->path : "synth",
                     split_name((Split)s), d->n);
            return -1;
        }
    return 0;
}
