/* objectives.c - triplet mining over the global batch.
 *
 * Every rank holds the same gathered batch (student and teacher embeddings,
 * labels, in global batch order), so every rank mines the same triples and
 * computes the same loss; each then back-propagates only the rows of its own
 * slice. Nothing here depends on how the batch was split.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/trainer.h"

/* Rows of x (n,d) scaled to unit length (zero rows stay zero). */
static void normalise_rows(const float *x, int n, int d, float *out)
{
    for (int i = 0; i < n; i++) {
        double ss = 0;
        for (int j = 0; j < d; j++)
            ss += (double)x[(size_t)i * d + j] * x[(size_t)i * d + j];
        double inv = ss > 1e-24 ? 1.0 / sqrt(ss) : 0.0;
        for (int j = 0; j < d; j++)
            out[(size_t)i * d + j] = (float)(x[(size_t)i * d + j] * inv);
    }
}

static double sqdist(const float *a, const float *b, int d)
{
    double s = 0;
    for (int j = 0; j < d; j++) {
        double t = (double)a[j] - b[j];
        s += t * t;
    }
    return s;
}

int mine_triplets(const float *s, const float *t, const int *label, int g, int d, Mining mining,
                  PositiveMode positive, float margin, uint64_t key, Triple *out)
{
    float *sn = malloc((size_t)g * d * sizeof(float)), *tn = malloc((size_t)g * d * sizeof(float));
    normalise_rows(s, g, d, sn);
    normalise_rows(t, g, d, tn);
    int count = 0;
    int *cand = malloc((size_t)g * sizeof(int));
    for (int a = 0; a < g; a++) {
        const float *va = sn + (size_t)a * d;
        /* positive: the same image, or the farthest teacher embedding of the class (random: any) */
        int p = a;
        if (positive == POSITIVE_CLASS) {
            int nc = 0;
            for (int j = 0; j < g; j++)
                if (j != a && label[j] == label[a])
                    cand[nc++] = j;
            if (nc > 0) {
                if (mining == MINE_RANDOM) {
                    p = cand[philox4x32(key, (uint32_t)a, 1, 0, 0).v[0] % (uint32_t)nc];
                } else {
                    double worst = -1;
                    for (int c = 0; c < nc; c++) {
                        double dd = sqdist(va, tn + (size_t)cand[c] * d, d);
                        if (dd > worst) {
                            worst = dd;
                            p = cand[c];
                        }
                    }
                }
            }
        }
        double dap = sqdist(va, tn + (size_t)p * d, d);
        /* negative: a student embedding of another class */
        int nn = 0;
        for (int j = 0; j < g; j++)
            if (label[j] != label[a])
                cand[nn++] = j;
        if (nn == 0)
            continue;
        int neg = -1;
        if (mining == MINE_RANDOM) {
            neg = cand[philox4x32(key, (uint32_t)a, 2, 0, 0).v[0] % (uint32_t)nn];
        } else {
            double best = INFINITY, best_semi = INFINITY;
            int hardest = -1, semi = -1;
            for (int c = 0; c < nn; c++) {
                double dan = sqdist(va, sn + (size_t)cand[c] * d, d);
                if (dan < best) {
                    best = dan;
                    hardest = cand[c];
                }
                /* semi-hard: farther than the positive but inside the margin */
                if (dan > dap && dan < dap + margin && dan < best_semi) {
                    best_semi = dan;
                    semi = cand[c];
                }
            }
            neg = (mining == MINE_SEMIHARD && semi >= 0) ? semi : hardest;
        }
        out[count].a = a;
        out[count].p = g + p;
        out[count].n = neg;
        count++;
    }
    free(cand);
    free(sn);
    free(tn);
    return count;
}

int triplet_objective(const float *s, const float *t, const int *label, int g, int d, Mining mining,
                      PositiveMode positive, float margin, uint64_t key, float *d_s, int *n_active, float *loss,
                      char *err, size_t errlen)
{
    Triple *tr = malloc((size_t)g * sizeof(Triple));
    int nt = mine_triplets(s, t, label, g, d, mining, positive, margin, key, tr);
    float *e = malloc((size_t)2 * g * d * sizeof(float));
    float *d_e = malloc((size_t)2 * g * d * sizeof(float));
    uint8_t *active = malloc((size_t)(nt > 0 ? nt : 1));
    memcpy(e, s, (size_t)g * d * sizeof(float));
    memcpy(e + (size_t)g * d, t, (size_t)g * d * sizeof(float));
    int rc = !tr || !e || !d_e || !active ? -1 : 0;
    if (rc)
        snprintf(err, errlen, "triplet term: out of memory for %d rows", g);
    else
        rc = loss_triplet_checked(e, 2 * g, d, tr, nt, margin, (float)g, d_e, active, loss, err, errlen);
    if (!rc && d_s)
        memcpy(d_s, d_e, (size_t)g * d * sizeof(float));
    if (!rc && n_active) {
        *n_active = 0;
        for (int i = 0; i < nt; i++)
            *n_active += active[i];
    }
    free(tr);
    free(e);
    free(d_e);
    free(active);
    return rc;
}
