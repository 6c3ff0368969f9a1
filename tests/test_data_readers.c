/* test_data_readers.c - every reader on small files written here in the real
 * formats, the FER+ label rules, the UTKFace name rules and split, and the
 * messages bad input gets (file and line). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <stb/stb_image_write.h>

#include "data/internal.h"
#include "gradcheck.h"

static char root[256];

static void path_of(char *buf, size_t len, const char *rel) { snprintf(buf, len, "%s/%s", root, rel); }

static void write_text(const char *rel, const char *text)
{
    char p[512];
    path_of(p, sizeof p, rel);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
}

static void mkdirs(const char *rel)
{
    char p[512];
    path_of(p, sizeof p, rel);
    mkdir(p, 0777);
}

/* A solid grey image with its right half at `right` (w x h, 3 channels). */
static void write_image(const char *rel, int w, int h, int left, int right, int jpg)
{
    unsigned char *px = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                px[(y * w + x) * 3 + c] = (unsigned char)(x < w / 2 ? left : right);
    char p[512];
    path_of(p, sizeof p, rel);
    if (jpg)
        stbi_write_jpg(p, w, h, 3, px, 95);
    else
        stbi_write_png(p, w, h, 3, px, w * 3);
    free(px);
}

static DataOptions opts(Source s, const char *rel)
{
    DataOptions o;
    data_options_default(&o);
    o.source = s;
    path_of(o.path, sizeof o.path, rel);
    o.side = 16;
    o.channels = 1;
    return o;
}

/* Loads and expects failure with every needle in the message. */
static void expect_fail(const DataOptions *o, const char *what, const char *n1, const char *n2)
{
    Dataset d;
    char err[1024] = "";
    int rc = dataset_load(o, NULL, NULL, &d, err, sizeof err);
    CHECK(rc != 0, "%s: accepted", what);
    if (rc == 0) {
        dataset_free(&d);
        return;
    }
    CHECK(strstr(err, n1) != NULL, "%s: message '%s' lacks '%s'", what, err, n1);
    if (n2)
        CHECK(strstr(err, n2) != NULL, "%s: message '%s' lacks '%s'", what, err, n2);
}

/* ------------------------------------------------------------------ FER+ */

static void test_ferplus_rules(void)
{
    struct {
        int v[10];
        int majority, dist;
        float d0, d1;
    } c[] = {
        {{6, 2, 1, 0, 0, 0, 0, 0, 1, 0}, 0, 0, 0.75f, 0.25f},   /* outliers dropped, clear majority */
        {{5, 1, 1, 1, 1, 1, 0, 0, 0, 0}, 0, 0, 1.0f, 0.0f},     /* majority only after outlier removal */
        {{4, 4, 0, 0, 0, 0, 0, 0, 2, 0}, -1, 0, 0.5f, 0.5f},    /* tie: no majority; distribution keeps it */
        {{2, 0, 0, 0, 0, 0, 0, 0, 8, 0}, -1, -1, 0, 0},         /* unknown wins */
        {{0, 0, 0, 0, 0, 0, 0, 0, 0, 10}, -1, -1, 0, 0},        /* not a face */
        {{4, 0, 0, 0, 0, 0, 0, 0, 3, 2}, -1, 0, 1.0f, 0.0f},    /* unknown and NF count in the total */
        {{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, -1, -1, 0, 0},         /* nothing left */
        {{0, 3, 0, 0, 0, 0, 0, 7, 0, 0}, 7, 7, 0.0f, 0.3f},     /* contempt */
    };
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
        float dist[8] = {0};
        int m = ferplus_label(c[k].v, 0, dist);
        int d = ferplus_label(c[k].v, 1, dist);
        CHECK(m == c[k].majority, "case %zu: majority label %d (expected %d)", k, m, c[k].majority);
        CHECK(d == c[k].dist, "case %zu: distribution label %d (expected %d)", k, d, c[k].dist);
        if (d >= 0) {
            float sum = 0.0f;
            for (int j = 0; j < 8; j++)
                sum += dist[j];
            CHECK(fabsf(sum - 1.0f) < 1e-6f, "case %zu: distribution sums to %g", k, sum);
            CHECK(fabsf(dist[0] - c[k].d0) < 1e-6f && fabsf(dist[1] - c[k].d1) < 1e-6f,
                  "case %zu: distribution %g %g (expected %g %g)", k, dist[0], dist[1], c[k].d0, c[k].d1);
        }
    }
}

static char *fer_pixels(int base, int count)
{
    char *s = malloc((size_t)count * 4 + 1), *p = s;
    for (int i = 0; i < count; i++)
        p += sprintf(p, i ? " %d" : "%d", (base + i) % 256);
    return s;
}

static const char *fer_new_header =
    "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n";

