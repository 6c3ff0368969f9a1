/* job_identity.c - what determines one cell: the text of exactly its
 * settings, one "key = value" line each, from the key tables at full
 * precision, and its SHA-256. Every file a cell writes carries both (see
 * CellStamp in checkpoints.h), so that a file is reused only by the cell
 * that wrote it and only while its settings are the same, and a refusal can
 * name the settings that changed.
 *
 * What goes in: the cell's name (task, model, method, seed), its task (the
 * target, the data options, the occlusion), its model (and the network
 * the grid builds from it), its train settings after overrides, the
 * distillation settings for the methods that use them, a student's
 * teacher's train settings (it starts from the teacher's weights), and for
 * a fusion its own rows and its students' settings hashes. What stays out: the job's
 * name and output, the other tasks and models, rank counts, groups,
 * threads, buckets, checkpoint intervals and logging, none of which changes
 * a cell's numbers (results do not depend on the number of ranks).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/job_internal.h"

/* The shortest text that reads back as v (as a float when `single`). */
static void shortest(char *buf, size_t len, double v, int single)
{
    for (int p = single ? 6 : 15; p <= 17; p++) {
        snprintf(buf, len, "%.*g", p, v);
        if (single ? strtof(buf, NULL) == (float)v : strtod(buf, NULL) == v)
            return;
    }
}

/* One row as "<prefix><name> = <value>", numbers exact. */
static void put_row(FILE *f, const char *prefix, const KeyRow *r, const void *base)
{
    const void *p = (const char *)base + r->offset;
    const char *names[KEY_NAMES_MAX];
    switch (r->kind) {
    case K_INT:
    case K_BOOL: fprintf(f, "%s%s = %d\n", prefix, r->name, *(const int *)p); break;
    case K_I64: fprintf(f, "%s%s = %lld\n", prefix, r->name, (long long)*(const int64_t *)p); break;
    case K_U64: fprintf(f, "%s%s = %llu\n", prefix, r->name, (unsigned long long)*(const uint64_t *)p); break;
    case K_FLOAT:
    case K_DOUBLE: {
        char num[40];
        int single = r->kind == K_FLOAT;
        shortest(num, sizeof num, single ? (double)*(const float *)p : *(const double *)p, single);
        fprintf(f, "%s%s = %s\n", prefix, r->name, num);
        break;
    }
    case K_ENUM: {
        int n = row_names(r, names), v = *(const int *)p;
        fprintf(f, "%s%s = %s\n", prefix, r->name, v >= 0 && v < n ? names[v] : "?");
        break;
    }
    case K_STRING: fprintf(f, "%s%s = \"%s\"\n", prefix, r->name, (const char *)p); break;
    case K_GROUP:
    case K_REF: break; /* their members have rows of their own, or the caller writes them */
    }
}

static void put_table(FILE *f, const char *prefix, const KeyTable *t, const void *base)
{
    for (int i = 0; i < t->n; i++)
        put_row(f, prefix, &t->rows[i], base);
}

static void put_cell(FILE *f, const Job *job, int seed_i, int task, int model, Method m)
{
    const TaskSpec *ts = &job->tasks[task];
    const ModelSpec *ms = &job->models[model];
    fprintf(f, "cell = %s/%s/%s seed %llu\n", ts->name, ms->name, method_name(m),
            (unsigned long long)job->seeds[seed_i]);
    put_table(f, "task.", &task_table, ts);
    put_table(f, "task.data.", &data_table, &ts->data);
    put_table(f, "task.occlusion.", &occlusion_table, &ts->occ);
    put_table(f, "model.", &model_table, ms);
    NetSpec n = job_netspec(job, task, model);
    char w[40], d[40];
    shortest(w, sizeof w, n.width, 1);
    shortest(d, sizeof d, n.dropout, 1);
    fprintf(f, "net = %s input %d channels %d width %s fc %d dropout %s\n", arch_name(n.arch), n.input, n.channels,
            w, n.fc, d);
    TrainSettings s = job_settings(job, task, model, m);
    put_table(f, "train.", &train_table, &s);
    if (method_uses_kd(m) || method_uses_triplet(m))
        put_table(f, "distill.", &distill_table, &job->distill);
    if (m != METHOD_TEACHER) {
        TrainSettings t = job_settings(job, task, model, METHOD_TEACHER);
        put_table(f, "teacher.train.", &train_table, &t);
    }
}

/* Runs put on a memory stream; the text, malloc'ed, or NULL. */
static char *text_of(const Job *job, int seed_i, int task, int model, const char *method)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    Method m;
    if (method_parse(method, &m) == 0) {
        put_cell(f, job, seed_i, task, model, m);
    } else {
        const FusionSpec *fs = NULL;
        for (int i = 0; i < job->n_fusions; i++)
            if (strcmp(job->fusions[i].name, method) == 0)
                fs = &job->fusions[i];
        fprintf(f, "cell = %s/%s/%s seed %llu\n", job->tasks[task].name, job->models[model].name, method,
                (unsigned long long)job->seeds[seed_i]);
        if (fs) {
            put_table(f, "fusion.", &fusion_table, fs);
            for (int i = 0; i < fs->n_students; i++) {
                CellStamp *st = malloc(sizeof *st);
                const char *name = method_name(fs->students[i]);
                if (st && job_cell_stamp(job, seed_i, task, model, name, st) == 0)
                    fprintf(f, "fusion.student.%s = %s\n", name, st->settings_sha256);
                free(st);
            }
        }
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

int job_cell_stamp(const Job *job, int seed_i, int task, int model, const char *method, CellStamp *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->cell, sizeof out->cell, "%s/%s/%s seed %llu", job->tasks[task].name, job->models[model].name,
             method, (unsigned long long)job->seeds[seed_i]);
    char *text = text_of(job, seed_i, task, model, method);
    size_t n = text ? strlen(text) : 0;
    int fits = text && n < sizeof out->settings;
    if (fits) {
        memcpy(out->settings, text, n + 1);
        sha256_hex(out->settings, n, out->settings_sha256);
    }
    free(text);
    return fits ? 0 : -1;
}
