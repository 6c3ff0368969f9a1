/* job_keys.c - every key of a job file, one row each: name, type, range,
 * default, where it lands, whether overrides may set it, how --check shows
 * it and what it means. Reading (job_schema.c), defaults, overrides
 * (job_settings.c), printing (job_print.c) and the key reference of
 * jobs/README.md (job_doc.c) all come from these rows; a new key is one row
 * here (and, for a new field, the field).
 *
 * Order matters: messages list a group's keys in row order, --check shows
 * them in row order and the reference lists them so.
 */
#include <math.h>

#include "trainer/job_internal.h"

#define ROW(T, nm, knd, field) .name = nm, .kind = knd, .offset = offsetof(T, field), .size = sizeof(((T *)0)->field)
#define REF(nm, type) .name = nm, .kind = K_REF, .type_doc = type
#define GROUP(nm) .name = nm, .kind = K_GROUP, .type_doc = "group"
#define GE(a) {(a), INFINITY, 0, 0}      /* >= a */
#define GT(a) {(a), INFINITY, 1, 0}      /* > a */
#define IN(a, b) {(a), (b), 0, 0}        /* [a, b] */
#define IN_RO(a, b) {(a), (b), 0, 1}     /* [a, b) */
#define IN_LO(a, b) {(a), (b), 1, 0}     /* (a, b] */
#define NAMES(a) .names = a, .n_names = COUNT(a)

#define NAME_RANGE "letters, digits, `_ . + -`; unique"

const char *const target_names[4] = {"expression", "gender", "age", "class"};
const char *const fusion_names[2] = {"average", "concat"};
static const char *const loss_names[] = {"l1", "l2"};
static const char *const label_names[] = {"majority", "distribution"};
static const char *const bad_sample_names[] = {"skip", "fail"};
static const char *const schedule_names[] = {"constant", "step", "cosine"};
static const char *const mining_names[] = {"hardest", "semi-hard", "random"};
static const char *const positive_names[] = {"same", "class"};

static const char *source_at(int i) { return source_name((Source)i); }
static const char *arch_at(int i) { return arch_name((Arch)i); }
static const char *kind_at(int i) { return occlusion_kind_name((OcclusionKind)i); }
static const char *fill_at(int i) { return occlusion_fill_name((OcclusionFill)i); }
static const char *shape_at(int i) { return occlusion_shape_name((OcclusionShape)i); }

/* --check conditions */
static int above_one(const void *base, const KeyRow *r) { return row_number(r, base) > 1; }
static int positive(const void *base, const KeyRow *r) { return row_number(r, base) > 0; }
static int step_schedule(const void *base, const KeyRow *r) { return ((const TrainSettings *)base)->sgd.schedule == SCHED_STEP; }
static int cosine_floor(const void *base, const KeyRow *r)
{
    const TrainSettings *s = base;
    return s->sgd.schedule == SCHED_COSINE && s->sgd.min_lr > 0;
}

/* ------------------------------------------------------------ top level */

static const KeyRow root_rows[] = {
    {REF("job", "group")},      {REF("tasks", "list")},      {REF("models", "list")},  {REF("methods", "array")},
    {REF("train", "group")},    {REF("overrides", "list")},  {REF("distill", "group")}, {REF("fusions", "list")},
    {REF("parallel", "group")}, {REF("checkpoint", "group")}, {REF("log", "group")},
};
const KeyTable root_table = {"the job file", root_rows, COUNT(root_rows)};

