/* occkd_preview - a PNG contact sheet of clean and occluded samples per class,
 * so a person can see what the teacher and the student see.
 *
 *   occkd_preview --data synth --occlusion vr --out docs/preview-synth-vr.png
 *
 * One row per class of the chosen attribute; in each row the first
 * `--per-class` samples of that class in the split, each shown as a pair:
 * the clean image on the left, its occluded twin on the right. Images are
 * shown as the loader builds them before normalisation (the same crop, flip
 * and fill), so the sheet is the network's input up to a per-channel affine map.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image_write.h>

#include "data/data.h"

#define GAP_PAIR 1   /* pixels between a clean image and its occluded twin */
#define GAP_CELL 6   /* pixels between pairs and between rows */
#define BORDER 6
#define BACKGROUND 236

typedef struct {
    DataOptions data;
    const char *cache;
    Occlusion occ;
    Attr attr;            /* ATTR_COUNT: choose the first class attribute the data set has */
    Split split;
    int per_class;
    int augment;
    const char *out;
} PreviewArgs;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: occkd_preview --out FILE.png [options]\n"
            "  --data SOURCE        synth | idx:DIR | ferplus:DIR | affectnet:DIR | utkface:DIR | folder:DIR (synth)\n"
            "  --occlusion KIND     vr | mask | none (vr)\n"
            "  --shape SHAPE        band | outline (band)\n"
            "  --fill FILL          black | mean | noise (black)\n"
            "  --fraction F         hidden share of the image height, (0, 1] (0.5)\n"
            "  --per-class N        samples per class (4)\n"
            "  --side PIXELS        image side (64)\n"
            "  --channels 1|3       (1)\n"
            "  --attr NAME          expression | gender | class (the first the data set has)\n"
            "  --split NAME         train | val | test (train)\n"
            "  --count N            synthetic faces to draw (512)\n"
            "  --seed N             synthetic face seed, and the noise seed (1)\n"
            "  --augment            show the training crop and flip (epoch 0) instead of the plain image\n"
            "  --cache DIR          HDF5 cache folder (none)\n");
}

static int parse_int(const char *opt, const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "occkd_preview: %s expects an integer in %d..%d, got '%s'\n", opt, lo, hi, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_source(const char *s, DataOptions *d)
{
    static const struct {
        const char *prefix;
        Source source;
    } known[] = {{"idx:", SOURCE_IDX},         {"ferplus:", SOURCE_FERPLUS}, {"affectnet:", SOURCE_AFFECTNET},
                 {"utkface:", SOURCE_UTKFACE}, {"folder:", SOURCE_FOLDER}};
    if (strcmp(s, "synth") == 0) {
        d->source = SOURCE_SYNTH;
        return 0;
    }
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        size_t n = strlen(known[i].prefix);
        if (strncmp(s, known[i].prefix, n) == 0 && s[n]) {
            d->source = known[i].source;
            snprintf(d->path, sizeof d->path, "%s", s + n);
            return 0;
        }
    }
    fprintf(stderr,
            "occkd_preview: unknown data '%s' (known: synth, idx:DIR, ferplus:DIR, affectnet:DIR, utkface:DIR, "
            "folder:DIR)\n",
            s);
    return -1;
}

static int parse_named(const char *opt, const char *s, const char *const *names, int n, int *out)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    fprintf(stderr, "occkd_preview: %s: unknown value '%s' (known:", opt, s);
    for (int i = 0; i < n; i++)
        fprintf(stderr, "%s %s", i ? "," : "", names[i]);
    fprintf(stderr, ")\n");
    return -1;
}

