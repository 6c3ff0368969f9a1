/* head.c - the linear head of a concatenation fusion: trained on the fixed,
 * concatenated embeddings of several students (occluded training faces).
 * Small enough to run on one rank: n x dim features, a (classes x dim)
 * weight matrix. Deterministic: the sample order of every epoch comes from
 * Philox keyed by the seed and the epoch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/trainer.h"

#define HEAD_BATCH 128
#define HEAD_LR 0.05
#define HEAD_MOMENTUM 0.9
#define HEAD_DECAY 1e-4

/* Per-dimension mean and 1/std of x (n, dim). */
static void standardiser(const float *x, int64_t n, int dim, double *mean, double *inv)
{
    for (int j = 0; j < dim; j++) {
        double s = 0, s2 = 0;
        for (int64_t i = 0; i < n; i++) {
            s += x[i * dim + j];
            s2 += (double)x[i * dim + j] * x[i * dim + j];
        }
        mean[j] = n ? s / n : 0;
        double var = n ? s2 / n - mean[j] * mean[j] : 0;
        inv[j] = var > 1e-12 ? 1.0 / sqrt(var) : 0;
    }
}

/* scores (outs) = W z + b for one standardised row z. */
static void head_scores(const double *w, const double *b, const double *z, int dim, int outs, double *score)
{
    for (int c = 0; c < outs; c++) {
        double s = b[c];
        for (int j = 0; j < dim; j++)
            s += w[(size_t)c * dim + j] * z[j];
        score[c] = s;
    }
}

void linear_head(const float *x, const float *y, int64_t n, const float *xt, int64_t nt, int dim, int classes, int l2,
                 int epochs, uint64_t seed, float *pred, float *prob)
{
    int outs = classes ? classes : 1;
    double *mean = malloc(dim * sizeof(double)), *inv = malloc(dim * sizeof(double));
    standardiser(x, n, dim, mean, inv);
    double ym = 0, ys = 1;
    if (!classes && n > 0) { /* regression targets standardised too */
        double s = 0, s2 = 0;
        for (int64_t i = 0; i < n; i++)
            s += y[i], s2 += (double)y[i] * y[i];
        ym = s / n;
        ys = sqrt(fmax(s2 / n - ym * ym, 1e-12));
    }
    double *w = calloc((size_t)outs * dim, sizeof(double)), *b = calloc(outs, sizeof(double));
    double *gw = calloc((size_t)outs * dim, sizeof(double)), *gb = calloc(outs, sizeof(double));
    double *vw = calloc((size_t)outs * dim, sizeof(double)), *vb = calloc(outs, sizeof(double));
    double *z = malloc(dim * sizeof(double)), *score = malloc(outs * sizeof(double));
    int64_t *order = malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    for (int ep = 0; ep < epochs && n > 0; ep++) {
        for (int64_t i = 0; i < n; i++)
            order[i] = i;
        for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates from Philox */
            RngBlock r = philox4x32(seed, (uint32_t)ep, (uint32_t)i, (uint32_t)(i >> 32), 0x4EAD);
            int64_t j = (int64_t)(((uint64_t)r.v[0] << 32 | r.v[1]) % (uint64_t)(i + 1));
            int64_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (int64_t s0 = 0; s0 < n; s0 += HEAD_BATCH) {
            int64_t s1 = s0 + HEAD_BATCH < n ? s0 + HEAD_BATCH : n;
            memset(gw, 0, (size_t)outs * dim * sizeof(double));
            memset(gb, 0, outs * sizeof(double));
            for (int64_t k = s0; k < s1; k++) {
                int64_t i = order[k];
                for (int j = 0; j < dim; j++)
                    z[j] = (x[i * dim + j] - mean[j]) * inv[j];
                head_scores(w, b, z, dim, outs, score);
                if (classes) { /* softmax cross-entropy */
                    double m = score[0], sum = 0;
                    for (int c = 1; c < outs; c++)
                        m = fmax(m, score[c]);
                    for (int c = 0; c < outs; c++)
                        sum += exp(score[c] - m);
                    for (int c = 0; c < outs; c++)
                        score[c] = exp(score[c] - m) / sum - (c == (int)y[i]);
                } else {
                    double r = score[0] - (y[i] - ym) / ys;
                    score[0] = l2 ? r : (r > 0) - (r < 0);
                }
                for (int c = 0; c < outs; c++) {
                    gb[c] += score[c];
                    for (int j = 0; j < dim; j++)
                        gw[(size_t)c * dim + j] += score[c] * z[j];
                }
            }
            double scale = 1.0 / (double)(s1 - s0);
            for (size_t q = 0; q < (size_t)outs * dim; q++) {
                vw[q] = HEAD_MOMENTUM * vw[q] + gw[q] * scale + HEAD_DECAY * w[q];
                w[q] -= HEAD_LR * vw[q];
            }
            for (int c = 0; c < outs; c++) {
                vb[c] = HEAD_MOMENTUM * vb[c] + gb[c] * scale;
                b[c] -= HEAD_LR * vb[c];
            }
        }
    }
    for (int64_t i = 0; i < nt; i++) {
        for (int j = 0; j < dim; j++)
            z[j] = (xt[i * dim + j] - mean[j]) * inv[j];
        head_scores(w, b, z, dim, outs, score);
        if (!classes) {
            pred[i] = (float)(score[0] * ys + ym);
            continue;
        }
        double m = score[0], sum = 0;
        int best = 0;
        for (int c = 1; c < outs; c++)
            if (score[c] > m)
                m = score[c], best = c;
        for (int c = 0; c < outs; c++)
            sum += exp(score[c] - m);
        for (int c = 0; c < outs; c++)
            prob[i * outs + c] = (float)(exp(score[c] - m) / sum);
        pred[i] = (float)best;
    }
    free(mean), free(inv), free(w), free(b), free(gw), free(gb), free(vw), free(vb), free(z), free(score), free(order);
}