static const KeyRow job_rows[] = {
    {ROW(Job, "name", K_STRING, name), .flags = KEY_NO_DEFAULT, .range_doc = "letters, digits, `_ . + -`",
     .def_doc = "the file name without extension", .doc = "job name"},
    {ROW(Job, "output", K_STRING, output), .flags = KEY_NO_DEFAULT, .range_doc = "non-empty",
     .def_doc = "`runs/<name>`", .doc = "output folder (checkpoints, `results.h5`)"},
    {ROW(Job, "cache", K_STRING, cache), .flags = KEY_NO_DEFAULT, .def_doc = "`<output>/cache`",
     .doc = "folder of the decoded data caches (HDF5)"},
    {ROW(Job, "seed", K_U64, seeds[0]), .r = GE(0), .def = 1,
     .doc = "the seed of every cell (weights, sampling, augmentation, dropout)"},
    {REF("seeds", "array of int"), .range_doc = "1 to 32 distinct values >= 0", .def_doc = "`[seed]`",
     .doc = "train every cell once per seed; `/summary` gives each seed, the mean and the standard deviation. "
            "Not together with `seed`"},
    {REF("only_task", "string or int"), .range_doc = "a task name, or an index from 0", .def_doc = "(all tasks)",
     .doc = "keep only this task of the grid (used by `jobs/slurm/tasks-array.sbatch`, one task per array "
            "element); cells are seeded by task and model names, so they train exactly as in the whole grid"},
};
const KeyTable job_table = {"job", job_rows, COUNT(job_rows)};

/* ------------------------------------------------------------------ tasks */

static const KeyRow task_rows[] = {
    {ROW(TaskSpec, "name", K_STRING, name), .flags = KEY_NO_DEFAULT, .range_doc = NAME_RANGE,
     .def_doc = "the target", .doc = "names folders and HDF5 groups"},
    {ROW(TaskSpec, "target", K_ENUM, target), NAMES(target_names), .flags = KEY_NO_DEFAULT, .def_doc = "required",
     .doc = "what is predicted: expression (8 FER+ classes), gender (2), age (regression in years), class (an IDX "
            "or folder data set's classes; their number comes from the data)"},
    {ROW(TaskSpec, "loss", K_ENUM, l2), NAMES(loss_names), .def = 0, .doc = "age only: regression loss"},
    {REF("data", "group"), .def_doc = "synthetic faces", .doc = "the data set, below"},
    {REF("occlusion", "group"), .def_doc = "see below", .doc = "how the students' faces are hidden"},
};
const KeyTable task_table = {"tasks", task_rows, COUNT(task_rows)};

static const KeyRow data_rows[] = {
    {ROW(DataOptions, "source", K_ENUM, source), .name_of = source_at, .n_names = SOURCE_FOLDER + 1,
     .def = SOURCE_SYNTH, .doc = "the reader"},
    {ROW(DataOptions, "path", K_STRING, path), .range_doc = "must exist", .def_doc = "required except for `synth`",
     .doc = "`ferplus`: folder with `fer2013.csv` and `fer2013new.csv`; `affectnet`: folder with `training.csv` "
            "and `validation.csv`; `utkface`: the image folder; `idx`: folder with `train-images-idx3-ubyte`, "
            "`train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte` (each optionally "
            "`.gz`); `folder`: one sub-folder of images per class. Not allowed for `synth`"},
    {ROW(DataOptions, "images", K_STRING, images), .range_doc = "folder must exist", .def_doc = "`path`",
     .doc = "`affectnet` only: the image root"},
    {ROW(DataOptions, "side", K_INT, side), .r = IN(8, 4096), .def = 64, .range_doc = "[8, 4096]; synth >= 16",
     .doc = "stored image side in pixels (images are resized to it). Networks take this side as input"},
    {ROW(DataOptions, "channels", K_INT, channels), .r = IN(1, 3), .def = 1, .range_doc = "1 or 3",
     .doc = "grey or colour"},
    {ROW(DataOptions, "labels", K_ENUM, ferplus_distribution), NAMES(label_names), .def = 0,
     .doc = "`ferplus` only: majority-vote labels, or vote distributions as soft targets"},
    {ROW(DataOptions, "val_fraction", K_FLOAT, val_fraction), .r = IN_RO(0, 1), .flags = KEY_NO_DEFAULT,
     .def_doc = "0.1 (0 for ferplus)",
     .doc = "share of the training data held out for validation. Not for `ferplus` (official splits)"},
    {ROW(DataOptions, "test_fraction", K_FLOAT, test_fraction), .r = IN_RO(0, 1), .flags = KEY_NO_DEFAULT,
     .def_doc = "0.2 for synth, utkface, folder",
     .doc = "share drawn for test where the source has no official test set (not for `ferplus`, `affectnet`, "
            "`idx`). `val_fraction + test_fraction < 1`"},
    {ROW(DataOptions, "split_seed", K_U64, split_seed), .r = GE(0), .def = 1,
     .doc = "seed of the drawn splits (stratified)"},
    {ROW(DataOptions, "on_bad_sample", K_ENUM, on_bad_sample), NAMES(bad_sample_names), .def = BAD_SAMPLE_SKIP,
     .doc = "an unreadable image: count and skip it, or stop"},
    {ROW(DataOptions, "count", K_INT, synth_count), .r = GE(1), .def = 4096, .doc = "`synth` only: number of faces"},
    {ROW(DataOptions, "synth_seed", K_U64, synth_seed), .r = GE(0), .def = 1, .doc = "`synth` only: seed of the faces"},
    {ROW(DataOptions, "limit", K_INT, limit), .r = GE(0), .def = 0, .def_doc = "0 (all)",
     .doc = "keep at most this many samples per split (short runs)"},
    {ROW(DataOptions, "in_memory", K_BOOL, in_memory), .def = 0,
     .doc = "hold the decoded images in every rank's memory instead of streaming them from the cache (small data "
            "sets; the results are the same bit for bit)"},
    {ROW(DataOptions, "cache_side", K_INT, cache_side), .r = IN(0, 4096), .def = 0, .def_doc = "0 (the source's own)",
     .doc = "largest side stored in the data cache; the cache keeps each face at the source's resolution (FER+ "
            "48 px grey, UTKFace 200 px, IDX 28 px grey; AffectNet and image folders at `cache_side`, or `side` "
            "when 0) and the loader resizes to `side` and `channels`"},
};
const KeyTable data_table = {"tasks[i].data", data_rows, COUNT(data_rows)};

