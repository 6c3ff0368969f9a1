/* report.h - the parts of occkd_report (private to the program): what it
 * read of a results.h5 (through checkpoints/), the table's layout shared by
 * the table and the plot, and the three outputs. */
#ifndef OCCKD_REPORT_H
#define OCCKD_REPORT_H

#include <stddef.h>

#include "checkpoints/checkpoints.h"
#include "trainer/trainer.h"

enum { REPORT_OK = 0, REPORT_FAILED = 1, REPORT_INVALID = 2 };

#define NAME_LEN 128
#define SIGNIFICANCE 0.05
#define MARK "*"

/* A results.h5 as the report uses it. */
typedef struct {
    const char *path;
    char job_name[NAME_LEN]; /* job.name of the job's text, else the job file's name; may be empty */
    ResultsJob job;
    SummaryRow *rows;        /* /summary as stored */
    int n_rows;
    CellResult *cells;       /* the cells /summary lists, brief: message and history */
    int n_cells;
} Report;

/* A list of distinct names in order of first appearance. */
typedef struct {
    int n;
    const char *name[256];
} NameList;

int name_index(const NameList *l, const char *s);
int is_aggregate_seed(const char *seed);
int is_accuracy(const char *metric);
int is_mae(const char *metric);

/* The paper's methods, in the order of the table's columns. */
/* The canonical column order: teacher, teacher (occluded), then every
 * student method as the trainer lists them. */
const char *canonical_method(int c);
#define N_CANONICAL (METHOD_COUNT + 1)

/* The table's shape: rows (task, model) in order of first appearance,
 * columns in the paper's order, then fusions in order of appearance. */
typedef struct {
    NameList tasks, models, methods;
    int n_pairs;
    int pair_task[256], pair_model[256];
    NameList seeds;           /* per-seed values, "mean"/"std" excluded */
} Layout;

int layout_build(const Report *r, Layout *L, char *err, size_t errlen);
/* The column title of a method ("teacher" is "teacher (clean)"). */
const char *column_title(const char *method);

/* The outputs, on stdout (the plot into the file out). */
int print_table(const Report *r, char *err, size_t errlen);
void print_csv(const Report *r);
int write_plot(const Report *r, const char *out, char *err, size_t errlen); /* a REPORT_* status */

#endif
