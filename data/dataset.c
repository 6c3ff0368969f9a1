/* dataset.c - dataset_load: opening a source and listing it (splits in
 * listing.c), decoding (shared across ranks), the cache decision
 * (fingerprint.c, cache.c); and the queries on a loaded data set. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data/internal.h"

/* ------------------------------------------------------------ dispatch */

const char *split_name(Split s)
{
    static const char *const names[] = {"train", "val", "test", "none"};
    return (unsigned)s < 4 ? names[s] : "?";
}

const char *source_name(Source s)
{
    static const char *const names[] = {"synth", "ferplus", "affectnet", "utkface", "idx", "folder"};
    return (unsigned)s < 6 ? names[s] : "?";
}

void data_options_default(DataOptions *o)
{
    memset(o, 0, sizeof *o);
    o->source = SOURCE_SYNTH;
    o->side = 64;
    o->channels = 1;
    o->split_seed = 1;
    o->on_bad_sample = BAD_SAMPLE_SKIP;
    o->synth_count = 4096;
    o->synth_seed = 1;
}

static int validate_options(const DataOptions *o, char *err, size_t errlen)
{
    if ((unsigned)o->source > SOURCE_FOLDER) {
        data_err(err, errlen, "data: unknown source %d", (int)o->source);
        return -1;
    }
    if (o->side < 8 || o->side > 4096) {
        data_err(err, errlen, "data: side %d out of range (expected 8-4096 pixels)", o->side);
        return -1;
    }
    if (o->channels != 1 && o->channels != 3) {
        data_err(err, errlen, "data: channels %d (expected 1 or 3)", o->channels);
        return -1;
    }
    if (!(o->val_fraction >= 0.0f && o->test_fraction >= 0.0f && o->val_fraction + o->test_fraction < 1.0f)) {
        data_err(err, errlen, "data: val_fraction %g and test_fraction %g must be >= 0 and sum below 1",
                 o->val_fraction, o->test_fraction);
        return -1;
    }
    if (o->source == SOURCE_SYNTH && o->synth_count <= 0) {
        data_err(err, errlen, "data: synth_count %d (expected a positive number of faces)", o->synth_count);
        return -1;
    }
    if (o->source != SOURCE_SYNTH && !o->path[0]) {
        data_err(err, errlen, "data: source %s needs a path", source_name(o->source));
        return -1;
    }
    if (o->limit < 0) {
        data_err(err, errlen, "data: limit %d is negative", o->limit);
        return -1;
    }
    return 0;
}

static int open_source(const DataOptions *o, Dataset *meta, Reader *r, int verbose, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    switch (o->source) {
    case SOURCE_SYNTH: return synth_open(o, meta, r, verbose, err, errlen);
    case SOURCE_FERPLUS: return ferplus_open(o, meta, r, verbose, err, errlen);
    case SOURCE_AFFECTNET: return affectnet_open(o, meta, r, verbose, err, errlen);
    case SOURCE_UTKFACE: return utkface_open(o, meta, r, verbose, err, errlen);
    case SOURCE_IDX: return idx_open(o, meta, r, verbose, err, errlen);
    case SOURCE_FOLDER: return folder_open(o, meta, r, verbose, err, errlen);
    }
    data_err(err, errlen, "data: unknown source");
    return -1;
}

/* Lists the source, assigns splits and applies the limit. */
static int list_samples(const DataOptions *o, Dataset *meta, Reader *r, int verbose, char *err, size_t errlen)
{
    if (open_source(o, meta, r, verbose, err, errlen))
        return -1;
    meta->side = o->side;
    meta->channels = o->channels;
    int rc = 0;
    if (r->pool_split)
        rc |= split_stratified(meta, SPLIT_NONE, o->val_fraction, o->test_fraction, o->split_seed);
    if (r->carve_val && o->val_fraction > 0.0f)
        rc |= split_stratified(meta, SPLIT_TRAIN, o->val_fraction, 0.0f, o->split_seed);
    /* the readers decode by listing index: remember it before the limit drops samples */
    meta->origin = malloc(sizeof(int64_t) * (size_t)(meta->n ? meta->n : 1));
    rc |= !meta->origin;
    for (int i = 0; !rc && i < meta->n; i++)
        meta->origin[i] = i;
    rc |= apply_limit(meta, o->limit, o->split_seed);
    if (rc) {
        data_err(err, errlen, "data: out of memory assigning splits");
        r->close(r->ctx);
        r->close = NULL;
        return -1;
    }
    return 0;
}

