/* test_synth.c - the synthetic faces: a pure function of (seed, index),
 * balanced labels, signal in both halves of the face for every attribute,
 * and the synthetic source through dataset_load. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/data.h"
#include "gradcheck.h"

#define SIDE 48
#define NP (SIDE * SIDE)

static void test_determinism(void)
{
    uint8_t a[3 * 64 * 64], b[3 * 64 * 64];
    SynthLabels la, lb;
    synth_face(7, 123, 64, 3, a, &la);
    synth_face(7, 123, 64, 3, b, &lb);
    CHECK(memcmp(a, b, sizeof a) == 0, "same (seed, index) drew different faces");
    CHECK(la.expression == lb.expression && la.gender == lb.gender && la.age == lb.age, "labels differ");
    SynthLabels l = synth_labels(7, 123);
    CHECK(l.expression == la.expression && l.gender == la.gender && l.age == la.age,
          "synth_labels disagrees with synth_face");
    synth_face(7, 124, 64, 3, b, NULL);
    CHECK(memcmp(a, b, sizeof a) != 0, "indices 123 and 124 drew the same face");
    synth_face(8, 123, 64, 3, b, NULL);
    CHECK(memcmp(a, b, sizeof a) != 0, "seeds 7 and 8 drew the same face");
    /* grey is the luma of the colour drawing (within rounding) */
    uint8_t g[64 * 64];
    synth_face(7, 123, 64, 1, g, NULL);
    int worst = 0;
    for (int p = 0; p < 64 * 64; p++) {
        float y = 0.299f * a[p] + 0.587f * a[4096 + p] + 0.114f * a[8192 + p];
        int d = abs((int)lrintf(y) - g[p]);
        worst = d > worst ? d : worst;
    }
    CHECK(worst <= 1, "grey face differs from the luma of the colour face by %d", worst);
    /* the picture is not flat: it has contrast */
    int lo = 255, hi = 0;
    for (int p = 0; p < 64 * 64; p++)
        lo = g[p] < lo ? g[p] : lo, hi = g[p] > hi ? g[p] : hi;
    CHECK(hi - lo > 60, "face has almost no contrast (%d..%d)", lo, hi);
}

static void test_balance(void)
{
    int n = 8000, expr[8] = {0}, fem = 0;
    double age_sum = 0.0;
    float age_min = 1e9f, age_max = -1e9f;
    for (int i = 0; i < n; i++) {
        SynthLabels l = synth_labels(3, i);
        CHECK(l.expression >= 0 && l.expression < 8, "expression %d", l.expression);
        CHECK(l.gender == 0 || l.gender == 1, "gender %d", l.gender);
        CHECK(l.age == floorf(l.age), "age %g is not whole years", l.age);
        expr[l.expression]++;
        fem += l.gender;
        age_sum += l.age;
        age_min = fminf(age_min, l.age), age_max = fmaxf(age_max, l.age);
    }
    for (int k = 0; k < 8; k++) /* 1000 expected, sd ~30 */
        CHECK(abs(expr[k] - 1000) < 150, "expression %d drawn %d times of %d", k, expr[k], n);
    CHECK(abs(fem - 4000) < 250, "%d female of %d", fem, n);
    CHECK(fabs(age_sum / n - 45.0) < 1.5, "mean age %.2f (expected 45)", age_sum / n);
    CHECK(age_min == 5.0f && age_max == 85.0f, "ages span %g-%g (expected 5-85)", age_min, age_max);
}

/* Each case sorts a face into one of `k` classes, or -1 to leave it out. */
typedef int (*Group)(const SynthLabels *l);
static int g_expression(const SynthLabels *l) { return l->expression; }
static int g_gender(const SynthLabels *l) { return l->gender; }
static int g_age(const SynthLabels *l) { return l->age < 40.0f ? 0 : l->age >= 50.0f ? 1 : -1; }

/* Gradient magnitude of rows [r0, r1) of a face: hair, brows, lines and the
 * mouth show as edges whatever the skin, hair and background colours. */
static void edges(const uint8_t *img, int r0, int r1, float *f)
{
    for (int y = r0; y < r1; y++)
        for (int x = 0; x < SIDE; x++) {
            const uint8_t *q = img + (size_t)y * SIDE + x;
            int gx = x + 1 < SIDE ? abs(q[1] - q[0]) : 0, gy = y + 1 < r1 ? abs(q[SIDE] - q[0]) : 0;
            f[(y - r0) * SIDE + x] = (float)(gx + gy);
        }
}

/* Accuracy of a nearest-centroid classifier over k classes (a deliberately
 * crude, linear probe) on the edge map of rows [r0, r1), fitted on the even
 * samples and scored on the odd ones. */
static double half_accuracy(const uint8_t *img, const SynthLabels *lab, int n, Group grp, int k, int r0, int r1)
{
    int nf = (r1 - r0) * SIDE, cnt[8] = {0}, right = 0, total = 0;
    double *m = calloc((size_t)k * nf, sizeof(double));
    float *f = malloc(sizeof(float) * nf);
    for (int i = 0; i < n; i += 2) {
        int g = grp(&lab[i]);
        if (g < 0)
            continue;
        edges(img + (size_t)i * NP, r0, r1, f);
        cnt[g]++;
        for (int j = 0; j < nf; j++)
            m[(size_t)g * nf + j] += f[j];
    }
    for (int i = 1; i < n; i += 2) {
        int g = grp(&lab[i]);
        if (g < 0)
            continue;
        edges(img + (size_t)i * NP, r0, r1, f);
        int best = -1;
        double best_d = 0.0;
        for (int c = 0; c < k; c++) {
            double d = 0.0;
            for (int j = 0; j < nf; j++) {
                double a = f[j] - m[(size_t)c * nf + j] / (cnt[c] ? cnt[c] : 1);
                d += a * a;
            }
            if (best < 0 || d < best_d)
                best = c, best_d = d;
        }
        right += best == g;
        total++;
    }
    free(m);
    free(f);
    return total ? (double)right / total : 0.0;
}

