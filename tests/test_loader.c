/* test_loader.c - augmentation keys and the background batch loader.
 *
 * The data sets are built by hand in memory (random pixels, labels, ages,
 * splits). The reference images are computed here with a plainly written
 * crop/flip (an explicit zero-padded copy) and normalisation, so the loader
 * is checked against an independent path, not against itself.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "tests/gradcheck.h"

static char err[512];

/* n samples of (channels, side, side); sample i is in the test split when
 * i % 4 == 3, else in training. expression i % 8, gender i % 2, age 20 + i. */
static Dataset make_dataset(int n, int side, int channels, int with_soft)
{
    Dataset d;
    memset(&d, 0, sizeof d);
    d.n = n;
    d.side = side;
    d.channels = channels;
    size_t count = (size_t)n * channels * side * side;
    d.pixels = malloc(count);
    for (size_t i = 0; i < count; i++)
        d.pixels[i] = (uint8_t)(philox4x32(77, (uint32_t)i, 0, 0, 0).v[0] & 255);
    d.attr_class[ATTR_EXPRESSION] = malloc((size_t)n * sizeof(int));
    d.attr_class[ATTR_GENDER] = malloc((size_t)n * sizeof(int));
    d.n_classes[ATTR_EXPRESSION] = 8;
    d.n_classes[ATTR_GENDER] = 2;
    d.age = malloc((size_t)n * sizeof(float));
    d.split = malloc((size_t)n);
    for (int i = 0; i < n; i++) {
        d.attr_class[ATTR_EXPRESSION][i] = i % 8;
        d.attr_class[ATTR_GENDER][i] = i % 2;
        d.age[i] = 20.0f + (float)i;
        d.split[i] = i % 4 == 3 ? SPLIT_TEST : SPLIT_TRAIN;
    }
    if (with_soft) {
        d.soft_k = 8;
        d.soft = calloc((size_t)n * 8, sizeof(float));
        for (int i = 0; i < n; i++) {
            d.soft[i * 8 + i % 8] = 0.75f;
            d.soft[i * 8 + (i + 1) % 8] = 0.25f;
        }
    }
    snprintf(d.source_desc, sizeof d.source_desc, "in-memory test set");
    return d;
}

static void free_dataset(Dataset *d)
{
    free(d->pixels);
    free(d->attr_class[ATTR_EXPRESSION]);
    free(d->attr_class[ATTR_GENDER]);
    free(d->age);
    free(d->split);
    free(d->soft);
}

static LoaderOptions train_options(int B, int background)
{
    LoaderOptions o = loader_options_default();
    o.aug.pad = 3;
    o.occ.kind = OCC_MASK;
    o.occ.fill = OCC_FILL_NOISE;
    o.occ.shape = OCC_SHAPE_OUTLINE;
    o.occ.seed = 5;
    for (int c = 0; c < 3; c++) {
        o.mean[c] = 0.4f + 0.05f * c;
        o.std[c] = 0.2f + 0.01f * c;
    }
    o.sampler.seed = 2024;
    o.sampler.global_batch = B;
    o.background = background;
    return o;
}

/* ---------------------------------------------------------- the references */