/* rows: usage, votes; pixel row r starts at value r */
static void write_ferplus(const char *dir, const char *const *usage, const char *const *votes, int rows,
                          int bad_pixel_row, int pixel_count)
{
    char rel[256], line[12000];
    mkdirs(dir);
    snprintf(rel, sizeof rel, "%s/fer2013.csv", dir);
    char p[512];
    path_of(p, sizeof p, rel);
    FILE *a = fopen(p, "w");
    fprintf(a, "emotion,pixels,Usage\r\n");
    for (int r = 0; r < rows; r++) {
        char *px = fer_pixels(r, r == bad_pixel_row ? pixel_count : 2304);
        snprintf(line, sizeof line, "%d,%s,%s\r\n", r % 7, px, usage[r]);
        fputs(line, a);
        free(px);
    }
    fclose(a);
    snprintf(rel, sizeof rel, "%s/fer2013new.csv", dir);
    path_of(p, sizeof p, rel);
    FILE *b = fopen(p, "w");
    fputs(fer_new_header, b);
    for (int r = 0; r < rows; r++)
        fprintf(b, "%s,fer%07d.png,%s\n", usage[r], r, votes[r]);
    fclose(b);
}

static void test_ferplus(void)
{
    const char *usage[] = {"Training", "Training", "PublicTest", "PrivateTest", "Training", "PrivateTest"};
    const char *votes[] = {"6,2,1,0,0,0,0,0,1,0", "0,0,0,0,0,0,0,0,0,10", "0,9,0,0,0,0,0,1,0,0",
                           "0,0,0,0,4,4,0,0,2,0", "0,0,8,2,0,0,0,0,0,0", "0,0,0,0,0,0,10,0,0,0"};
    write_ferplus("fer", usage, votes, 6, -1, 0);
    DataOptions o = opts(SOURCE_FERPLUS, "fer");
    o.side = 48;
    Dataset d;
    char err[1024] = "";
    int rc = dataset_load(&o, NULL, NULL, &d, err, sizeof err);
    CHECK(rc == 0, "FER+ majority: %s", err);
    if (!rc) {
        /* kept: rows 0 (neutral), 2 (happiness), 4 (surprise), 5 (fear); dropped: 1 (NF), 3 (tie) */
        CHECK(d.n == 4 && d.dropped == 2, "n %d dropped %lld (expected 4, 2)", d.n, (long long)d.dropped);
        int want_label[] = {0, 1, 2, 6}, want_split[] = {SPLIT_TRAIN, SPLIT_VAL, SPLIT_TRAIN, SPLIT_TEST};
        int want_row[] = {0, 2, 4, 5};
        for (int i = 0; i < d.n && i < 4; i++) {
            CHECK(d.attr_class[ATTR_EXPRESSION][i] == want_label[i], "sample %d label %d", i,
                  d.attr_class[ATTR_EXPRESSION][i]);
            CHECK(d.split[i] == want_split[i], "sample %d split %d", i, d.split[i]);
            char name[32];
            snprintf(name, sizeof name, "fer%07d.png", want_row[i]);
            CHECK(strcmp(d.name[i], name) == 0, "sample %d name %s (expected %s)", i, d.name[i], name);
            int off = 0;
            for (int p = 0; p < 2304; p++)
                off += d.pixels[(size_t)i * 2304 + p] != (want_row[i] + p) % 256;
            CHECK(off == 0, "sample %d: %d pixels differ from the CSV", i, off);
        }
        CHECK(d.soft == NULL, "soft targets in majority mode");
        dataset_free(&d);
    }
    o.ferplus_distribution = 1;
    o.side = 24;
    o.channels = 3;
    rc = dataset_load(&o, NULL, NULL, &d, err, sizeof err);
    CHECK(rc == 0, "FER+ distribution: %s", err);
    if (!rc) {
        /* the tie row (anger 4, disgust 4, unknown 2) is kept: top is anger */
        CHECK(d.n == 5 && d.dropped == 1 && d.soft_k == 8 && d.soft, "n %d dropped %lld", d.n, (long long)d.dropped);
        CHECK(d.channels == 3 && d.side == 24, "resized to %d x %d x %d", d.channels, d.side, d.side);
        if (d.n == 5) {
            CHECK(d.attr_class[ATTR_EXPRESSION][2] == 4, "tie row label %d", d.attr_class[ATTR_EXPRESSION][2]);
            CHECK(fabsf(d.soft[2 * 8 + 4] - 0.5f) < 1e-6f && fabsf(d.soft[2 * 8 + 5] - 0.5f) < 1e-6f,
                  "tie row distribution");
            CHECK(fabsf(d.soft[0] - 0.75f) < 1e-6f && fabsf(d.soft[1] - 0.25f) < 1e-6f, "row 0 distribution");
        }
        dataset_free(&d);
    }
    /* bad input */
    write_ferplus("fer_px", usage, votes, 6, 2, 2303);
    o = opts(SOURCE_FERPLUS, "fer_px");
    expect_fail(&o, "wrong pixel count", "fer2013.csv:4", "2303 pixels");
    write_text("fer_px/fer2013new.csv", "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,"
                                        "contempt,unknown,NF\nTraining,fer0.png,x,0,0,0,0,0,0,0,0,0\n");
    write_ferplus("fer_vote", usage, votes, 1, -1, 0);
    write_text("fer_vote/fer2013new.csv", "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,"
                                          "contempt,unknown,NF\nTraining,fer0.png,x,0,0,0,0,0,0,0,0,0\n");
    o = opts(SOURCE_FERPLUS, "fer_vote");
    expect_fail(&o, "bad vote", "fer2013new.csv:2", "vote count");
    const char *usage2[] = {"Training", "PublicTest"};
    const char *votes2[] = {"10,0,0,0,0,0,0,0,0,0", "10,0,0,0,0,0,0,0,0,0"};
    write_ferplus("fer_usage", usage2, votes2, 2, -1, 0);
    write_text("fer_usage/fer2013new.csv",
               "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
               "Training,a.png,10,0,0,0,0,0,0,0,0,0\nPrivateTest,b.png,10,0,0,0,0,0,0,0,0,0\n");
    o = opts(SOURCE_FERPLUS, "fer_usage");
    expect_fail(&o, "usage mismatch", "fer2013new.csv:3", "not row-aligned");
    write_text("fer_usage/fer2013new.csv",
               "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
               "Training,a.png,10,0,0,0,0,0,0,0,0,0\n");
    expect_fail(&o, "row count mismatch", "fer2013.csv:3", "without a partner");
    write_text("fer_usage/fer2013.csv", "emotion,pixels,Usage\n9,1 2 3,Training\n");
    expect_fail(&o, "emotion out of range", "fer2013.csv:2", "out of range");
    o = opts(SOURCE_FERPLUS, "no_such_folder");
    expect_fail(&o, "missing files", "no_such_folder/fer2013.csv", NULL);
    mkdirs("fer_half");
    write_text("fer_half/fer2013.csv", "emotion,pixels,Usage\n");
    o = opts(SOURCE_FERPLUS, "fer_half");
    expect_fail(&o, "missing fer2013new.csv", "fer2013new.csv", NULL);
    /* no PrivateTest rows: the test split is empty */
    const char *usage3[] = {"Training", "PublicTest"};
    write_ferplus("fer_empty", usage3, votes2, 2, -1, 0);
    o = opts(SOURCE_FERPLUS, "fer_empty");
    expect_fail(&o, "empty split", "test split is empty", NULL);
}

