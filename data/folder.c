/* folder.c - image folders (one sub-folder per class, class names sorted;
 * classes are numbered in that order), and the image-list reader context
 * that the folder, UTKFace and AffectNet readers share. Files whose names do
 * not end in an image extension are ignored; images that cannot be decoded
 * follow on_bad_sample. */
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"

ImageList *image_list_new(int with_boxes)
{
    ImageList *l = calloc(1, sizeof *l);
    if (l && with_boxes)
        l->box = malloc(sizeof(int[4]));
    if (l && with_boxes && !l->box) {
        free(l);
        return NULL;
    }
    return l;
}

ImageList *image_list_begin(const char *who, Dataset *meta, unsigned labels, int with_boxes, char *err,
                            size_t errlen)
{
    ImageList *l = image_list_new(with_boxes);
    if (!l || meta_init(meta, labels, 0)) {
        image_list_close(l);
        data_err(err, errlen, "%s: out of memory", who);
        return NULL;
    }
    return l;
}

int image_list_add(ImageList *l, const char *path, const int box[4])
{
    if (l->n == l->cap) {
        int nc = l->cap ? l->cap * 2 : 256;
        char **np = realloc(l->path, sizeof(char *) * (size_t)nc);
        if (!np)
            return -1;
        l->path = np;
        if (l->box) {
            int(*nb)[4] = realloc(l->box, sizeof(int[4]) * (size_t)nc);
            if (!nb)
                return -1;
            l->box = nb;
        }
        l->cap = nc;
    }
    if (!(l->path[l->n] = str_dup(path)))
        return -1;
    if (l->box)
        memcpy(l->box[l->n], box, sizeof(int[4]));
    l->n++;
    return 0;
}

int image_list_decode(void *ctx, const DataOptions *o, int64_t i, uint8_t *pixels, char *err, size_t errlen)
{
    ImageList *l = ctx;
    uint8_t *hwc;
    int w, h;
    if (image_load(l->path[i], o->channels, &hwc, &w, &h, err, errlen))
        return DECODE_BAD;
    int bx = 0, by = 0, bw = w, bh = h;
    if (l->box)
        bx = l->box[i][0], by = l->box[i][1], bw = l->box[i][2], bh = l->box[i][3];
    int rc = image_crop_to_chw(hwc, w, h, o->channels, bx, by, bw, bh, o->side, o->channels, pixels);
    free(hwc);
    if (rc) {
        data_err(err, errlen, "%s: face box x=%d y=%d w=%d h=%d lies outside the %dx%d image", l->path[i], bx, by, bw,
                 bh, w, h);
        return DECODE_BAD;
    }
    return DECODE_OK;
}

void image_list_close(void *ctx)
{
    ImageList *l = ctx;
    if (!l)
        return;
    for (int i = 0; i < l->n; i++)
        free(l->path[i]);
    free(l->path);
    free(l->box);
    free(l);
}

int folder_open(const DataOptions *o, Dataset *meta, Reader *r, int verbose, char *err, size_t errlen)
{
    char **classes = NULL;
    int n_classes = 0, rc = -1, cap = 0;
    ImageList *l = image_list_begin("folder", meta, META_CLASS, 0, err, errlen);
    if (!l)
        return -1;
    if (list_dir(o->path, 1, &classes, &n_classes, err, errlen))
        goto out;
    if (n_classes == 0) {
        data_err(err, errlen, "%s: no class sub-folders (expected one sub-folder of images per class)", o->path);
        goto out;
    }
    char p[4200];
    for (int k = 0; k < n_classes; k++) {
        char **files;
        int nf;
        snprintf(p, sizeof p, "%s/%s", o->path, classes[k]);
        if (list_dir(p, 0, &files, &nf, err, errlen))
            goto out;
        for (int f = 0; f < nf; f++) {
            if (!has_image_ext(files[f]))
                continue;
            snprintf(p, sizeof p, "%s/%s/%s", o->path, classes[k], files[f]);
            int i = meta_push(meta, &cap);
            if (i < 0 || image_list_add(l, p, NULL) || !(meta->name[i] = malloc(strlen(classes[k]) + strlen(files[f]) + 2))) {
                free_names(files, nf);
                data_err(err, errlen, "folder: out of memory");
                goto out;
            }
            sprintf(meta->name[i], "%s/%s", classes[k], files[f]);
            meta->attr_class[ATTR_CLASS][i] = k;
        }
        free_names(files, nf);
    }
    meta->n_classes[ATTR_CLASS] = n_classes;
    meta->class_name = classes;
    classes = NULL;
    snprintf(meta->source_desc, sizeof meta->source_desc, "image folders %.200s (%d classes)", o->path, n_classes);
    *r = (Reader){.ctx = l, .decode = image_list_decode, .close = image_list_close, .pool_split = 1};
    rc = 0;
out:
    free_names(classes, n_classes);
    if (rc)
        image_list_close(l);
    return rc;
}
