/* test_cache.c - the HDF5 cache: load -> cache -> load gives identical
 * bytes, a changed source or a damaged file is rebuilt, other options get
 * another file, and a build shared by 3 ranks (processes joined by a
 * process-shared barrier standing in for MPI) equals the serial load. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <stb/stb_image_write.h>

#include "data/data.h"
#include "gradcheck.h"

static char root[256];

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}

/* A digest of everything a Dataset holds. */
static uint64_t digest(const Dataset *d)
{
    uint64_t h = 0xCBF29CE484222325ull;
    size_t sz = (size_t)d->channels * d->side * d->side;
    h = fnv(h, &d->n, sizeof d->n);
    uint8_t *px = malloc(sz);
    char err[512];
    for (int i = 0; i < d->n; i++) { /* from memory or streamed from the cache alike */
        if (dataset_read_sample(d, i, px, err, sizeof err)) {
            CHECK(0, "%s", err);
            break;
        }
        h = fnv(h, px, sz);
    }
    free(px);
    h = fnv(h, d->split, (size_t)d->n);
    for (int a = 0; a < ATTR_COUNT; a++)
        if (d->attr_class[a])
            h = fnv(h, d->attr_class[a], sizeof(int) * d->n);
    if (d->age)
        h = fnv(h, d->age, sizeof(float) * d->n);
    if (d->soft)
        h = fnv(h, d->soft, sizeof(float) * d->n * d->soft_k);
    for (int i = 0; i < d->n; i++)
        h = fnv(h, d->name[i], strlen(d->name[i]) + 1);
    h = fnv(h, d->n_classes, sizeof d->n_classes);
    h = fnv(h, &d->bad, sizeof d->bad);
    h = fnv(h, &d->dropped, sizeof d->dropped);
    return h;
}

static int first_pixel(const Dataset *d)
{
    uint8_t px[3 * 48 * 48];
    char err[512];
    return d->n > 0 && (size_t)d->channels * d->side * d->side <= sizeof px &&
                   dataset_read_sample(d, 0, px, err, sizeof err) == 0
               ? px[0]
               : -1;
}

static void test_round_trip(const char *cache)
{
    DataOptions o;
    data_options_default(&o);
    o.synth_count = 300;
    o.side = 24;
    o.channels = 3;
    o.val_fraction = 0.1f;
    o.test_fraction = 0.1f;
    Dataset a, b, c;
    char err[1024] = "";
    CHECK(dataset_load(&o, NULL, NULL, &c, err, sizeof err) == 0, "no cache: %s", err);
    CHECK(dataset_load(&o, cache, NULL, &a, err, sizeof err) == 0, "build: %s", err);
    CHECK(a.from_cache == 0 && a.cache_path[0], "first load claims the cache (%d)", a.from_cache);
    struct stat st;
    CHECK(stat(a.cache_path, &st) == 0, "no cache file at %s", a.cache_path);
    CHECK(dataset_load(&o, cache, NULL, &b, err, sizeof err) == 0, "reload: %s", err);
    CHECK(b.from_cache == 1, "second load did not use the cache");
    CHECK(digest(&a) == digest(&b) && digest(&a) == digest(&c), "cached data differ from the decoded data");
    /* a cached data set streams its images: nothing of them in memory */
    CHECK(a.pixels == NULL && b.pixels == NULL && a.streaming && b.streaming, "cached images held in memory");
    CHECK(c.pixels != NULL && !c.streaming, "without a cache the images should be in memory");
    CHECK(dataset_bytes_read(&c) == 0 && dataset_bytes_read(&b) == (int64_t)b.n * 3 * 24 * 24,
          "bytes read: %lld in memory, %lld streamed (expected 0 and %d)", (long long)dataset_bytes_read(&c),
          (long long)dataset_bytes_read(&b), b.n * 3 * 24 * 24);
    /* normalisation statistics: recorded in the cache, equal to a pass over the images */
    for (Split sp = SPLIT_TRAIN; sp <= SPLIT_NONE; sp++) {
        float m1[4], s1[4], m2[4], s2[4];
        CHECK(dataset_channel_stats(&b, sp, m1, s1, err, sizeof err) == 0 &&
                  dataset_channel_stats(&c, sp, m2, s2, err, sizeof err) == 0,
              "stats: %s", err);
        CHECK(memcmp(m1, m2, 3 * sizeof(float)) == 0 && memcmp(s1, s2, 3 * sizeof(float)) == 0,
              "%s split: streamed statistics differ (mean %g vs %g)", split_name(sp), m1[0], m2[0]);
    }
    /* the in-memory mode reads everything once and then holds it */
    CHECK(dataset_load_pixels(&b, err, sizeof err) == 0 && b.pixels && digest(&b) == digest(&c), "in memory: %s",
          err);
    char other[1024];
    o.side = 20;
    CHECK(dataset_cache_path(&o, cache, other, sizeof other) == 0 && strcmp(other, a.cache_path) != 0,
          "another side maps to the same cache file");
    /* a damaged cache file is rebuilt (truncating it in place also cuts what
     * `a` streams from: take its digest first) */
    uint64_t want = digest(&a);
    FILE *f = fopen(a.cache_path, "w");
    fputs("garbage", f);
    fclose(f);
    o.side = 24;
    Dataset r;
    CHECK(dataset_load(&o, cache, NULL, &r, err, sizeof err) == 0 && r.from_cache == 0 && digest(&r) == want,
          "damaged cache not rebuilt: %s", err);
    dataset_free(&r);
    dataset_free(&a);
    dataset_free(&b);
    dataset_free(&c);
}