/* ------------------------------------------------------------- AffectNet */

static const char *aff_header =
    "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal\n";

static void test_affectnet(void)
{
    mkdirs("aff");
    mkdirs("aff/img");
    write_image("aff/img/a.png", 40, 30, 50, 200, 0);
    write_image("aff/img/b.jpg", 40, 30, 90, 90, 1);
    write_image("aff/img/c.png", 40, 30, 10, 10, 0);
    char csv[2048];
    snprintf(csv, sizeof csv,
             "%simg/a.png,20,0,20,30,\"1.5;2.5;3.5\",2,-0.5,0.2\nimg/b.jpg,0,0,40,30,1;2,9,0,0\n"
             "img/c.png,0,0,10,10,,0,0.1,0.1\nimg/b.jpg,5,5,10,10,,6,0,0\n",
             aff_header);
    write_text("aff/training.csv", csv);
    snprintf(csv, sizeof csv, "%simg/c.png,0,0,40,30,,7,0,0\nimg/a.png,0,0,20,30,,10,0,0\n", aff_header);
    write_text("aff/validation.csv", csv);
    DataOptions o = opts(SOURCE_AFFECTNET, "aff");
    Dataset d;
    char err[1024] = "";
    int rc = dataset_load(&o, NULL, NULL, &d, err, sizeof err);
    CHECK(rc == 0, "AffectNet: %s", err);
    if (!rc) {
        CHECK(d.n == 4 && d.dropped == 2, "n %d dropped %lld (expected 4, 2)", d.n, (long long)d.dropped);
        /* AffectNet sad (2) -> FER+ sadness (3); neutral 0 -> 0; anger 6 -> 4; contempt 7 -> 7 */
        int want[] = {3, 0, 4, 7}, split[] = {SPLIT_TRAIN, SPLIT_TRAIN, SPLIT_TRAIN, SPLIT_TEST};
        for (int i = 0; i < 4 && i < d.n; i++)
            CHECK(d.attr_class[ATTR_EXPRESSION][i] == want[i] && d.split[i] == split[i], "sample %d: %d / %d", i,
                  d.attr_class[ATTR_EXPRESSION][i], d.split[i]);
        int off = 0; /* the box of a.png holds only its right half (200) */
        for (int p = 0; p < 16 * 16; p++)
            off += abs(d.pixels[p] - 200) > 1;
        CHECK(off == 0, "%d pixels of the cropped box are not the right half's 200", off);
        dataset_free(&d);
    }
    /* a missing image: skipped and counted, or an error naming it */
    write_text("aff/validation.csv", "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,"
                                     "expression,valence,arousal\nimg/c.png,0,0,40,30,,7,0,0\nimg/gone.png,0,0,4,4,,1,0,0\n");
    rc = dataset_load(&o, NULL, NULL, &d, err, sizeof err);
    CHECK(rc == 0 && d.n == 4 && d.bad == 1, "missing image with skip: rc %d n %d bad %lld (%s)", rc, d.n,
          (long long)d.bad, err);
    if (!rc)
        dataset_free(&d);
    o.on_bad_sample = BAD_SAMPLE_FAIL;
    expect_fail(&o, "missing image with fail", "img/gone.png", NULL);
    /* a truncated JPEG */
    char p[512];
    path_of(p, sizeof p, "aff/img/b.jpg");
    struct stat st;
    stat(p, &st);
    CHECK(truncate(p, st.st_size / 2) == 0, "truncate");
    write_text("aff/validation.csv", "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,"
                                     "expression,valence,arousal\nimg/c.png,0,0,40,30,,7,0,0\n");
    expect_fail(&o, "truncated JPEG", "img/b.jpg", "truncated");
    o.on_bad_sample = BAD_SAMPLE_SKIP;
    rc = dataset_load(&o, NULL, NULL, &d, err, sizeof err);
    CHECK(rc == 0 && d.bad == 1 && d.n == 3, "truncated JPEG with skip: rc %d n %d bad %lld", rc, d.n,
          (long long)d.bad);
    if (!rc)
        dataset_free(&d);
    /* a box outside the image */
    snprintf(csv, sizeof csv, "%simg/a.png,100,100,10,10,,1,0,0\nimg/c.png,0,0,40,30,,1,0,0\n", aff_header);
    write_text("aff/training.csv", csv);
    o.on_bad_sample = BAD_SAMPLE_FAIL;
    expect_fail(&o, "box outside the image", "img/a.png", "outside");
    /* malformed rows */
    snprintf(csv, sizeof csv, "%simg/c.png,0,0,40,30,,1,0,0\nimg/c.png,0,0,40,30,1\n", aff_header);
    write_text("aff/training.csv", csv);
    expect_fail(&o, "short row", "training.csv:3", "fields");
    snprintf(csv, sizeof csv, "%simg/c.png,0,0,40,30,,11,0,0\n", aff_header);
    write_text("aff/training.csv", csv);
    expect_fail(&o, "expression 11", "training.csv:2", "out of range");
    snprintf(csv, sizeof csv, "%simg/c.png,0,zero,40,30,,1,0,0\n", aff_header);
    write_text("aff/training.csv", csv);
    expect_fail(&o, "non-numeric box", "training.csv:2", "face box");
    write_text("aff/training.csv", "path,x\n");
    expect_fail(&o, "wrong header", "training.csv:1", "header");
}