/* One option with its value; returns 0, or -1 after a message. */
static int parse_option(PreviewArgs *a, const char *opt, const char *v)
{
    static const char *const attrs[] = {"expression", "gender", "age", "class"};
    static const char *const splits[] = {"train", "val", "test"};
    char err[256];
    int i;
    if (strcmp(opt, "--data") == 0)
        return parse_source(v, &a->data);
    if (strcmp(opt, "--occlusion") == 0 || strcmp(opt, "--shape") == 0 || strcmp(opt, "--fill") == 0) {
        int rc = opt[2] == 'o'   ? occlusion_parse_kind(v, &a->occ.kind, err, sizeof err)
                 : opt[2] == 's' ? occlusion_parse_shape(v, &a->occ.shape, err, sizeof err)
                                 : occlusion_parse_fill(v, &a->occ.fill, err, sizeof err);
        if (rc)
            fprintf(stderr, "occkd_preview: %s: %s\n", opt, err);
        return rc;
    }
    if (strcmp(opt, "--fraction") == 0) {
        char *end;
        a->occ.fraction = strtof(v, &end);
        if (end == v || *end || occlusion_check(&a->occ, err, sizeof err)) {
            fprintf(stderr, "occkd_preview: --fraction expects a number in (0, 1], got '%s'\n", v);
            return -1;
        }
        return 0;
    }
    if (strcmp(opt, "--per-class") == 0)
        return parse_int(opt, v, 1, 64, &a->per_class);
    if (strcmp(opt, "--side") == 0)
        return parse_int(opt, v, 16, 512, &a->data.side);
    if (strcmp(opt, "--channels") == 0) {
        if (parse_int(opt, v, 1, 3, &a->data.channels) || a->data.channels == 2) {
            fprintf(stderr, "occkd_preview: --channels expects 1 or 3, got '%s'\n", v);
            return -1;
        }
        return 0;
    }
    if (strcmp(opt, "--count") == 0)
        return parse_int(opt, v, 1, 1 << 24, &a->data.synth_count);
    if (strcmp(opt, "--seed") == 0) {
        int s;
        if (parse_int(opt, v, 0, 1 << 30, &s))
            return -1;
        a->data.synth_seed = (uint64_t)s;
        a->occ.seed = (uint64_t)s;
        return 0;
    }
    if (strcmp(opt, "--attr") == 0) {
        if (parse_named(opt, v, attrs, 4, &i))
            return -1;
        if (i == ATTR_AGE) {
            fprintf(stderr, "occkd_preview: --attr age is not a class attribute (use expression, gender or class)\n");
            return -1;
        }
        a->attr = (Attr)i;
        return 0;
    }
    if (strcmp(opt, "--split") == 0) {
        if (parse_named(opt, v, splits, 3, &i))
            return -1;
        a->split = (Split)i;
        return 0;
    }
    if (strcmp(opt, "--cache") == 0) {
        a->cache = v;
        return 0;
    }
    if (strcmp(opt, "--out") == 0) {
        a->out = v;
        return 0;
    }
    fprintf(stderr, "occkd_preview: unknown option '%s'\n", opt);
    return -1;
}

static int parse_args(int argc, char **argv, PreviewArgs *a)
{
    memset(a, 0, sizeof *a);
    data_options_default(&a->data);
    a->data.synth_count = 512;
    a->occ = occlusion_default();
    a->occ.kind = OCC_VR;
    a->occ.seed = 1;
    a->attr = ATTR_COUNT;
    a->split = SPLIT_TRAIN;
    a->per_class = 4;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(argv[i], "--augment") == 0) {
            a->augment = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "occkd_preview: %s needs a value\n", argv[i]);
            return -1;
        }
        if (parse_option(a, argv[i], argv[i + 1]))
            return -1;
        i++;
    }
    if (!a->out) {
        fprintf(stderr, "occkd_preview: --out FILE.png is required\n");
        return -1;
    }
    return 0;
}

/* The attribute to sort by: the one asked for, or the first the set has. */
static int pick_attr(const Dataset *d, Attr wanted, Attr *out)
{
    static const char *const names[] = {"expression", "gender", "age", "class"};
    if (wanted != ATTR_COUNT) {
        if (!d->attr_class[wanted]) {
            fprintf(stderr, "occkd_preview: %s has no %s labels\n", d->source_desc, names[wanted]);
            return -1;
        }
        *out = wanted;
        return 0;
    }
    const Attr order[] = {ATTR_EXPRESSION, ATTR_CLASS, ATTR_GENDER};
    for (int i = 0; i < 3; i++)
        if (d->attr_class[order[i]]) {
            *out = order[i];
            return 0;
        }
    fprintf(stderr, "occkd_preview: %s has no class labels to sort the sheet by\n", d->source_desc);
    return -1;
}

static const char *class_label(const Dataset *d, Attr attr, int k)
{
    static const char *const genders[] = {"male", "female"};
    if (attr == ATTR_EXPRESSION && k < FERPLUS_CLASSES)
        return ferplus_emotions[k];
    if (attr == ATTR_GENDER && k < 2)
        return genders[k];
    if (attr == ATTR_CLASS && d->class_name && d->class_name[k])
        return d->class_name[k];
    return "";
}

