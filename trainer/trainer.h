/* trainer.h - the training core of occkd: objectives, the training loop,
 * evaluation and significance tests. */
#ifndef OCCKD_TRAINER_H
#define OCCKD_TRAINER_H

#include <stdint.h>

/* ------------------------------------------------------ significance tests */

/* McNemar's exact two-sided p-value from the discordant pair counts: b =
 * baseline right and method wrong, c = method right and baseline wrong. */
double mcnemar_exact(int64_t b, int64_t c);

/* Wilcoxon signed-rank two-sided p-value for paired differences d (n).
 * Zeros are dropped; *w_plus (optional) receives W+, the rank sum of the
 * positive differences. */
double wilcoxon_signed_rank(const double *d, int64_t n, double *w_plus);

#endif