/* Crop with zero padding and flip, written out the long way. */
static void reference_augment(const uint8_t *src, int C, int S, int pad, AugmentDraw d, float *dst)
{
    int P = S + 2 * pad;
    float *padded = calloc((size_t)C * P * P, sizeof *padded);
    for (int c = 0; c < C; c++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
                padded[((size_t)c * P + y + pad) * P + x + pad] = src[((size_t)c * S + y) * S + x];
    for (int c = 0; c < C; c++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                float v = padded[((size_t)c * P + y + d.oy) * P + x + d.ox];
                int tx = d.flip ? S - 1 - x : x;
                dst[((size_t)c * S + y) * S + tx] = v / 255.0f;
            }
    free(padded);
}

/* The clean and occluded pair of sample id in epoch, built independently. */
static void reference_pair(const Dataset *d, const LoaderOptions *o, int64_t epoch, int64_t id, float *clean,
                           float *occluded)
{
    int C = d->channels, S = d->side;
    size_t plane = (size_t)S * S;
    AugmentDraw dr = augment_draw(&o->aug, o->sampler.seed, epoch, id);
    if (!o->augment)
        dr = (AugmentDraw){0, 0, 0};
    reference_augment(d->pixels + (size_t)id * C * plane, C, S, o->augment ? o->aug.pad : 0, dr, clean);
    uint8_t *h = malloc(plane);
    occlusion_mask(&o->occ, S, h);
    for (int c = 0; c < C; c++)
        for (size_t p = 0; p < plane; p++) {
            float v = clean[c * plane + p];
            if (o->occ.kind != OCC_NONE && h[p])
                v = o->occ.fill == OCC_FILL_BLACK  ? 0.0f
                    : o->occ.fill == OCC_FILL_MEAN ? o->mean[c]
                                                   : occlusion_noise(o->occ.seed, id, (int)p, c);
            occluded[c * plane + p] = (v - o->mean[c]) / o->std[c];
            clean[c * plane + p] = (clean[c * plane + p] - o->mean[c]) / o->std[c];
        }
    free(h);
}

/* ------------------------------------------------------------ augmentation */

static void check_augment_keys(void)
{
    AugmentOptions a = {3, 1};
    int offsets[7][7] = {{0}}, flips = 0, epoch_changes = 0;
    for (int64_t id = 0; id < 2000; id++) {
        AugmentDraw d = augment_draw(&a, 9, 4, id), e = augment_draw(&a, 9, 4, id);
        CHECK(d.ox == e.ox && d.oy == e.oy && d.flip == e.flip, "same key, different draw (id %lld)", (long long)id);
        CHECK(d.ox >= 0 && d.ox <= 6 && d.oy >= 0 && d.oy <= 6 && (d.flip == 0 || d.flip == 1), "draw out of range");
        if (d.ox >= 0 && d.ox <= 6 && d.oy >= 0 && d.oy <= 6)
            offsets[d.oy][d.ox]++;
        flips += d.flip;
        AugmentDraw f = augment_draw(&a, 9, 5, id);
        epoch_changes += f.ox != d.ox || f.oy != d.oy || f.flip != d.flip;
    }
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 7; x++)
            CHECK(offsets[y][x] > 10, "crop offset (%d, %d) drawn %d times of 2000", x, y, offsets[y][x]);
    CHECK(flips > 900 && flips < 1100, "%d flips of 2000", flips);
    CHECK(epoch_changes > 1800, "only %d of 2000 draws change with the epoch", epoch_changes);
    AugmentOptions none = {0, 0};
    AugmentDraw z = augment_draw(&none, 9, 4, 17);
    CHECK(z.ox == 0 && z.oy == 0 && z.flip == 0, "no crop, no flip: draw (%d, %d, %d)", z.ox, z.oy, z.flip);

    /* augment_apply against the long-hand reference, every offset and flip */
    Dataset d = make_dataset(1, 9, 2, 0);
    float got[2 * 81], want[2 * 81];
    for (int oy = 0; oy <= 6; oy++)
        for (int ox = 0; ox <= 6; ox++)
            for (int flip = 0; flip <= 1; flip++) {
                AugmentDraw dr = {ox, oy, flip};
                augment_apply(d.pixels, 2, 9, 3, dr, got);
                reference_augment(d.pixels, 2, 9, 3, dr, want);
                CHECK(memcmp(got, want, sizeof got) == 0, "crop (%d, %d) flip %d differs from the reference", ox, oy,
                      flip);
            }
    AugmentDraw id = augment_identity(&a);
    augment_apply(d.pixels, 2, 9, 3, id, got);
    for (int i = 0; i < 2 * 81; i++)
        CHECK(got[i] == d.pixels[i] / 255.0f, "identity draw changed pixel %d", i);
    free_dataset(&d);
}

/* -------------------------------------------------------------- the loader */

static int same_batch(const Batch *a, const Batch *b)
{
    size_t img = (size_t)a->n * a->channels * a->side * a->side;
    return a->n == b->n && a->global_n == b->global_n && a->offset == b->offset && a->epoch == b->epoch &&
           a->batch == b->batch && memcmp(a->ids, b->ids, (size_t)a->n * sizeof *a->ids) == 0 &&
           memcmp(a->clean, b->clean, img * sizeof(float)) == 0 &&
           memcmp(a->occluded, b->occluded, img * sizeof(float)) == 0 &&
           (!a->label || memcmp(a->label, b->label, (size_t)a->n * sizeof(int)) == 0) &&
           (!a->age || memcmp(a->age, b->age, (size_t)a->n * sizeof(float)) == 0) &&
           (!a->soft || memcmp(a->soft, b->soft, (size_t)a->n * a->soft_k * sizeof(float)) == 0);
}