static const KeyRow occlusion_rows[] = {
    {ROW(Occlusion, "kind", K_ENUM, kind), .name_of = kind_at, .n_names = 3, .flags = KEY_NO_DEFAULT,
     .def_doc = "`vr` for expression and class, `mask` for gender and age",
     .doc = "`vr` hides the upper part (a VR headset), `mask` the lower part (a surgical mask)"},
    {ROW(Occlusion, "fraction", K_FLOAT, fraction), .r = IN_LO(0, 1), .def = 0.5,
     .doc = "share of the image height the occluder spans"},
    {ROW(Occlusion, "fill", K_ENUM, fill), .name_of = fill_at, .n_names = 3, .def = OCC_FILL_BLACK,
     .doc = "what the hidden pixels hold"},
    {ROW(Occlusion, "shape", K_ENUM, shape), .name_of = shape_at, .n_names = 2, .def = OCC_SHAPE_BAND,
     .doc = "a full-width band, or the outline of a headset / mask inside it"},
    {ROW(Occlusion, "seed", K_U64, seed), .r = GE(0), .def = 1, .doc = "key of the noise fill"},
};
const KeyTable occlusion_table = {"tasks[i].occlusion", occlusion_rows, COUNT(occlusion_rows)};

/* ----------------------------------------------------------------- models */

/* The architecture's defaults apply first (netspec_default), so these rows
 * have none of their own. */
