/* job.c - reading and validating job files (libconfig): the entry points.
 *
 * The file is parsed by libconfig into a tree; --set overrides are grafted
 * onto that tree (job_set.c); then every section is read through its key
 * table (job_keys.c, read by job_schema.c) and the section's own rules
 * (job_sections.c, job_settings.c). Every problem is collected, not just
 * the first, so a user fixes a job file in one pass. Rules between
 * sections (job_checks.c) run last.
 */
#include <libconfig.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/job_internal.h"

const char *target_name(Target t) { return (unsigned)t < 4 ? target_names[t] : "?"; }

Attr target_attr(Target t)
{
    switch (t) {
    case TARGET_EXPRESSION: return ATTR_EXPRESSION;
    case TARGET_GENDER: return ATTR_GENDER;
    case TARGET_AGE: return ATTR_AGE;
    case TARGET_CLASS: return ATTR_CLASS;
    }
    return ATTR_COUNT;
}

/* Every section, in dependency order. */
static void parse_root(Ctx *c, config_setting_t *root, Job *job)
{
    const config_setting_t *got[KEY_ROWS_MAX] = {0};
    parse_table(c, root, &root_table, NULL, got, NULL);
#define SECTION(name) got[table_find(&root_table, name)]
    parse_job_section(c, SECTION("job"), job);
    parse_tasks(c, SECTION("tasks"), job);
    parse_models(c, SECTION("models"), job);
    parse_methods(c, SECTION("methods"), job);
    parse_train(c, SECTION("train"), job);
    parse_distill(c, SECTION("distill"), job);
    parse_parallel(c, SECTION("parallel"), job);
    parse_checkpoint_log(c, SECTION("checkpoint"), SECTION("log"), job);
    if (job->n_tasks && job->n_models && job->n_methods)
        parse_overrides(c, SECTION("overrides"), job);
    parse_fusions(c, SECTION("fusions"), job);
    const config_setting_t *models = SECTION("models");
    if (models && job->n_models) {
        int before = c->n_errors;
        check_inputs(c, models, job);
        if (c->n_errors == 0 && before == 0)
            check_geometry(c, models, job);
    }
    if (c->n_errors == 0)
        check_cells(c, SECTION("train"), job);
    if (c->n_errors == 0 && SECTION("job"))
        select_only_task(c, member(SECTION("job"), "only_task"), job);
#undef SECTION
}

int job_load_ex(const char *path, const char *const *sets, int n_sets, unsigned flags, Job *job, char *err,
                size_t errlen)
{
    memset(job, 0, sizeof *job);
    if (err && errlen)
        err[0] = '\0';
    char scratch[1];
    if (!err || !errlen) {
        err = scratch;
        errlen = sizeof scratch;
    }
    if (!path || strlen(path) >= sizeof job->path) {
        snprintf(err, errlen, "job file path missing or too long");
        return -1;
    }
    snprintf(job->path, sizeof job->path, "%s", path);
    size_t text_len = 0;
    job->text = read_text(path, &text_len, err, errlen);
    if (!job->text)
        return -1;
    config_t cfg;
    config_init(&cfg);
    /* an @include names a file beside the job file, wherever occkd runs */
    char dir[sizeof job->path];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = 0;
        config_set_include_dir(&cfg, dir[0] ? dir : "/");
    }
    if (!config_read_file(&cfg, path)) {
        char near[96];
        line_excerpt(job->text, config_error_line(&cfg), near, sizeof near);
        const char *file = config_error_file(&cfg) ? config_error_file(&cfg) : path;
        snprintf(err, errlen, "%s:%d: %s%s", file, config_error_line(&cfg),
                 config_error_text(&cfg) ? config_error_text(&cfg) : "cannot parse", near);
        config_destroy(&cfg);
        job_free(job);
        return -1;
    }
    Ctx c = {.path = path, .flags = flags, .err = err, .errlen = errlen};
    for (int i = 0; i < n_sets; i++)
        apply_set(&c, &cfg, sets[i] ? sets[i] : "");
    if (c.n_errors == 0)
        parse_root(&c, config_root_setting(&cfg), job);
    config_destroy(&cfg);
    if (c.n_errors > JOB_MAX_ERRORS)
        append_f(&c, "\n... and %d more problems", c.n_errors - JOB_MAX_ERRORS);
    if (c.n_errors) {
        job_free(job);
        return -1;
    }
    hash_job(job, sets, n_sets, text_len);
    if (!job->sets) {
        snprintf(err, errlen, "%s: out of memory", path);
        job_free(job);
        return -1;
    }
    return 0;
}

int job_load(const char *path, const char *const *sets, int n_sets, Job *job, char *err, size_t errlen)
{
    return job_load_ex(path, sets, n_sets, 0, job, err, errlen);
}

void job_free(Job *job)
{
    if (!job)
        return;
    void *owned[] = {job->text, job->sets, job->tasks, job->models, job->overrides, job->fusions};
    for (int i = 0; i < COUNT(owned); i++)
        free(owned[i]);
    memset(job, 0, sizeof *job);
}
