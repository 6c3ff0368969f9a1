/* job_settings.c - the settings sections (train and its overrides,
 * distill, parallel, checkpoint, log) and each cell's settings after the
 * overrides. Their keys are the rows of job_keys.c; an override carries a
 * bit per train row it sets and copies exactly those rows' bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "trainer/job_internal.h"

/* ---------------------------------------------------------------- train */

/* The override bits of the train rows present in got. */
static unsigned override_bits(const config_setting_t *const *got)
{
    unsigned set = 0;
    for (int i = 0; i < train_table.n; i++)
        if (got[i] && (train_table.rows[i].flags & KEY_OVERRIDE))
            set |= 1u << i;
    return set;
}

TrainSettings job_train_defaults(void)
{
    TrainSettings s;
    memset(&s, 0, sizeof s);
    s.sgd = sgd_default(); /* for the optimiser's fields without a key; the rows then set theirs */
    table_defaults(&train_table, &s);
    return s;
}

DistillSettings job_distill_defaults(void)
{
    DistillSettings d;
    memset(&d, 0, sizeof d);
    table_defaults(&distill_table, &d);
    return d;
}

void parse_train(Ctx *c, const config_setting_t *s, Job *job)
{
    job->train = job_train_defaults();
    if (s)
        parse_table(c, s, &train_table, &job->train, NULL, NULL);
}

/* A name an override matches: "*" or "" (any) or one of names. */
static void check_match(Ctx *c, const config_setting_t *o, const char *key, const char *value, const char *what,
                        const char *const *names, int n)
{
    if (!value[0] || strcmp(value, "*") == 0)
        return;
    for (int i = 0; i < n; i++)
        if (strcmp(value, names[i]) == 0)
            return;
    char known[512];
    join_names(names, n, known, sizeof known);
    const char *near = nearest(value, names, n);
    const config_setting_t *at = at_or(member(o, key), o);
    if (near)
        fail(c, at, "override %s '%s' matches no %s (did you mean '%s'? known: %s, or \"*\")", key, value, what,
             near, known);
    else
        fail(c, at, "override %s '%s' matches no %s (known: %s, or \"*\")", key, value, what, known);
}

/* Entry i of the overrides: the train keys it sets and the cells it matches. */
static void parse_override(Ctx *c, const config_setting_t *e, const Job *job, Override *o, int i,
                           const char *const *names[3])
{
    const config_setting_t *got[KEY_ROWS_MAX] = {0};
    table_defaults(&override_table, o);
    o->s = job->train;
    TableUse use[2] = {{&train_table, &o->s, got, NULL}, {&override_table, o, NULL, NULL}};
    parse_tables(c, e, use, 2);
    o->set = override_bits(got);
    if (!config_setting_is_group(e))
        return;
    if (!o->set)
        fail(c, e, "overrides[%d] changes nothing (give settings such as epochs or lr besides task, model and "
                   "method)", i);
    check_match(c, e, "task", o->task, "task", names[0], job->n_tasks);
    check_match(c, e, "model", o->model, "model", names[1], job->n_models);
    check_match(c, e, "method", o->method, "trained method", names[2], job->n_methods);
}

void parse_overrides(Ctx *c, const config_setting_t *s, Job *job)
{
    if (!s)
        return;
    int n = list_of_groups(c, s, "{ task = ...; model = ...; method = ...; epochs = ...; }");
    if (n <= 0)
        return;
    job->overrides = calloc((size_t)n, sizeof *job->overrides);
    if (!job->overrides) {
        fail(c, s, "out of memory");
        return;
    }
    job->n_overrides = n;
    const char **tasks = calloc((size_t)job->n_tasks + 1, sizeof *tasks);
    const char **models = calloc((size_t)job->n_models + 1, sizeof *models);
    const char *methods[METHOD_COUNT];
    for (int i = 0; i < job->n_tasks && tasks; i++)
        tasks[i] = job->tasks[i].name;
    for (int i = 0; i < job->n_models && models; i++)
        models[i] = job->models[i].name;
    for (int i = 0; i < job->n_methods; i++)
        methods[i] = method_name(job->methods[i]);
    const char *const *names[3] = {tasks, models, methods};
    for (int i = 0; i < n && tasks && models; i++)
        parse_override(c, config_setting_get_elem(s, (unsigned)i), job, &job->overrides[i], i, names);
    free(tasks);
    free(models);
}

/* ---------------------------------------------------- distill, parallel, ... */

void parse_distill(Ctx *c, const config_setting_t *s, Job *job)
{
    job->distill = job_distill_defaults();
    if (s)
        parse_table(c, s, &distill_table, &job->distill, NULL, NULL);
}

void parse_parallel(Ctx *c, const config_setting_t *s, Job *job)
{
    ParallelSettings *p = &job->parallel;
    table_defaults(&parallel_table, p);
    if (s)
        parse_table(c, s, &parallel_table, p, NULL, NULL);
    p->bucket_bytes = (size_t)((double)p->bucket_mb * 1048576.0);
    if (p->bucket_bytes < 4)
        p->bucket_bytes = 4;
    p->bucket_mb = (float)((double)p->bucket_bytes / 1048576.0);
    if (!(p->watchdog_seconds > 0))
        p->watchdog_seconds = -1.0; /* CommOptions' "off"; the job file's 0 */
}

void parse_checkpoint_log(Ctx *c, const config_setting_t *ck, const config_setting_t *log, Job *job)
{
    table_defaults(&checkpoint_table, job);
    table_defaults(&log_table, job);
    if (ck)
        parse_table(c, ck, &checkpoint_table, job, NULL, NULL);
    if (log)
        parse_table(c, log, &log_table, job, NULL, NULL);
}

/* ------------------------------------------------------------ per cell */

static int matches(const char *pattern, const char *name)
{
    return !pattern[0] || strcmp(pattern, "*") == 0 || strcmp(pattern, name) == 0;
}

/* The rows o sets, copied from o into s. */
static void apply_override(TrainSettings *s, const Override *o)
{
    for (int i = 0; i < train_table.n; i++) {
        const KeyRow *r = &train_table.rows[i];
        if (o->set & (1u << i))
            memcpy((char *)s + r->offset, (const char *)&o->s + r->offset, r->size);
    }
}

TrainSettings job_settings(const Job *job, int task, int model, Method method)
{
    TrainSettings s = job->train;
    for (int i = 0; i < job->n_overrides; i++) {
        const Override *o = &job->overrides[i];
        if (matches(o->task, job->tasks[task].name) && matches(o->model, job->models[model].name) &&
            matches(o->method, method_name(method)))
            apply_override(&s, o);
    }
    if (s.step_epochs <= 0)
        s.step_epochs = s.epochs / 3.0f >= 1.0f ? s.epochs / 3.0f : 1.0f;
    return s;
}

NetSpec job_netspec(const Job *job, int task, int model)
{
    NetSpec n = job->models[model].net;
    const TaskSpec *t = &job->tasks[task];
    if (n.input == 0)
        n.input = t->data.side;
    n.channels = t->data.channels;
    n.classes = t->regression ? 1 : t->classes;
    return n;
}