static const KeyRow model_rows[] = {
    {ROW(ModelSpec, "name", K_STRING, name), .flags = KEY_NO_DEFAULT, .range_doc = NAME_RANGE,
     .def_doc = "the architecture", .doc = "names folders and HDF5 groups"},
    {ROW(ModelSpec, "arch", K_ENUM, net.arch), .name_of = arch_at, .n_names = ARCH_RESNET50 + 1,
     .flags = KEY_NO_DEFAULT, .def_doc = "required", .doc = "architecture"},
    {ROW(ModelSpec, "input", K_INT, net.input), .r = IN(16, 4096), .flags = KEY_NO_DEFAULT,
     .def_doc = "each task's `data.side`",
     .doc = "input side; if given it must equal every task's `data.side` (the loader does not resize). VGG-f "
            "needs >= 63, VGG-face >= 32, ResNet-50 >= 16"},
    {ROW(ModelSpec, "width", K_FLOAT, net.width), .r = IN_LO(0, 16), .flags = KEY_NO_DEFAULT,
     .def_doc = "1 (published)", .doc = "channel multiplier"},
    {ROW(ModelSpec, "fc", K_INT, net.fc), .r = GE(0), .flags = KEY_NO_DEFAULT, .range_doc = ">= 1; resnet50 >= 0",
     .def_doc = "4096; resnet50 0", .doc = "width of the hidden fully connected layers (resnet50: 0 = none)"},
    {ROW(ModelSpec, "dropout", K_FLOAT, net.dropout), .r = IN_RO(0, 1), .flags = KEY_NO_DEFAULT,
     .def_doc = "0.5; resnet50 0", .doc = "dropout after hidden fully connected layers"},
    {ROW(ModelSpec, "batchnorm", K_BOOL, net.batchnorm), .flags = KEY_NO_DEFAULT,
     .def_doc = "false (published); resnet50 true",
     .doc = "`vgg_f`, `vgg_face`: batch normalisation after every convolution, before its ReLU (`bn1` ... of "
            "vgg_f, `bn1_1` ... of vgg_face); resnet50 always has it"},
    {ROW(ModelSpec, "fc_layers", K_INT, net.fc_layers), .r = IN(0, 2), .flags = KEY_NO_DEFAULT,
     .range_doc = "0 to 2; resnet50 0", .def_doc = "2 (published); resnet50 0",
     .doc = "`vgg_f`, `vgg_face`: hidden fully connected layers of width `fc` (fc6, fc7); the last one is the "
            "embedding, with 0 the classifier reads pool5 and it is the embedding. resnet50 has a hidden layer "
            "when `fc` > 0"},
    {ROW(ModelSpec, "init", K_STRING, init), .flags = KEY_NO_DEFAULT, .range_doc = "file must exist",
     .def_doc = "none (random init)", .doc = "pretrained weights for the teachers, HDF5 `/params/<layer>/<tensor>`"},
};
const KeyTable model_table = {"models", model_rows, COUNT(model_rows)};

/* ------------------------------------------------------------------ train */

#define TRAIN(nm, knd, field) ROW(TrainSettings, nm, knd, field), .flags = KEY_OVERRIDE

static const KeyRow train_rows[] = {
    {TRAIN("epochs", K_INT, epochs), .r = GE(1), .def = 10, .fmt = "epochs %d", .doc = "passes over the training split"},
    {TRAIN("batch", K_INT, batch), .r = GE(1), .def = 64, .fmt = " batch %d",
     .doc = "global batch (all ranks of a group together)"},
    {TRAIN("accum", K_INT, accum), .r = GE(1), .def = 1, .fmt = " (accum %d)", .show = above_one,
     .range_doc = ">= 1, divides `batch`", .doc = "micro-batches per optimiser step"},
    {TRAIN("lr", K_FLOAT, sgd.lr), .r = GT(0), .def = 0.01, .fmt = " lr %g", .doc = "base learning rate"},
    {TRAIN("schedule", K_ENUM, sgd.schedule), NAMES(schedule_names), .def = SCHED_COSINE, .fmt = " %s",
     .doc = "learning-rate schedule after warm-up"},
    {TRAIN("gamma", K_FLOAT, sgd.gamma), .r = IN_LO(0, 1), .def = 0.1, .fmt = " (x%g", .show = step_schedule,
     .doc = "`step`: factor"},
    {TRAIN("step_epochs", K_FLOAT, step_epochs), .r = GT(0), .def = 0, .fmt = " every %g epochs)",
     .show = step_schedule, .def_doc = "epochs / 3 (at least 1)",
     .doc = "`step`: epochs between multiplications by `gamma`"},
    {TRAIN("min_lr", K_FLOAT, sgd.min_lr), .r = GE(0), .def = 0, .fmt = " (to %g)", .show = cosine_floor,
     .range_doc = ">= 0; cosine: <= lr", .doc = "`cosine`: floor"},
    {TRAIN("warmup_epochs", K_FLOAT, warmup_epochs), .r = GE(0), .def = 0, .fmt = " warmup %g", .show = positive,
     .range_doc = "[0, epochs)", .doc = "linear warm-up from 0"},
    {TRAIN("momentum", K_FLOAT, sgd.momentum), .r = IN_RO(0, 1), .def = 0.9, .fmt = " momentum %g",
     .doc = "SGD momentum"},
    {TRAIN("nesterov", K_BOOL, sgd.nesterov), .def = 0, .fmt = " nesterov", .fmt_off = "", .doc = "Nesterov momentum"},
    {TRAIN("weight_decay", K_FLOAT, sgd.weight_decay), .r = IN_RO(0, 1), .def = 5e-4, .fmt = " wd %g",
     .doc = "weight decay"},
    {TRAIN("decoupled_decay", K_BOOL, sgd.decoupled), .def = 0, .fmt = " decoupled", .fmt_off = "",
     .doc = "decay applied apart from the gradient (as AdamW) instead of L2 in the gradient"},
    {TRAIN("eval_batch", K_INT, eval_batch), .r = GE(1), .def = 256, .doc = "samples per evaluation batch"},
    {GROUP("augment"), .doc = "training augmentation:"},
    {TRAIN("augment.pad", K_INT, aug.pad), .r = IN(0, 64), .def = 4, .fmt = " aug pad %d",
     .doc = "zero padding, then a random crop back to the side"},
    {TRAIN("augment.flip", K_BOOL, aug.flip), .def = 1, .fmt = " flip", .fmt_off = "",
     .doc = "random horizontal flip"},
#ifdef JOB_TEST_EXTRA_KEY /* the build of tests/test_job.c that proves one row is all a key needs */
    {TRAIN("test_extra", K_INT, spare), .r = IN(0, 7), .def = 3, .fmt = " test_extra %d",
     .doc = "a key of the test build only"},
#endif
};
const KeyTable train_table = {"train", train_rows, COUNT(train_rows)};