/* Checks every sample of a batch against the reference pair and the labels. */
static void check_against_reference(const Dataset *d, const LoaderOptions *o, const Batch *b)
{
    size_t count = (size_t)d->channels * d->side * d->side;
    float *clean = malloc(count * sizeof *clean), *occ = malloc(count * sizeof *occ);
    for (int i = 0; i < b->n; i++) {
        int64_t id = b->ids[i];
        reference_pair(d, o, b->epoch, id, clean, occ);
        CHECK(memcmp(clean, b->clean + i * count, count * sizeof *clean) == 0,
              "epoch %lld sample %lld: clean image differs from the reference", (long long)b->epoch, (long long)id);
        CHECK(memcmp(occ, b->occluded + i * count, count * sizeof *occ) == 0,
              "epoch %lld sample %lld: occluded image differs from the reference", (long long)b->epoch, (long long)id);
        CHECK(b->label && b->label[i] == d->attr_class[o->attr][id], "sample %lld label", (long long)id);
        CHECK(b->age && b->age[i] == d->age[id], "sample %lld age", (long long)id);
        CHECK(d->split[id] == o->split, "sample %lld from the wrong split", (long long)id);
    }
    free(clean);
    free(occ);
}

/* Two background loaders, a synchronous one and the reference agree. */
static void check_determinism(void)
{
    Dataset d = make_dataset(41, 12, 3, 1); /* 31 training samples */
    LoaderOptions ob = train_options(8, 1), os = train_options(8, 0);
    Loader *a, *b, *s;
    CHECK(loader_create(&d, &ob, &a, err, sizeof err) == 0, "%s", err);
    CHECK(loader_create(&d, &ob, &b, err, sizeof err) == 0, "%s", err);
    CHECK(loader_create(&d, &os, &s, err, sizeof err) == 0, "%s", err);
    CHECK(loader_batches_per_epoch(a) == 3, "31 samples, batch 8, drop last: %lld batches",
          (long long)loader_batches_per_epoch(a));
    int *seen = calloc((size_t)d.n, sizeof *seen);
    for (int k = 0; k < 9; k++) { /* three epochs */
        Batch x, y, z;
        CHECK(loader_next(a, &x, err, sizeof err) == LOADER_OK, "%s", err);
        CHECK(loader_next(b, &y, err, sizeof err) == LOADER_OK, "%s", err);
        CHECK(loader_next(s, &z, err, sizeof err) == LOADER_OK, "%s", err);
        CHECK(same_batch(&x, &y), "two background loaders differ at batch %d", k);
        CHECK(same_batch(&x, &z), "background and synchronous loaders differ at batch %d", k);
        CHECK(x.epoch == k / 3 && x.batch == k % 3 && x.n == 8 && x.global_n == 8 && x.offset == 0,
              "batch %d: epoch %lld batch %lld n %d", k, (long long)x.epoch, (long long)x.batch, x.n);
        CHECK(x.soft && x.soft_k == 8, "soft targets missing");
        for (int i = 0; x.soft && i < x.n; i++)
            CHECK(memcmp(x.soft + i * 8, d.soft + x.ids[i] * 8, 8 * sizeof(float)) == 0, "soft targets of %lld",
                  (long long)x.ids[i]);
        check_against_reference(&d, &ob, &x);
        if (k < 3)
            for (int i = 0; i < x.n; i++)
                seen[x.ids[i]]++;
        /* clean and occluded: one augmentation, so equal wherever not hidden */
        uint8_t h[144];
        occlusion_mask(&ob.occ, 12, h);
        long differ = 0;
        for (int i = 0; i < x.n; i++)
            for (int c = 0; c < 3; c++)
                for (int p = 0; p < 144; p++) {
                    size_t at = ((size_t)i * 3 + c) * 144 + p;
                    differ += !h[p] && x.clean[at] != x.occluded[at];
                }
        CHECK(differ == 0, "batch %d: clean and occluded differ at %ld visible values", k, differ);
    }
    int once = 0;
    for (int i = 0; i < d.n; i++) {
        CHECK(seen[i] <= 1 && (seen[i] == 0 || d.split[i] == SPLIT_TRAIN), "sample %d served %d times", i, seen[i]);
        once += seen[i] == 1;
    }
    CHECK(once == 24, "first epoch served %d distinct samples, expected 24", once);
    free(seen);
    loader_destroy(a);
    loader_destroy(b);
    loader_destroy(s);
    free_dataset(&d);
}

/* The same samples whatever the ranks and the batch: 3 ranks with batch 7
 * rebuild the global batches of one rank, and every image matches the
 * reference of its (epoch, id), so batch composition does not matter. */
