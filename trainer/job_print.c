/* job_print.c - the summary of `occkd_train --check`. The settings groups
 * (each cell's train settings, distill, parallel, checkpoint, log) are
 * printed from their key rows, in row order; tasks, models and fusions
 * have a line of their own.
 */
#include <stdio.h>

#include "trainer/job_internal.h"

void print_rows(const KeyTable *t, const void *base, FILE *f)
{
    for (int i = 0; i < t->n; i++) {
        const KeyRow *r = &t->rows[i];
        if (!r->fmt || (r->show && !r->show(base, r)))
            continue;
        const void *p = (const char *)base + r->offset;
        const char *fmt = r->fmt_off && !(row_number(r, base) > 0) ? r->fmt_off : r->fmt;
        const char *names[KEY_NAMES_MAX];
        switch (r->kind) {
        case K_INT:
        case K_BOOL: fprintf(f, fmt, *(const int *)p); break;
        case K_I64: fprintf(f, fmt, (long long)*(const int64_t *)p); break;
        case K_U64: fprintf(f, fmt, (unsigned long long)*(const uint64_t *)p); break;
        case K_FLOAT: fprintf(f, fmt, (double)*(const float *)p); break;
        case K_DOUBLE: fprintf(f, fmt, *(const double *)p); break;
        case K_ENUM: {
            int n = row_names(r, names), v = *(const int *)p;
            fprintf(f, fmt, v >= 0 && v < n ? names[v] : "?");
            break;
        }
        case K_STRING: fprintf(f, fmt, (const char *)p); break;
        case K_GROUP:
        case K_REF: break;
        }
    }
}

static void print_task(const TaskSpec *t, FILE *f)
{
    const DataOptions *d = &t->data;
    fprintf(f, "  %-14s %s", t->name, target_name(t->target));
    if (t->regression)
        fprintf(f, " (regression, %s loss)", t->l2 ? "L2" : "L1");
    else if (t->classes)
        fprintf(f, " (%d classes)", t->classes);
    else
        fprintf(f, " (classes from the data)");
    fprintf(f, "; %s", source_name(d->source));
    if (d->source == SOURCE_SYNTH)
        fprintf(f, " %d faces (seed %llu)", d->synth_count, (unsigned long long)d->synth_seed);
    else
        fprintf(f, " '%s'", d->path);
    fprintf(f, ", %d px x%d", d->side, d->channels);
    if (d->source == SOURCE_FERPLUS)
        fprintf(f, ", official splits");
    else if (d->source == SOURCE_AFFECTNET || d->source == SOURCE_IDX)
        fprintf(f, ", val %g, official test", (double)d->val_fraction);
    else
        fprintf(f, ", val %g test %g", (double)d->val_fraction, (double)d->test_fraction);
    if (d->limit)
        fprintf(f, ", limit %d", d->limit);
    fprintf(f, "; occlusion %s %g %s %s\n", occlusion_kind_name(t->occ.kind), (double)t->occ.fraction,
            occlusion_fill_name(t->occ.fill), occlusion_shape_name(t->occ.shape));
}

void job_print(const Job *job, FILE *f)
{
    fprintf(f, "job %s (%s)\n  sha256 %s\n  output %s, cache %s, seeds", job->name, job->path, job->sha256,
            job->output, job->cache);
    for (int i = 0; i < job->n_seeds; i++)
        fprintf(f, " %llu", (unsigned long long)job->seeds[i]);
    fprintf(f, "\n");
    if (job->sets && job->sets[0])
        fprintf(f, "  --set %s\n", job->sets);
    fprintf(f, "tasks (%d):\n", job->n_tasks);
    for (int i = 0; i < job->n_tasks; i++)
        print_task(&job->tasks[i], f);
    fprintf(f, "models (%d):\n", job->n_models);
    for (int i = 0; i < job->n_models; i++) {
        const ModelSpec *m = &job->models[i];
        fprintf(f, "  %-14s %s input ", m->name, arch_name(m->net.arch));
        if (m->net.input)
            fprintf(f, "%d", m->net.input);
        else
            fprintf(f, "(task side)");
        fprintf(f, " width %g fc %d dropout %g%s%s\n", (double)m->net.width, m->net.fc, (double)m->net.dropout,
                m->init[0] ? " init " : "", m->init);
    }
    fprintf(f, "methods:");
    for (int i = 0; i < job->n_methods; i++)
        fprintf(f, " %s", method_name(job->methods[i]));
    fprintf(f, "\n");
    for (int i = 0; i < job->n_fusions; i++) {
        const FusionSpec *u = &job->fusions[i];
        fprintf(f, "fusion %s: %s of", u->name, fusion_names[u->kind]);
        for (int j = 0; j < u->n_students; j++)
            fprintf(f, " %s", method_name(u->students[j]));
        if (u->kind == FUSION_CONCAT)
            fprintf(f, " (linear head, %d epochs)", u->head_epochs);
        fprintf(f, "\n");
    }
    fprintf(f, "distill:");
    print_rows(&distill_table, &job->distill, f);
    fprintf(f, "\nparallel:");
    print_rows(&parallel_table, &job->parallel, f);
    fprintf(f, "\ncheckpoint:");
    print_rows(&checkpoint_table, job, f);
    print_rows(&log_table, job, f);
    fprintf(f, "\n");
    int cells = job->n_tasks * job->n_models * job->n_methods;
    fprintf(f, "cells: %d trained (%d tasks x %d models x %d methods) + %d fusions, x %d seed%s\n", cells,
            job->n_tasks, job->n_models, job->n_methods, job->n_tasks * job->n_models * job->n_fusions,
            job->n_seeds, job->n_seeds == 1 ? "" : "s");
    for (int t = 0; t < job->n_tasks; t++)
        for (int m = 0; m < job->n_models; m++)
            for (int k = 0; k < job->n_methods; k++) {
                char cell[3 * JOB_NAME_MAX + 8];
                snprintf(cell, sizeof cell, "%s/%s/%s", job->tasks[t].name, job->models[m].name,
                         method_name(job->methods[k]));
                TrainSettings s = job_settings(job, t, m, job->methods[k]);
                fprintf(f, "  %-36s ", cell);
                print_rows(&train_table, &s, f);
                fprintf(f, "\n");
            }
}
