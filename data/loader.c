/* loader.c - the batch loader: a background thread prepares batches k+1 and
 * k+2 (read the slice's images from the cache, augment, occlude, normalise,
 * copy the targets) into a ring of LOADER_SLOTS buffers while the caller
 * trains on batch k. Data memory is these buffers: O(batch x slots).
 *
 * Batch k is a pure function of the data set, the options and k (through the
 * sampler position start + k), so the thread's timing never changes what a
 * batch holds: the background loader gives bit for bit the batches of the
 * synchronous one. Anything that fails while preparing batch k is stored with
 * batch k and reported by the loader_next call that would have returned it.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"

#define LOADER_ERRLEN 512

static const char *const attr_names[ATTR_COUNT] = {"expression", "gender", "age", "class"};

typedef struct {
    int64_t *ids;
    uint8_t *raw;   /* one stored image */
    uint8_t *sized; /* it at the batch's side and channels */
    float *clean, *occluded;
    int *label;
    float *age, *soft;
    SamplerSlice slice;
    int status;
    char err[LOADER_ERRLEN];
} Slot;

struct Loader {
    const Dataset *d;
    LoaderOptions o;
    Sampler sampler;       /* touched only by whoever prepares batches */
    uint8_t *hidden;       /* (side, side) occlusion mask, NULL for none */
    int max_n;             /* largest slice */
    Slot slot[LOADER_SLOTS];
    /* background state, guarded by mu */
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t produced;      /* batches the preparer has finished */
    int64_t released;      /* batches the caller has given back */
    int stop;
    /* caller state */
    int64_t returned;      /* batches handed to the caller */
    int final_status;
    char final_err[LOADER_ERRLEN];
};

LoaderOptions loader_options_default(void)
{
    LoaderOptions o;
    memset(&o, 0, sizeof o);
    o.split = SPLIT_TRAIN;
    o.attr = ATTR_EXPRESSION;
    o.augment = 1;
    o.aug.pad = 4;
    o.aug.flip = 1;
    o.occ = occlusion_default();
    o.occ.kind = OCC_VR;
    for (int c = 0; c < 4; c++) {
        o.mean[c] = 0.0f;
        o.std[c] = 1.0f;
    }
    o.sampler.global_batch = 32;
    o.sampler.drop_last = 1;
    o.sampler.shuffle = 1;
    o.sampler.rank = 0;
    o.sampler.world = 1;
    o.background = 1;
    return o;
}

/* ------------------------------------------------------- one sample, one batch */

/* The batch's side and channels for these options. */
static void batch_geometry(const Dataset *d, const LoaderOptions *o, int *side, int *channels)
{
    *side = o->side > 0 ? o->side : d->side;
    *channels = o->channels > 0 ? o->channels : d->channels;
}

/* Stored CHW (d->channels, d->side^2) -> (C, S^2): each channel resized, a
 * grey plane replicated. */
static void fit_image(const Dataset *d, const uint8_t *src, int C, int S, uint8_t *dst)
{
    size_t np = (size_t)S * S, snp = (size_t)d->side * d->side;
    for (int c = 0; c < C; c++) {
        const uint8_t *plane = src + (size_t)(d->channels == 1 ? 0 : c) * snp;
        if (c > 0 && d->channels == 1)
            memcpy(dst + (size_t)c * np, dst, np);
        else
            image_resize(plane, d->side, d->side, 1, dst + (size_t)c * np, S, S);
    }
}

static void prepare_pair_from(const Dataset *d, const LoaderOptions *o, const uint8_t *hidden, int64_t epoch,
                              int64_t id, const uint8_t *src, uint8_t *sized, float *clean, float *occluded)
{
    int C, S;
    batch_geometry(d, o, &S, &C);
    if (S != d->side || C != d->channels) {
        fit_image(d, src, C, S, sized);
        src = sized;
    }
    size_t count = (size_t)C * S * S;
    AugmentDraw draw = o->augment ? augment_draw(&o->aug, o->sampler.seed, epoch, id) : augment_identity(&o->aug);
    augment_apply(src, C, S, o->aug.pad, draw, clean);
    memcpy(occluded, clean, count * sizeof *clean);
    occlusion_apply(&o->occ, hidden, occluded, C, S, o->mean, id);
    normalise_image(clean, C, S, o->mean, o->std);
    normalise_image(occluded, C, S, o->mean, o->std);
}