/* A UTF-8 byte-order mark opening fer2013.csv, fer2013new.csv, training.csv
 * or validation.csv (as spreadsheet programs save them) is skipped. */
static void test_byte_order_mark(void)
{
    static const char bom[] = "\xEF\xBB\xBF";
    enum { TEXT_MAX = 40000 };
    char *px = fer_pixels(0, 2304), *text = malloc(TEXT_MAX);
    mkdirs("fer_bom");
    snprintf(text, TEXT_MAX, "%semotion,pixels,Usage\r\n0,%s,Training\r\n1,%s,PublicTest\r\n2,%s,PrivateTest\r\n", bom,
             px, px, px);
    write_text("fer_bom/fer2013.csv", text);
    snprintf(text, TEXT_MAX, "%s%sTraining,a.png,10,0,0,0,0,0,0,0,0,0\nPublicTest,b.png,0,10,0,0,0,0,0,0,0,0\n"
             "PrivateTest,c.png,0,0,10,0,0,0,0,0,0,0\n", bom, fer_new_header);
    write_text("fer_bom/fer2013new.csv", text);
    DataOptions o = opts(SOURCE_FERPLUS, "fer_bom");
    Dataset d;
    char err[1024] = "";
    int rc = dataset_load(&o, NULL, NULL, &d, err, sizeof err);
    CHECK(rc == 0, "FER+ files opening with a byte-order mark: %s", err);
    if (!rc) {
        CHECK(d.n == 3 && d.attr_class[ATTR_EXPRESSION][2] == 2, "FER+ with a byte-order mark: n %d", d.n);
        dataset_free(&d);
    }
    mkdirs("aff_bom");
    mkdirs("aff_bom/img");
    write_image("aff_bom/img/a.png", 20, 20, 50, 200, 0);
    snprintf(text, TEXT_MAX, "%s%simg/a.png,0,0,20,20,,1,0,0\nimg/a.png,0,0,20,20,,2,0,0\n", bom, aff_header);
    write_text("aff_bom/training.csv", text);
    snprintf(text, TEXT_MAX, "%s%simg/a.png,0,0,20,20,,3,0,0\r\n", bom, aff_header);
    write_text("aff_bom/validation.csv", text);
    o = opts(SOURCE_AFFECTNET, "aff_bom");
    o.val_fraction = 0;
    rc = dataset_load(&o, NULL, NULL, &d, err, sizeof err);
    CHECK(rc == 0, "AffectNet files opening with a byte-order mark: %s", err);
    if (!rc) {
        CHECK(d.n == 3, "AffectNet with a byte-order mark: n %d (expected 3)", d.n);
        dataset_free(&d);
    }
    free(px);
    free(text);
}

/* --------------------------------------------------------------- UTKFace */

