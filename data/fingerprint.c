/* fingerprint.c - what a cache is checked against: the files a source
 * reads (names, sizes, modification times, not contents) and the canonical
 * text of the options that shape the decoded data. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/internal.h"

uint64_t fp_hash(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001B3ull; /* FNV-1a */
    }
    return h;
}

void fp_init(Fingerprint *f)
{
    f->hash = FP_HASH_START;
    f->files = 0;
    f->summary[0] = '\0';
}

int fp_add_path(Fingerprint *f, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st)) {
        data_err(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    int64_t v[3] = {(int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec, (int64_t)st.st_mtim.tv_nsec};
    if (S_ISDIR(st.st_mode))
        v[0] = -1; /* a folder's size says nothing */
    f->hash = fp_hash(f->hash, path, strlen(path) + 1);
    f->hash = fp_hash(f->hash, v, sizeof v);
    if (f->files < 6) {
        size_t len = strlen(f->summary);
        snprintf(f->summary + len, sizeof f->summary - len, "%s%s size %lld mtime %lld.%09lld", len ? "; " : "",
                 path, (long long)v[0], (long long)v[1], (long long)v[2]);
    } else if (f->files == 6) {
        size_t len = strlen(f->summary);
        snprintf(f->summary + len, sizeof f->summary - len, "; ...");
    }
    f->files++;
    return 0;
}

/* Every image file of a folder (sorted), recursing one level for classes. */
static int fp_add_folder(Fingerprint *f, const char *dir, int class_level, char *err, size_t errlen)
{
    char **names;
    int n;
    if (list_dir(dir, class_level, &names, &n, err, errlen))
        return -1;
    char p[4096];
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, names[i]) >= sizeof p) {
            data_err(err, errlen, "%s/%s: path longer than %zu characters", dir, names[i], sizeof p - 1);
            rc = -1;
            break;
        }
        rc = class_level ? fp_add_folder(f, p, 0, err, errlen) : fp_add_path(f, p, err, errlen);
    }
    free_names(names, n);
    return rc;
}

int source_fingerprint(const DataOptions *o, Fingerprint *f, char *err, size_t errlen)
{
    fp_init(f);
    char p[2200];
    switch (o->source) {
    case SOURCE_SYNTH: return 0;
    case SOURCE_FERPLUS:
        snprintf(p, sizeof p, "%s/fer2013.csv", o->path);
        if (fp_add_path(f, p, err, errlen))
            return -1;
        snprintf(p, sizeof p, "%s/fer2013new.csv", o->path);
        return fp_add_path(f, p, err, errlen);
    case SOURCE_AFFECTNET:
        snprintf(p, sizeof p, "%s/training.csv", o->path);
        if (fp_add_path(f, p, err, errlen))
            return -1;
        snprintf(p, sizeof p, "%s/validation.csv", o->path);
        if (fp_add_path(f, p, err, errlen))
            return -1;
        return fp_add_path(f, o->images[0] ? o->images : o->path, err, errlen);
    case SOURCE_UTKFACE: return fp_add_folder(f, o->path, 0, err, errlen);
    case SOURCE_FOLDER: return fp_add_folder(f, o->path, 1, err, errlen);
    case SOURCE_IDX:
        for (int k = 0; k < 4; k++) {
            if (idx_file_path(o->path, idx_files[k], p, sizeof p)) {
                data_err(err, errlen, "%s/%s(.gz): missing IDX file", o->path, idx_files[k]);
                return -1;
            }
            if (fp_add_path(f, p, err, errlen))
                return -1;
        }
        return 0;
    }
    return 0;
}

void options_text(const DataOptions *o, char *buf, size_t len)
{
    char path[1024] = "", images[1024] = "";
    if (o->path[0] && !realpath(o->path, path))
        snprintf(path, sizeof path, "%s", o->path);
    if (o->images[0] && !realpath(o->images, images))
        snprintf(images, sizeof images, "%s", o->images);
    snprintf(buf, len,
             "source=%s path=%s images=%s side=%d channels=%d labels=%s val_fraction=%.6g test_fraction=%.6g "
             "split_seed=%llu on_bad_sample=%s limit=%d synth_count=%d synth_seed=%llu format=3",
             source_name(o->source), path, images, o->side, o->channels,
             o->ferplus_distribution ? "distribution" : "majority", o->val_fraction, o->test_fraction,
             (unsigned long long)o->split_seed, o->on_bad_sample == BAD_SAMPLE_FAIL ? "fail" : "skip", o->limit,
             o->source == SOURCE_SYNTH ? o->synth_count : 0,
             (unsigned long long)(o->source == SOURCE_SYNTH ? o->synth_seed : 0));
}
