/* job.h - the job file: one libconfig file describing the whole grid
 * (private to trainer/). Parsed once into plain structs and enums; nothing
 * downstream looks at strings again.
 *
 * Every key is one row of a table (trainer/job_keys.c) with its type, range,
 * default and meaning; jobs/README.md's key reference is generated from it
 * (job_keys_markdown).
 * The whole file is validated before anything runs: syntax, unknown keys
 * (with the nearest known key suggested), types, ranges, enum names, names
 * that must be unique, references between sections (overrides, fusions) and,
 * unless JOB_NO_PATH_CHECK is given, the existence of data paths and
 * pretrained weight files. Relative paths are relative to the working
 * directory, not to the job file.
 */
#ifndef OCCKD_JOB_H
#define OCCKD_JOB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "trainer/trainer.h"

#define JOB_NAME_MAX 64
#define JOB_PATH_MAX 1024
#define JOB_MAX_SEEDS 32

typedef enum { TARGET_EXPRESSION, TARGET_GENDER, TARGET_AGE, TARGET_CLASS } Target;

const char *target_name(Target t);   /* "expression", "gender", "age", "class" */
Attr target_attr(Target t);          /* the data attribute holding the target's labels */

typedef struct {
    char name[JOB_NAME_MAX];  /* "expression", "gender", "age", ... (unique) */
    DataOptions data;         /* source, paths, side, channels, splits, on_bad_sample, ... */
    Occlusion occ;            /* how the students' faces are hidden */
    Target target;
    Attr attr;                /* target_attr(target) */
    int regression;           /* target age */
    int l2;                   /* age loss: 0 L1 (default), 1 L2 */
    int classes;              /* from the target: expression 8, gender 2, age 1; target class: 0 here,
                                 the grid fills it from the data set's n_classes[ATTR_CLASS] after loading */
} TaskSpec;

typedef struct {
    char name[JOB_NAME_MAX];  /* unique; defaults to the architecture name */
    NetSpec net;              /* channels and classes are 0: set per task (job_netspec); input 0: each
                                 task's data.side, otherwise equal to every task's data.side */
    char init[JOB_PATH_MAX];  /* pretrained weights (HDF5, /params/<layer>/<tensor>) or "" */
} ModelSpec;

/* Training settings of one cell after defaults and overrides. */
typedef struct {
    int epochs;
    int batch;                /* global batch */
    int accum;                /* micro-batches per step */
    SgdConfig sgd;            /* lr, momentum, nesterov, weight_decay, decoupled, schedule, gamma, min_lr */
    float warmup_epochs;      /* converted to steps per cell */
    float step_epochs;        /* SCHED_STEP period in epochs (job_settings resolves the default 0 to
                                 max(1, epochs / 3)) */
    AugmentOptions aug;
    int eval_batch;
    int spare;                /* read by nothing: where the key row of the JOB_TEST_EXTRA_KEY test build lands */
} TrainSettings;
/* sgd.warmup_steps, total_steps and step_size are left 0 here: they depend on
 * the steps per epoch, which the trainer knows once the data is loaded. */

/* An override applies to the cells whose task, model and method match
 * ("*" or "" matches any); later overrides win. `set` flags the train keys
 * it carries, a bit per key (job_override_bit). */
unsigned job_override_bit(const char *key); /* "lr", "augment.flip"; 0 for a key overrides cannot set */

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
    float bucket_mb;          /* as given (MiB), then as bucket_bytes holds it */
    size_t bucket_bytes;      /* from bucket_mb */
    int overlap;              /* 0: one blocking allreduce per step */
    int sync_bn;              /* 1: batch norm over the group's whole batch (TrainConfig.sync_bn) */
    int threads;              /* per rank; 0: from the node */
    double watchdog_seconds;  /* as CommOptions: > 0 limit; < 0 off (the job file's 0 means off) */
} ParallelSettings;

typedef struct {
    /* source */
    char path[JOB_PATH_MAX];
    char *text;               /* the job file's text, as read */
    char *sets;               /* the --set overrides as given, one per line ("" without) */
    char sha256[65];          /* hex digest of the text, then "\n--set <s>" for each --set s in order */
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

/* job_load_ex flags. */
enum {
    JOB_NO_PATH_CHECK = 1 << 0 /* do not require data paths and init files to exist (tests of job
                                  files written for another machine); everything else is checked */
};

/* Parses and validates the whole job file. `sets` are "key.path=value"
 * overrides from --set (n_sets of them), applied to the file's settings and
 * validated the same way; a path component may be a group key, a list
 * index (tasks.0.data.count=500) or the name of a task, model, fusion
 * (tasks.age.loss=l2); the value is parsed as libconfig would (2, 0.1,
 * true, "x", [1, 2]), and a value libconfig cannot parse is taken as a
 * string (job.output=runs/x). Returns 0, or -1 with the messages in err, one
 * per line (at most 20), each naming "<file>:<line>" or "--set '<arg>'" and
 * what was expected (libconfig syntax errors, unknown keys with the nearest
 * known key suggested, wrong types, out-of-range values with the allowed
 * range, unknown names with the known ones, duplicate names, fusions of
 * untrained methods, missing data paths, ...). On failure *job holds nothing
 * to free (job_free is harmless). */
int job_load(const char *path, const char *const *sets, int n_sets, Job *job, char *err, size_t errlen);
/* The same with flags (JOB_NO_PATH_CHECK). job_load checks paths. */
int job_load_ex(const char *path, const char *const *sets, int n_sets, unsigned flags, Job *job, char *err,
                size_t errlen);
void job_free(Job *job);

/* The settings of cell (task, model, method) after the overrides that match
 * it, in file order, with step_epochs resolved. */
TrainSettings job_settings(const Job *job, int task, int model, Method method);

/* The defaults of a job file's train and distill groups (the key tables'). */
TrainSettings job_train_defaults(void);
DistillSettings job_distill_defaults(void);

/* The network of a cell: the model's spec with input (when 0), channels and
 * classes (1 for regression) taken from the task. A class target's classes
 * stay 0 until the grid fills TaskSpec.classes from the data. */
NetSpec job_netspec(const Job *job, int task, int model);

/* A readable summary for `occkd_train --check`: the job, its tasks, models,
 * methods and fusions, every cell with its settings, and the distillation,
 * parallel and checkpoint settings. */
void job_print(const Job *job, FILE *f);

/* The key reference of jobs/README.md from the key tables: for each group, a
 * markdown table between the lines "<!-- keys <group> begin -->" and
 * "<!-- keys <group> end -->". */
void job_keys_markdown(FILE *f);

/* SHA-256 (FIPS 180-4) of bytes as 64 lower-case hex characters and a NUL. */
void sha256_hex(const void *data, size_t len, char out[65]);

/* The same in pieces: init, update any number of times, final. */
typedef struct {
    uint32_t h[8];
    uint64_t bytes;
    uint8_t buf[64];
    size_t fill;
} Sha256;
void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t len);
void sha256_final_hex(Sha256 *s, char out[65]);

/* The stamp of one cell (job_identity.c): its name and the text and hash of
 * exactly the settings that determine it. `method` is a method's name or a
 * fusion's. 0, or -1 when the text does not fit CELL_SETTINGS_MAX. */
int job_cell_stamp(const Job *job, int seed_i, int task, int model, const char *method, CellStamp *out);

#endif
