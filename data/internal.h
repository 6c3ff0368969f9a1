/* internal.h - private to data/: readers, image helpers, the cache.
 *
 * Loading is two-phased. A reader's open function lists the samples of its
 * source (labels, split, name) into a Dataset whose pixels are still NULL;
 * this is cheap and every rank does it identically. Its decode function then
 * produces one sample's pixels; this is the costly part that ranks share.
 */
#ifndef OCCKD_DATA_INTERNAL_H
#define OCCKD_DATA_INTERNAL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "data/data.h"

enum { DECODE_OK = 0, DECODE_BAD = 1, DECODE_FATAL = 2 };

typedef struct {
    void *ctx;
    /* Decodes sample i of the listing into pixels (channels, side, side).
     * Returns DECODE_OK, DECODE_BAD (a per-sample problem: the message in err
     * names the file) or DECODE_FATAL. */
    int (*decode)(void *ctx, const DataOptions *o, int64_t i, uint8_t *pixels, char *err, size_t errlen);
    void (*close)(void *ctx);
    int pool_split; /* 1: samples with SPLIT_NONE are split into train/val/test by the fractions */
    int carve_val;  /* 1: val_fraction of SPLIT_TRAIN becomes SPLIT_VAL (sources with an official test) */
} Reader;

/* Reader entry points: fill meta (pixels NULL) and r; 0 or non-zero + err.
 * `verbose` is 1 on the rank that reports skipped entries to stderr. */
int synth_open(const DataOptions *o, Dataset *meta, Reader *r, int verbose, char *err, size_t errlen);
int ferplus_open(const DataOptions *o, Dataset *meta, Reader *r, int verbose, char *err, size_t errlen);
int affectnet_open(const DataOptions *o, Dataset *meta, Reader *r, int verbose, char *err, size_t errlen);
int utkface_open(const DataOptions *o, Dataset *meta, Reader *r, int verbose, char *err, size_t errlen);
int idx_open(const DataOptions *o, Dataset *meta, Reader *r, int verbose, char *err, size_t errlen);
int folder_open(const DataOptions *o, Dataset *meta, Reader *r, int verbose, char *err, size_t errlen);

/* FER+ label rules on one row of 10 vote counts (8 emotions, unknown, NF).
 * Returns the expression 0-7, or -1 when the row is dropped. In distribution
 * mode dist[8] receives the normalised emotion votes. */
int ferplus_label(const int votes[10], int distribution, float dist[FERPLUS_CLASSES]);

/* IDX file of a base name in dir: base.gz if present, else base. */
int idx_file_path(const char *dir, const char *base, char *out, size_t len);
extern const char *const idx_files[4]; /* train images, train labels, test images, test labels */

/* UTKFace file name parsing: 0 and age/gender/race (race -1 if missing). */
int utkface_parse_name(const char *name, int *age, int *gender, int *race);

/* --------------------------------------------------------------- listing */

/* The labels a source provides, for meta_init. */
enum { META_EXPRESSION = 1, META_GENDER = 2, META_CLASS = 4, META_AGE = 8 };
/* Starts a listing: allocates the arrays of the labels in `labels` (META_*
 * bits) and, soft_k > 0, of soft_k target shares per sample. */
int meta_init(Dataset *d, unsigned labels, int soft_k);
/* Appends one sample (labels -1 / NaN, split SPLIT_NONE, name NULL); returns
 * its index or -1 when out of memory. *cap tracks the allocation. */
int meta_push(Dataset *d, int *cap);
/* Keeps the samples with keep[i] != 0, in order (pixels too when present). */
void dataset_select(Dataset *d, const uint8_t *keep);
/* Splits (listing.c). split_stratified moves, within each stratum of the
 * samples in `from`, a seeded share to SPLIT_VAL and SPLIT_TEST;
 * apply_limit keeps at most `limit` samples per split (0: all); both -1
 * when out of memory. check_splits: -1 with a message when a split the
 * source should have is empty. */
int split_stratified(Dataset *d, Split from, float val_fraction, float test_fraction, uint64_t seed);
int apply_limit(Dataset *d, int limit, uint64_t seed);
int check_splits(const DataOptions *o, const Dataset *d, char *err, size_t errlen);

/* ---------------------------------------------------------------- images */

/* Decodes an image file (JPEG, PNG, BMP, ...) to 8-bit HWC with `channels`
 * channels (1 or 3). Truncated JPEGs (no end marker), empty images and images
 * of more than 2^26 pixels are refused. */
int image_load(const char *path, int channels, uint8_t **hwc, int *w, int *h, char *err, size_t errlen);
/* Resamples src (sh, sw, c) HWC to dst (dh, dw, c): bilinear when enlarging,
 * a triangle filter as wide as the scale (area-like) when shrinking. */
