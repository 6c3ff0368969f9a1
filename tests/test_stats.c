/* test_stats.c - McNemar's exact test and Wilcoxon's signed-rank test against
 * textbook values and against brute-force enumeration of sign flips. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "gradcheck.h"
#include "trainer/trainer.h"

static void near(double got, double want, double tol, const char *what)
{
    CHECK(fabs(got - want) <= tol, "%s: got %.10g, expected %.10g", what, got, want);
}

/* Two-sided p by enumerating all 2^n sign patterns of the ranked |d|. */
static double brute_wilcoxon(const double *d, int n)
{
    double mag[24];
    int m = 0, pos[24];
    for (int i = 0; i < n; i++)
        if (d[i] != 0) {
            mag[m] = fabs(d[i]);
            pos[m] = d[i] > 0;
            m++;
        }
    double rank[24], w = 0;
    for (int i = 0; i < m; i++) {
        int less = 0, equal = 0;
        for (int j = 0; j < m; j++) {
            less += mag[j] < mag[i];
            equal += mag[j] == mag[i];
        }
        rank[i] = less + (equal + 1) / 2.0;
        if (pos[i])
            w += rank[i];
    }
    long lower = 0, upper = 0, all = 1L << m;
    for (long s = 0; s < all; s++) {
        double ws = 0;
        for (int i = 0; i < m; i++)
            if (s >> i & 1)
                ws += rank[i];
        lower += ws <= w + 1e-9;
        upper += ws >= w - 1e-9;
    }
    double p = 2.0 * (double)(lower < upper ? lower : upper) / (double)all;
    return p > 1 ? 1 : p;
}

int main(void)
{
    /* McNemar: Binomial(n, 1/2) tails */
    near(mcnemar_exact(2, 10), 158.0 / 4096.0, 1e-12, "McNemar b=2 c=10");
    near(mcnemar_exact(10, 2), 158.0 / 4096.0, 1e-12, "McNemar is symmetric");
    near(mcnemar_exact(0, 6), 2.0 / 64.0, 1e-12, "McNemar b=0 c=6");
    near(mcnemar_exact(5, 5), 1.0, 0, "McNemar b=c");
    near(mcnemar_exact(0, 0), 1.0, 0, "McNemar without discordant pairs");
    /* large counts stay finite and small: 100 vs 150 */
    double big = mcnemar_exact(100, 150);
    CHECK(big > 0.001 && big < 0.003, "McNemar 100 vs 150 = %g, expected about 0.0018", big);

    /* Wilcoxon: all ten differences positive and distinct -> 2 / 2^10 */
    double d10[10];
    for (int i = 0; i < 10; i++)
        d10[i] = i + 1.5;
    double w;
    near(wilcoxon_signed_rank(d10, 10, &w), 2.0 / 1024.0, 1e-12, "Wilcoxon n=10 all positive");
    near(w, 55, 0, "W+ n=10 all positive");
    /* n = 8 with W+ = 3: P(W <= 3) = 5/256, two-sided 10/256 */
    double d8[8] = {1, 2, -3, -4, -5, -6, -7, -8};
    near(wilcoxon_signed_rank(d8, 8, &w), 10.0 / 256.0, 1e-12, "Wilcoxon n=8 W+=3");
    near(w, 3, 0, "W+ n=8");
    /* zeros are dropped */
    double dz[5] = {0, 0, 1, 2, 3};
    near(wilcoxon_signed_rank(dz, 5, NULL), 2.0 / 8.0, 1e-12, "Wilcoxon drops zeros");
    double d0[3] = {0, 0, 0};
    near(wilcoxon_signed_rank(d0, 3, NULL), 1.0, 0, "Wilcoxon all zero");

    /* ties: against brute force on random data with repeated magnitudes */
    for (int trial = 0; trial < 30; trial++) {
        double d[14];
        int n = 6 + trial % 9;
        for (int i = 0; i < n; i++) {
            RngBlock r = philox4x32(17, (uint32_t)trial, (uint32_t)i, 0, 0);
            d[i] = (double)((int)(r.v[0] % 9) - 4) * 0.5; /* -2..2 in halves, zeros and ties */
        }
        char what[64];
        snprintf(what, sizeof what, "Wilcoxon with ties, trial %d (n=%d)", trial, n);
        near(wilcoxon_signed_rank(d, n, NULL), brute_wilcoxon(d, n), 1e-12, what);
    }
    /* the normal approximation (n > 60) agrees with an exact computation */
    int n = 90;
    double *d = malloc(n * sizeof(double));
    for (int i = 0; i < n; i++)
        d[i] = (i % 3 == 0 ? -1.0 : 1.0) * (i + 1);
    double p = wilcoxon_signed_rank(d, n, &w);
    /* exact reference by dynamic programming over ranks 1..n (no ties) */
    int total = n * (n + 1) / 2;
    double *count = calloc(total + 1, sizeof(double));
    count[0] = 1;
    for (int r = 1; r <= n; r++)
        for (int s = total - r; s >= 0; s--)
            count[s + r] += count[s];
    double lower = 0, all = ldexp(1.0, n);
    for (int s = 0; s <= (int)w; s++)
        lower += count[s];
    double exact = 2 * fmin(lower, all - lower + count[(int)w]) / all;
    /* in the far tail the approximation is good to about a tenth of the value */
    CHECK(fabs(p - exact) < 0.15 * exact, "normal approximation %g vs exact %g (W+=%g)", p, exact, w);
    printf("McNemar(2,10)=%.6f Wilcoxon(n=8,W+=3)=%.6f normal approx n=90: %.5f vs exact %.5f\n",
           mcnemar_exact(2, 10), 10.0 / 256.0, p, exact);
    free(d);
    free(count);
    return test_finish("test_stats");
}
