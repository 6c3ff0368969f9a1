/* job.h - the job file: one libconfig file describing the whole grid
 * (private to trainer/). Parsed once into plain structs and enums; nothing
 * downstream looks at strings again.
 *
 * Every key, its type, range and default is documented in jobs/README.md.
 */
#ifndef OCCKD_JOB_H
#define OCCKD_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "trainer/trainer.h"

#define JOB_NAME_MAX 64
#define JOB_PATH_MAX 1024
#define JOB_MAX_SEEDS 32

typedef enum { TARGET_EXPRESSION, TARGET_GENDER, TARGET_AGE, TARGET_CLASS } Target;

typedef struct {
    char name[JOB_NAME_MAX];  /* "expression", "gender", "age", ... (unique) */
    DataOptions data;         /* source, paths, side, channels, splits, on_bad_sample, ... */
    Occlusion occ;            /* how the students' faces are hidden */
    Target target;
    int regression;           /* target age */
    int l2;                   /* age loss: 0 L1 (default), 1 L2 */
    int classes;              /* filled from the target (expression 8, gender 2, age 1, class: from the data) */
} TaskSpec;

typedef struct {
    char name[JOB_NAME_MAX];  /* unique; defaults to the architecture name */
    NetSpec net;              /* classes and channels are set per task */
    char init[JOB_PATH_MAX];  /* pretrained weights (HDF5, /params/<layer>/<tensor>) or "" */
} ModelSpec;

/* Training settings of one cell after defaults and overrides. */
typedef struct {
    int epochs;
    int batch;                /* global batch */
    int accum;                /* micro-batches per step */
    SgdConfig sgd;            /* lr, momentum, nesterov, weight_decay, decoupled, schedule, gamma, min_lr */
    float warmup_epochs;      /* converted to steps per cell */
    float step_epochs;        /* SCHED_STEP period in epochs */
    AugmentOptions aug;
    int eval_batch;
} TrainSettings;

/* An override applies to the cells whose task, model and method match
 * ("*" or "" matches any); later overrides win. `set` flags which fields it
 * carries (bit per field, JOB_OV_*). */
enum {
    JOB_OV_EPOCHS = 1 << 0, JOB_OV_BATCH = 1 << 1, JOB_OV_LR = 1 << 2, JOB_OV_SCHEDULE = 1 << 3,
    JOB_OV_MOMENTUM = 1 << 4, JOB_OV_WEIGHT_DECAY = 1 << 5, JOB_OV_WARMUP = 1 << 6, JOB_OV_ACCUM = 1 << 7,
    JOB_OV_NESTEROV = 1 << 8, JOB_OV_DECOUPLED = 1 << 9, JOB_OV_STEP_EPOCHS = 1 << 10, JOB_OV_GAMMA = 1 << 11,
    JOB_OV_MIN_LR = 1 << 12
};

typedef struct {
    char task[JOB_NAME_MAX], model[JOB_NAME_MAX], method[JOB_NAME_MAX];
    unsigned set;
    TrainSettings s;
} Override;

typedef struct {
    float T, lambda, beta, margin, age_bin;
    Mining mining;
    PositiveMode positive;
} DistillSettings;

typedef enum { FUSION_AVERAGE, FUSION_CONCAT } FusionKind;

typedef struct {
    char name[JOB_NAME_MAX];
    int n_students;
    Method students[METHOD_COUNT]; /* methods whose trained students are fused (not teacher) */
    FusionKind kind;               /* average of probabilities/regressions, or concatenated embeddings + a linear head */
    int head_epochs;               /* concat: epochs of the linear head */
} FusionSpec;

typedef struct {
    int groups;               /* rank groups training cells side by side */
    size_t bucket_bytes;
    int overlap;              /* 0: one blocking allreduce per step */
    int threads;              /* per rank; 0: from the node */
    double watchdog_seconds;
} ParallelSettings;

typedef struct {
    /* source */
    char path[JOB_PATH_MAX];
    char *text;               /* the job file's text, as read */
    char sha256[65];          /* hex digest of the text plus the --set overrides */
    /* [job] */
    char name[JOB_NAME_MAX];
    char output[JOB_PATH_MAX];
    char cache[JOB_PATH_MAX]; /* data cache folder (default <output>/cache) */
    int n_seeds;
    uint64_t seeds[JOB_MAX_SEEDS];
    /* grid */
    int n_tasks;
    TaskSpec *tasks;
    int n_models;
    ModelSpec *models;
    int n_methods;
    Method methods[METHOD_COUNT]; /* in the order given; teacher is implied when students are listed */
    int n_fusions;
    FusionSpec *fusions;
    /* settings */
    TrainSettings train;
    int n_overrides;
    Override *overrides;
    DistillSettings distill;
    ParallelSettings parallel;
    int64_t checkpoint_steps; /* 0: off */
    double checkpoint_minutes; /* 0: off */
    int log_every;            /* steps between progress lines (0: per epoch) */
} Job;

/* Exit statuses of occkd_train. */
enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_INVALID = 2 };

/* Parses and validates the whole job file. `sets` are "key.path=value"
 * overrides from --set (n_sets of them), applied to the file's settings and
 * validated the same way. Returns 0, or -1 with one message naming the file
 * and line (libconfig syntax errors, unknown keys with the nearest known key
 * suggested, wrong types, out-of-range values, unknown architectures,
 * methods, sources or occlusions, missing data paths, ...). */
int job_load(const char *path, const char *const *sets, int n_sets, Job *job, char *err, size_t errlen);
void job_free(Job *job);

/* The settings of cell (task, model, method) after the overrides. */
TrainSettings job_settings(const Job *job, int task, int model, Method method);

/* SHA-256 of bytes as 64 hex characters and a NUL. */
void sha256_hex(const void *data, size_t len, char out[65]);

#endif