void image_resize(const uint8_t *src, int sw, int sh, int c, uint8_t *dst, int dw, int dh);
/* Crops the box (x, y, w, h) of src HWC (clipped to the image) and resizes it
 * into side x side CHW with `channels` output channels. Non-zero if the box
 * does not overlap the image. */
int image_crop_to_chw(const uint8_t *src, int sw, int sh, int sc, int x, int y, int w, int h, int side,
                      int channels, uint8_t *chw);
/* Grey <-> RGB on one HWC image of n pixels (luma 0.299 R + 0.587 G + 0.114 B). */
void image_grey_to_rgb(const uint8_t *grey, size_t n, uint8_t *rgb);
void image_rgb_to_grey(const uint8_t *rgb, size_t n, uint8_t *grey);

/* A list of image files (and optional face boxes) as a reader context;
 * image_list_decode / image_list_close are its Reader functions. */
typedef struct {
    char **path;
    int (*box)[4]; /* x, y, w, h per image, or NULL: whole image */
    int n, cap;
} ImageList;

ImageList *image_list_new(int with_boxes);
/* The start of the readers of image files: meta's arrays for `labels`
 * (meta_init) and an empty list, with face boxes or not. NULL with "<who>:
 * out of memory" in err when either allocation fails. */
ImageList *image_list_begin(const char *who, Dataset *meta, unsigned labels, int with_boxes, char *err,
                            size_t errlen);
int image_list_add(ImageList *l, const char *path, const int box[4]);
int image_list_decode(void *ctx, const DataOptions *o, int64_t i, uint8_t *pixels, char *err, size_t errlen);
void image_list_close(void *ctx);

/* ------------------------------------------------------------------ misc */

/* A big-endian 32-bit number (IDX headers, PNG chunk lengths). */
static inline uint32_t data_be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

void data_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Splits a CSV line in place (quotes allowed, trailing CR/LF stripped);
 * returns the number of fields (at most max). */
int csv_split(char *line, char **field, int max);
/* Drops a UTF-8 byte-order mark (EF BB BF, as spreadsheet programs write
 * at the start of a CSV file) from the start of line in place; returns the
 * line's new length (len: its length before). */
static inline size_t csv_drop_bom(char *line, size_t len)
{
    if (len >= 3 && (unsigned char)line[0] == 0xEF && (unsigned char)line[1] == 0xBB &&
        (unsigned char)line[2] == 0xBF) {
        memmove(line, line + 3, len - 3 + 1);
        return len - 3;
    }
    return len;
}
/* Strict integer parsing: 0 and *v, or -1. */
int parse_int(const char *s, long *v);
int parse_double(const char *s, double *v);
/* Sorted entries of a folder: dirs = 1 sub-folders, 0 regular files. */
int list_dir(const char *path, int dirs, char ***names, int *n, char *err, size_t errlen);
void free_names(char **names, int n);
int has_image_ext(const char *name);
char *str_dup(const char *s);

/* --------------------------------------------------------------- cache */

/* A description of the source as files: a hash over (name, size, mtime) and
 * a readable summary of the first few entries. */
typedef struct {
    uint64_t hash;
    int64_t files;
    char summary[1024];
} Fingerprint;

/* FNV-1a over n bytes, continuing from h (FP_HASH_START to begin). */
#define FP_HASH_START 0xCBF29CE484222325ull
uint64_t fp_hash(uint64_t h, const void *p, size_t n);
void fp_init(Fingerprint *f);
/* Adds one file or folder (its size and modification time) under a label. */
int fp_add_path(Fingerprint *f, const char *path, char *err, size_t errlen);
/* The fingerprint of a source (files it reads, not their contents). */
int source_fingerprint(const DataOptions *o, Fingerprint *f, char *err, size_t errlen);
/* Canonical text of the options that shape the decoded data. */
void options_text(const DataOptions *o, char *buf, size_t len);

/* 1 when the cache at path matches (options text, fingerprint), 0 when it
 * is absent or stale (why is set), -1 on error. */
int cache_check(const char *path, const char *options, const Fingerprint *f, char *why, size_t whylen);
/* Where cache_write gets the pixels of sample i (i in the data set's order). */
typedef struct {
    void *ctx;
    int (*get)(void *ctx, int64_t i, uint8_t *dst, char *err, size_t errlen);
} PixelSource;

/* Writes d to path atomically (path.tmp.<pid>, then rename), the images
 * fetched run by run from src (NULL: from d->pixels). */
int cache_write(const char *path, const Dataset *d, const char *options, const Fingerprint *f, const PixelSource *src,
                char *err, size_t errlen);
/* Reads the labels, splits and names of a cache and opens its images for
 * streaming (d->streaming; no pixels in memory). */
int cache_read(const char *path, Dataset *d, char *err, size_t errlen);

#endif
