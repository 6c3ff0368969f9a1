/* trainer.h - the training core of occkd: objectives, the training loop,
 * evaluation and significance tests. */
#ifndef OCCKD_TRAINER_H
#define OCCKD_TRAINER_H

#include <stdint.h>

#include <stdio.h>

#include "checkpoints/checkpoints.h"
#include "comm/comm.h"
#include "data/data.h"
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
 * 0 with the loss (sum over triples / g) in *loss; d_s (g,d) receives its
 * gradient with respect to the student embeddings (the teacher is frozen);
 * -1 with a message in err (no memory for the rows). */
int triplet_objective(const float *s, const float *t, const int *label, int g, int d, Mining mining,
                      PositiveMode positive, float margin, uint64_t key, float *d_s, int *n_active, float *loss,
                      char *err, size_t errlen);

/* ------------------------------------------------------ significance tests */

/* McNemar's exact two-sided p-value from the discordant pair counts: b =
 * baseline right and method wrong, c = method right and baseline wrong. */
double mcnemar_exact(int64_t b, int64_t c);

/* Wilcoxon signed-rank two-sided p-value for paired differences d (n).
 * Zeros are dropped; *w_plus (optional) receives W+, the rank sum of the
 * positive differences. */
double wilcoxon_signed_rank(const double *d, int64_t n, double *w_plus);

/* -------------------------------------------------------- training */

typedef enum { METHOD_TEACHER, METHOD_STUDENT, METHOD_KD, METHOD_TRIPLET, METHOD_KD_TRIPLET, METHOD_COUNT } Method;

const char *method_name(Method m);          /* "teacher", "student", "kd", "triplet", "kd+triplet" */
int method_parse(const char *name, Method *out);
static inline int method_uses_kd(Method m) { return m == METHOD_KD || m == METHOD_KD_TRIPLET; }
static inline int method_uses_triplet(Method m) { return m == METHOD_TRIPLET || m == METHOD_KD_TRIPLET; }

/* Everything one cell's training needs besides the network and the data. */
typedef struct {
    char name[128];          /* for progress lines: "expression/vgg_f/kd" */
    Method method;
    /* task */
    int regression;          /* 1: one output regressed on the age */
    int l2;                  /* regression loss: 0 L1, 1 L2 */
    float target_mean, target_std; /* regression targets are (age - mean) / std */
    int classes;             /* classification outputs */
    /* optimisation */
    int epochs;
    int global_batch;        /* samples per optimiser step over all ranks */
    int accum;               /* micro-batches per step (>= 1); the triplet term is mined per micro-batch */
    SgdConfig sgd;           /* total_steps 0: filled with epochs x steps per epoch */
    /* distillation (defaults: the distill rows of trainer/job_keys.c) */
    float T, lambda, beta, margin;
    Mining mining;
    PositiveMode positive;
    float age_bin;           /* years per class for the age triplet term */
    uint64_t seed;
    int log_every;           /* steps between progress lines (0: one per epoch; < 0: silent) */
    int eval_batch;          /* samples per evaluation batch over all ranks */
    GradSyncOptions sync;
    int sync_bn;             /* 1 (default): batch norm over the group's whole batch (Pass.reduce); 0: per rank */
} TrainConfig;

TrainConfig train_config_default(void);

/* Where a cell's training stands: enough to continue it bit for bit. The
 * run state and the history are the very structs a checkpoint saves
 * (checkpoints.h); the buffers are the optimiser's and the best epoch's. */
typedef struct {
    RunState run;
    History history;         /* the finished epochs */
    float *velocity;         /* (n_params) momentum */
    float *best_params;      /* (n_params) weights of the best validation epoch */
    float *best_state;       /* (n_state) their batch-norm statistics */
} TrainState;

int train_state_init(TrainState *s, const Net *net);
void train_state_free(TrainState *s);

/* What the caller provides to the loop. */
typedef struct {
    Comm *comm;              /* the group training this cell */
    FILE *log;               /* progress lines (group leader only; NULL: none) */
    /* Called on every rank after each step (optional). Returns 0 to go on,
     * 1 to stop cleanly (e.g. after checkpointing on a signal) or -1 on an
     * error with a message in msg. The group agrees on the outcome: if any
     * rank stops or fails, every rank does, failures winning, with the
     * message of the lowest failing rank. */
    int (*after_step)(void *user, const TrainState *s, int epoch_end, char *msg, size_t len);
    void *user;
} TrainEnv;

/* The per-sample outcome of an evaluation, valid on the group leader. */
typedef struct {
    int64_t n;               /* samples */
    int classes;             /* 0 for regression */
    float *label;            /* (n) class or age in years */
    float *pred;             /* (n) predicted class or age in years */
    float *prob;             /* (n, classes) probabilities (classification) */
    int64_t *confusion;      /* (classes, classes): rows true class, columns prediction */
    double metric;           /* accuracy (0-1) or mean absolute error (years) */
    double *per_class;       /* (classes) accuracy per true class (NaN where a class is absent) */
    float *embedding;        /* (n, embedding_size) with evaluate_embeddings, else NULL */
    int embedding_size;
} EvalResult;

void eval_result_free(EvalResult *r);

/* Trains `net` for the cell; `teacher` (frozen, eval mode) is needed by kd
 * and triplet methods, NULL otherwise. `base` gives the data options (attr,
 * occlusion, augmentation, normalisation); the function sets split, sampler
 * and epochs itself. Resumes from *state (zeroed state: from the start).
 * Afterwards net holds the best validation epoch's weights. Collective over
 * the group. Returns 0; 1 when env->after_step asked to stop; -1 on failure
 * with a message in err, on every rank of the group. */
int train_cell(const TrainConfig *cfg, const TrainEnv *env, Net *net, Net *teacher, const Dataset *d,
               const LoaderOptions *base, TrainState *state, char *err, size_t errlen);

/* Evaluates net on a split, sharded over the group; the predictions are
 * gathered in sample order to the group leader. `occluded` picks the
 * occluded or the clean images. Collective. 0 or -1 + message. */
int evaluate(const TrainConfig *cfg, Comm *comm, Net *net, const Dataset *d, const LoaderOptions *base, Split split,
             int occluded, EvalResult *out, char *err, size_t errlen);

/* data/'s synchronisation through comm/ over the whole world. */
DataComm trainer_datacomm(Comm *c);
/* The same over the caller's rank group (a group loads the tasks it trains). */
DataComm trainer_datacomm_group(Comm *c);

/* evaluate() that also gathers every sample's embedding (the network's
 * penultimate layer) to the group leader, in sample order. */
int evaluate_embeddings(const TrainConfig *cfg, Comm *comm, Net *net, const Dataset *d, const LoaderOptions *base,
                        Split split, int occluded, EvalResult *out, char *err, size_t errlen);

/* Trains a linear head on fixed features: softmax regression over `classes`
 * (or, with classes 0, L1/L2 regression on standardised targets) by SGD with
 * momentum over `epochs` passes of seeded mini-batches. x (n, dim), y (n)
 * class or target. Writes predictions for xt (nt, dim) into pred (nt) and,
 * for classification, probabilities into prob (nt, classes). */
void linear_head(const float *x, const float *y, int64_t n, const float *xt, int64_t nt, int dim, int classes, int l2,
                 int epochs, uint64_t seed, float *pred, float *prob);

/* Paired p-value of `other` against `baseline` on the same samples: McNemar
 * (classification) or Wilcoxon on absolute errors (regression). */
double paired_p_value(const EvalResult *baseline, const EvalResult *other);

#endif