/* Every attribute shows in both halves: either half alone beats chance by a
 * clear margin (many standard errors over the ~650-1500 faces scored); the
 * whole face beats the half that the study's occlusion leaves (the lower one
 * for expression under a headset, the upper one for gender and age under a
 * mask), so hiding costs; and no task is solved outright by this probe. */
static void test_halves(void)
{
    int n = 3000;
    uint8_t *img = malloc((size_t)n * NP);
    SynthLabels *lab = malloc(sizeof(SynthLabels) * n);
    clock_t t0 = clock();
    for (int i = 0; i < n; i++)
        synth_face(11, i, SIDE, 1, img + (size_t)i * NP, &lab[i]);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    printf("synth: %d faces of %dx%d in %.3f s (%.0f faces/s)\n", n, SIDE, SIDE, secs, n / (secs > 0 ? secs : 1e-9));
    struct {
        const char *what;
        Group g;
        int k;
        double half_min; /* each half alone at least this */
        int kept_upper;  /* the study's occlusion keeps the upper half (mask) or the lower (vr) */
    } cases[] = {{"expression (8 classes)", g_expression, 8, 0.30, 0},
                 {"male vs female", g_gender, 2, 0.62, 1},
                 {"age < 40 vs >= 50", g_age, 2, 0.70, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double all = half_accuracy(img, lab, n, cases[c].g, cases[c].k, 0, SIDE);
        double up = half_accuracy(img, lab, n, cases[c].g, cases[c].k, 0, SIDE / 2);
        double low = half_accuracy(img, lab, n, cases[c].g, cases[c].k, SIDE / 2, SIDE);
        printf("synth: nearest-centroid on edges, %-22s whole %.3f upper %.3f lower %.3f (chance %.3f)\n",
               cases[c].what, all, up, low, 1.0 / cases[c].k);
        CHECK(up > cases[c].half_min, "%s: the upper half carries little signal (accuracy %.3f, expected > %.2f)",
              cases[c].what, up, cases[c].half_min);
        CHECK(low > cases[c].half_min, "%s: the lower half carries little signal (accuracy %.3f, expected > %.2f)",
              cases[c].what, low, cases[c].half_min);
        double kept = cases[c].kept_upper ? up : low;
        CHECK(all > kept + 0.05, "%s: the whole face (%.3f) is not clearly better than the %s half the study keeps (%.3f)",
              cases[c].what, all, cases[c].kept_upper ? "upper" : "lower", kept);
        CHECK(all < 0.98, "%s: solved by a linear rule on edges (accuracy %.3f): too easy", cases[c].what, all);
    }
    free(img);
    free(lab);
}

static void test_as_source(void)
{
    DataOptions o;
    data_options_default(&o);
    o.side = 32;
    o.channels = 3;
    o.synth_count = 400;
    o.synth_seed = 5;
    o.val_fraction = 0.1f;
    o.test_fraction = 0.2f;
    Dataset d;
    char err[512] = "";
    int rc = dataset_load(&o, NULL, NULL, &d, err, sizeof err);
    CHECK(rc == 0, "dataset_load(synth): %s", err);
    if (rc)
        return;
    CHECK(d.n == 400 && d.side == 32 && d.channels == 3, "n %d side %d channels %d", d.n, d.side, d.channels);
    int nt = dataset_split_count(&d, SPLIT_TEST), nv = dataset_split_count(&d, SPLIT_VAL);
    CHECK(abs(nt - 80) <= 1 && abs(nv - 40) <= 1, "test %d (expected 80), val %d (expected 40)", nt, nv);
    CHECK(d.n_classes[ATTR_EXPRESSION] == 8 && d.n_classes[ATTR_GENDER] == 2 && d.age, "attributes missing");
    uint8_t face[3 * 32 * 32];
    int mismatched = 0;
    for (int i = 0; i < d.n; i++) {
        int idx = atoi(d.name[i] + strlen("synth:"));
        SynthLabels l;
        synth_face(5, idx, 32, 3, face, &l);
        mismatched += memcmp(face, d.pixels + (size_t)i * sizeof face, sizeof face) != 0 ||
                      l.expression != d.attr_class[ATTR_EXPRESSION][i] || l.gender != d.attr_class[ATTR_GENDER][i] ||
                      l.age != d.age[i];
    }
    CHECK(mismatched == 0, "%d samples differ from synth_face of their index", mismatched);
    float mean[3], sd[3];
    CHECK(dataset_channel_stats(&d, SPLIT_TRAIN, mean, sd, err, sizeof err) == 0, "%s", err);
    for (int c = 0; c < 3; c++)
        CHECK(mean[c] > 0.1f && mean[c] < 0.9f && sd[c] > 0.05f && sd[c] < 0.5f, "channel %d mean %g std %g", c,
              mean[c], sd[c]);
    dataset_free(&d);
    o.synth_count = 0;
    CHECK(dataset_load(&o, NULL, NULL, &d, err, sizeof err) != 0 && strstr(err, "synth_count"),
          "synth_count 0 accepted: %s", err);
}

int main(void)
{
    test_determinism();
    test_balance();
    test_halves();
    test_as_source();
    return test_finish("test_synth");
}