static void report_bad(const char *msg, int64_t bad_so_far)
{
    if (bad_so_far <= 20)
        fprintf(stderr, "warning: %s (sample skipped)\n", msg);
    else if (bad_so_far == 21)
        fprintf(stderr, "warning: more bad samples; only the count is reported from here on\n");
}

/* Decodes the samples j = rank, rank + world, ... of meta, one at a time:
 * into pix (one slot per own sample) when pix is not NULL, else appended to
 * the file `part`; status gets DECODE_OK / DECODE_BAD per own sample. */
static int decode_shard(const DataOptions *o, const Reader *r, const Dataset *meta, int rank, int world,
                        uint8_t *pix, FILE *part, const char *part_name, uint8_t *status, int64_t *bad, char *err,
                        size_t errlen)
{
    size_t sz = (size_t)o->channels * o->side * o->side;
    uint8_t *one = pix ? NULL : malloc(sz);
    if (!pix && !one) {
        data_err(err, errlen, "data: out of memory for one image of %zu bytes", sz);
        return -1;
    }
    int64_t k = 0;
    char msg[1024];
    int rc = 0;
    for (int j = rank; j < meta->n && !rc; j += world, k++) {
        uint8_t *dst = pix ? pix + (size_t)k * sz : one;
        int st = r->decode(r->ctx, o, meta->origin ? meta->origin[j] : j, dst, msg, sizeof msg);
        status[k] = (uint8_t)st;
        if (st == DECODE_BAD && o->on_bad_sample == BAD_SAMPLE_SKIP) {
            memset(dst, 0, sz);
            report_bad(msg, ++*bad);
        } else if (st != DECODE_OK) {
            data_err(err, errlen, "%s%s", msg, st == DECODE_BAD ? " (on_bad_sample = fail)" : "");
            rc = -1;
            break;
        }
        if (part && fwrite(dst, sz, 1, part) != 1) {
            data_err(err, errlen, "%s: cannot write part file: %s", part_name, strerror(errno));
            rc = -1;
        }
    }
    free(one);
    return rc;
}

/* One process decodes everything. */
static int build_local(const DataOptions *o, Dataset *d, char *err, size_t errlen)
{
    Reader r;
    if (list_samples(o, d, &r, 1, err, errlen))
        return -1;
    size_t sz = (size_t)o->channels * o->side * o->side;
    d->pixels = malloc(sz * (size_t)(d->n ? d->n : 1));
    uint8_t *status = calloc((size_t)(d->n ? d->n : 1), 1);
    int rc = -1;
    if (!d->pixels || !status) {
        data_err(err, errlen, "data: out of memory for %d images of %zu bytes", d->n, sz);
        goto out;
    }
    int64_t bad = 0;
    if (decode_shard(o, &r, d, 0, 1, d->pixels, NULL, NULL, status, &bad, err, errlen))
        goto out;
    for (int i = 0; i < d->n; i++)
        status[i] = status[i] == DECODE_OK;
    dataset_select(d, status);
    d->bad += bad;
    rc = 0;
    if (bad)
        fprintf(stderr, "warning: %s: %lld bad samples skipped\n", d->source_desc, (long long)bad);
out:
    free(status);
    if (r.close)
        r.close(r.ctx);
    return rc;
}

static DataOptions stored_options(const DataOptions *o);