static const char *sample_name(const Dataset *d, int64_t id)
{
    return d->name && d->name[id] ? d->name[id] : "";
}

/* Copies sample id's targets into position i of the slot; -1 + message on a
 * label the data set itself declares impossible. */
static int copy_targets(const Loader *l, Slot *s, int i, int64_t id)
{
    const Dataset *d = l->d;
    if (l->o.attr != ATTR_COUNT) {
        int y = d->attr_class[l->o.attr][id], k = d->n_classes[l->o.attr];
        if (y < -1 || y >= k) {
            snprintf(s->err, sizeof s->err, "sample %lld%s%s: %s label %d outside 0..%d (or -1 for missing)",
                     (long long)id, d->name ? " " : "", sample_name(d, id), attr_names[l->o.attr], y, k - 1);
            return -1;
        }
        s->label[i] = y;
    }
    if (d->age)
        s->age[i] = d->age[id];
    for (int j = 0; d->soft && j < d->soft_k; j++) {
        float p = d->soft[(size_t)id * d->soft_k + j];
        if (!(p >= 0.0f && p <= 1.0f)) {
            snprintf(s->err, sizeof s->err, "sample %lld%s%s: soft target %d is %g, expected a value in [0, 1]",
                     (long long)id, d->name ? " " : "", sample_name(d, id), j, (double)p);
            return -1;
        }
        s->soft[(size_t)i * d->soft_k + j] = p;
    }
    return 0;
}

/* The sampler position of batch k. */
static SamplerPos position_of(const Loader *l, int64_t k)
{
    int64_t nb = sampler_batches_per_epoch(&l->sampler);
    int64_t b = l->o.start.batch + k;
    SamplerPos p = {l->o.start.epoch + b / nb, b % nb};
    return p;
}

/* Fills slot with batch k; sets its status. */
static void prepare_batch(Loader *l, int64_t k, Slot *s)
{
    SamplerPos pos = position_of(l, k);
    s->err[0] = 0;
    memset(&s->slice, 0, sizeof s->slice);
    if (l->o.max_epochs > 0 && pos.epoch >= l->o.max_epochs) {
        s->status = LOADER_END;
        return;
    }
    if (sampler_slice(&l->sampler, pos.epoch, pos.batch, s->ids, &s->slice, s->err, sizeof s->err)) {
        s->status = LOADER_ERROR;
        return;
    }
    int C, S;
    batch_geometry(l->d, &l->o, &S, &C);
    size_t count = (size_t)C * S * S;
    for (int i = 0; i < s->slice.n; i++) {
        int64_t id = s->ids[i];
        if (copy_targets(l, s, i, id)) {
            s->status = LOADER_ERROR;
            return;
        }
        if (dataset_read_sample(l->d, id, s->raw, s->err, sizeof s->err)) {
            s->status = LOADER_ERROR;
            return;
        }
        prepare_pair_from(l->d, &l->o, l->hidden, pos.epoch, id, s->raw, s->sized, s->clean + i * count,
                          s->occluded + i * count);
    }
    s->status = LOADER_OK;
}

/* ------------------------------------------------------------ the thread */

static void *worker_main(void *arg)
{
    Loader *l = arg;
    for (int64_t k = 0;; k++) {
        pthread_mutex_lock(&l->mu);
        while (!l->stop && k >= l->released + LOADER_SLOTS) /* the slot still holds batch k - SLOTS */
            pthread_cond_wait(&l->cv, &l->mu);
        int stop = l->stop;
        pthread_mutex_unlock(&l->mu);
        if (stop)
            break;
        Slot *s = &l->slot[k % LOADER_SLOTS];
        prepare_batch(l, k, s);
        pthread_mutex_lock(&l->mu);
        l->produced = k + 1;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        if (s->status != LOADER_OK)
            break; /* the end or an error: nothing follows */
    }
    return NULL;
}

/* ------------------------------------------------------------ public API */