static void test_utkface_names(void)
{
    int a, g, r;
    CHECK(utkface_parse_name("25_0_2_20170116174525125.jpg.chip.jpg", &a, &g, &r) == 0 && a == 25 && g == 0 && r == 2,
          "full name");
    CHECK(utkface_parse_name("39_1_20170116174525125.jpg.chip.jpg", &a, &g, &r) == 0 && a == 39 && g == 1 && r == -1,
          "name without race");
    CHECK(utkface_parse_name("116_1_4_20170116174525125.jpg.chip.jpg", &a, &g, &r) == 0 && a == 116, "age 116");
    const char *bad[] = {"abc.jpg", "25_2_0_20170116174525125.jpg", "117_0_1_20170116174525125.jpg", "25_0.jpg",
                         "25_0_7_20170116174525125.jpg", "_0_1_2017.jpg", "25_01_1_2017.jpg"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        CHECK(utkface_parse_name(bad[k], &a, &g, &r) != 0, "'%s' parsed", bad[k]);
}

static void test_utkface(void)
{
    mkdirs("utk");
    char rel[256];
    int made = 0;
    for (int g = 0; g < 2; g++)
        for (int dec = 0; dec < 6; dec++)
            for (int k = 0; k < 10 + 5 * dec; k++) {
                snprintf(rel, sizeof rel, "utk/%d_%d_%d_2017011617452%04d.jpg.chip.jpg", dec * 10 + k % 10, g, k % 5,
                         made);
                write_image(rel, 8, 8, 20 * dec, 100, 1);
                made++;
            }
    write_image("utk/77_1_20170109150557335.jpg.chip.jpg", 8, 8, 0, 0, 1); /* no race */
    write_image("utk/bad_name.jpg", 8, 8, 0, 0, 1);
    write_text("utk/README.txt", "not an image\n");
    DataOptions o = opts(SOURCE_UTKFACE, "utk");
    o.side = 8;
    o.val_fraction = 0.2f;
    o.test_fraction = 0.3f;
    o.split_seed = 42;
    Dataset d, e;
    char err[1024] = "";
    int rc = dataset_load(&o, NULL, NULL, &d, err, sizeof err);
    CHECK(rc == 0, "UTKFace: %s", err);
    if (rc)
        return;
    CHECK(d.n == made + 1 && d.bad == 1, "n %d (expected %d), bad %lld", d.n, made + 1, (long long)d.bad);
    /* each (gender, decade) stratum honours the fractions within one sample */
    for (int g = 0; g < 2; g++)
        for (int dec = 0; dec < 6; dec++) {
            int cnt[4] = {0};
            for (int i = 0; i < d.n; i++)
                if (d.attr_class[ATTR_GENDER][i] == g && (int)(d.age[i] / 10) == dec && d.age[i] < 70)
                    cnt[d.split[i]]++;
            int m = cnt[0] + cnt[1] + cnt[2];
            CHECK(m == 10 + 5 * dec, "stratum %d/%d has %d samples", g, dec, m);
            CHECK(fabs(cnt[SPLIT_TEST] - 0.3 * m) <= 1.0 && fabs(cnt[SPLIT_VAL] - 0.2 * m) <= 1.0,
                  "stratum gender %d decade %d: %d test %d val of %d", g, dec, cnt[SPLIT_TEST], cnt[SPLIT_VAL], m);
        }
    rc = dataset_load(&o, NULL, NULL, &e, err, sizeof err);
    CHECK(rc == 0 && e.n == d.n && memcmp(e.split, d.split, (size_t)d.n) == 0, "same seed gave another split");
    if (!rc)
        dataset_free(&e);
    o.split_seed = 43;
    rc = dataset_load(&o, NULL, NULL, &e, err, sizeof err);
    CHECK(rc == 0 && e.n == d.n && memcmp(e.split, d.split, (size_t)d.n) != 0, "another seed gave the same split");
    if (!rc)
        dataset_free(&e);
    /* the sample without a race keeps age and gender */
    int found = 0;
    for (int i = 0; i < d.n; i++)
        if (strcmp(d.name[i], "77_1_20170109150557335.jpg.chip.jpg") == 0)
            found = d.age[i] == 77.0f && d.attr_class[ATTR_GENDER][i] == 1;
    CHECK(found, "the name without race lost its labels");
    dataset_free(&d);
    o.on_bad_sample = BAD_SAMPLE_FAIL;
    expect_fail(&o, "unparsable name with fail", "bad_name.jpg", NULL);
    o = opts(SOURCE_UTKFACE, "utk_missing");
    expect_fail(&o, "missing folder", "utk_missing", NULL);
}

/* ------------------------------------------------------------------- IDX */

static void put32(unsigned char *b, uint32_t v)
{
    b[0] = (unsigned char)(v >> 24), b[1] = (unsigned char)(v >> 16), b[2] = (unsigned char)(v >> 8),
    b[3] = (unsigned char)v;
}

/* Writes an IDX file; gz selects gzip. n images of 4x4 valued 10*i, or n labels i % classes. */
static void write_idx(const char *rel, int images, int n, int classes, int gz, uint32_t magic_override, int cut)
{
    unsigned char head[16];
    int hb = images ? 16 : 8;
    put32(head, magic_override ? magic_override : images ? 0x803 : 0x801);
    put32(head + 4, (uint32_t)n);
    if (images)
        put32(head + 8, 4), put32(head + 12, 4);
    int pb = images ? n * 16 : n;
    unsigned char *payload = malloc((size_t)pb);
    for (int i = 0; i < pb; i++)
        payload[i] = images ? (unsigned char)(10 * (i / 16)) : (unsigned char)(i % classes);
    pb -= cut;
    char p[512];
    path_of(p, sizeof p, rel);
    if (gz) {
        gzFile g = gzopen(p, "wb");
        gzwrite(g, head, (unsigned)hb);
        gzwrite(g, payload, (unsigned)pb);
        gzclose(g);
    } else {
        FILE *f = fopen(p, "wb");
        fwrite(head, 1, (size_t)hb, f);
        fwrite(payload, 1, (size_t)pb, f);
        fclose(f);
    }
    free(payload);
}

static void write_idx_set(const char *dir, int test_classes)
{
    char rel[256];
    mkdirs(dir);
    snprintf(rel, sizeof rel, "%s/train-images-idx3-ubyte.gz", dir);
    write_idx(rel, 1, 20, 0, 1, 0, 0);
    snprintf(rel, sizeof rel, "%s/train-labels-idx1-ubyte.gz", dir);
    write_idx(rel, 0, 20, 4, 1, 0, 0);
    snprintf(rel, sizeof rel, "%s/t10k-images-idx3-ubyte", dir);
    write_idx(rel, 1, 8, 0, 0, 0, 0);
    snprintf(rel, sizeof rel, "%s/t10k-labels-idx1-ubyte", dir);
    write_idx(rel, 0, 8, test_classes, 0, 0, 0);
}

static void test_idx(void)
{
    write_idx_set("idx", 4);
    DataOptions o = opts(SOURCE_IDX, "idx");
    o.side = 8;
    o.val_fraction = 0.25f;
    Dataset d;
    char err[1024] = "";
    int rc = dataset_load(&o, NULL, NULL, &d, err, sizeof err);
    CHECK(rc == 0, "IDX: %s", err);
    if (!rc) {
        CHECK(d.n == 28 && d.n_classes[ATTR_CLASS] == 4, "n %d classes %d", d.n, d.n_classes[ATTR_CLASS]);
        CHECK(dataset_split_count(&d, SPLIT_TEST) == 8 && dataset_split_count(&d, SPLIT_VAL) == 5 &&
                  dataset_split_count(&d, SPLIT_TRAIN) == 15,
              "splits %d/%d/%d", dataset_split_count(&d, SPLIT_TRAIN), dataset_split_count(&d, SPLIT_VAL),
              dataset_split_count(&d, SPLIT_TEST));
        int off = 0; /* image i of each file is flat 10*i, label i % 4, upscaled 4 -> 8 */
        for (int i = 0; i < d.n; i++) {
            int idx = atoi(strchr(d.name[i], ':') + 1);
            off += d.attr_class[ATTR_CLASS][i] != idx % 4;
            for (int p = 0; p < 64; p++)
                off += d.pixels[(size_t)i * 64 + p] != 10 * idx;
        }
        CHECK(off == 0, "%d labels or pixels differ from the files", off);
        dataset_free(&d);
    }
    /* a limit keeps a subset of the listing: each kept sample must still get
     * its own image (decoding goes by the sample's place in the source) */
    o.limit = 3;
    rc = dataset_load(&o, NULL, NULL, &d, err, sizeof err);
    CHECK(rc == 0, "IDX with a limit: %s", err);
    if (!rc) {
        CHECK(d.n == 9, "limit 3 per split kept %d samples, expected 9", d.n);
        int off = 0, moved = 0;
        for (int i = 0; i < d.n; i++) {
            int idx = atoi(strchr(d.name[i], ':') + 1);
            off += d.attr_class[ATTR_CLASS][i] != idx % 4 || d.pixels[(size_t)i * 64] != 10 * idx;
            moved += idx != i;
        }
        CHECK(moved > 0, "the limit kept the first samples only; the test needs a shuffled subset");
        CHECK(off == 0, "with a limit, %d samples carry another sample's image or label", off);
        dataset_free(&d);
    }
    write_idx_set("idx_range", 6);
    o = opts(SOURCE_IDX, "idx_range");
    expect_fail(&o, "test label out of range", "t10k-labels-idx1-ubyte", "out of range");
    write_idx_set("idx_magic", 4);
    write_idx("idx_magic/t10k-images-idx3-ubyte", 1, 8, 0, 0, 0x801, 0);
    o = opts(SOURCE_IDX, "idx_magic");
    expect_fail(&o, "bad magic", "t10k-images-idx3-ubyte", "magic");
    write_idx_set("idx_cut", 4);
    write_idx("idx_cut/train-images-idx3-ubyte.gz", 1, 20, 0, 1, 0, 7);
    o = opts(SOURCE_IDX, "idx_cut");
    expect_fail(&o, "truncated gzip", "train-images-idx3-ubyte.gz", "truncated");
    write_idx_set("idx_count", 4);
    write_idx("idx_count/t10k-labels-idx1-ubyte", 0, 7, 4, 0, 0, 0);
    o = opts(SOURCE_IDX, "idx_count");
    expect_fail(&o, "label count", "t10k-labels-idx1-ubyte", "7 labels for 8 images");
    /* one stray label 255 among labels 0-3: refused, not 256 classes */
    write_idx_set("idx_stray", 4);
    {
        char sp[512];
        path_of(sp, sizeof sp, "idx_stray/train-labels-idx1-ubyte.gz");
        unsigned char head[8], lab[20];
        put32(head, 0x801);
        put32(head + 4, 20);
        for (int i = 0; i < 20; i++)
            lab[i] = (unsigned char)(i % 4);
        lab[13] = 255;
        gzFile g = gzopen(sp, "wb");
        gzwrite(g, head, 8);
        gzwrite(g, lab, 20);
        gzclose(g);
    }
    o = opts(SOURCE_IDX, "idx_stray");
    expect_fail(&o, "a stray label", "image 13 has label 255", "stray label");
    /* a damaged gzip stream (its bytes flipped after the header) is named
     * as such, not as a truncated header */
    write_idx_set("idx_crc", 4);
    {
        char cp[512];
        path_of(cp, sizeof cp, "idx_crc/train-labels-idx1-ubyte.gz");
        FILE *f = fopen(cp, "r+b");
        if (f) {
            fseek(f, 12, SEEK_SET);
            unsigned char junk[8] = {0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef};
            fwrite(junk, 1, 8, f);
            fclose(f);
        }
    }
    o = opts(SOURCE_IDX, "idx_crc");
    expect_fail(&o, "a damaged gzip stream", "train-labels-idx1-ubyte.gz", "decompress");
    write_idx_set("idx_missing", 4);
    char p[512];
    path_of(p, sizeof p, "idx_missing/t10k-images-idx3-ubyte");
    remove(p);
    o = opts(SOURCE_IDX, "idx_missing");
    expect_fail(&o, "missing file", "t10k-images-idx3-ubyte", "missing");
}

/* ----------------------------------------------------------- folders */

static void test_folder(void)
{
    mkdirs("fold");
    mkdirs("fold/dog");
    mkdirs("fold/cat");
    char rel[256];
    for (int k = 0; k < 10; k++) {
        snprintf(rel, sizeof rel, "fold/cat/c%02d.png", k);
        write_image(rel, 12, 12, 30, 30, 0);
        snprintf(rel, sizeof rel, "fold/dog/d%02d.jpg", k);
        write_image(rel, 20, 10, 220, 220, 1);
    }
    write_text("fold/dog/notes.txt", "ignored\n");
    write_text("fold/cat/broken.png", "this is not a PNG file at all");
    DataOptions o = opts(SOURCE_FOLDER, "fold");
    o.test_fraction = 0.2f;
    Dataset d;
    char err[1024] = "";
    int rc = dataset_load(&o, NULL, NULL, &d, err, sizeof err);
    CHECK(rc == 0, "folders: %s", err);
    if (!rc) {
        CHECK(d.n == 20 && d.bad == 1 && d.n_classes[ATTR_CLASS] == 2, "n %d bad %lld classes %d", d.n,
              (long long)d.bad, d.n_classes[ATTR_CLASS]);
        CHECK(d.class_name && !strcmp(d.class_name[0], "cat") && !strcmp(d.class_name[1], "dog"),
              "class names not sorted");
        int off = 0, test[2] = {0, 0};
        for (int i = 0; i < d.n; i++) {
            int c = d.attr_class[ATTR_CLASS][i], want = c ? 220 : 30;
            test[c] += d.split[i] == SPLIT_TEST;
            for (int p = 0; p < 256; p++)
                off += abs(d.pixels[(size_t)i * 256 + p] - want) > 3;
        }
        CHECK(off == 0, "%d pixels far from their class colour", off);
        /* splits are drawn over the listed files (11 cats with the broken one, 10 dogs), before decoding */
        CHECK((test[0] == 2 || test[0] == 1) && test[1] == 2, "test split per class %d %d (expected 2 2, or 1 2 "
              "when the broken cat was drawn for test)", test[0], test[1]);
        dataset_free(&d);
    }
    o.on_bad_sample = BAD_SAMPLE_FAIL;
    expect_fail(&o, "corrupt image with fail", "cat/broken.png", "cannot decode");
    mkdirs("fold_empty");
    o = opts(SOURCE_FOLDER, "fold_empty");
    expect_fail(&o, "no classes", "fold_empty", "no class sub-folders");
    mkdirs("fold_empty/a");
    expect_fail(&o, "no images", "train split is empty", NULL);
}

/* -------------------------------------------------------------- images */

/* image_load on the files stb_image gets wrong: an empty PGM, a 16-bit PGM
 * asked for in 3 channels (stb_image overflowed its buffer), a PGM shorter
 * than its header says (stb_image left pixels unset), also where its
 * maximum has no digits, and such a TGA; and a format no reader lists. */
#define FILE_BYTES(s) s, sizeof s - 1
static void test_image_edges(void)
{
    static const struct {
        const char *what, *bytes;
        size_t n;
        int channels, ok, w, h;
        uint8_t first;
    } c[] = {
        {"8-bit PGM", FILE_BYTES("P5\n2 1\n255\n\x10\x20"), 1, 1, 2, 1, 0x10},
        {"8-bit PGM as RGB", FILE_BYTES("P5 2 1 255 \x10\x20"), 3, 1, 2, 1, 0x10},
        {"16-bit PGM as RGB", FILE_BYTES("P5\n2 1\n65535\n\xff\xff\x00\x00"), 3, 1, 2, 1, 0xff},
        {"16-bit PGM, one pixel short", FILE_BYTES("P5\n2 1\n65535\n\xff\xff"), 3, 0, 0, 0, 0},
        {"PGM with a comment, one byte short", FILE_BYTES("P5\n# c\n2 2\n255\n\x01\x02\x03"), 1, 0, 0, 0, 0},
        {"PGM of height 0", FILE_BYTES("P5\n4 0\n255\n"), 1, 0, 0, 0, 0},
        {"PGM 9999999999 wide", FILE_BYTES("P5\n9999999999 1\n255\n\x01"), 1, 0, 0, 0, 0},
        /* a maximum without digits is 0 to stb_image, which then read 4 x
         * 4777777 pixels from these 20 bytes, leaving them as memory held */
        {"PGM 4 x 4777777 with a maximum of no digits", FILE_BYTES("P5\n4 4777777?\x01\x02\x03\x04"), 1, 0, 0, 0, 0},
        {"PGM 2 x 1 with a maximum of no digits", FILE_BYTES("P5\n2 1?\x10\x20"), 1, 1, 2, 1, 0x10},
        /* TGA (18-byte header: id length, map type, image type, map spec,
         * origin, width, height, bits, descriptor): grey, uncompressed */
        {"TGA 2 x 1 grey", FILE_BYTES("\0\0\3\0\0\0\0\0\0\0\0\0\2\0\1\0\x08\0\x10\x20"), 1, 1, 2, 1, 0x10},
        {"TGA 2 x 1 grey, one byte short", FILE_BYTES("\0\0\3\0\0\0\0\0\0\0\0\0\2\0\1\0\x08\0\x10"), 1, 0, 0, 0, 0},
        {"TGA 16658 x 1873 in 23 bytes", FILE_BYTES("\0\0\2\0\0\0\0\0\0\0\0\0\x12\x41\x51\x07\x18\0\1\2\3\4\5"), 3,
         0, 0, 0, 0},
        {"RLE TGA 300 x 1 in one packet", FILE_BYTES("\0\0\x0b\0\0\0\0\0\0\0\0\0\x2c\x01\1\0\x08\0\xff\x10"), 1, 0, 0, 0,
         0},
        {"Radiance HDR (no reader lists it)",
         FILE_BYTES("#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 1 +X 1\n\x80\x80\x80\x81"), 3, 0, 0, 0, 0},
    };
    char p[512];
    path_of(p, sizeof p, "edge.pgm");
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
        FILE *f = fopen(p, "wb");
        fwrite(c[k].bytes, 1, c[k].n, f);
        fclose(f);
        uint8_t *px = NULL;
        int w = 0, h = 0;
        char err[512] = "";
        int rc = image_load(p, c[k].channels, &px, &w, &h, err, sizeof err);
        CHECK((rc == 0) == c[k].ok, "%s: %s", c[k].what, rc ? err : "accepted");
        if (rc == 0 && c[k].ok)
            CHECK(w == c[k].w && h == c[k].h && px[0] == c[k].first && px[c[k].channels - 1] == c[k].first,
                  "%s: %d x %d, first pixel %d", c[k].what, w, h, px[0]);
        free(px);
    }
    /* a PNG chunk claiming 1.3 GB in a 65-byte file is refused before any
     * decoding (stb_image grew its buffer to 2 GB first, then found the
     * file short) */
    static const char png[] = "\x89PNG\r\n\x1a\n"
                              "\0\0\0\x0dIHDR\0\0\0\x0c\0\0\0\x0a\x08\x02\0\0\0\x0f\x4e\x28\xad"
                              "\x4f\x49\x44\x41IDAT\x78\x5e\x63\x64\xe0\x95\x52\x27\x04\x58\xae\x5c\xb9\x02";
    FILE *f = fopen(p, "wb");
    fwrite(png, 1, sizeof png - 1, f);
    fclose(f);
    uint8_t *px = NULL;
    int w = 0, h = 0;
    char err[512] = "";
    int rc = image_load(p, 3, &px, &w, &h, err, sizeof err);
    CHECK(rc != 0 && strstr(err, "a chunk longer than the rest of the file"),
          "a PNG chunk of 1.3 GB in a 65-byte file: %s", rc ? err : "accepted");
    free(px);
}
#undef FILE_BYTES

