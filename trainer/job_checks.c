/* job_checks.c - rules between sections, checked once every section is
 * read: data paths and the files a reader needs, models against tasks,
 * every cell's settings after the overrides, and job.only_task.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "trainer/job_internal.h"

/* ---------------------------------------------------------------- paths */

int path_kind(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    return S_ISDIR(st.st_mode) ? 2 : S_ISREG(st.st_mode) ? 1 : 3;
}

int need_folder(Ctx *c, const config_setting_t *s, const char *key, const char *path, const char *what)
{
    int kind = path_kind(path);
    if (kind == 2)
        return 0;
    fail(c, s, "%s: '%s' %s (expected %s)", key, path, kind == 0 ? "does not exist" : "is not a folder", what);
    return -1;
}

static int need_file_in(Ctx *c, const config_setting_t *s, const char *key, const char *dir, const char *name,
                        int gz_ok)
{
    char p[JOB_PATH_MAX + 64];
    size_t n = strlen(dir);
    const char *sep = n && dir[n - 1] == '/' ? "" : "/";
    snprintf(p, sizeof p, "%s%s%s", dir, sep, name);
    int kind = path_kind(p);
    if (kind == 1)
        return 0;
    if (gz_ok) {
        char z[JOB_PATH_MAX + 64];
        snprintf(z, sizeof z, "%s%s%s.gz", dir, sep, name);
        int zk = path_kind(z);
        if (zk == 1)
            return 0;
        if (!kind && zk) {
            snprintf(p, sizeof p, "%s", z);
            kind = zk;
        }
    }
    if (kind) /* there, but not a file: a folder of that name, a device */
        fail(c, s, "%s: '%s' is %s, expected a file", key, p, kind == 2 ? "a folder" : "not a regular file");
    else
        fail(c, s, "%s: '%s%s%s%s' not found", key, dir, sep, name, gz_ok ? "[.gz]" : "");
    return -1;
}

void check_source_path(Ctx *c, const config_setting_t *s, const char *key, const DataOptions *o)
{
    static const char *const idx_names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    switch (o->source) {
    case SOURCE_SYNTH: return;
    case SOURCE_FERPLUS:
        if (!need_folder(c, s, key, o->path, "a folder holding fer2013.csv and fer2013new.csv") &&
            !need_file_in(c, s, key, o->path, "fer2013.csv", 0))
            need_file_in(c, s, key, o->path, "fer2013new.csv", 0);
        return;
    case SOURCE_AFFECTNET:
        if (!need_folder(c, s, key, o->path, "a folder holding training.csv and validation.csv") &&
            !need_file_in(c, s, key, o->path, "training.csv", 0))
            need_file_in(c, s, key, o->path, "validation.csv", 0);
        return;
    case SOURCE_UTKFACE: need_folder(c, s, key, o->path, "the folder of UTKFace's <age>_<gender>_... images"); return;
    case SOURCE_IDX:
        if (!need_folder(c, s, key, o->path, "a folder holding the four IDX files"))
            for (int i = 0; i < 4; i++)
                if (need_file_in(c, s, key, o->path, idx_names[i], 1))
                    return;
        return;
    case SOURCE_FOLDER: need_folder(c, s, key, o->path, "a folder with one sub-folder of images per class"); return;
    }
}

/* -------------------------------------------------------- cross checks */

/* A model with a fixed input must match every task's stored side: the
 * loader hands images at the stored side and does not resize. */
void check_inputs(Ctx *c, const config_setting_t *models, const Job *job)
{
    for (int m = 0; m < job->n_models; m++) {
        int input = job->models[m].net.input;
        for (int t = 0; t < job->n_tasks && input; t++)
            if (job->tasks[t].name[0] && job->tasks[t].data.side != input) {
                const config_setting_t *e = config_setting_get_elem(models, (unsigned)m);
                fail(c, at_or(member(e, "input"), models),
                     "models[%d].input = %d differs from task '%s' data.side = %d (the loader does not resize: "
                     "set data.side, or leave input out to follow each task's side)",
                     m, input, job->tasks[t].name, job->tasks[t].data.side);
                break;
            }
    }
}

/* Every model must fit every task's images: the geometry of a network does
 * not depend on its width or fc, so a network of the same architecture and
 * input at the smallest width is built (a few kilobytes) and its message
 * reported if it does not fit. */