static void check_ranks(void)
{
    Dataset d = make_dataset(30, 10, 1, 0);
    LoaderOptions o1 = train_options(7, 1);
    o1.attr = ATTR_GENDER;
    o1.occ.kind = OCC_VR;
    o1.occ.fill = OCC_FILL_MEAN;
    Loader *one, *r[3];
    CHECK(loader_create(&d, &o1, &one, err, sizeof err) == 0, "%s", err);
    for (int k = 0; k < 3; k++) {
        LoaderOptions o = o1;
        o.sampler.rank = k;
        o.sampler.world = 3;
        CHECK(loader_create(&d, &o, &r[k], err, sizeof err) == 0, "%s", err);
    }
    size_t count = 100;
    for (int step = 0; step < 7; step++) {
        Batch g, s;
        CHECK(loader_next(one, &g, err, sizeof err) == LOADER_OK, "%s", err);
        check_against_reference(&d, &o1, &g);
        int offset = 0;
        for (int k = 0; k < 3; k++) {
            CHECK(loader_next(r[k], &s, err, sizeof err) == LOADER_OK, "%s", err);
            CHECK(s.n == (k == 0 ? 3 : 2) && s.offset == offset && s.global_n == 7, "rank %d: n %d offset %d", k, s.n,
                  s.offset);
            CHECK(memcmp(s.ids, g.ids + s.offset, (size_t)s.n * sizeof *s.ids) == 0, "rank %d ids", k);
            CHECK(memcmp(s.clean, g.clean + s.offset * count, s.n * count * sizeof(float)) == 0, "rank %d clean", k);
            CHECK(memcmp(s.occluded, g.occluded + s.offset * count, s.n * count * sizeof(float)) == 0,
                  "rank %d occluded", k);
            CHECK(memcmp(s.label, g.label + s.offset, (size_t)s.n * sizeof(int)) == 0, "rank %d labels", k);
            offset += s.n;
        }
    }
    /* the mean fill is exactly 0 after normalisation */
    uint8_t h[100];
    occlusion_mask(&o1.occ, 10, h);
    Batch x;
    CHECK(loader_next(one, &x, err, sizeof err) == LOADER_OK, "%s", err);
    for (int i = 0; i < x.n; i++)
        for (int p = 0; p < 100; p++)
            if (h[p])
                CHECK(x.occluded[i * 100 + p] == 0.0f, "mean fill normalised to %g", (double)x.occluded[i * 100 + p]);
    loader_destroy(one);
    for (int k = 0; k < 3; k++)
        loader_destroy(r[k]);
    free_dataset(&d);
}

/* Resume from loader_tell; the end after max_epochs; evaluation order. */
static void check_resume_and_end(void)
{
    Dataset d = make_dataset(20, 8, 1, 0); /* 15 training samples */
    LoaderOptions o = train_options(4, 1);
    o.max_epochs = 2;
    Loader *a, *b;
    CHECK(loader_create(&d, &o, &a, err, sizeof err) == 0, "%s", err);
    Batch x, y;
    for (int k = 0; k < 4; k++)
        CHECK(loader_next(a, &x, err, sizeof err) == LOADER_OK, "%s", err);
    SamplerPos pos = loader_tell(a);
    CHECK(pos.epoch == 1 && pos.batch == 1, "position after 4 of 3-batch epochs: (%lld, %lld)", (long long)pos.epoch,
          (long long)pos.batch);
    o.start = pos;
    CHECK(loader_create(&d, &o, &b, err, sizeof err) == 0, "%s", err);
    for (int k = 0; k < 2; k++) {
        CHECK(loader_next(a, &x, err, sizeof err) == LOADER_OK, "%s", err);
        CHECK(loader_next(b, &y, err, sizeof err) == LOADER_OK, "%s", err);
        CHECK(same_batch(&x, &y), "resumed loader differs at batch %d", k);
    }
    CHECK(loader_next(a, &x, err, sizeof err) == LOADER_END && x.n == 0, "no end after max_epochs");
    CHECK(loader_next(a, &x, err, sizeof err) == LOADER_END, "the end is not final");
    loader_destroy(a);
    loader_destroy(b);

    /* evaluation: test split in order, last partial batch kept, no augmentation */
    LoaderOptions e = train_options(3, 1);
    e.split = SPLIT_TEST;
    e.augment = 0;
    e.sampler.shuffle = 0;
    e.sampler.drop_last = 0;
    e.max_epochs = 1;
    CHECK(loader_create(&d, &e, &a, err, sizeof err) == 0, "%s", err);
    int64_t want = 3, served = 0;
    int rc;
    while ((rc = loader_next(a, &x, err, sizeof err)) == LOADER_OK) {
        check_against_reference(&d, &e, &x);
        for (int i = 0; i < x.n; i++, want += 4, served++)
            CHECK(x.ids[i] == want, "evaluation order: %lld, expected %lld", (long long)x.ids[i], (long long)want);
    }
    CHECK(rc == LOADER_END && served == 5, "evaluation served %lld of 5 (rc %d)", (long long)served, rc);
    loader_destroy(a);
    free_dataset(&d);
}