static void test_resize(void)
{
    /* a horizontal ramp keeps its mean and order when shrunk or enlarged */
    uint8_t src[32 * 8], big[64 * 16], small[8 * 2];
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 32; x++)
            src[y * 32 + x] = (uint8_t)(x * 8);
    image_resize(src, 32, 8, 1, small, 8, 2);
    image_resize(src, 32, 8, 1, big, 64, 16);
    for (int x = 1; x < 8; x++)
        CHECK(small[x] > small[x - 1], "shrunk ramp not increasing at %d", x);
    for (int x = 2; x < 8 - 2; x++) /* interior: exact box average of 4 source pixels */
        CHECK(abs(small[x] - (x * 32 + 12)) <= 2, "shrunk pixel %d = %d (expected %d)", x, small[x], x * 32 + 12);
    CHECK(big[0] == 0 && big[63] == 248, "enlarged ends %d %d", big[0], big[63]);
    CHECK(abs(big[5] - 18) <= 1, "bilinear value %d (expected 18)", big[5]);
    uint8_t rgb[6], grey[2] = {10, 200}, back[2];
    image_grey_to_rgb(grey, 2, rgb);
    CHECK(rgb[0] == 10 && rgb[2] == 10 && rgb[3] == 200 && rgb[5] == 200, "grey to rgb");
    image_rgb_to_grey(rgb, 2, back);
    CHECK(back[0] == 10 && back[1] == 200, "rgb to grey round trip %d %d", back[0], back[1]);
}

static void rm_rf(const char *p)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", p);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/occkd_readers_XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    test_ferplus_rules();
    test_ferplus();
    test_affectnet();
    test_byte_order_mark();
    test_utkface_names();
    test_utkface();
    test_idx();
    test_folder();
    test_resize();
    test_image_edges();
    rm_rf(root);
    return test_finish("test_data_readers");
}
