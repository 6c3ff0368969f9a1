/* trainer.h - the training core of occkd: objectives, the training loop,
 * evaluation and significance tests. */
#ifndef OCCKD_TRAINER_H
#define OCCKD_TRAINER_H

#include <stdint.h>

#include "layers/layers.h"

/* ------------------------------------------------------- triplet mining */

typedef enum { MINE_HARDEST, MINE_SEMIHARD, MINE_RANDOM } Mining;
/* Positive of an anchor: the teacher's embedding of the same clean image, or
 * of another clean image of the same class. */
typedef enum { POSITIVE_SAME, POSITIVE_CLASS } PositiveMode;

/* Chooses one triple per anchor of the global batch. s (g,d): student
 * embeddings of the occluded faces; t (g,d): teacher embeddings of the clean
 * faces; label (g). Distances are squared Euclidean between L2-normalised
 * rows. Row numbers in the triples: student i is row i, teacher j is row g+j
 * (the layout loss_triplet gets). Anchors without a negative (their class
 * fills the batch) or, for POSITIVE_CLASS, without another sample of their
 * class, fall back to the same image as positive / are skipped. `key` seeds
 * random mining (e.g. from seed and step). Returns the number of triples. */
int mine_triplets(const float *s, const float *t, const int *label, int g, int d, Mining mining,
                  PositiveMode positive, float margin, uint64_t key, Triple *out);

/* The triplet term over the global batch: mines, then evaluates the hinge.
 * Returns the loss (sum over triples / g); d_s (g,d) receives its gradient
 * with respect to the student embeddings (the teacher is frozen). */
float triplet_objective(const float *s, const float *t, const int *label, int g, int d, Mining mining,
                        PositiveMode positive, float margin, uint64_t key, float *d_s, int *n_active);

/* ------------------------------------------------------ significance tests */

/* McNemar's exact two-sided p-value from the discordant pair counts: b =
 * baseline right and method wrong, c = method right and baseline wrong. */
double mcnemar_exact(int64_t b, int64_t c);

/* Wilcoxon signed-rank two-sided p-value for paired differences d (n).
 * Zeros are dropped; *w_plus (optional) receives W+, the rank sum of the
 * positive differences. */
double wilcoxon_signed_rank(const double *d, int64_t n, double *w_plus);

#endif
