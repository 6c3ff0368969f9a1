/* occkd_report - a job's results.h5 as a readable table, as CSV, or as
 * training curves.
 *
 *   occkd_report runs/grid/results.h5                 the paper-style table
 *   occkd_report --csv runs/grid/results.h5           one line per /summary row
 *   occkd_report --plot curves.png runs/grid/results.h5
 *
 * The table has one row per task x model and one column per method (teacher
 * on clean faces, teacher on occluded faces, student, kd, triplet,
 * kd+triplet, then the fusions); columns of methods the job did not run are
 * left out. A cell holds the test metric (accuracy in %, MAE in years), or
 * "mean ± std" over the seeds of a job with several seeds, and a '*' where
 * the paired test against `student` gives p < 0.05 (in every seed).
 *
 * The plot draws, for every task x model, the training loss and the
 * validation metric per epoch of each method (from the cells' history
 * tables), with PLplot.
 *
 * Exit status: 0 success, 1 failure while running (e.g. the image cannot be
 * written), 2 invalid input (usage, missing or foreign file, broken layout).
 *
 * The file is read through checkpoints/ (results_read_summary,
 * results_read_job, results_read_cells), which finds fields by name, so only
 * the documented layout matters (checkpoints/checkpoints.h, results_write).
 * The parts: main.c (arguments, reading), table.c, csv.c, plot.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "report.h"

#define TEXT_LEN 1024

typedef struct {
    int csv;
    const char *plot;
    const char *input;
} Args;

/* The job's name: `job.name` in the job file's text, else the file name of
 * the job without its extension. */
static void job_name(const char *job_text, const char *job_path, char *out, size_t len)
{
    out[0] = '\0';
    if (job_text) {
        config_t cfg;
        const char *name = NULL;
        config_init(&cfg);
        if (config_read_string(&cfg, job_text) == CONFIG_TRUE && config_lookup_string(&cfg, "job.name", &name) &&
            name)
            snprintf(out, len, "%s", name);
        config_destroy(&cfg);
    }
    if (!out[0] && job_path && job_path[0]) {
        const char *base = strrchr(job_path, '/');
        base = base ? base + 1 : job_path;
        size_t n = strlen(base) < len - 1 ? strlen(base) : len - 1;
        memcpy(out, base, n);
        out[n] = '\0';
        char *dot = strrchr(out, '.');
        if (dot && dot != out)
            *dot = '\0';
    }
}

/* Reads what the outputs need; on failure r holds nothing. */
static int report_read(const char *path, Report *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    if (results_read_summary(path, &r->rows, &r->n_rows, err, errlen) ||
        results_read_job(path, &r->job, err, errlen) ||
        results_read_cells(path, RESULTS_CELLS_BRIEF, &r->cells, &r->n_cells, err, errlen)) {
        free(r->rows);
        results_job_free(&r->job);
        return -1;
    }
    job_name(r->job.job_text, r->job.job_path, r->job_name, sizeof r->job_name);
    return 0;
}

static void report_free(Report *r)
{
    free(r->rows);
    results_job_free(&r->job);
    results_cells_free(r->cells, r->n_cells);
    memset(r, 0, sizeof *r);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: occkd_report [--csv] [--plot OUT.png] RESULTS.h5\n"
               "  (default)        the paper-style table: task x model rows, one column per method\n"
               "  --csv            /summary as CSV: task,model,method,seed,metric,value,p_value,status\n"
               "  --plot OUT.png   also draw training loss and validation metric per epoch of every cell\n"
               "exit status: 0 success, 1 failure while running, 2 invalid input\n");
}

static int parse_args(int argc, char **argv, Args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--csv") == 0) {
            a->csv = 1;
        } else if (strcmp(argv[i], "--plot") == 0) {
            if (i + 1 >= argc || !argv[i + 1][0]) {
                fprintf(stderr, "occkd_report: --plot expects an output file name (e.g. --plot curves.png)\n");
                return -1;
            }
            a->plot = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            exit(REPORT_OK);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "occkd_report: unknown option '%s' (known: --csv, --plot FILE, --help)\n", argv[i]);
            return -1;
        } else if (a->input) {
            fprintf(stderr, "occkd_report: one results file expected, got '%s' and '%s'\n", a->input, argv[i]);
            return -1;
        } else {
            a->input = argv[i];
        }
    }
    if (!a->input) {
        fprintf(stderr, "occkd_report: no results file given\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    Args args;
    if (parse_args(argc, argv, &args) < 0) {
        usage(stderr);
        return REPORT_INVALID;
    }
    char err[2 * TEXT_LEN];
    Report r;
    if (report_read(args.input, &r, err, sizeof err) < 0) {
        fprintf(stderr, "occkd_report: %s\n", err);
        return REPORT_INVALID;
    }
    int rc = REPORT_OK;
    if (args.plot) {
        rc = write_plot(&r, args.plot, err, sizeof err);
        if (rc != REPORT_OK)
            fprintf(stderr, "occkd_report: %s\n", err);
    }
    if (rc == REPORT_OK) {
        if (args.csv)
            print_csv(&r);
        else if (print_table(&r, err, sizeof err) < 0) {
            fprintf(stderr, "occkd_report: %s\n", err);
            rc = REPORT_INVALID;
        }
    }
    report_free(&r);
    return rc;
}