/* Copies one image (C, S, S) on the 0-1 scale into the RGB sheet at (x0, y0). */
static void blit(uint8_t *sheet, int width, const float *img, int C, int S, int x0, int y0)
{
    size_t plane = (size_t)S * S;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            for (int k = 0; k < 3; k++) {
                float v = img[(size_t)(C == 3 ? k : 0) * plane + (size_t)y * S + x] * 255.0f + 0.5f;
                sheet[((size_t)(y0 + y) * width + x0 + x) * 3 + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
}

/* The clean and occluded image of sample id on the 0-1 scale. */
static void make_pair(const Dataset *d, const PreviewArgs *a, const uint8_t *hidden, const float *mean, int64_t id,
                      float *clean, float *occluded)
{
    AugmentOptions aug = {a->augment ? 4 : 0, a->augment};
    int C = d->channels, S = d->side;
    size_t count = (size_t)C * S * S;
    AugmentDraw draw = a->augment ? augment_draw(&aug, a->data.synth_seed, 0, id) : augment_identity(&aug);
    augment_apply(d->pixels + (size_t)id * count, C, S, aug.pad, draw, clean);
    memcpy(occluded, clean, count * sizeof *clean);
    occlusion_apply(&a->occ, hidden, occluded, C, S, mean, id);
}

static int write_sheet(const Dataset *d, const PreviewArgs *a, Attr attr)
{
    int C = d->channels, S = d->side, K = d->n_classes[attr], P = a->per_class;
    float mean[4] = {0}, std[4] = {1, 1, 1, 1};
    char err[512];
    if (dataset_channel_stats(d, a->split, mean, std, err, sizeof err)) {
        fprintf(stderr, "occkd_preview: %s\n", err);
        return -1;
    }
    int width = 2 * BORDER + P * (2 * S + GAP_PAIR) + (P - 1) * GAP_CELL;
    int height = 2 * BORDER + K * S + (K - 1) * GAP_CELL;
    uint8_t *sheet = malloc((size_t)width * height * 3), *hidden = malloc((size_t)S * S);
    float *clean = malloc((size_t)C * S * S * sizeof *clean), *occluded = malloc((size_t)C * S * S * sizeof *occluded);
    if (!sheet || !hidden || !clean || !occluded) {
        fprintf(stderr, "occkd_preview: out of memory for a %d x %d sheet\n", width, height);
        free(sheet), free(hidden), free(clean), free(occluded);
        return -1;
    }
    memset(sheet, BACKGROUND, (size_t)width * height * 3);
    occlusion_mask(&a->occ, S, hidden);
    for (int k = 0; k < K; k++) {
        int shown = 0;
        for (int i = 0; i < d->n && shown < P; i++) {
            if (d->attr_class[attr][i] != k || (d->split && d->split[i] != (uint8_t)a->split))
                continue;
            make_pair(d, a, hidden, mean, i, clean, occluded);
            int x0 = BORDER + shown * (2 * S + GAP_PAIR + GAP_CELL), y0 = BORDER + k * (S + GAP_CELL);
            blit(sheet, width, clean, C, S, x0, y0);
            blit(sheet, width, occluded, C, S, x0 + S + GAP_PAIR, y0);
            shown++;
        }
        printf("row %d: class %d %s (%d sample%s)\n", k, k, class_label(d, attr, k), shown, shown == 1 ? "" : "s");
    }
    int ok = stbi_write_png(a->out, width, height, 3, sheet, width * 3);
    free(sheet), free(hidden), free(clean), free(occluded);
    if (!ok) {
        fprintf(stderr, "occkd_preview: cannot write %s\n", a->out);
        return -1;
    }
    printf("wrote %s (%d x %d): %s split, %s, occlusion %s %s fraction %g fill %s\n", a->out, width, height,
           split_name(a->split), d->source_desc, occlusion_kind_name(a->occ.kind), occlusion_shape_name(a->occ.shape),
           (double)a->occ.fraction, occlusion_fill_name(a->occ.fill));
    return 0;
}

int main(int argc, char **argv)
{
    PreviewArgs a;
    if (parse_args(argc, argv, &a)) {
        usage(stderr);
        return 2;
    }
    Dataset d;
    char err[1024];
    memset(&d, 0, sizeof d);
    /* a sheet shows a few faces: the whole set in memory keeps the drawing simple */
    if (dataset_load(&a.data, a.cache, NULL, &d, err, sizeof err) || dataset_load_pixels(&d, err, sizeof err)) {
        fprintf(stderr, "occkd_preview: %s\n", err);
        dataset_free(&d);
        return 1;
    }
    Attr attr;
    int rc = pick_attr(&d, a.attr, &attr) || write_sheet(&d, &a, attr) ? 1 : 0;
    dataset_free(&d);
    return rc;
}
