/* stats.c - paired significance tests for comparing a method to `student`.
 *
 * McNemar's exact test: on the same test samples, b = samples the baseline
 * gets right and the other method wrong, c = the reverse. Under the null
 * hypothesis the discordant pairs split as Binomial(b + c, 1/2); the two-sided
 * p-value is twice the smaller tail, capped at 1.
 *
 * Wilcoxon signed-rank test on paired differences d_i (absolute errors of the
 * baseline minus those of the method): zero differences are dropped
 * (Wilcoxon's convention), the |d_i| are ranked with ties given their average
 * rank, and W+ is the sum of the ranks of the positive differences. Up to
 * WILCOXON_EXACT_MAX pairs the null distribution of W+ is computed exactly by
 * dynamic programming over doubled ranks (ties give half ranks, doubling
 * keeps them integers); beyond that the normal approximation with the tie
 * correction of the variance and a continuity correction.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/trainer.h"

#define WILCOXON_EXACT_MAX 60

/* log C(n, k) */
static double log_choose(int n, int k) { return lgamma(n + 1.0) - lgamma(k + 1.0) - lgamma(n - k + 1.0); }

double mcnemar_exact(int64_t b, int64_t c)
{
    int64_t n = b + c;
    if (n == 0)
        return 1.0;
    int64_t k = b < c ? b : c;
    double tail = 0;
    for (int64_t i = 0; i <= k; i++)
        tail += exp(log_choose((int)n, (int)i) - (double)n * log(2.0));
    double p = 2.0 * tail;
    return p > 1.0 ? 1.0 : p;
}

typedef struct {
    double mag;
    int positive;
} Diff;

static int cmp_diff(const void *a, const void *b)
{
    double x = ((const Diff *)a)->mag, y = ((const Diff *)b)->mag;
    return (x > y) - (x < y);
}

/* Two-sided exact p-value from doubled ranks r2 (n of them) and doubled W+. */
static double wilcoxon_exact_p(const int *r2, int n, long w2)
{
    long total = 0;
    for (int i = 0; i < n; i++)
        total += r2[i];
    double *count = calloc((size_t)total + 1, sizeof(double));
    count[0] = 1;
    long reach = 0;
    for (int i = 0; i < n; i++) {
        for (long s = reach; s >= 0; s--)
            if (count[s] != 0)
                count[s + r2[i]] += count[s];
        reach += r2[i];
    }
    double all = ldexp(1.0, n), lower = 0, upper = 0;
    for (long s = 0; s <= total; s++) {
        if (s <= w2)
            lower += count[s];
        if (s >= w2)
            upper += count[s];
    }
    free(count);
    double p = 2.0 * fmin(lower, upper) / all;
    return p > 1.0 ? 1.0 : p;
}

double wilcoxon_signed_rank(const double *d, int64_t n_in, double *w_plus)
{
    Diff *v = malloc((size_t)(n_in > 0 ? n_in : 1) * sizeof(Diff));
    int n = 0;
    for (int64_t i = 0; i < n_in; i++)
        if (d[i] != 0) {
            v[n].mag = fabs(d[i]);
            v[n].positive = d[i] > 0;
            n++;
        }
    if (w_plus)
        *w_plus = 0;
    if (n == 0) {
        free(v);
        return 1.0;
    }
    qsort(v, (size_t)n, sizeof(Diff), cmp_diff);
    int *r2 = malloc((size_t)n * sizeof(int));
    long w2 = 0;
    double tie_term = 0; /* sum of t^3 - t over tie groups */
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && v[j + 1].mag == v[i].mag)
            j++;
        int twice_rank = (i + 1) + (j + 1); /* twice the average of ranks i+1..j+1 */
        double t = j - i + 1;
        tie_term += t * t * t - t;
        for (int k = i; k <= j; k++) {
            r2[k] = twice_rank;
            if (v[k].positive)
                w2 += twice_rank;
        }
        i = j + 1;
    }
    if (w_plus)
        *w_plus = w2 / 2.0;
    double p;
    if (n <= WILCOXON_EXACT_MAX) {
        p = wilcoxon_exact_p(r2, n, w2);
    } else {
        double mean = n * (n + 1.0) / 4.0;
        double var = n * (n + 1.0) * (2.0 * n + 1.0) / 24.0 - tie_term / 48.0;
        double z = (fabs(w2 / 2.0 - mean) - 0.5) / sqrt(var);
        if (z < 0)
            z = 0;
        p = erfc(z / sqrt(2.0));
        if (p > 1)
            p = 1;
    }
    free(r2);
    free(v);
    return p;
}
