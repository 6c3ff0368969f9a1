/* affectnet.c - AffectNet: training.csv and validation.csv (columns
 * subDirectory_filePath,face_x,face_y,face_width,face_height,
 * facial_landmarks,expression,valence,arousal) with the images below a root
 * folder (DataOptions.images, or path). The face box is cropped and resized.
 *
 * Expressions 0-7 (neutral, happy, sad, surprise, fear, disgust, anger,
 * contempt) are kept and renumbered into the FER+ order of ferplus_emotions;
 * 8-10 (none, uncertain, non-face) are dropped and counted. validation.csv is
 * the test split; val_fraction of training.csv becomes the val split
 * (stratified by expression). Missing or unreadable images follow
 * on_bad_sample; malformed rows are errors naming file and line.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"

/* AffectNet expression code -> FER+ class */
static const int to_ferplus[8] = {0, 1, 3, 2, 6, 5, 4, 7};

static const char *const header = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,"
                                  "expression";

static int read_csv(const DataOptions *o, const char *file, Split split, Dataset *meta, int *cap, ImageList *l,
                    char *err, size_t errlen)
{
    char path[1100], img[4200];
    const char *root = o->images[0] ? o->images : o->path;
    snprintf(path, sizeof path, "%s/%s", o->path, file);
    FILE *f = fopen(path, "r");
    if (!f) {
        data_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char *buf = NULL, *fld[10];
    size_t bcap = 0;
    long line = 0;
    int rc = -1, seen_header = 0;
    ssize_t got;
    while ((got = getline(&buf, &bcap, f)) >= 0) {
        line++;
        if (line == 1) /* a byte-order mark opening the file */
            csv_drop_bom(buf, (size_t)got);
        if (strspn(buf, " \r\n") == strlen(buf))
            continue;
        if (!seen_header) {
            seen_header = 1;
            if (strncmp(buf, header, strlen(header))) {
                data_err(err, errlen, "%s:%ld: header does not start with '%s'", path, line, header);
                goto out;
            }
            continue;
        }
        int nf = csv_split(buf, fld, 10);
        if (nf != 9) {
            data_err(err, errlen, "%s:%ld: %d fields (expected 9)", path, line, nf);
            goto out;
        }
        long box[4], expr;
        for (int k = 0; k < 4; k++)
            if (parse_int(fld[1 + k], &box[k]) || box[k] < 0 || box[k] > 1000000) {
                data_err(err, errlen, "%s:%ld: face box field %d '%s' is not a non-negative integer", path, line,
                         2 + k, fld[1 + k]);
                goto out;
            }
        if (parse_int(fld[6], &expr) || expr < 0 || expr > 10) {
            data_err(err, errlen, "%s:%ld: expression '%s' out of range (expected 0-10)", path, line, fld[6]);
            goto out;
        }
        if (!fld[0][0]) {
            data_err(err, errlen, "%s:%ld: empty image path", path, line);
            goto out;
        }
        if (expr > 7) {
            meta->dropped++;
            continue;
        }
        snprintf(img, sizeof img, "%s/%s", root, fld[0]);
        int b[4] = {(int)box[0], (int)box[1], (int)box[2], (int)box[3]};
        int i = meta_push(meta, cap);
        if (i < 0 || image_list_add(l, img, b) || !(meta->name[i] = str_dup(fld[0]))) {
            data_err(err, errlen, "%s: out of memory", path);
            goto out;
        }
        meta->attr_class[ATTR_EXPRESSION][i] = to_ferplus[expr];
        meta->split[i] = (uint8_t)split;
    }
    if (!seen_header) {
        data_err(err, errlen, "%s: empty file (expected the header '%s...')", path, header);
        goto out;
    }
    rc = 0;
out:
    free(buf);
    fclose(f);
    return rc;
}

int affectnet_open(const DataOptions *o, Dataset *meta, Reader *r, int verbose, char *err, size_t errlen)
{
    ImageList *l = image_list_begin("affectnet", meta, META_EXPRESSION, 1, err, errlen);
    int cap = 0;
    if (!l)
        return -1;
    if (read_csv(o, "training.csv", SPLIT_TRAIN, meta, &cap, l, err, errlen) ||
        read_csv(o, "validation.csv", SPLIT_TEST, meta, &cap, l, err, errlen)) {
        image_list_close(l);
        return -1;
    }
    meta->n_classes[ATTR_EXPRESSION] = FERPLUS_CLASSES;
    snprintf(meta->source_desc, sizeof meta->source_desc, "AffectNet %.200s", o->path);
    if (verbose && meta->dropped)
        fprintf(stderr, "affectnet: %lld rows with expression 8-10 (none, uncertain, non-face) dropped\n",
                (long long)meta->dropped);
    *r = (Reader){.ctx = l, .decode = image_list_decode, .close = image_list_close, .carve_val = 1};
    return 0;
}