int dataset_cache_path(const DataOptions *o, const char *cache_dir, char *path, size_t len)
{
    if (!cache_dir || !cache_dir[0])
        return -1;
    char text[3000];
    DataOptions so = stored_options(o);
    options_text(&so, text, sizeof text);
    uint64_t h = fp_hash(FP_HASH_START, text, strlen(text));
    int n = snprintf(path, len, "%s/%s-%016llx.h5", cache_dir, source_name(o->source), (unsigned long long)h);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* ------------------------------------------------------ parallel build */

static int comm_sum(const DataComm *c, int64_t *v, int n)
{
    return c && c->world > 1 && c->sum_i64 ? c->sum_i64(c->ctx, v, n) : 0;
}

static int comm_bcast(const DataComm *c, void *buf, size_t bytes)
{
    return c && c->world > 1 && c->bcast ? c->bcast(c->ctx, buf, bytes) : 0;
}

/* Every rank learns whether any failed, and, where the caller can carry
 * it, the failing rank's own message. */
static int agree(const DataComm *c, int failed, char *err, size_t errlen, const char *stage)
{
    if (c && c->world > 1 && c->agree) {
        if (!failed)
            err[0] = 0;
        if (c->agree(c->ctx, failed, err, errlen) == 0)
            return 0;
        if (!err[0])
            data_err(err, errlen, "data: communication failed while %s", stage);
        return -1;
    }
    int64_t v = failed != 0;
    if (comm_sum(c, &v, 1)) {
        if (!failed)
            data_err(err, errlen, "data: communication failed while %s", stage);
        return -1;
    }
    if (v && !failed)
        data_err(err, errlen, "data: another rank failed while %s (see its message)", stage);
    return v ? -1 : 0;
}

static void part_name(char *buf, size_t len, const char *cache, int rank, int64_t token)
{
    snprintf(buf, len, "%s.part%d-%lld", cache, rank, (long long)token);
}

/* A part file: "OCKP", the sample count (int64), the images in order, then
 * one status byte per image. The images are appended while decoding. */
static FILE *open_part(const char *name, int64_t mine, char *err, size_t errlen)
{
    FILE *f = fopen(name, "wb");
    if (!f || fwrite("OCKP", 1, 4, f) != 4 || fwrite(&mine, sizeof mine, 1, f) != 1) {
        data_err(err, errlen, "%s: cannot write part file: %s", name, strerror(errno));
        if (f)
            fclose(f);
        return NULL;
    }
    return f;
}

static int close_part(FILE *f, const char *name, const uint8_t *status, int64_t mine, char *err, size_t errlen)
{
    int ok = mine == 0 || fwrite(status, 1, (size_t)mine, f) == (size_t)mine;
    ok &= fflush(f) == 0;
    int e = errno;
    ok &= fclose(f) == 0;
    if (!ok)
        data_err(err, errlen, "%s: cannot write part file: %s", name, strerror(e ? e : errno));
    return ok ? 0 : -1;
}

/* The merge's PixelSource: kept sample i is sample src[i] of the listing,
 * image src[i] / world of rank src[i] % world's part file. */
typedef struct {
    FILE **part;
    int world;
    size_t sz;
    int64_t *src;
    const char *cache;
} Parts;

static int parts_get(void *ctx, int64_t i, uint8_t *dst, char *err, size_t errlen)
{
    const Parts *p = ctx;
    int64_t j = p->src[i], r = j % p->world, k = j / p->world;
    if (fseeko(p->part[r], (off_t)(12 + (size_t)k * p->sz), SEEK_SET) || fread(dst, p->sz, 1, p->part[r]) != 1) {
        data_err(err, errlen, "%s: part file of rank %lld is truncated at image %lld", p->cache, (long long)r,
                 (long long)k);
        return -1;
    }
    return 0;
}

/* Rank 0: drops the bad samples every part reports and writes the cache,
 * copying the images from the parts run by run (never all in memory). */
static int merge_parts(Dataset *d, const DataOptions *o, const char *cache, const char *text, const Fingerprint *fp,
                       int world, int64_t token, char *err, size_t errlen)
{
    size_t sz = (size_t)d->channels * d->side * d->side;
    Parts p = {calloc((size_t)world, sizeof(FILE *)), world, sz, malloc(sizeof(int64_t) * (size_t)(d->n ? d->n : 1)),
               cache};
    uint8_t *keep = calloc((size_t)(d->n ? d->n : 1), 1);
    char name[1100];
    int rc = !p.part || !p.src || !keep ? -1 : 0;
    if (rc)
        data_err(err, errlen, "data: out of memory merging %d samples", d->n);
    for (int r = 0; r < world && !rc; r++) {
        part_name(name, sizeof name, cache, r, token);
        FILE *f = p.part[r] = fopen(name, "rb");
        char magic[4];
        int64_t mine = 0, expect = d->n > r ? (d->n - r + world - 1) / world : 0;
        if (!f || fread(magic, 1, 4, f) != 4 || memcmp(magic, "OCKP", 4) || fread(&mine, sizeof mine, 1, f) != 1 ||
            mine != expect || fseeko(f, (off_t)(12 + (size_t)mine * sz), SEEK_SET)) {
            data_err(err, errlen, "%s: missing or malformed part file (expected %lld samples)", name,
                     (long long)expect);
            rc = -1;
        }
        for (int64_t k = 0; !rc && k < mine; k++) {
            int st = fgetc(f);
            if (st == EOF) {
                data_err(err, errlen, "%s: truncated part file", name);
                rc = -1;
            }
            keep[r + k * world] = st == DECODE_OK;
        }
    }
    int64_t kept = 0;
    for (int i = 0; !rc && i < d->n; i++)
        if (keep[i])
            p.src[kept++] = i;
    if (!rc) {
        dataset_select(d, keep);
        rc = check_splits(o, d, err, errlen) || cache_write(cache, d, text, fp, &(PixelSource){&p, parts_get}, err, errlen);
    }
    for (int r = 0; p.part && r < world; r++) {
        if (p.part[r])
            fclose(p.part[r]);
        part_name(name, sizeof name, cache, r, token);
        remove(name);
    }
    free(p.part);
    free(p.src);
    free(keep);
    return rc;
}

/* All ranks decode their share into part files; rank 0 merges them into the
 * cache; then every rank opens the cache for streaming. c NULL: one process. */
static int build_parallel(const DataOptions *o, const DataComm *c, const char *cache, const char *text,
                          const Fingerprint *fp, Dataset *d, char *err, size_t errlen)
{
    int rank = c ? c->rank : 0, world = c ? c->world : 1;
    int64_t token = rank == 0 ? (int64_t)getpid() : 0;
    if (comm_bcast(c, &token, sizeof token)) {
        data_err(err, errlen, "data: broadcast failed while building %s", cache);
        return -1;
    }
    Reader r = {0};
    int failed = list_samples(o, d, &r, rank == 0, err, errlen);
    if (agree(c, failed, err, errlen, "listing the source"))
        goto fail;
    int64_t mine = d->n > rank ? (d->n - rank + world - 1) / world : 0;
    uint8_t *status = calloc((size_t)(mine ? mine : 1), 1);
    int64_t counts[1] = {0};
    char name[1100];
    part_name(name, sizeof name, cache, rank, token);
    FILE *part = status ? open_part(name, mine, err, errlen) : NULL;
    failed = !part;
    if (!status)
        data_err(err, errlen, "data: out of memory for %lld status bytes", (long long)mine);
    if (!failed) {
        failed = decode_shard(o, &r, d, rank, world, NULL, part, name, status, counts, err, errlen);
        failed = close_part(part, name, status, mine, failed ? NULL : err, failed ? 0 : errlen) || failed;
    }
    free(status);
    r.close(r.ctx);
    r.close = NULL;
    if (agree(c, failed, err, errlen, "decoding samples"))
        goto fail_part;
    if (comm_sum(c, counts, 1)) {
        data_err(err, errlen, "data: communication failed while counting bad samples");
        goto fail_part;
    }
    d->bad += counts[0];
    failed = 0;
    if (rank == 0) {
        if (counts[0])
            fprintf(stderr, "warning: %s: %lld bad samples skipped\n", d->source_desc, (long long)counts[0]);
        failed = merge_parts(d, o, cache, text, fp, world, token, err, errlen);
    }
    if (agree(c, failed, err, errlen, "writing the cache"))
        goto fail;
    dataset_free(d);
    if (cache_read(cache, d, err, errlen))
        return -1;
    return 0;
fail_part:
    remove(name);
fail:
    if (r.close)
        r.close(r.ctx);
    dataset_free(d);
    return -1;
}

/* mkdir -p: 0 when the folder exists afterwards. */
static int mkdir_parents(const char *dir)
{
    char p[1024];
    snprintf(p, sizeof p, "%s", dir);
    for (char *c = p + 1; *c; c++)
        if (*c == '/') {
            *c = 0;
            if (mkdir(p, 0777) && errno != EEXIST)
                return -1;
            *c = '/';
        }
    return mkdir(p, 0777) && errno != EEXIST ? -1 : 0;
}

int dataset_load(const DataOptions *job_o, const char *cache_dir, const DataComm *comm, Dataset *out, char *err,
                 size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (validate_options(job_o, err, errlen))
        return -1;
    /* without a cache the images are decoded at the job's side; a cache
     * stores them at the source's own resolution */
    DataOptions so = stored_options(job_o);
    const DataOptions *o = cache_dir && cache_dir[0] ? &so : job_o;
    const DataComm *c = comm && comm->world > 1 ? comm : NULL;
    int rank = c ? c->rank : 0;
    if (!cache_dir || !cache_dir[0]) {
        int rc = build_local(o, out, err, errlen) || check_splits(o, out, err, errlen);
        if (rc)
            dataset_free(out);
        free(out->origin);
        out->origin = NULL;
        return rc ? -1 : 0;
    }
    char path[1024], text[3000], why[600] = "";
    if (dataset_cache_path(o, cache_dir, path, sizeof path)) {
        data_err(err, errlen, "%s: cache path too long", cache_dir);
        return -1;
    }
    options_text(o, text, sizeof text);
    Fingerprint fp;
    int32_t state = -1; /* rank 0 decides: 1 valid cache, 0 build, -1 error */
    if (rank == 0) {
        struct stat st;
        if (stat(cache_dir, &st) && mkdir_parents(cache_dir))
            data_err(err, errlen, "%s: cannot create cache folder: %s", cache_dir, strerror(errno));
        else if (source_fingerprint(o, &fp, err, errlen) == 0)
            state = cache_check(path, text, &fp, why, sizeof why);
        if (state == -1 && why[0])
            data_err(err, errlen, "%s", why);
    }
    if (comm_bcast(c, &state, sizeof state) || comm_bcast(c, &fp, sizeof fp)) {
        data_err(err, errlen, "data: broadcast failed while checking %s", path);
        return -1;
    }
    if (state < 0) {
        if (rank != 0)
            data_err(err, errlen, "data: rank 0 could not check the cache %s (see its message)", path);
        return -1;
    }
    int rc;
    if (state == 1) {
        rc = cache_read(path, out, err, errlen);
        if (!rc)
            out->from_cache = 1;
        if (agree(c, rc, err, errlen, "reading the cache"))
            rc = -1;
    } else {
        if (rank == 0)
            fprintf(stderr, "data: %s %s\n", why[0] ? why : "building", path);
        rc = build_parallel(o, c, path, text, &fp, out, err, errlen);
    }
    if (!rc)
        rc = check_splits(o, out, err, errlen);
    if (rc) {
        dataset_free(out);
        return -1;
    }
    free(out->origin); /* only the decoding needed it */
    out->origin = NULL;
    snprintf(out->cache_path, sizeof out->cache_path, "%s", path);
    if (job_o->in_memory && dataset_load_pixels(out, err, errlen)) {
        dataset_free(out);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- queries */

void dataset_free(Dataset *d)
{
    if (!d)
        return;
    if (d->streaming && d->fd >= 0)
        close(d->fd);
    free(d->bytes_read);
    free(d->image_crc);
    free(d->pixels);
    for (int a = 0; a < ATTR_COUNT; a++)
        free(d->attr_class[a]);
    free(d->age);
    free(d->soft);
    free(d->split);
    free(d->origin);
    if (d->name)
        for (int i = 0; i < d->n; i++)
            free(d->name[i]);
    free(d->name);
    if (d->class_name)
        for (int k = 0; k < d->n_classes[ATTR_CLASS]; k++)
            free(d->class_name[k]);
    free(d->class_name);
    memset(d, 0, sizeof *d);
}

int dataset_read_sample(const Dataset *d, int64_t id, uint8_t *dst, char *err, size_t errlen)
{
    size_t sz = (size_t)d->channels * d->side * d->side;
    if (id < 0 || id >= d->n) {
        data_err(err, errlen, "data: sample %lld outside 0..%d", (long long)id, d->n - 1);
        return -1;
    }
    if (d->pixels) {
        memcpy(dst, d->pixels + (size_t)id * sz, sz);
        return 0;
    }
    if (!d->streaming) {
        data_err(err, errlen, "data: the data set holds no pixels");
        return -1;
    }
    off_t at = (off_t)(d->image_offset + (int64_t)id * (int64_t)sz);
    size_t got = 0;
    while (got < sz) {
        ssize_t r = pread(d->fd, dst + got, sz - got, at + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            data_err(err, errlen, "%s: cannot read sample %lld%s%s: %s", d->cache_path, (long long)id,
                     d->name && d->name[id] ? " " : "", d->name && d->name[id] ? d->name[id] : "",
                     r < 0 ? strerror(errno) : "unexpected end of file");
            return -1;
        }
        got += (size_t)r;
    }
    if (d->bytes_read)
        __atomic_fetch_add(d->bytes_read, (int64_t)sz, __ATOMIC_RELAXED);
    if (d->image_crc && (uint32_t)crc32(0L, dst, (uInt)sz) != d->image_crc[id]) {
        data_err(err, errlen, "%s: sample %lld%s%s fails its checksum (the cache file is damaged): delete it and it "
                 "is built again",
                 d->cache_path, (long long)id, d->name && d->name[id] ? " " : "", d->name && d->name[id] ? d->name[id] : "");
        return -1;
    }
    return 0;
}

int64_t dataset_bytes_read(const Dataset *d)
{
    return d->bytes_read ? __atomic_load_n(d->bytes_read, __ATOMIC_RELAXED) : 0;
}

int dataset_load_pixels(Dataset *d, char *err, size_t errlen)
{
    if (d->pixels)
        return 0;
    size_t sz = (size_t)d->channels * d->side * d->side;
    uint8_t *px = malloc(sz * (size_t)(d->n ? d->n : 1));
    if (!px) {
        data_err(err, errlen, "data: out of memory for %d images of %zu bytes", d->n, sz);
        return -1;
    }
    for (int i = 0; i < d->n; i++)
        if (dataset_read_sample(d, i, px + (size_t)i * sz, err, errlen)) {
            free(px);
            return -1;
        }
    d->pixels = px;
    return 0;
}

void data_stored_geometry(const DataOptions *o, int *side, int *channels)
{
    int s = o->side, c = o->channels, cap = o->cache_side > 0 ? o->cache_side : 0;
    switch (o->source) {
    case SOURCE_FERPLUS: s = 48, c = 1; break;
    case SOURCE_IDX: s = 28, c = 1; break;
    case SOURCE_UTKFACE: s = 200; break;
    case SOURCE_AFFECTNET:
    case SOURCE_FOLDER: s = cap ? cap : o->side; break;
    case SOURCE_SYNTH: break;
    }
    if (cap && s > cap && o->source != SOURCE_SYNTH)
        s = cap;
    *side = s;
    *channels = c;
}

/* The options the cache is built with: the stored geometry in place of the
 * job's side and channels. */
static DataOptions stored_options(const DataOptions *o)
{
    DataOptions so = *o;
    data_stored_geometry(o, &so.side, &so.channels);
    so.cache_side = 0;
    return so;
}

int64_t dataset_size_estimate(const DataOptions *o)
{
    int64_t n;
    switch (o->source) {
    case SOURCE_SYNTH: n = o->synth_count; break;
    case SOURCE_FERPLUS: n = 35887; break;    /* fer2013.csv rows; the label rules drop some */
    case SOURCE_AFFECTNET: n = 291651; break; /* training.csv + validation.csv, manually annotated */
    case SOURCE_UTKFACE: n = 23705; break;
    case SOURCE_IDX: n = 70000; break;        /* (Fashion-)MNIST train + test */
    default: n = 0; break;
    }
    return o->limit > 0 && n > 3 * (int64_t)o->limit ? 3 * (int64_t)o->limit : n;
}

int dataset_split_count(const Dataset *d, Split split)
{
    if (split == SPLIT_NONE)
        return d->n;
    int n = 0;
    for (int i = 0; i < d->n; i++)
        n += d->split[i] == split;
    return n;
}

int dataset_channel_stats(const Dataset *d, Split split, float *mean, float *std, char *err, size_t errlen)
{
    size_t np = (size_t)d->side * d->side;
    int count = dataset_split_count(d, split);
    if (count == 0) {
        data_err(err, errlen, "%s: no samples in the %s split for normalisation statistics", d->source_desc,
                 split_name(split));
        return -1;
    }
    /* exact integer sums: from the cache's record, or one pass over the images */
    uint64_t sum[4] = {0}, sq[4] = {0};
    if (d->has_sums && split != SPLIT_NONE) {
        memcpy(sum, d->pixel_sum[split], sizeof sum);
        memcpy(sq, d->pixel_sum_sq[split], sizeof sq);
    } else {
        uint8_t *one = malloc(np * (size_t)d->channels);
        if (!one) {
            data_err(err, errlen, "data: out of memory");
            return -1;
        }
        for (int i = 0; i < d->n; i++) {
            if (split != SPLIT_NONE && d->split[i] != split)
                continue;
            if (dataset_read_sample(d, i, one, err, errlen)) {
                free(one);
                return -1;
            }
            for (int c = 0; c < d->channels; c++)
                for (size_t k = 0; k < np; k++) {
                    sum[c] += one[c * np + k];
                    sq[c] += (uint64_t)one[c * np + k] * one[c * np + k];
                }
        }
        free(one);
    }
    for (int c = 0; c < d->channels; c++) {
        double s = (double)sum[c], s2 = (double)sq[c];
        double cnt = (double)count * (double)np;
        double m = s / cnt, var = s2 / cnt - m * m;
        mean[c] = (float)(m / 255.0);
        std[c] = (float)(sqrt(var > 0.0 ? var : 0.0) / 255.0);
    }
    return 0;
}