static int check_options(const Dataset *d, const LoaderOptions *o, char *err, size_t errlen)
{
    if ((!d->pixels && !d->streaming) || d->n < 1 || d->side < 1 || d->channels < 1 || d->channels > 4) {
        snprintf(err, errlen, "loader: the data set is empty or malformed (n %d, side %d, channels %d)", d->n,
                 d->side, d->channels);
        return -1;
    }
    if ((unsigned)o->attr > ATTR_COUNT || (o->attr != ATTR_COUNT && !d->attr_class[o->attr])) {
        snprintf(err, errlen, "loader: the data set (%s) has no %s labels", d->source_desc,
                 (unsigned)o->attr < ATTR_COUNT ? attr_names[o->attr] : "such");
        return -1;
    }
    if ((unsigned)o->split > SPLIT_NONE || (o->split != SPLIT_NONE && !d->split)) {
        snprintf(err, errlen, "loader: split %d requested but the data set records no splits", (int)o->split);
        return -1;
    }
    int C, S;
    batch_geometry(d, o, &S, &C);
    if (S < 1 || S > 4096 || (C != d->channels && !(d->channels == 1 && C == 3))) {
        snprintf(err, errlen, "loader: cannot make %d x %d x %d batches from stored %d x %d x %d images", C, S, S,
                 d->channels, d->side, d->side);
        return -1;
    }
    if (o->aug.pad < 0 || o->aug.pad >= S) {
        snprintf(err, errlen, "loader: crop padding %d outside [0, %d)", o->aug.pad, S);
        return -1;
    }
    for (int c = 0; c < d->channels; c++)
        if (!(o->std[c] > 0.0f) || !isfinite(o->mean[c]) || !isfinite(o->std[c])) {
            snprintf(err, errlen, "loader: channel %d has mean %g and std %g; expected finite values, std > 0", c,
                     (double)o->mean[c], (double)o->std[c]);
            return -1;
        }
    return occlusion_check(&o->occ, err, errlen);
}

/* The split's sample indices in data set order. */
static int64_t *split_ids(const Dataset *d, Split split, int64_t *n)
{
    int64_t *ids = malloc((size_t)d->n * sizeof *ids);
    *n = 0;
    for (int i = 0; ids && i < d->n; i++)
        if (split == SPLIT_NONE || d->split[i] == (uint8_t)split)
            ids[(*n)++] = i;
    return ids;
}

static int alloc_slot(Slot *s, const Dataset *d, const LoaderOptions *o, int max_n)
{
    int C, S;
    batch_geometry(d, o, &S, &C);
    size_t count = (size_t)max_n * C * S * S;
    s->ids = calloc((size_t)max_n, sizeof *s->ids);
    s->raw = malloc((size_t)d->channels * d->side * d->side);
    s->sized = malloc((size_t)C * S * S);
    s->clean = calloc(count, sizeof *s->clean);
    s->occluded = calloc(count, sizeof *s->occluded);
    s->label = calloc((size_t)max_n, sizeof *s->label);
    s->age = calloc((size_t)max_n, sizeof *s->age);
    s->soft = calloc((size_t)max_n * (d->soft ? (size_t)d->soft_k : 1), sizeof *s->soft);
    return s->ids && s->raw && s->sized && s->clean && s->occluded && s->label && s->age && s->soft ? 0 : -1;
}

static void free_slot(Slot *s)
{
    free(s->ids);
    free(s->raw);
    free(s->sized);
    free(s->clean);
    free(s->occluded);
    free(s->label);
    free(s->age);
    free(s->soft);
}