void check_geometry(Ctx *c, const config_setting_t *models, const Job *job)
{
    for (int m = 0; m < job->n_models; m++)
        for (int t = 0; t < job->n_tasks; t++) {
            if (!job->tasks[t].name[0] || !job->models[m].name[0])
                continue;
            NetSpec spec = job_netspec(job, t, m);
            spec.width = 1.0f / 64;
            spec.fc = 1;
            spec.classes = 1;
            spec.channels = 1;
            char msg[256];
            Net *net = net_create(&spec, 1, 1 << 20, msg, sizeof msg);
            if (!net) {
                fail(c, at_or(config_setting_get_elem(models, (unsigned)m), models),
                     "models[%d] (%s) does not fit task '%s' (%d px): %s", m, job->models[m].name,
                     job->tasks[t].name, spec.input, msg);
                break;
            }
            net_free(net);
        }
}

/* Rules between settings, checked on every cell after the overrides; each
 * rule reports its first offending cell only. */
void check_cells(Ctx *c, const config_setting_t *train, const Job *job)
{
    enum { RULE_ACCUM, RULE_MIN_LR, RULE_WARMUP, RULE_COUNT };
    int reported[RULE_COUNT] = {0};
    for (int t = 0; t < job->n_tasks; t++)
        for (int m = 0; m < job->n_models; m++)
            for (int k = 0; k < job->n_methods; k++) {
                TrainSettings s = job_settings(job, t, m, job->methods[k]);
                char cell[3 * JOB_NAME_MAX + 8];
                snprintf(cell, sizeof cell, "%s/%s/%s", job->tasks[t].name, job->models[m].name,
                         method_name(job->methods[k]));
                if (!reported[RULE_ACCUM] && s.batch % s.accum != 0) {
                    reported[RULE_ACCUM] = 1;
                    fail(c, train, "cell %s: batch %d is not a multiple of accum %d (each step is accum equal "
                                   "micro-batches)", cell, s.batch, s.accum);
                }
                if (!reported[RULE_MIN_LR] && s.sgd.schedule == SCHED_COSINE && s.sgd.min_lr > s.sgd.lr) {
                    reported[RULE_MIN_LR] = 1;
                    fail(c, train, "cell %s: min_lr %g is above lr %g", cell, (double)s.sgd.min_lr,
                         (double)s.sgd.lr);
                }
                if (!reported[RULE_WARMUP] && s.warmup_epochs >= (float)s.epochs) {
                    reported[RULE_WARMUP] = 1;
                    fail(c, train, "cell %s: warmup_epochs %g must be below epochs %d", cell,
                         (double)s.warmup_epochs, s.epochs);
                }
            }
}

/* ------------------------------------------------------ job.only_task */

/* job.only_task = "<task name>" or <index from 0>: the job keeps that one
 * task and drops the others (a Slurm array element trains one task, e.g.
 * --set job.only_task=$SLURM_ARRAY_TASK_ID). Runs after every other rule, so
 * the whole file, all tasks included, is validated as usual; overrides and
 * fusions name tasks and methods, not indices, so nothing else changes. */
void select_only_task(Ctx *c, const config_setting_t *s, Job *job)
{
    if (!s)
        return;
    int type = config_setting_type(s), pick = -1;
    if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64) {
        long long i;
        if (setting_integer(c, s, &i))
            return;
        if (i < 0 || i >= job->n_tasks) {
            fail(c, s, "job.only_task %lld is out of range: the job has %d task(s), indices 0 to %d", i,
                 job->n_tasks, job->n_tasks - 1);
            return;
        }
        pick = (int)i;
    } else if (type == CONFIG_TYPE_STRING) {
        const char *v = config_setting_get_string(s);
        for (int i = 0; i < job->n_tasks && pick < 0; i++)
            if (strcmp(job->tasks[i].name, v) == 0)
                pick = i;
        if (pick < 0) {
            const char **names = calloc(job->n_tasks > 0 ? (size_t)job->n_tasks : 1, sizeof *names);
            if (!names) {
                fail(c, s, "out of memory");
                return;
            }
            for (int i = 0; i < job->n_tasks; i++)
                names[i] = job->tasks[i].name;
            fail_unknown_name(c, s, "task", v, names, job->n_tasks);
            free(names);
            return;
        }
    } else {
        fail_type(c, s, "a task name (\"age\") or a task index from 0");
        return;
    }
    if (pick > 0)
        job->tasks[0] = job->tasks[pick];
    job->n_tasks = 1;
}