static void write_fer(const char *dir, int pixel0)
{
    char p[512];
    mkdir(dir, 0777);
    snprintf(p, sizeof p, "%s/fer2013.csv", dir);
    FILE *f = fopen(p, "w");
    fprintf(f, "emotion,pixels,Usage\n");
    const char *usage[] = {"Training", "PublicTest", "PrivateTest"};
    for (int r = 0; r < 3; r++) {
        fprintf(f, "0,%d", r == 0 ? pixel0 : 50);
        for (int k = 1; k < 2304; k++)
            fprintf(f, " %d", (k + r) % 90 + 10);
        fprintf(f, ",%s\n", usage[r]);
    }
    fclose(f);
    snprintf(p, sizeof p, "%s/fer2013new.csv", dir);
    f = fopen(p, "w");
    fprintf(f, "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n");
    for (int r = 0; r < 3; r++)
        fprintf(f, "%s,fer%d.png,0,10,0,0,0,0,0,0,0,0\n", usage[r], r);
    fclose(f);
}

/* Options reading the FER+ folder root/name at `side` px, written first
 * with first pixel pixel0. */
static DataOptions fer_options(const char *name, int pixel0, int side)
{
    DataOptions o;
    data_options_default(&o);
    o.source = SOURCE_FERPLUS;
    snprintf(o.path, sizeof o.path, "%s/%s", root, name);
    o.side = side;
    write_fer(o.path, pixel0);
    return o;
}

/* Sets the modification time of the two FER files in dir to `when` seconds,
 * so that a rewrite differs in what the cache compares (size and mtime)
 * whatever the file system's time resolution. */
static void stamp_fer(const char *dir, time_t when)
{
    const char *files[2] = {"fer2013.csv", "fer2013new.csv"};
    const struct timespec t[2] = {{when, 0}, {when, 0}};
    for (int i = 0; i < 2; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        CHECK(utimensat(AT_FDCWD, p, t, 0) == 0, "cannot set the time of %s", p);
    }
}

static void test_source_change(const char *cache)
{
    DataOptions o = fer_options("fer", 11, 48);
    stamp_fer(o.path, 1000000000);
    Dataset a, b;
    char err[1024] = "";
    CHECK(dataset_load(&o, cache, NULL, &a, err, sizeof err) == 0 && a.from_cache == 0, "build: %s", err);
    CHECK(a.n == 3 && first_pixel(&a) == 11, "first pixel %d", first_pixel(&a));
    write_fer(o.path, 12); /* same size, new contents and a time 100 s later */
    stamp_fer(o.path, 1000000100);
    CHECK(dataset_load(&o, cache, NULL, &b, err, sizeof err) == 0, "rebuild: %s", err);
    CHECK(b.from_cache == 0 && b.n == 3 && first_pixel(&b) == 12, "changed source not rebuilt (from_cache %d, pixel %d)",
          b.from_cache, first_pixel(&b));
    dataset_free(&b);
    CHECK(dataset_load(&o, cache, NULL, &b, err, sizeof err) == 0 && b.from_cache == 1 && first_pixel(&b) == 12,
          "rebuilt cache not reused: %s", err);
    dataset_free(&a);
    dataset_free(&b);
    /* a missing source is an error even with a cache */
    snprintf(o.path, sizeof o.path, "%s/nowhere", root);
    CHECK(dataset_load(&o, cache, NULL, &a, err, sizeof err) != 0 && strstr(err, "nowhere"),
          "missing source accepted: %s", err);
}

/* A FER+ cache for a 96 px colour job stores the faces as FER+ has them,
 * 48 x 48 grey; the loader resizes and replicates them, giving the very
 * batches a load without cache (decoded at 96 px colour) gives. */
