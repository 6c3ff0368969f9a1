/* idx.c - IDX files of the MNIST family (Fashion-MNIST: Debian's
 * dataset-fashion-mnist in /usr/share/datasets/fashion-mnist), gzip or raw.
 *
 * Images: magic 0x00000803, count, rows, cols (big-endian 32-bit), then
 * count*rows*cols bytes. Labels: magic 0x00000801, count, then count bytes.
 * The class count is one more than the largest training label; a test label
 * beyond it is an error. train-* is the train split (val_fraction of it is
 * carved out, stratified by class), t10k-* the test split.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "data/internal.h"

const char *const idx_files[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                                  "t10k-labels-idx1-ubyte"};

int idx_file_path(const char *dir, const char *base, char *out, size_t len)
{
    struct stat st;
    snprintf(out, len, "%s/%s.gz", dir, base);
    if (stat(out, &st) == 0)
        return 0;
    snprintf(out, len, "%s/%s", dir, base);
    return stat(out, &st) == 0 ? 0 : -1;
}

/* Reads one IDX file: its dims (1 for labels, 3 for images) and payload. */
static int idx_read(const char *path, int want_dims, uint32_t dims[3], uint8_t **data, char *err, size_t errlen)
{
    gzFile g = gzopen(path, "rb");
    if (!g) {
        data_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    uint8_t head[16];
    unsigned hbytes = 4 + 4 * (unsigned)want_dims;
    int rc = -1;
    *data = NULL;
    int got_head = gzread(g, head, hbytes);
    if (got_head != (int)hbytes) {
        int zerr = Z_OK;
        const char *zmsg = gzerror(g, &zerr);
        if (got_head < 0 || (zerr != Z_OK && zerr != Z_BUF_ERROR)) /* a damaged gzip stream, not a short file */
            data_err(err, errlen, "%s: cannot decompress: %s", path, zmsg ? zmsg : "gzip error");
        else
            data_err(err, errlen, "%s: truncated header (expected %u bytes)", path, hbytes);
        goto out;
    }
    uint32_t magic = data_be32(head), expect = 0x800u | (uint32_t)want_dims;
    if (magic != expect) {
        data_err(err, errlen, "%s: magic 0x%08x (expected 0x%08x: unsigned bytes, %d dimension(s))", path, magic,
                 expect, want_dims);
        goto out;
    }
    uint64_t total = 1;
    for (int k = 0; k < want_dims; k++) {
        dims[k] = data_be32(head + 4 + 4 * k);
        total *= dims[k];
    }
    if (want_dims == 3 && (dims[1] == 0 || dims[2] == 0 || dims[1] > 4096 || dims[2] > 4096)) {
        data_err(err, errlen, "%s: image size %ux%u out of range", path, dims[1], dims[2]);
        goto out;
    }
    if (total > ((uint64_t)1 << 34) || dims[0] > INT32_MAX) {
        data_err(err, errlen, "%s: %u entries, %llu bytes of payload is implausible", path, dims[0],
                 (unsigned long long)total);
        goto out;
    }
    /* The buffer grows with the bytes read, never beyond them: a header
     * claiming more than the file holds costs no more memory than the file. */
    uint64_t got = 0, cap = 0;
    while (got < total) {
        if (got == cap) {
            uint64_t ncap = cap ? cap * 2 : 1u << 16;
            ncap = ncap < total ? ncap : total;
            uint8_t *nd = realloc(*data, ncap);
            if (!nd) {
                data_err(err, errlen, "%s: out of memory for %llu bytes", path, (unsigned long long)ncap);
                goto out;
            }
            *data = nd, cap = ncap;
        }
        unsigned chunk = cap - got > (1u << 30) ? (1u << 30) : (unsigned)(cap - got);
        int n = gzread(g, *data + got, chunk);
        if (n <= 0)
            break;
        got += (uint64_t)n;
    }
    if (!*data && !(*data = malloc(1))) {
        data_err(err, errlen, "%s: out of memory", path);
        goto out;
    }
    if (got != total) {
        int zerr;
        const char *zmsg = gzerror(g, &zerr);
        data_err(err, errlen, "%s: truncated: %llu of %llu payload bytes%s%s", path, (unsigned long long)got,
                 (unsigned long long)total, zerr ? ": " : "", zerr ? zmsg : "");
        goto out;
    }
    uint8_t extra;
    if (gzread(g, &extra, 1) == 1) {
        data_err(err, errlen, "%s: more bytes than the header's %llu (wrong sizes?)", path, (unsigned long long)total);
        goto out;
    }
    rc = 0;
out:
    gzclose(g);
    if (rc) {
        free(*data);
        *data = NULL;
    }
    return rc;
}

typedef struct {
    uint8_t *img[2]; /* train, test: count x rows x cols */
    int n_train;
    int rows, cols;
} IdxCtx;

static int idx_decode(void *ctx, const DataOptions *o, int64_t i, uint8_t *pixels, char *err, size_t errlen)
{
    IdxCtx *c = ctx;
    size_t sz = (size_t)c->rows * c->cols;
    const uint8_t *src = i < c->n_train ? c->img[0] + (size_t)i * sz : c->img[1] + (size_t)(i - c->n_train) * sz;
    image_crop_to_chw(src, c->cols, c->rows, 1, 0, 0, c->cols, c->rows, o->side, o->channels, pixels);
    return DECODE_OK;
}

static void idx_close(void *ctx)
{
    IdxCtx *c = ctx;
    if (!c)
        return;
    free(c->img[0]);
    free(c->img[1]);
    free(c);
}

int idx_open(const DataOptions *o, Dataset *meta, Reader *r, int verbose, char *err, size_t errlen)
{
    IdxCtx *c = calloc(1, sizeof *c);
    uint8_t *lab[2] = {NULL, NULL};
    uint32_t idim[2][3], ldim[2][3];
    char path[4][2200];
    int rc = -1;
    if (!c || meta_init(meta, META_CLASS, 0)) {
        free(c);
        data_err(err, errlen, "idx: out of memory");
        return -1;
    }
    for (int k = 0; k < 4; k++)
        if (idx_file_path(o->path, idx_files[k], path[k], sizeof path[k])) {
            data_err(err, errlen, "%s/%s(.gz): missing IDX file", o->path, idx_files[k]);
            goto out;
        }
    for (int s = 0; s < 2; s++) {
        if (idx_read(path[2 * s], 3, idim[s], &c->img[s], err, errlen) ||
            idx_read(path[2 * s + 1], 1, ldim[s], &lab[s], err, errlen))
            goto out;
        if (idim[s][0] != ldim[s][0]) {
            data_err(err, errlen, "%s: %u labels for %u images in %s", path[2 * s + 1], ldim[s][0], idim[s][0],
                     path[2 * s]);
            goto out;
        }
    }
    if (idim[0][1] != idim[1][1] || idim[0][2] != idim[1][2]) {
        data_err(err, errlen, "%s: images are %ux%u but training images are %ux%u", path[2], idim[1][1], idim[1][2],
                 idim[0][1], idim[0][2]);
        goto out;
    }
    c->rows = (int)idim[0][1], c->cols = (int)idim[0][2], c->n_train = (int)idim[0][0];
    int classes = 0;
    for (uint32_t i = 0; i < ldim[0][0]; i++)
        if (lab[0][i] + 1 > classes)
            classes = lab[0][i] + 1;
    /* every class up to the largest label has training images: one stray
     * label (255, say) would otherwise make hundreds of empty classes */
    if (classes > 0) {
        int *count = calloc((size_t)classes, sizeof *count);
        uint32_t at_max = 0;
        if (!count) {
            data_err(err, errlen, "idx: out of memory");
            goto out;
        }
        for (uint32_t i = 0; i < ldim[0][0]; i++) {
            count[lab[0][i]]++;
            if ((int)lab[0][i] == classes - 1)
                at_max = i;
        }
        int missing = -1;
        for (int k = 0; k < classes && missing < 0; k++)
            if (count[k] == 0)
                missing = k;
        free(count);
        if (missing >= 0) {
            data_err(err, errlen, "%s: no training image has label %d, but image %u has label %d: the classes must "
                     "be 0 to N-1 with images in each (a stray label?)", path[1], missing, at_max, classes - 1);
            goto out;
        }
    }
    for (uint32_t i = 0; i < ldim[1][0]; i++)
        if (lab[1][i] >= classes) {
            data_err(err, errlen, "%s: label %u of image %u out of range (training labels are 0-%d)", path[3],
                     lab[1][i], i, classes - 1);
            goto out;
        }
    int cap = 0;
    char name[64];
    for (int s = 0; s < 2; s++)
        for (uint32_t i = 0; i < ldim[s][0]; i++) {
            int j = meta_push(meta, &cap);
            snprintf(name, sizeof name, "%s:%u", s ? "t10k" : "train", i);
            if (j < 0 || !(meta->name[j] = str_dup(name))) {
                data_err(err, errlen, "idx: out of memory");
                goto out;
            }
            meta->attr_class[ATTR_CLASS][j] = lab[s][i];
            meta->split[j] = s ? SPLIT_TEST : SPLIT_TRAIN;
        }
    meta->n_classes[ATTR_CLASS] = classes;
    snprintf(meta->source_desc, sizeof meta->source_desc, "IDX %.200s (%d classes)", o->path, classes);
    *r = (Reader){.ctx = c, .decode = idx_decode, .close = idx_close, .carve_val = 1};
    rc = 0;
out:
    free(lab[0]);
    free(lab[1]);
    if (rc)
        idx_close(c);
    return rc;
}
