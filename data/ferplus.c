/* ferplus.c - FER+ : fer2013.csv (emotion,pixels,Usage; 48x48 grey pixels
 * as 2304 space-separated integers) joined row by row with fer2013new.csv
 * (Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,
 * contempt,unknown,NF vote counts).
 *
 * Label rules (FER+): vote counts of 1 are outliers and set to 0. Majority:
 * the column holding more than half of the remaining votes (unknown and NF
 * count in the total) is the label; rows without such a column, or where it
 * is unknown or NF, are dropped. Distribution: the row's top column (ties go
 * to the earlier column) must be one of the 8 emotions, else the row is
 * dropped; the 8 emotion votes normalised to sum 1 are the soft target and
 * their top column the hard label. Rows with an empty image name (images
 * FER+ removed) are dropped too. Training / PublicTest / PrivateTest are the
 * train / val / test splits.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"

const char *const ferplus_emotions[FERPLUS_CLASSES] = {"neutral", "happiness", "surprise", "sadness",
                                                       "anger",   "disgust",   "fear",     "contempt"};

#define FER_SIDE 48
#define FER_PIXELS (FER_SIDE * FER_SIDE)

int ferplus_label(const int votes[10], int distribution, float dist[FERPLUS_CLASSES])
{
    int v[10], sum = 0, top = 0;
    for (int k = 0; k < 10; k++) {
        v[k] = votes[k] <= 1 ? 0 : votes[k];
        sum += v[k];
        if (v[k] > v[top])
            top = k;
    }
    if (sum == 0 || top >= FERPLUS_CLASSES)
        return -1;
    if (!distribution)
        return 2 * v[top] > sum ? top : -1;
    int emo = 0;
    for (int k = 0; k < FERPLUS_CLASSES; k++)
        emo += v[k];
    for (int k = 0; k < FERPLUS_CLASSES; k++)
        dist[k] = (float)v[k] / (float)emo;
    return top;
}

typedef struct {
    uint8_t *pixels; /* n x 48 x 48 */
    int cap;
} FerCtx;

static int fer_decode(void *ctx, const DataOptions *o, int64_t i, uint8_t *pixels, char *err, size_t errlen)
{
    FerCtx *c = ctx;
    image_crop_to_chw(c->pixels + (size_t)i * FER_PIXELS, FER_SIDE, FER_SIDE, 1, 0, 0, FER_SIDE, FER_SIDE, o->side,
                      o->channels, pixels);
    return DECODE_OK;
}

static void fer_close(void *ctx)
{
    FerCtx *c = ctx;
    free(c->pixels);
    free(c);
}

static int usage_split(const char *u)
{
    if (!strcmp(u, "Training"))
        return SPLIT_TRAIN;
    if (!strcmp(u, "PublicTest"))
        return SPLIT_VAL;
    if (!strcmp(u, "PrivateTest"))
        return SPLIT_TEST;
    return -1;
}

static int parse_pixels(const char *s, uint8_t *out, const char *file, long line, char *err, size_t errlen)
{
    int n = 0;
    const char *p = s;
    for (;;) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && *end != ' ') || errno) {
            data_err(err, errlen, "%s:%ld: pixel %d is not an integer", file, line, n + 1);
            return -1;
        }
        if (v < 0 || v > 255) {
            data_err(err, errlen, "%s:%ld: pixel %d = %ld out of range (expected 0-255)", file, line, n + 1, v);
            return -1;
        }
        if (n < FER_PIXELS)
            out[n] = (uint8_t)v;
        n++;
        p = end;
    }
    if (n != FER_PIXELS) {
        data_err(err, errlen, "%s:%ld: %d pixels (expected %d = 48x48)", file, line, n, FER_PIXELS);
        return -1;
    }
    return 0;
}

typedef struct {
    FILE *f;
    char *buf;
    size_t cap;
    char path[1100];
    long line;
} LineFile;