static void test_source_resolution(const char *cache)
{
    DataOptions o = fer_options("fer96", 33, 96);
    o.channels = 3;
    Dataset c, m;
    char err[1024] = "";
    CHECK(dataset_load(&o, cache, NULL, &c, err, sizeof err) == 0, "cached load: %s", err);
    CHECK(dataset_load(&o, NULL, NULL, &m, err, sizeof err) == 0, "load without cache: %s", err);
    CHECK(c.side == 48 && c.channels == 1, "the cache stores %d x %d x %d, expected FER+'s own 1 x 48 x 48", c.channels,
          c.side, c.side);
    CHECK(m.side == 96 && m.channels == 3, "without a cache: %d x %d x %d", m.channels, m.side, m.side);
    struct stat st;
    CHECK(stat(c.cache_path, &st) == 0 && st.st_size < 3 * 96 * 96 * c.n, "cache of %lld bytes is not at 48 px grey",
          (long long)st.st_size);
    int cap = 0, cc = 0;
    o.cache_side = 40; /* a cap below the source's side */
    data_stored_geometry(&o, &cap, &cc);
    CHECK(cap == 40 && cc == 1, "cache_side 40: stored %d px x %d", cap, cc);
    for (int split = SPLIT_TRAIN; split <= SPLIT_TEST; split++) {
        LoaderOptions lo = loader_options_default();
        lo.split = (Split)split;
        lo.sampler.global_batch = 1;
        lo.background = 0;
        lo.aug.pad = 6;
        Loader *a = NULL, *b = NULL;
        LoaderOptions la = lo;
        la.side = 96;
        la.channels = 3;
        CHECK(loader_create(&c, &la, &a, err, sizeof err) == 0 && loader_create(&m, &lo, &b, err, sizeof err) == 0,
              "loaders: %s", err);
        Batch x, y;
        if (a && b && loader_next(a, &x, err, sizeof err) == LOADER_OK && loader_next(b, &y, err, sizeof err) == LOADER_OK) {
            size_t n = (size_t)3 * 96 * 96;
            CHECK(x.side == 96 && x.channels == 3 && x.n == 1 && y.n == 1, "batch of %d x %d x %d", x.channels, x.side,
                  x.side);
            CHECK(memcmp(x.clean, y.clean, n * sizeof(float)) == 0 && memcmp(x.occluded, y.occluded, n * sizeof(float)) == 0,
                  "%s split: resizing while loading differs from resizing while decoding", split_name((Split)split));
        } else {
            CHECK(0, "no batch: %s", err);
        }
        loader_destroy(a);
        loader_destroy(b);
    }
    dataset_free(&c);
    dataset_free(&m);
}

/* ------------------------------------------- three ranks as processes */

typedef struct {
    pthread_barrier_t bar;
    int64_t acc[16];
    unsigned char buf[8192];
    uint64_t digest[8];
    int64_t n[8], from_cache[8];
} Shared;

typedef struct {
    Shared *s;
    int rank;
} RankCtx;

static int sh_barrier(void *ctx)
{
    pthread_barrier_wait(&((RankCtx *)ctx)->s->bar);
    return 0;
}

static int sh_sum(void *ctx, int64_t *v, int n)
{
    RankCtx *c = ctx;
    sh_barrier(ctx);
    if (c->rank == 0)
        memset(c->s->acc, 0, sizeof c->s->acc);
    sh_barrier(ctx);
    for (int k = 0; k < n; k++)
        __atomic_fetch_add(&c->s->acc[k], v[k], __ATOMIC_SEQ_CST);
    sh_barrier(ctx);
    for (int k = 0; k < n; k++)
        v[k] = c->s->acc[k];
    sh_barrier(ctx);
    return 0;
}

static int sh_bcast(void *ctx, void *buf, size_t bytes)
{
    RankCtx *c = ctx;
    if (bytes > sizeof c->s->buf)
        return -1;
    sh_barrier(ctx);
    if (c->rank == 0)
        memcpy(c->s->buf, buf, bytes);
    sh_barrier(ctx);
    if (c->rank != 0)
        memcpy(buf, c->s->buf, bytes);
    sh_barrier(ctx);
    return 0;
}

static void write_folder(const char *dir)
{
    char p[600];
    mkdir(dir, 0777);
    const char *cls[2] = {"a", "b"};
    for (int c = 0; c < 2; c++) {
        snprintf(p, sizeof p, "%s/%s", dir, cls[c]);
        mkdir(p, 0777);
        for (int k = 0; k < 7; k++) {
            unsigned char px[10 * 10 * 3];
            for (int i = 0; i < 300; i++)
                px[i] = (unsigned char)(c * 100 + k * 10 + i % 7);
            snprintf(p, sizeof p, "%s/%s/%d.png", dir, cls[c], k);
            stbi_write_png(p, 10, 10, 3, px, 30);
        }
    }
    snprintf(p, sizeof p, "%s/b/zz_broken.png", dir);
    FILE *f = fopen(p, "w");
    fputs("not a png", f);
    fclose(f);
}

