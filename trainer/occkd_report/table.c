/* table.c - occkd_report's paper-style table: task x model rows, one column
 * per method, mean ± std over seeds, the marks of significance, a legend and
 * the reasons of failed and skipped cells. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

/* ------------------------------------------------------------- helpers */

int name_index(const NameList *l, const char *s)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->name[i], s) == 0)
            return i;
    return -1;
}

/* Adds s unless present; returns its index, or -1 when the list is full. */
static int name_add(NameList *l, const char *s)
{
    int i = name_index(l, s);
    if (i >= 0)
        return i;
    if (l->n == (int)(sizeof l->name / sizeof l->name[0]))
        return -1;
    l->name[l->n] = s;
    return l->n++;
}

int is_aggregate_seed(const char *seed)
{
    return strcmp(seed, "mean") == 0 || strcmp(seed, "std") == 0;
}

int is_accuracy(const char *metric)
{
    return strcmp(metric, "accuracy") == 0;
}

int is_mae(const char *metric)
{
    return strcmp(metric, "mae") == 0;
}

/* Columns of a UTF-8 string on a terminal (every code point counts one). */
static int display_width(const char *s)
{
    int w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

/* A metric value as shown in the table: accuracy (stored 0-1) in % with one
 * decimal, MAE in years with two. */
static void format_value(const char *metric, double v, char *out, size_t len)
{
    if (is_accuracy(metric))
        snprintf(out, len, "%.1f", 100.0 * v);
    else if (is_mae(metric))
        snprintf(out, len, "%.2f", v);
    else
        snprintf(out, len, "%.4g", v);
}

/* ------------------------------------------------------------ the layout */

/* The methods in the trainer's order, the teacher's occluded row after it. */
const char *canonical_method(int c)
{
    if (c == 0)
        return method_name(METHOD_TEACHER);
    if (c == 1)
        return "teacher (occluded)";
    return method_name((Method)(c - 1));
}

int layout_build(const Report *r, Layout *L, char *err, size_t errlen)
{
    memset(L, 0, sizeof *L);
    for (int c = 0; c < N_CANONICAL; c++)
        for (int i = 0; i < r->n_rows; i++)
            if (strcmp(r->rows[i].method, canonical_method(c)) == 0) {
                name_add(&L->methods, canonical_method(c));
                break;
            }
    for (int i = 0; i < r->n_rows; i++) {
        const SummaryRow *row = &r->rows[i];
        int t = name_add(&L->tasks, row->task), m = name_add(&L->models, row->model);
        if (t < 0 || m < 0 || name_add(&L->methods, row->method) < 0 ||
            (!is_aggregate_seed(row->seed) && name_add(&L->seeds, row->seed) < 0)) {
            snprintf(err, errlen, "%s: /summary row %d: too many distinct names (at most 256 each)", r->path, i);
            return -1;
        }
        int p = 0;
        while (p < L->n_pairs && !(L->pair_task[p] == t && L->pair_model[p] == m))
            p++;
        if (p == L->n_pairs) {
            if (p == 256) {
                snprintf(err, errlen, "%s: /summary: more than 256 task x model rows", r->path);
                return -1;
            }
            L->pair_task[p] = t;
            L->pair_model[p] = m;
            L->n_pairs++;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ the table */

/* What the rows of one (task, model, method) say. */
typedef struct {
    int n_seeds, n_done, n_failed, n_skipped, n_significant;
    double sum, sum_sq;
    int have_mean, have_std;  /* the file's own "mean" / "std" rows */
    double mean, std;
    char metric[SUMMARY_STR];
    char other_status[SUMMARY_STR];
} CellAgg;

static void cell_aggregate(const Report *r, const char *task, const char *model, const char *method, CellAgg *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 0; i < r->n_rows; i++) {
        const SummaryRow *row = &r->rows[i];
        if (strcmp(row->task, task) || strcmp(row->model, model) || strcmp(row->method, method))
            continue;
        if (!a->metric[0])
            snprintf(a->metric, sizeof a->metric, "%s", row->metric);
        int done = strcmp(row->status, "done") == 0 && isfinite(row->value);
        if (strcmp(row->seed, "mean") == 0) {
            a->have_mean = done;
            a->mean = row->value;
            continue;
        }
        if (strcmp(row->seed, "std") == 0) {
            a->have_std = done;
            a->std = row->value;
            continue;
        }
        a->n_seeds++;
        if (done) {
            a->n_done++;
            a->sum += row->value;
            a->sum_sq += row->value * row->value;
            a->n_significant += row->p_value < SIGNIFICANCE;
        } else if (strcmp(row->status, "failed") == 0) {
            a->n_failed++;
        } else if (strcmp(row->status, "skipped") == 0) {
            a->n_skipped++;
        } else {
            snprintf(a->other_status, sizeof a->other_status, "%s", row->status);
        }
    }
}

/* The text of one table cell. */
static void cell_text(const CellAgg *a, const char *method, char *out, size_t len)
{
    if (a->n_seeds == 0) {
        snprintf(out, len, "-");
        return;
    }
    if (a->n_done == 0) {
        snprintf(out, len, "%s", a->n_failed ? "failed" : a->n_skipped ? "skipped" : a->other_status);
        return;
    }
    const char *mark = strcmp(method, "student") != 0 && a->n_significant == a->n_done ? MARK : "";
    char v[64], s[64] = "";
    double own_mean = a->sum / a->n_done, mean = own_mean;
    if (a->n_seeds == 1) {
        format_value(a->metric, mean, v, sizeof v);
        snprintf(out, len, "%s%s", v, mark);
        return;
    }
    if (a->n_done == a->n_seeds && a->have_mean)
        mean = a->mean;
    format_value(a->metric, mean, v, sizeof v);
    if (a->n_done > 1) {
        double var = (a->sum_sq - a->n_done * own_mean * own_mean) / (a->n_done - 1);
        double sd = var > 0 ? sqrt(var) : 0.0;
        if (a->n_done == a->n_seeds && a->have_std)
            sd = a->std;
        format_value(a->metric, sd, s, sizeof s);
    }
    if (a->n_done == a->n_seeds)
        snprintf(out, len, "%s ± %s%s", v, s, mark);
    else if (a->n_done > 1)
        snprintf(out, len, "%s ± %s%s (%d/%d)", v, s, mark, a->n_done, a->n_seeds);
    else
        snprintf(out, len, "%s%s (1/%d)", v, mark, a->n_seeds);
}

static const char *metric_label(const char *metric)
{
    return is_accuracy(metric) ? "acc. %" : is_mae(metric) ? "MAE yr" : metric;
}

const char *column_title(const char *method)
{
    return strcmp(method, "teacher") == 0 ? "teacher (clean)" : method;
}

static void print_padded(const char *s, int width, int right)
{
    int pad = width - display_width(s);
    if (right)
        printf("%*s%s", pad > 0 ? pad : 0, "", s);
    else
        printf("%s%*s", s, pad > 0 ? pad : 0, "");
}

static const char *or_empty(const char *s) { return s ? s : ""; }

static void print_header(const Report *r, const Layout *L)
{
    const ResultsJob *j = &r->job;
    printf("occkd results: job %s", r->job_name[0] ? r->job_name : "(unnamed)");
    if (or_empty(j->job_path)[0])
        printf(" (%s)", j->job_path);
    printf("\n");
    printf("  file %s; ", r->path);
    if (j->ranks > 0)
        printf("%lld rank%s; ", (long long)j->ranks, j->ranks == 1 ? "" : "s");
    printf("started %s, ended %s", or_empty(j->start)[0] ? j->start : "?", or_empty(j->end)[0] ? j->end : "?");
    if (or_empty(j->version)[0])
        printf("; occkd %s", j->version);
    printf("\n  %d seed%s:", L->seeds.n, L->seeds.n == 1 ? "" : "s");
    for (int i = 0; i < L->seeds.n; i++)
        printf(" %s", L->seeds.name[i]);
    printf("\n\n");
}

static void print_legend(const Report *r, const Layout *L)
{
    int acc = 0, mae = 0;
    for (int i = 0; i < r->n_rows; i++) {
        acc |= is_accuracy(r->rows[i].metric);
        mae |= is_mae(r->rows[i].metric);
    }
    printf("\n");
    if (acc)
        printf("accuracy: %% of test faces classified correctly (higher is better)\n");
    if (mae)
        printf("MAE: mean absolute error of the predicted age in years (lower is better)\n");
    printf("teacher (clean): the teacher on fully visible test faces; all other columns on occluded faces\n");
    printf("%s p < %.2f against student (paired test on the same faces: McNemar's exact test for accuracy, "
           "Wilcoxon signed-rank for MAE)%s\n",
           MARK, SIGNIFICANCE, L->seeds.n > 1 ? ", in every seed" : "");
    if (L->seeds.n > 1)
        printf("mean ± std: over the %d seeds; (k/n): only k of n seeds finished\n", L->seeds.n);
}

/* The cell a /summary row stands for, or NULL. */
static const CellResult *row_cell(const Report *r, const SummaryRow *row)
{
    uint64_t seed;
    if (!summary_row_is_cell(row, &seed))
        return NULL;
    for (int i = 0; i < r->n_cells; i++) {
        const CellResult *c = &r->cells[i];
        if (c->seed == seed && !strcmp(c->task, row->task) && !strcmp(c->model, row->model) &&
            !strcmp(c->method, row->method))
            return c;
    }
    return NULL;
}

/* Failed and skipped cells with the reason their group records. */
static void print_notes(const Report *r)
{
    int first = 1;
    for (int i = 0; i < r->n_rows; i++) {
        const SummaryRow *row = &r->rows[i];
        if (strcmp(row->status, "done") == 0 || is_aggregate_seed(row->seed) ||
            strcmp(row->method, "teacher (occluded)") == 0)
            continue;
        const CellResult *c = row_cell(r, row);
        const char *msg = c ? c->message : "";
        if (first)
            printf("\n");
        first = 0;
        printf("%s: %s / %s / %s, seed %s%s%s\n", row->status, row->task, row->model, row->method, row->seed,
               msg[0] ? ": " : "", msg);
    }
}

int print_table(const Report *r, char *err, size_t errlen)
{
    Layout L;
    if (layout_build(r, &L, err, errlen) < 0)
        return -1;
    int nc = 3 + L.methods.n;
    int *width = calloc((size_t)nc, sizeof *width);
    char(*text)[96] = calloc((size_t)(L.n_pairs + 1) * (size_t)nc, sizeof *text);
    if (!width || !text) {
        free(width);
        free(text);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    // text (1 + n_pairs, nc): the title row, then one row per task x model
    snprintf(text[0], 96, "task");
    snprintf(text[1], 96, "model");
    snprintf(text[2], 96, "metric");
    for (int m = 0; m < L.methods.n; m++)
        snprintf(text[3 + m], 96, "%s", column_title(L.methods.name[m]));
    for (int p = 0; p < L.n_pairs; p++) {
        char(*row)[96] = text + (size_t)(p + 1) * (size_t)nc;
        const char *task = L.tasks.name[L.pair_task[p]], *model = L.models.name[L.pair_model[p]];
        snprintf(row[0], 96, "%s", task);
        snprintf(row[1], 96, "%s", model);
        for (int m = 0; m < L.methods.n; m++) {
            CellAgg a;
            cell_aggregate(r, task, model, L.methods.name[m], &a);
            cell_text(&a, L.methods.name[m], row[3 + m], 96);
            if (a.metric[0] && !row[2][0])
                snprintf(row[2], 96, "%s", metric_label(a.metric));
        }
    }
    for (int i = 0; i <= L.n_pairs; i++)
        for (int c = 0; c < nc; c++) {
            int w = display_width(text[(size_t)i * (size_t)nc + (size_t)c]);
            width[c] = w > width[c] ? w : width[c];
        }
    print_header(r, &L);
    int total = 0;
    for (int i = 0; i <= L.n_pairs; i++) {
        for (int c = 0; c < nc; c++) {
            if (c)
                printf("  ");
            print_padded(text[(size_t)i * (size_t)nc + (size_t)c], width[c], c >= 3);
            total += i == 0 ? width[c] + (c ? 2 : 0) : 0;
        }
        printf("\n");
        if (i == 0) {
            for (int k = 0; k < total; k++)
                putchar('-');
            printf("\n");
        }
    }
    if (L.n_pairs == 0)
        printf("(no cells in /summary)\n");
    print_legend(r, &L);
    print_notes(r);
    free(width);
    free(text);
    return 0;
}