static int lf_open(LineFile *l, const char *dir, const char *name, char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    snprintf(l->path, sizeof l->path, "%s/%s", dir, name);
    l->f = fopen(l->path, "r");
    if (!l->f) {
        data_err(err, errlen, "%s: cannot open: %s", l->path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Next non-empty line, or NULL at the end (a byte-order mark opening the
 * file is dropped). */
static char *lf_next(LineFile *l)
{
    for (;;) {
        ssize_t n = getline(&l->buf, &l->cap, l->f);
        if (n < 0)
            return NULL;
        l->line++;
        if (l->line == 1)
            n = (ssize_t)csv_drop_bom(l->buf, (size_t)n);
        if (strspn(l->buf, " \r\n") != (size_t)n)
            return l->buf;
    }
}

static void lf_close(LineFile *l)
{
    if (l->f)
        fclose(l->f);
    free(l->buf);
}

/* One joined row: checks both files' fields and adds the sample. */
static int fer_row(const DataOptions *o, Dataset *meta, int *mcap, FerCtx *c, LineFile *a, LineFile *b,
                   char *err, size_t errlen)
{
    char *fa[4], *fb[13];
    int na = csv_split(a->buf, fa, 4), nb = csv_split(b->buf, fb, 13);
    if (na != 3) {
        data_err(err, errlen, "%s:%ld: %d fields (expected 3: emotion,pixels,Usage)", a->path, a->line, na);
        return -1;
    }
    if (nb != 12) {
        data_err(err, errlen, "%s:%ld: %d fields (expected 12: Usage,Image name,10 vote counts)", b->path, b->line,
                 nb);
        return -1;
    }
    long emo;
    if (parse_int(fa[0], &emo) || emo < 0 || emo > 6) {
        data_err(err, errlen, "%s:%ld: emotion '%s' out of range (expected 0-6)", a->path, a->line, fa[0]);
        return -1;
    }
    int split = usage_split(fa[2]);
    if (split < 0) {
        data_err(err, errlen, "%s:%ld: Usage '%s' (expected Training, PublicTest or PrivateTest)", a->path, a->line,
                 fa[2]);
        return -1;
    }
    if (strcmp(fa[2], fb[0])) {
        data_err(err, errlen, "%s:%ld: Usage '%s' differs from %s:%ld ('%s'); the files are not row-aligned",
                 b->path, b->line, fb[0], a->path, a->line, fa[2]);
        return -1;
    }
    int votes[10];
    for (int k = 0; k < 10; k++) {
        long v;
        if (parse_int(fb[2 + k], &v) || v < 0 || v > 1000) {
            data_err(err, errlen, "%s:%ld: vote count %d '%s' out of range (expected an integer 0-1000)", b->path,
                     b->line, k + 1, fb[2 + k]);
            return -1;
        }
        votes[k] = (int)v;
    }
    if (c->cap == meta->n || !c->pixels) {
        int nc = c->cap ? c->cap * 2 : 1024;
        uint8_t *np = realloc(c->pixels, (size_t)nc * FER_PIXELS);
        if (!np) {
            data_err(err, errlen, "%s: out of memory", a->path);
            return -1;
        }
        c->pixels = np, c->cap = nc;
    }
    if (parse_pixels(fa[1], c->pixels + (size_t)meta->n * FER_PIXELS, a->path, a->line, err, errlen))
        return -1;
    float dist[FERPLUS_CLASSES];
    int label = ferplus_label(votes, o->ferplus_distribution, dist);
    if (label < 0 || !fb[1][0]) {
        meta->dropped++;
        return 0;
    }
    int i = meta_push(meta, mcap);
    if (i < 0 || !(meta->name[i] = str_dup(fb[1]))) {
        data_err(err, errlen, "%s: out of memory", a->path);
        return -1;
    }
    meta->attr_class[ATTR_EXPRESSION][i] = label;
    meta->split[i] = (uint8_t)split;
    if (meta->soft)
        memcpy(meta->soft + (size_t)i * FERPLUS_CLASSES, dist, sizeof dist);
    return 0;
}

static int check_header(LineFile *l, const char *expect, char *err, size_t errlen)
{
    if (!lf_next(l)) {
        data_err(err, errlen, "%s: empty file (expected the header '%s')", l->path, expect);
        return -1;
    }
    if (strncmp(l->buf, expect, strlen(expect))) {
        data_err(err, errlen, "%s:%ld: header does not start with '%s'", l->path, l->line, expect);
        return -1;
    }
    return 0;
}

int ferplus_open(const DataOptions *o, Dataset *meta, Reader *r, int verbose, char *err, size_t errlen)
{
    LineFile a, b;
    memset(&b, 0, sizeof b);
    FerCtx *c = calloc(1, sizeof *c);
    int rc = -1, mcap = 0;
    if (!c || meta_init(meta, META_EXPRESSION, o->ferplus_distribution ? FERPLUS_CLASSES : 0)) {
        free(c);
        data_err(err, errlen, "ferplus: out of memory");
        return -1;
    }
    if (lf_open(&a, o->path, "fer2013.csv", err, errlen))
        goto out;
    if (lf_open(&b, o->path, "fer2013new.csv", err, errlen))
        goto out;
    if (check_header(&a, "emotion,pixels,Usage", err, errlen) ||
        check_header(&b, "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF",
                     err, errlen))
        goto out;
    for (;;) {
        char *la = lf_next(&a), *lb = lf_next(&b);
        if (!la && !lb)
            break;
        if (!la || !lb) {
            LineFile *shorter = la ? &b : &a, *longer = la ? &a : &b;
            data_err(err, errlen, "%s:%ld: row without a partner: %s ends at line %ld", longer->path, longer->line,
                     shorter->path, shorter->line);
            goto out;
        }
        if (fer_row(o, meta, &mcap, c, &a, &b, err, errlen))
            goto out;
    }
    meta->n_classes[ATTR_EXPRESSION] = FERPLUS_CLASSES;
    snprintf(meta->source_desc, sizeof meta->source_desc, "fer2013.csv + fer2013new.csv (%s)",
             o->ferplus_distribution ? "distribution" : "majority");
    if (verbose && meta->dropped)
        fprintf(stderr, "ferplus: %lld rows dropped by the label rules (unknown, NF or no majority)\n",
                (long long)meta->dropped);
    *r = (Reader){.ctx = c, .decode = fer_decode, .close = fer_close};
    rc = 0;
out:
    lf_close(&a);
    lf_close(&b);
    if (rc)
        fer_close(c);
    return rc;
}