static const KeyRow override_rows[] = {
    {ROW(Override, "task", K_STRING, task), .def_str = "*", .range_doc = "a task name or `\"*\"`",
     .doc = "the cells of this task"},
    {ROW(Override, "model", K_STRING, model), .def_str = "*", .range_doc = "a model name or `\"*\"`",
     .doc = "the cells of this model"},
    {ROW(Override, "method", K_STRING, method), .def_str = "*", .range_doc = "a trained method or `\"*\"`",
     .doc = "the cells of this method"},
};
const KeyTable override_table = {"overrides", override_rows, COUNT(override_rows)};

/* ------------------------------------------------------ the other groups */

#define DISTILL(nm, knd, field) ROW(DistillSettings, nm, knd, field)

static const KeyRow distill_rows[] = {
    {DISTILL("temperature", K_FLOAT, T), .r = IN_LO(0, 100), .def = 3, .fmt = " temperature %g",
     .doc = "softmax temperature T of the KD term"},
    {DISTILL("lambda", K_FLOAT, lambda), .r = IN(0, 1), .def = 0.5, .fmt = " lambda %g",
     .doc = "KD weight: (1 - lambda) task + lambda T² KL"},
    {DISTILL("beta", K_FLOAT, beta), .r = GE(0), .def = 1, .fmt = " beta %g", .doc = "triplet weight"},
    {DISTILL("margin", K_FLOAT, margin), .r = IN(0, 4), .def = 0.2, .fmt = " margin %g",
     .doc = "triplet margin (squared distances of unit vectors are at most 4)"},
    {DISTILL("mining", K_ENUM, mining), NAMES(mining_names), .def = MINE_HARDEST, .fmt = " mining %s",
     .doc = "negatives mined in the global batch"},
    {DISTILL("positive", K_ENUM, positive), NAMES(positive_names), .def = POSITIVE_SAME, .fmt = " positive %s",
     .doc = "positive: the teacher's embedding of the same clean image, or of another clean image of the class"},
    {DISTILL("age_bin", K_FLOAT, age_bin), .r = IN_LO(0, 100), .def = 10, .fmt = " age_bin %g",
     .doc = "years per class for the age triplet term"},
};
const KeyTable distill_table = {"distill", distill_rows, COUNT(distill_rows)};

