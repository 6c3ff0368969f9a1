/* utkface.c - UTKFace: a folder of JPEGs named
 * age_gender_race_datetime.jpg.chip.jpg (age 0-116, gender 0 male / 1
 * female, race 0-4). A few real files lack the race (age_gender_datetime...):
 * they keep age and gender. Names that cannot be parsed are reported by name
 * and follow on_bad_sample. There is no official split: the samples are
 * split by val_fraction / test_fraction with split_seed, stratified by gender
 * and age decade (listing.c), and the split is stored in the cache.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"

/* A field of digits only, ended by '_' or '.'; returns its end or NULL. */
static const char *digits(const char *p, long *v, int *len)
{
    const char *q = p;
    long x = 0;
    while (isdigit((unsigned char)*q) && q - p < 18)
        x = x * 10 + (*q++ - '0');
    if (q == p || (*q != '_' && *q != '.'))
        return NULL;
    *v = x;
    *len = (int)(q - p);
    return q;
}

int utkface_parse_name(const char *name, int *age, int *gender, int *race)
{
    long a, g, x;
    int len;
    const char *p = digits(name, &a, &len);
    if (!p || *p != '_' || a > 116)
        return -1;
    p = digits(p + 1, &g, &len);
    if (!p || *p != '_' || len != 1 || g > 1)
        return -1;
    const char *q = digits(p + 1, &x, &len);
    if (!q)
        return -1;
    *race = -1;
    if (len == 1 && *q == '_') { /* race present: a date-time follows */
        if (x > 4)
            return -1;
        *race = (int)x;
        if (!digits(q + 1, &x, &len))
            return -1;
    }
    *age = (int)a;
    *gender = (int)g;
    return 0;
}

int utkface_open(const DataOptions *o, Dataset *meta, Reader *r, int verbose, char *err, size_t errlen)
{
    char **files = NULL;
    int nf = 0, rc = -1, cap = 0;
    ImageList *l = image_list_begin("utkface", meta, META_GENDER | META_AGE, 0, err, errlen);
    if (!l)
        return -1;
    if (list_dir(o->path, 0, &files, &nf, err, errlen))
        goto out;
    char p[4200];
    for (int f = 0; f < nf; f++) {
        if (!has_image_ext(files[f]))
            continue;
        int age, gender, race;
        if (utkface_parse_name(files[f], &age, &gender, &race)) {
            snprintf(p, sizeof p, "%s/%s", o->path, files[f]);
            if (o->on_bad_sample == BAD_SAMPLE_FAIL) {
                data_err(err, errlen, "%s: file name not of the form age_gender_race_datetime.jpg (age 0-116, "
                         "gender 0/1, race 0-4) (on_bad_sample = fail)", p);
                goto out;
            }
            if (verbose && meta->bad < 20)
                fprintf(stderr, "warning: %s: file name not of the form age_gender_race_datetime.jpg "
                        "(sample skipped)\n", p);
            meta->bad++;
            continue;
        }
        snprintf(p, sizeof p, "%s/%s", o->path, files[f]);
        int i = meta_push(meta, &cap);
        if (i < 0 || image_list_add(l, p, NULL) || !(meta->name[i] = str_dup(files[f]))) {
            data_err(err, errlen, "utkface: out of memory");
            goto out;
        }
        meta->attr_class[ATTR_GENDER][i] = gender;
        meta->age[i] = (float)age;
    }
    if (meta->n == 0) {
        data_err(err, errlen, "%s: no UTKFace images (age_gender_race_datetime.jpg.chip.jpg) in the folder", o->path);
        goto out;
    }
    meta->n_classes[ATTR_GENDER] = 2;
    snprintf(meta->source_desc, sizeof meta->source_desc, "UTKFace %.200s", o->path);
    *r = (Reader){.ctx = l, .decode = image_list_decode, .close = image_list_close, .pool_split = 1};
    rc = 0;
out:
    free_names(files, nf);
    if (rc)
        image_list_close(l);
    return rc;
}