/* A bad label fails the batch that holds it, reported by the call that would
 * return that batch, the same with and without the thread; bad options fail
 * at creation; destroying a loader whose thread waits does not hang. */
static void check_errors(void)
{
    Dataset d = make_dataset(24, 8, 1, 0); /* 18 training samples, batch 6: 3 per epoch */
    d.attr_class[ATTR_EXPRESSION][9] = 42;
    for (int background = 0; background <= 1; background++) {
        LoaderOptions o = train_options(6, background);
        Loader *l;
        CHECK(loader_create(&d, &o, &l, err, sizeof err) == 0, "%s", err);
        /* where sample 9 lands in epoch 0 */
        Sampler s;
        int64_t ids[18], slice[6];
        int n = 0, bad_batch = -1;
        for (int i = 0; i < 24; i++)
            if (d.split[i] == SPLIT_TRAIN)
                ids[n++] = i;
        CHECK(sampler_init(&s, ids, n, &o.sampler, err, sizeof err) == 0, "%s", err);
        for (int b = 0; b < 3; b++) {
            SamplerSlice sl;
            sampler_slice(&s, 0, b, slice, &sl, err, sizeof err);
            for (int i = 0; i < sl.n; i++)
                if (slice[i] == 9)
                    bad_batch = b;
        }
        sampler_free(&s);
        CHECK(bad_batch >= 0, "sample 9 not in epoch 0");
        Batch x;
        for (int b = 0; b < bad_batch; b++)
            CHECK(loader_next(l, &x, err, sizeof err) == LOADER_OK, "batch %d before the bad one failed: %s", b, err);
        err[0] = 0;
        CHECK(loader_next(l, &x, err, sizeof err) == LOADER_ERROR, "bad label not reported (background %d)",
              background);
        CHECK(strstr(err, "sample 9") && strstr(err, "42") && strstr(err, "expression"), "message: %s", err);
        err[0] = 0;
        CHECK(loader_next(l, &x, err, sizeof err) == LOADER_ERROR && strstr(err, "sample 9"), "error not final: %s",
              err);
        loader_destroy(l);
    }
    d.attr_class[ATTR_EXPRESSION][9] = 1;

    Loader *l = NULL;
    LoaderOptions o = train_options(6, 1);
    o.attr = ATTR_CLASS;
    CHECK(loader_create(&d, &o, &l, err, sizeof err) != 0 && !l && strstr(err, "no class labels"), "%s", err);
    o = train_options(6, 1);
    o.split = SPLIT_VAL;
    CHECK(loader_create(&d, &o, &l, err, sizeof err) != 0 && strstr(err, "empty"), "%s", err);
    o = train_options(6, 1);
    o.std[0] = 0.0f;
    CHECK(loader_create(&d, &o, &l, err, sizeof err) != 0 && strstr(err, "std"), "%s", err);
    o = train_options(6, 1);
    o.occ.fraction = 2.0f;
    CHECK(loader_create(&d, &o, &l, err, sizeof err) != 0 && strstr(err, "fraction"), "%s", err);
    o = train_options(6, 1);
    o.aug.pad = 8;
    CHECK(loader_create(&d, &o, &l, err, sizeof err) != 0 && strstr(err, "padding"), "%s", err);
    o = train_options(40, 1);
    CHECK(loader_create(&d, &o, &l, err, sizeof err) != 0 && strstr(err, "18 samples"), "%s", err);
    o = train_options(6, 1);
    o.start.batch = 3;
    CHECK(loader_create(&d, &o, &l, err, sizeof err) != 0 && strstr(err, "start position"), "%s", err);

    o = train_options(6, 1); /* destroyed while its thread waits for a free buffer */
    CHECK(loader_create(&d, &o, &l, err, sizeof err) == 0, "%s", err);
    Batch x;
    CHECK(loader_next(l, &x, err, sizeof err) == LOADER_OK, "%s", err);
    loader_destroy(l);
    CHECK(loader_create(&d, &o, &l, err, sizeof err) == 0, "%s", err);
    loader_destroy(l); /* before any batch */
    free_dataset(&d);
}

int main(void)
{
    check_augment_keys();
    check_determinism();
    check_ranks();
    check_resume_and_end();
    check_errors();
    return test_finish("test_loader");
}