static const KeyRow fusion_rows[] = {
    {ROW(FusionSpec, "name", K_STRING, name), .flags = KEY_NO_DEFAULT, .range_doc = "unique, not a method name",
     .def_doc = "`<kind>-<students...>`", .doc = "result name"},
    {REF("students", "array of strings"), .range_doc = "2 to 4 trained student methods, no `teacher`",
     .def_doc = "required", .doc = "the students fused"},
    {ROW(FusionSpec, "kind", K_ENUM, kind), NAMES(fusion_names), .def = FUSION_AVERAGE,
     .doc = "average of probabilities (regressions), or concatenated embeddings with a linear head"},
    {ROW(FusionSpec, "head_epochs", K_INT, head_epochs), .r = GE(1), .def = 5,
     .doc = "`concat` only: epochs of the head on the occluded training set"},
};
const KeyTable fusion_table = {"fusions", fusion_rows, COUNT(fusion_rows)};

#define PARALLEL(nm, knd, field) ROW(ParallelSettings, nm, knd, field)

static const KeyRow parallel_rows[] = {
    {PARALLEL("groups", K_INT, groups), .r = GE(1), .def = 1, .fmt = " groups %d,",
     .doc = "rank groups training independent cells side by side"},
    {PARALLEL("bucket_mb", K_FLOAT, bucket_mb), .r = IN_LO(0, 4096), .def = 25, .fmt = " bucket %.3g MiB,",
     .doc = "gradient allreduce bucket size in MiB"},
    {PARALLEL("overlap", K_BOOL, overlap), .def = 1, .fmt = " overlap on,", .fmt_off = " overlap off,",
     .doc = "overlap the allreduce with backward (false: one blocking allreduce per step)"},
    {PARALLEL("sync_bn", K_BOOL, sync_bn), .def = 1, .fmt = " sync_bn on,", .fmt_off = " sync_bn off,",
     .doc = "batch normalisation over the whole micro-batch of a rank group: two small allreduces (2 x "
            "channels doubles) per batch-norm layer per micro-batch, about 10 ms per step for ResNet-50's 53 on 2 "
            "ranks; false: each rank normalises its own slice, and results depend on the number of ranks"},
    {PARALLEL("threads", K_INT, threads), .r = IN(0, 1024), .def = 0, .fmt = " threads %d,",
     .fmt_off = " threads auto,", .def_doc = "0 (from the node)", .doc = "compute threads per rank"},
    {PARALLEL("watchdog_seconds", K_DOUBLE, watchdog_seconds), .r = GE(0), .def = COMM_WATCHDOG_DEFAULT,
     .fmt = " watchdog %g s", .fmt_off = " watchdog off",
     .doc = "a collective waiting longer aborts the job; 0 turns the watchdog off"},
};
const KeyTable parallel_table = {"parallel", parallel_rows, COUNT(parallel_rows)};

static const KeyRow checkpoint_rows[] = {
    {ROW(Job, "every_steps", K_I64, checkpoint_steps), .r = GE(0), .def = 0, .fmt = " every %lld steps,",
     .def_doc = "0 (off)", .doc = "checkpoint every so many optimiser steps"},
    {ROW(Job, "every_minutes", K_DOUBLE, checkpoint_minutes), .r = GE(0), .def = 10,
     .fmt = " every %g minutes (0: off);", .doc = "checkpoint every so many minutes (0: off)"},
};
const KeyTable checkpoint_table = {"checkpoint", checkpoint_rows, COUNT(checkpoint_rows)};

static const KeyRow log_rows[] = {
    {ROW(Job, "every_steps", K_INT, log_every), .r = GE(-1), .def = 0, .fmt = " log every %d steps",
     .doc = "steps between progress lines; 0: one line per epoch; -1: none"},
};
const KeyTable log_table = {"log", log_rows, COUNT(log_rows)};

const KeyTable *const doc_tables[] = {&job_table,   &task_table,    &data_table,   &occlusion_table,
                                      &model_table, &train_table,   &override_table, &distill_table,
                                      &fusion_table, &parallel_table, &checkpoint_table, &log_table};
const int n_doc_tables = COUNT(doc_tables);

unsigned job_override_bit(const char *key)
{
    int i = table_find(&train_table, key);
    return i >= 0 && (train_table.rows[i].flags & KEY_OVERRIDE) ? 1u << i : 0u;
}