static void test_parallel_build(const char *cache)
{
    const int world = 3;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/folders", root);
    write_folder(dir);
    DataOptions o;
    data_options_default(&o);
    o.source = SOURCE_FOLDER;
    snprintf(o.path, sizeof o.path, "%s", dir);
    o.side = 8;
    o.channels = 3;
    o.test_fraction = 0.3f;
    Dataset ref;
    char err[1024] = "";
    if (dataset_load(&o, NULL, NULL, &ref, err, sizeof err)) {
        CHECK(0, "serial load: %s", err);
        return;
    }
    Shared *s = mmap(NULL, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_barrierattr_t at;
    pthread_barrierattr_init(&at);
    pthread_barrierattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
    pthread_barrier_init(&s->bar, &at, (unsigned)world);
    for (int round = 0; round < 2; round++) { /* build, then read the cache */
        pid_t pid[3];
        fflush(NULL);
        for (int r = 0; r < world; r++) {
            pid[r] = fork();
            if (pid[r] == 0) {
                RankCtx rc = {s, r};
                DataComm comm = {r, world, &rc, sh_barrier, sh_sum, sh_bcast, NULL};
                Dataset d;
                char e[1024] = "";
                if (dataset_load(&o, cache, &comm, &d, e, sizeof e)) {
                    fprintf(stderr, "rank %d: %s\n", r, e);
                    _exit(1);
                }
                s->digest[r] = digest(&d);
                s->n[r] = d.n;
                s->from_cache[r] = d.from_cache;
                dataset_free(&d);
                _exit(0);
            }
        }
        for (int r = 0; r < world; r++) {
            int status = 1;
            waitpid(pid[r], &status, 0);
            CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "round %d rank %d failed", round, r);
        }
        for (int r = 0; r < world; r++) {
            CHECK(s->n[r] == ref.n && s->digest[r] == digest(&ref),
                  "round %d rank %d: %lld samples, data differ from the serial load (%d samples)", round, r,
                  (long long)s->n[r], ref.n);
            int want = round == 1; /* the second round finds the cache the first built */
            CHECK(s->from_cache[r] == want, "round %d rank %d from_cache %lld", round, r, (long long)s->from_cache[r]);
        }
    }
    CHECK(ref.n == 14 && ref.bad == 1, "serial load: n %d bad %lld", ref.n, (long long)ref.bad);
    /* no part files are left behind */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c part > /dev/null", cache);
    CHECK(system(cmd) != 0, "part files left in %s", cache);
    pthread_barrier_destroy(&s->bar);
    munmap(s, sizeof(Shared));
    dataset_free(&ref);
}

/* A flipped byte in a cached image is found when the image is read (each
 * image's CRC-32 is stored with the cache); flipped bytes in the tables are
 * refused by their Fletcher-32 checksums and the cache is built again. */
static void test_checksums(const char *cache)
{
    DataOptions o;
    data_options_default(&o);
    o.synth_count = 60;
    o.side = 16;
    o.channels = 1;
    Dataset a, b;
    char err[1024] = "";
    CHECK(dataset_load(&o, cache, NULL, &a, err, sizeof err) == 0, "build: %s", err);
    CHECK(a.image_crc != NULL, "the cache records no image checksums");
    uint8_t px[16 * 16];
    int64_t victim = 7;
    CHECK(dataset_read_sample(&a, victim, px, err, sizeof err) == 0, "an intact sample was refused: %s", err);
    /* flip one byte of image 7 in the file */
    FILE *f = fopen(a.cache_path, "r+b");
    long at = (long)(a.image_offset + victim * 16 * 16 + 100);
    int c = f && fseek(f, at, SEEK_SET) == 0 ? fgetc(f) : EOF;
    CHECK(c != EOF, "cannot read the cache at %ld", at);
    if (f && c != EOF) {
        fseek(f, at, SEEK_SET);
        fputc(c ^ 0x10, f);
    }
    if (f)
        fclose(f);
    CHECK(dataset_load(&o, cache, NULL, &b, err, sizeof err) == 0 && b.from_cache == 1, "reload: %s", err);
    int rc = dataset_read_sample(&b, victim, px, err, sizeof err);
    CHECK(rc != 0 && strstr(err, "fails its checksum") && strstr(err, "sample 7"),
          "a flipped image byte was not found (rc %d): %s", rc, err);
    CHECK(dataset_read_sample(&b, victim + 1, px, err, sizeof err) == 0, "the next sample was refused too: %s", err);
    dataset_free(&a);
    dataset_free(&b);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/occkd_cache_XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    char cache[300];
    snprintf(cache, sizeof cache, "%s/cache", root);
    test_round_trip(cache);
    test_source_change(cache);
    test_source_resolution(cache);
    test_parallel_build(cache);
    test_checksums(cache);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
    return test_finish("test_cache");
}