static int loader_setup(Loader *l, char *err, size_t errlen)
{
    int64_t n;
    int64_t *ids = split_ids(l->d, l->o.split, &n);
    if (!ids) {
        snprintf(err, errlen, "loader: out of memory");
        return -1;
    }
    if (n == 0) {
        free(ids);
        snprintf(err, errlen, "loader: split %d of %s is empty", (int)l->o.split, l->d->source_desc);
        return -1;
    }
    int rc = sampler_init(&l->sampler, ids, n, &l->o.sampler, err, errlen);
    free(ids);
    if (rc)
        return -1;
    if (l->o.start.epoch < 0 || l->o.start.batch < 0 || l->o.start.batch >= sampler_batches_per_epoch(&l->sampler)) {
        snprintf(err, errlen, "loader: start position (epoch %lld, batch %lld) is outside the %lld batches per epoch",
                 (long long)l->o.start.epoch, (long long)l->o.start.batch,
                 (long long)sampler_batches_per_epoch(&l->sampler));
        return -1;
    }
    l->max_n = sampler_max_slice(&l->sampler);
    int C, S;
    batch_geometry(l->d, &l->o, &S, &C);
    if (l->o.occ.kind != OCC_NONE) {
        l->hidden = malloc((size_t)S * S);
        if (!l->hidden) {
            snprintf(err, errlen, "loader: out of memory");
            return -1;
        }
        occlusion_mask(&l->o.occ, S, l->hidden);
    }
    for (int i = 0; i < LOADER_SLOTS; i++)
        if (alloc_slot(&l->slot[i], l->d, &l->o, l->max_n)) {
            snprintf(err, errlen, "loader: out of memory for batches of %d samples", l->max_n);
            return -1;
        }
    return 0;
}

int loader_create(const Dataset *d, const LoaderOptions *o, Loader **out, char *err, size_t errlen)
{
    *out = NULL;
    if (check_options(d, o, err, errlen))
        return -1;
    Loader *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "loader: out of memory");
        return -1;
    }
    l->d = d;
    l->o = *o;
    if (d->channels == 1) /* a grey data set made colour: one statistic for all */
        for (int c = 1; c < 4; c++)
            l->o.mean[c] = l->o.mean[0], l->o.std[c] = l->o.std[0];
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    if (loader_setup(l, err, errlen)) {
        loader_destroy(l);
        return -1;
    }
    if (o->background) {
        int rc = pthread_create(&l->thread, NULL, worker_main, l);
        if (rc) {
            snprintf(err, errlen, "loader: cannot start the loading thread (%s)", strerror(rc));
            loader_destroy(l);
            return -1;
        }
        l->thread_started = 1;
    }
    *out = l;
    return 0;
}

static void fill_batch(const Loader *l, const Slot *s, Batch *b)
{
    const Dataset *d = l->d;
    memset(b, 0, sizeof *b);
    b->n = s->slice.n;
    b->global_n = s->slice.global_n;
    b->offset = s->slice.offset;
    b->epoch = s->slice.epoch;
    b->batch = s->slice.batch;
    batch_geometry(d, &l->o, &b->side, &b->channels);
    b->ids = s->ids;
    b->clean = s->clean;
    b->occluded = s->occluded;
    b->label = l->o.attr != ATTR_COUNT ? s->label : NULL;
    b->age = d->age ? s->age : NULL;
    b->soft = d->soft ? s->soft : NULL;
    b->soft_k = d->soft ? d->soft_k : 0;
}

/* Waits for batch k (background) or prepares it (synchronous). */
static Slot *obtain(Loader *l, int64_t k)
{
    Slot *s = &l->slot[k % LOADER_SLOTS];
    if (!l->thread_started) {
        prepare_batch(l, k, s);
        return s;
    }
    pthread_mutex_lock(&l->mu);
    l->released = k; /* the caller is done with batch k-1 */
    pthread_cond_broadcast(&l->cv);
    while (l->produced <= k)
        pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
    return s;
}

int loader_next(Loader *l, Batch *b, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    if (l->final_status == LOADER_OK) {
        Slot *s = obtain(l, l->returned);
        if (s->status == LOADER_OK) {
            l->returned++;
            fill_batch(l, s, b);
            return LOADER_OK;
        }
        l->final_status = s->status;
        snprintf(l->final_err, sizeof l->final_err, "%s", s->err);
    }
    if (l->final_status == LOADER_ERROR)
        snprintf(err, errlen, "%s", l->final_err);
    return l->final_status;
}

SamplerPos loader_tell(const Loader *l) { return position_of(l, l->returned); }

int64_t loader_batches_per_epoch(const Loader *l) { return sampler_batches_per_epoch(&l->sampler); }

void loader_destroy(Loader *l)
{
    if (!l)
        return;
    if (l->thread_started) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    for (int i = 0; i < LOADER_SLOTS; i++)
        free_slot(&l->slot[i]);
    free(l->hidden);
    sampler_free(&l->sampler);
    free(l);
}
