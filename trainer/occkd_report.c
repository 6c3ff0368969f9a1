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
 * The file is read with the HDF5 C API directly and by field name, so only
 * the documented layout matters (checkpoints/checkpoints.h, results_write).
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <hdf5.h>
#include <libconfig.h>
#ifdef OCCKD_HAVE_PLPLOT
#include <plplot.h>
#endif

#include "checkpoints/checkpoints.h"

enum { REPORT_OK = 0, REPORT_FAILED = 1, REPORT_INVALID = 2 };

#define NAME_LEN 128
#define SHORT_LEN 32
#define TEXT_LEN 1024
#define SIGNIFICANCE 0.05
#define MARK "*"

/* One row of /summary, as read into memory. */
typedef struct {
    char task[NAME_LEN], model[NAME_LEN], method[NAME_LEN];
    char seed[SHORT_LEN], metric[SHORT_LEN], status[SHORT_LEN];
    double value, p_value;
} ReportRow;

/* What /job tells about the run (absent attributes stay empty / -1). */
typedef struct {
    char name[NAME_LEN];
    char path[TEXT_LEN];
    char version[SHORT_LEN * 2];
    char start[SHORT_LEN * 2], end[SHORT_LEN * 2];
    long ranks;
} JobInfo;

typedef struct {
    const char *path;
    hid_t file;
    JobInfo job;
    int n_rows;
    ReportRow *rows;
} Results;

/* A list of distinct names in order of first appearance. */
typedef struct {
    int n;
    const char *name[256];
} NameList;

typedef struct {
    int csv;
    const char *plot;
    const char *input;
} Args;

/* ------------------------------------------------------------- helpers */

static int name_index(const NameList *l, const char *s)
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

static int is_aggregate_seed(const char *seed)
{
    return strcmp(seed, "mean") == 0 || strcmp(seed, "std") == 0;
}

static int is_accuracy(const char *metric)
{
    return strcmp(metric, "accuracy") == 0;
}

static int is_mae(const char *metric)
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

/* ------------------------------------------------------- HDF5 reading */

/* A string attribute (fixed or variable length) as a new C string, or NULL
 * when obj has no attribute `name` or it is not a string. */
static char *attr_text(hid_t obj, const char *name)
{
    if (H5Aexists(obj, name) <= 0)
        return NULL;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        return NULL;
    hid_t ft = H5Aget_type(a);
    hid_t space = H5Aget_space(a);
    char *out = NULL;
    if (H5Tget_class(ft) == H5T_STRING && H5Sget_simple_extent_npoints(space) == 1) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_cset(mt, H5Tget_cset(ft));  // HDF5 converts no strings between ASCII and UTF-8
        if (H5Tis_variable_str(ft) > 0) {
            char *v = NULL;
            H5Tset_size(mt, H5T_VARIABLE);
            if (H5Aread(a, mt, &v) >= 0 && v) {
                out = strdup(v);
                H5free_memory(v);
            }
        } else {
            size_t n = H5Tget_size(ft);
            H5Tset_size(mt, n + 1);
            H5Tset_strpad(mt, H5T_STR_NULLTERM);
            out = calloc(n + 1, 1);
            if (out && H5Aread(a, mt, out) < 0) {
                free(out);
                out = NULL;
            }
        }
        H5Tclose(mt);
    }
    H5Sclose(space);
    H5Tclose(ft);
    H5Aclose(a);
    return out;
}

static void attr_copy(hid_t obj, const char *name, char *out, size_t len)
{
    char *s = attr_text(obj, name);
    snprintf(out, len, "%s", s ? s : "");
    free(s);
}

/* An integer attribute (stored as a number or as text), or -1. */
static long attr_long(hid_t obj, const char *name)
{
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t ft = H5Aget_type(a);
    long v = -1;
    H5T_class_t c = H5Tget_class(ft);
    if (c == H5T_INTEGER || c == H5T_FLOAT) {
        if (H5Aread(a, H5T_NATIVE_LONG, &v) < 0)
            v = -1;
    } else if (c == H5T_STRING) {
        char *s = attr_text(obj, name);
        if (s)
            v = strtol(s, NULL, 10);
        free(s);
    }
    H5Tclose(ft);
    H5Aclose(a);
    return v;
}

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

static void read_job_info(hid_t file, JobInfo *job)
{
    memset(job, 0, sizeof *job);
    job->ranks = -1;
    if (H5Lexists(file, "job", H5P_DEFAULT) <= 0)
        return;
    hid_t g = H5Oopen(file, "job", H5P_DEFAULT);
    if (g < 0)
        return;
    char *text = attr_text(g, "job_file");
    attr_copy(g, "job_path", job->path, sizeof job->path);
    attr_copy(g, "occkd_version", job->version, sizeof job->version);
    if (!job->version[0])
        attr_copy(g, "version", job->version, sizeof job->version);
    attr_copy(g, "start", job->start, sizeof job->start);
    attr_copy(g, "end", job->end, sizeof job->end);
    job->ranks = attr_long(g, "ranks");
    job_name(text, job->path, job->name, sizeof job->name);
    free(text);
    H5Oclose(g);
}

/* Checks the file's "format" attribute (on the root, or on /job). */
static int check_format(const Results *r, char *err, size_t errlen)
{
    char *fmt = attr_text(r->file, "format");
    if (!fmt && H5Lexists(r->file, "job", H5P_DEFAULT) > 0) {
        hid_t g = H5Oopen(r->file, "job", H5P_DEFAULT);
        if (g >= 0) {
            fmt = attr_text(g, "format");
            H5Oclose(g);
        }
    }
    int rc = 0;
    if (!fmt && H5Aexists(r->file, "format") > 0) {
        snprintf(err, errlen, "%s: the 'format' attribute is not a readable string (expected '%s')", r->path,
                 RESULTS_FORMAT);
        rc = -1;
    } else if (!fmt) {
        snprintf(err, errlen, "%s: not an occkd results file (no 'format' attribute; expected '%s')", r->path,
                 RESULTS_FORMAT);
        rc = -1;
    } else if (strcmp(fmt, RESULTS_FORMAT) != 0) {
        snprintf(err, errlen, "%s: not an occkd results file of this version (format '%s', expected '%s')", r->path,
                 fmt, RESULTS_FORMAT);
        rc = -1;
    }
    free(fmt);
    return rc;
}

/* One field of a compound table that the reader needs. */
typedef struct {
    const char *name;
    int is_string;
    size_t offset, size;
} Field;

/* Builds the memory type for `fields` after checking that the file's
 * compound type `ft` has each of them with a compatible class. */
static hid_t compound_memtype(hid_t ft, const Field *fields, int n, size_t record, const char *where, char *err,
                              size_t errlen)
{
    if (H5Tget_class(ft) != H5T_COMPOUND) {
        snprintf(err, errlen, "%s is not a compound table", where);
        return -1;
    }
    hid_t mt = H5Tcreate(H5T_COMPOUND, record);
    for (int i = 0; i < n; i++) {
        int idx = H5Tget_member_index(ft, fields[i].name);
        if (idx < 0) {
            snprintf(err, errlen, "%s has no field '%s'", where, fields[i].name);
            H5Tclose(mt);
            return -1;
        }
        H5T_class_t c = H5Tget_member_class(ft, (unsigned)idx);
        hid_t member = H5Tget_member_type(ft, (unsigned)idx);
        int vlen = c == H5T_STRING && H5Tis_variable_str(member) > 0;
        H5T_cset_t cset = c == H5T_STRING ? H5Tget_cset(member) : H5T_CSET_ASCII;
        H5Tclose(member);
        if (fields[i].is_string ? (c != H5T_STRING || vlen) : (c != H5T_FLOAT && c != H5T_INTEGER)) {
            snprintf(err, errlen, "%s: field '%s' should be %s", where, fields[i].name,
                     fields[i].is_string ? "a fixed-length string" : "a number");
            H5Tclose(mt);
            return -1;
        }
        if (fields[i].is_string) {
            hid_t st = H5Tcopy(H5T_C_S1);
            H5Tset_size(st, fields[i].size);
            H5Tset_strpad(st, H5T_STR_NULLTERM);
            H5Tset_cset(st, cset);
            H5Tinsert(mt, fields[i].name, fields[i].offset, st);
            H5Tclose(st);
        } else {
            H5Tinsert(mt, fields[i].name, fields[i].offset, H5T_NATIVE_DOUBLE);
        }
    }
    return mt;
}

/* Reads the whole one-dimensional compound dataset `name` of loc into a new
 * array of records (*n of them). */
static int read_table(hid_t loc, const char *name, const Field *fields, int n_fields, size_t record, void **out,
                      int *n, const char *where, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    hid_t d = H5Dopen(loc, name, H5P_DEFAULT);
    if (d < 0) {
        snprintf(err, errlen, "%s cannot be opened", where);
        return -1;
    }
    hid_t ft = H5Dget_type(d);
    hid_t space = H5Dget_space(d);
    int rc = -1;
    hid_t mt = compound_memtype(ft, fields, n_fields, record, where, err, errlen);
    if (mt >= 0) {
        if (H5Sget_simple_extent_ndims(space) != 1) {
            snprintf(err, errlen, "%s should be a one-dimensional table", where);
        } else {
            hssize_t count = H5Sget_simple_extent_npoints(space);
            void *buf = calloc(count > 0 ? (size_t)count : 1, record);
            if (!buf) {
                snprintf(err, errlen, "%s: out of memory for %lld rows", where, (long long)count);
            } else if (count > 0 && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
                snprintf(err, errlen, "%s cannot be read (damaged file?)", where);
                free(buf);
            } else {
                *out = buf;
                *n = (int)count;
                rc = 0;
            }
        }
        H5Tclose(mt);
    }
    H5Sclose(space);
    H5Tclose(ft);
    H5Dclose(d);
    return rc;
}

static int read_summary(Results *r, char *err, size_t errlen)
{
    static const Field fields[] = {
        {"task", 1, offsetof(ReportRow, task), NAME_LEN},
        {"model", 1, offsetof(ReportRow, model), NAME_LEN},
        {"method", 1, offsetof(ReportRow, method), NAME_LEN},
        {"seed", 1, offsetof(ReportRow, seed), SHORT_LEN},
        {"metric", 1, offsetof(ReportRow, metric), SHORT_LEN},
        {"value", 0, offsetof(ReportRow, value), sizeof(double)},
        {"p_value", 0, offsetof(ReportRow, p_value), sizeof(double)},
        {"status", 1, offsetof(ReportRow, status), SHORT_LEN},
    };
    char where[TEXT_LEN + 16];
    snprintf(where, sizeof where, "%s: /summary", r->path);
    if (H5Lexists(r->file, "summary", H5P_DEFAULT) <= 0) {
        snprintf(err, errlen, "%s is missing (the job has not finished a cell yet, or the file is damaged)", where);
        return -1;
    }
    void *rows;
    if (read_table(r->file, "summary", fields, (int)(sizeof fields / sizeof fields[0]), sizeof(ReportRow), &rows,
                   &r->n_rows, where, err, errlen) < 0) {
        if (strstr(err, "has no field"))
            snprintf(err + strlen(err), errlen - strlen(err),
                     " (expected task, model, method, seed, metric, value, p_value, status)");
        return -1;
    }
    r->rows = rows;
    return 0;
}

static void results_close(Results *r)
{
    free(r->rows);
    r->rows = NULL;
    if (r->file >= 0)
        H5Fclose(r->file);
    r->file = -1;
}

static int results_open(const char *path, Results *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->file = -1;
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "%s: no such file", path);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        return -1;
    }
    if (H5Fis_hdf5(path) <= 0) {
        snprintf(err, errlen, "%s: not an HDF5 file (expected an occkd results.h5)", path);
        return -1;
    }
    r->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (r->file < 0) {
        snprintf(err, errlen, "%s: cannot be opened as HDF5 (damaged or locked?)", path);
        return -1;
    }
    if (check_format(r, err, errlen) < 0 || read_summary(r, err, errlen) < 0) {
        results_close(r);
        return -1;
    }
    read_job_info(r->file, &r->job);
    return 0;
}

/* The HDF5 group of a cell's seed: /<task>/<model>/<method>/seed-<n> (as
 * results_write lays it out), else /<task>/<model>/<method>. Returns -1
 * when neither exists. */
static hid_t cell_group(hid_t file, const ReportRow *row)
{
    char path[4 * NAME_LEN + 64];
    const char *parts[3] = {row->task, row->model, row->method};
    hid_t g = file;
    for (int i = 0; i < 3; i++) {
        if (H5Lexists(g, parts[i], H5P_DEFAULT) <= 0) {
            if (g != file)
                H5Gclose(g);
            return -1;
        }
        hid_t next = H5Gopen(g, parts[i], H5P_DEFAULT);
        if (g != file)
            H5Gclose(g);
        if (next < 0)
            return -1;
        g = next;
    }
    snprintf(path, sizeof path, "seed-%s", row->seed);
    if (H5Lexists(g, path, H5P_DEFAULT) > 0) {
        hid_t s = H5Gopen(g, path, H5P_DEFAULT);
        H5Gclose(g);
        return s;
    }
    return g;
}

/* ------------------------------------------------------------ the table */

static const char *const CANONICAL[] = {"teacher", "teacher (occluded)", "student", "kd", "triplet", "kd+triplet"};
#define N_CANONICAL ((int)(sizeof CANONICAL / sizeof CANONICAL[0]))

/* The table's shape: rows (task, model) in order of first appearance,
 * columns in the paper's order, then fusions in order of appearance. */
typedef struct {
    NameList tasks, models, methods;
    int n_pairs;
    int pair_task[256], pair_model[256];
    NameList seeds;           /* per-seed values, "mean"/"std" excluded */
} Layout;

static int layout_build(const Results *r, Layout *L, char *err, size_t errlen)
{
    memset(L, 0, sizeof *L);
    for (int c = 0; c < N_CANONICAL; c++)
        for (int i = 0; i < r->n_rows; i++)
            if (strcmp(r->rows[i].method, CANONICAL[c]) == 0) {
                name_add(&L->methods, CANONICAL[c]);
                break;
            }
    for (int i = 0; i < r->n_rows; i++) {
        const ReportRow *row = &r->rows[i];
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

/* What the rows of one (task, model, method) say. */
typedef struct {
    int n_seeds, n_done, n_failed, n_skipped, n_significant;
    double sum, sum_sq;
    int have_mean, have_std;  /* the file's own "mean" / "std" rows */
    double mean, std;
    char metric[SHORT_LEN];
    char other_status[SHORT_LEN];
} CellAgg;

static void cell_aggregate(const Results *r, const char *task, const char *model, const char *method, CellAgg *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 0; i < r->n_rows; i++) {
        const ReportRow *row = &r->rows[i];
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

static const char *column_title(const char *method)
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

static void print_header(const Results *r, const Layout *L)
{
    const JobInfo *j = &r->job;
    printf("occkd results: job %s", j->name[0] ? j->name : "(unnamed)");
    if (j->path[0])
        printf(" (%s)", j->path);
    printf("\n");
    printf("  file %s; ", r->path);
    if (j->ranks > 0)
        printf("%ld rank%s; ", j->ranks, j->ranks == 1 ? "" : "s");
    printf("started %s, ended %s", j->start[0] ? j->start : "?", j->end[0] ? j->end : "?");
    if (j->version[0])
        printf("; occkd %s", j->version);
    printf("\n  %d seed%s:", L->seeds.n, L->seeds.n == 1 ? "" : "s");
    for (int i = 0; i < L->seeds.n; i++)
        printf(" %s", L->seeds.name[i]);
    printf("\n\n");
}

static void print_legend(const Results *r, const Layout *L)
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

/* Failed and skipped cells with the reason their group records. */
static void print_notes(const Results *r)
{
    int first = 1;
    for (int i = 0; i < r->n_rows; i++) {
        const ReportRow *row = &r->rows[i];
        if (strcmp(row->status, "done") == 0 || is_aggregate_seed(row->seed) ||
            strcmp(row->method, "teacher (occluded)") == 0)
            continue;
        char *msg = NULL;
        hid_t g = cell_group(r->file, row);
        if (g >= 0) {
            msg = attr_text(g, "message");
            H5Gclose(g);
        }
        if (first)
            printf("\n");
        first = 0;
        printf("%s: %s / %s / %s, seed %s%s%s\n", row->status, row->task, row->model, row->method, row->seed,
               msg && msg[0] ? ": " : "", msg ? msg : "");
        free(msg);
    }
}

static int print_table(const Results *r, char *err, size_t errlen)
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

/* ---------------------------------------------------------------- CSV */

static void csv_field(const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

/* A number for machines: the shortest of %.15g..%.17g that reads back as
 * the same double, empty when not a number. */
static void csv_number(double v)
{
    if (isfinite(v)) {
        char s[40];
        for (int digits = 15; digits <= 17; digits++) {
            snprintf(s, sizeof s, "%.*g", digits, v);
            if (strtod(s, NULL) == v)
                break;
        }
        fputs(s, stdout);
    }
    else if (isinf(v))
        printf("%s", v > 0 ? "inf" : "-inf");
}

static void print_csv(const Results *r)
{
    printf("task,model,method,seed,metric,value,p_value,status\n");
    for (int i = 0; i < r->n_rows; i++) {
        const ReportRow *row = &r->rows[i];
        const char *s[] = {row->task, row->model, row->method, row->seed, row->metric};
        for (int k = 0; k < 5; k++) {
            csv_field(s[k]);
            putchar(',');
        }
        csv_number(row->value);
        putchar(',');
        csv_number(row->p_value);
        putchar(',');
        csv_field(row->status);
        putchar('\n');
    }
}

/* --------------------------------------------------------------- plot */

#ifdef OCCKD_HAVE_PLPLOT

typedef struct {
    double epoch, train_loss, val_metric;
} HistoryRow;

/* One curve: a cell's (per seed) history. */
typedef struct {
    int task, model, method;  /* indices into the layout's lists */
    int n;
    HistoryRow *h;
} Curve;

/* Reads the history of every trained cell (fusions and cells that never
 * ran have none). */
static int read_curves(const Results *r, const Layout *L, Curve **out, int *n_out, char *err, size_t errlen)
{
    static const Field fields[] = {
        {"epoch", 0, offsetof(HistoryRow, epoch), sizeof(double)},
        {"train_loss", 0, offsetof(HistoryRow, train_loss), sizeof(double)},
        {"val_metric", 0, offsetof(HistoryRow, val_metric), sizeof(double)},
    };
    Curve *c = calloc((size_t)r->n_rows + 1, sizeof *c);
    int n = 0;
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < r->n_rows; i++) {
        const ReportRow *row = &r->rows[i];
        if (is_aggregate_seed(row->seed) || strcmp(row->method, "teacher (occluded)") == 0)
            continue;
        hid_t g = cell_group(r->file, row);
        if (g < 0)
            continue;
        if (H5Lexists(g, "history", H5P_DEFAULT) > 0) {
            char where[TEXT_LEN + 4 * NAME_LEN];
            snprintf(where, sizeof where, "%s: /%s/%s/%s (seed %s) history", r->path, row->task, row->model,
                     row->method, row->seed);
            void *h;
            int rows;
            if (read_table(g, "history", fields, 3, sizeof(HistoryRow), &h, &rows, where, err, errlen) < 0) {
                H5Gclose(g);
                for (int k = 0; k < n; k++)
                    free(c[k].h);
                free(c);
                return -1;
            }
            c[n] = (Curve){name_index(&L->tasks, row->task), name_index(&L->models, row->model),
                           name_index(&L->methods, row->method), rows, h};
            if (rows > 0)
                n++;
            else
                free(h);
        }
        H5Gclose(g);
    }
    *out = c;
    *n_out = n;
    return 0;
}

/* Colours of methods (cmap0 indices 2..); teacher dark grey, student blue. */
static const unsigned char PALETTE[][3] = {
    {60, 60, 60},   {150, 150, 150}, {31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
    {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {188, 189, 34}, {23, 190, 207}, {127, 127, 127},
};
#define N_PALETTE ((int)(sizeof PALETTE / sizeof PALETTE[0]))

/* The same method gets the same colour in every job: the paper's methods
 * by their fixed position, fusions after them in order of appearance. */
static int method_colour(const Layout *L, int method)
{
    const char *name = L->methods.name[method];
    int k = 0;
    for (int c = 0; c < N_CANONICAL; c++) {
        if (strcmp(name, CANONICAL[c]) == 0)
            return 2 + c;
        k += name_index(&L->methods, CANONICAL[c]) >= 0;
    }
    return 2 + (N_CANONICAL + method - k) % N_PALETTE;
}

/* Draws the rows of one curve as a polyline, broken where a value is not a
 * number; `field` 0 train loss, 1 validation metric (scaled by `scale`). */
static void draw_curve(const Curve *c, int field, double scale, PLFLT *x, PLFLT *y)
{
    int k = 0;
    for (int i = 0; i <= c->n; i++) {
        double v = i < c->n ? (field ? c->h[i].val_metric * scale : c->h[i].train_loss) : NAN;
        if (i < c->n && isfinite(v) && isfinite(c->h[i].epoch)) {
            x[k] = c->h[i].epoch;
            y[k] = v;
            k++;
            continue;
        }
        if (k == 1)
            plpoin(1, x, y, 17);
        else if (k > 1)
            plline(k, x, y);
        k = 0;
    }
}

typedef struct {
    double x0, x1, y0, y1;
} Range;

static Range curve_range(const Curve *c, int n, int task, int model, int field, double scale)
{
    Range r = {INFINITY, -INFINITY, INFINITY, -INFINITY};
    for (int k = 0; k < n; k++) {
        if (c[k].task != task || c[k].model != model)
            continue;
        for (int i = 0; i < c[k].n; i++) {
            double v = field ? c[k].h[i].val_metric * scale : c[k].h[i].train_loss;
            double e = c[k].h[i].epoch;
            if (!isfinite(v) || !isfinite(e))
                continue;
            r.x0 = fmin(r.x0, e), r.x1 = fmax(r.x1, e);
            r.y0 = fmin(r.y0, v), r.y1 = fmax(r.y1, v);
        }
    }
    if (!isfinite(r.x0))
        return (Range){0, 1, 0, 1};
    if (r.x1 - r.x0 < 1)
        r.x0 -= 0.5, r.x1 += 0.5;
    double pad = 0.06 * (r.y1 - r.y0);
    if (pad <= 0)
        pad = fabs(r.y0) > 0 ? 0.05 * fabs(r.y0) : 0.5;
    r.y0 -= pad, r.y1 += pad;
    return r;
}

/* Layout of the page in normalised device coordinates. */
#define PANEL_W 420
#define PANEL_H 250
#define TOP_PX 100
#define LEFT_PX 20
#define MIN_WIDTH_PX 700
#define FONT_REF_PX 1980 /* width + height of the page the text sizes were chosen on */

static void draw_panel(const Results *r, const Layout *L, const Curve *c, int n, int task, int model, int field,
                       double vx0, double vx1, double vy0, double vy1, PLFLT *x, PLFLT *y)
{
    const char *metric = "";
    for (int i = 0; i < r->n_rows; i++)
        if (strcmp(r->rows[i].task, L->tasks.name[task]) == 0) {
            metric = r->rows[i].metric;
            break;
        }
    double scale = field && is_accuracy(metric) ? 100.0 : 1.0;
    Range g = curve_range(c, n, task, model, field, scale);
    plvpor(vx0, vx1, vy0, vy1);
    plwind(g.x0, g.x1, g.y0, g.y1);
    plcol0(1);
    plwidth(1.0);
    double span = g.x1 - g.x0, xtick = span <= 12 ? 1.0 : 0.0;  // whole epochs while they fit
    plbox("bcnst", xtick, xtick > 0 ? 1 : 0, "bcnstv", 0.0, 0);
    char title[3 * NAME_LEN];
    const char *what = !field ? "train loss" : is_accuracy(metric) ? "val accuracy (%)" : is_mae(metric)
                                                                                          ? "val MAE (years)"
                                                                                          : "val metric";
    snprintf(title, sizeof title, "%s / %s: %s", L->tasks.name[task], L->models.name[model], what);
    plmtex("t", 1.0, 0.5, 0.5, title);
    plmtex("b", 3.0, 0.5, 0.5, "epoch");
    int any = 0;
    plwidth(2.0);
    for (int k = 0; k < n; k++) {
        if (c[k].task != task || c[k].model != model)
            continue;
        plcol0(method_colour(L, c[k].method));
        draw_curve(&c[k], field, scale, x, y);
        any = 1;
    }
    plwidth(1.0);
    if (!any) {
        int cell = 0;
        for (int p = 0; p < L->n_pairs; p++)
            cell |= L->pair_task[p] == task && L->pair_model[p] == model;
        plcol0(1);
        plptex(0.5 * (g.x0 + g.x1), 0.5 * (g.y0 + g.y1), 1, 0, 0.5, cell ? "no history" : "not in the job");
    }
}

/* The legend: one entry per method that has a curve (a short line in the
 * method's colour and its name), two to six to a row as the page's width
 * allows, in the strip under the title. */
static void draw_legend(const Layout *L, const Curve *c, int n, double top, int width, double font)
{
    int used[256] = {0}, k = 0, per_row = width / 220 < 2 ? 2 : width / 220 > 6 ? 6 : width / 220;
    for (int i = 0; i < n; i++)
        used[c[i].method] = 1;
    plvpor(0.04, 0.98, top + 0.05 * (1.0 - top), top + 0.58 * (1.0 - top));
    plwind(0, 1, 0, 1);
    plschr(0.0, 0.6 * font);
    for (int m = 0; m < L->methods.n; m++) {
        if (!used[m])
            continue;
        double w = 1.0 / per_row;
        PLFLT x[2] = {w * (k % per_row), w * (k % per_row) + 0.2 * w}, y[2];
        y[0] = y[1] = 0.75 - 0.5 * (k / per_row);
        plcol0(method_colour(L, m));
        plwidth(3.0);
        plline(2, x, y);
        plcol0(1);
        plwidth(1.0);
        plptex(x[1] + 0.05 * w, y[0], 1, 0, 0.0, column_title(L->methods.name[m]));
        k++;
    }
    plschr(0.0, 0.65 * font);
}

static int plot_exit_handler(PLCHAR_VECTOR msg)
{
    fprintf(stderr, "occkd_report: plotting failed: %s\n", msg);
    return 1;
}

static int write_plot(const Results *r, const char *out, char *err, size_t errlen)
{
    Layout L;
    if (layout_build(r, &L, err, errlen) < 0)
        return REPORT_INVALID;
    Curve *c;
    int n;
    if (read_curves(r, &L, &c, &n, err, errlen) < 0)
        return REPORT_INVALID;
    FILE *probe = fopen(out, "wb");
    if (!probe) {
        snprintf(err, errlen, "%s: cannot be written", out);
        for (int k = 0; k < n; k++)
            free(c[k].h);
        free(c);
        return REPORT_FAILED;
    }
    fclose(probe);
    int max_len = 1;
    for (int k = 0; k < n; k++)
        max_len = c[k].n + 1 > max_len ? c[k].n + 1 : max_len;
    PLFLT *x = malloc((size_t)max_len * sizeof *x), *y = malloc((size_t)max_len * sizeof *y);

    int cols = L.models.n > 0 ? L.models.n : 1, rows = 2 * (L.tasks.n > 0 ? L.tasks.n : 1);
    int width = LEFT_PX * 2 + cols * PANEL_W, height = TOP_PX + rows * PANEL_H;
    width = width < MIN_WIDTH_PX ? MIN_WIDTH_PX : width; // room for the title and legend
    char geometry[64];
    snprintf(geometry, sizeof geometry, "%dx%d", width, height);
    plsexit(plot_exit_handler);
    plsdev("pngcairo");
    plsfnam(out);
    plsetopt("geometry", geometry);
    plscol0(0, 255, 255, 255);
    plscol0(1, 0, 0, 0);
    for (int i = 0; i < N_PALETTE; i++)
        plscol0(2 + i, PALETTE[i][0], PALETTE[i][1], PALETTE[i][2]);
    plinit();
    pladv(0);
    double top = 1.0 - (double)TOP_PX / height;
    // title strip
    plvpor(0.0, 1.0, top, 1.0);
    plwind(0, 1, 0, 1);
    plcol0(1);
    char title[2 * NAME_LEN];
    snprintf(title, sizeof title, "occkd: training curves of job %s", r->job.name[0] ? r->job.name : "(unnamed)");
    // PLplot's default text height grows with width + height of the page;
    // keep the text the same size in pixels whatever the grid
    double font = (double)FONT_REF_PX / (width + height);
    plschr(0.0, 1.0 * font);
    plmtex("t", -1.5, 0.5, 0.5, title);
    plschr(0.0, 0.65 * font);
    draw_legend(&L, c, n, top, width, font);
    // panels: a column per model; per task a loss row over a validation row
    double pw = (1.0 - 2.0 * LEFT_PX / width) / cols, ph = top / rows;
    for (int t = 0; t < L.tasks.n; t++)
        for (int m = 0; m < L.models.n; m++)
            for (int field = 0; field < 2; field++) {
                int row = 2 * t + field;
                double x0 = (double)LEFT_PX / width + m * pw, y1 = top - row * ph;
                draw_panel(r, &L, c, n, t, m, field, x0 + 0.16 * pw, x0 + 0.96 * pw, y1 - 0.74 * ph, y1 - 0.13 * ph,
                           x, y);
            }
    plend();
    free(x);
    free(y);
    for (int k = 0; k < n; k++)
        free(c[k].h);
    free(c);
    fprintf(stderr, "occkd_report: wrote %s (%d x %d, %d curves in %d panels)\n", out, width, height, n,
            2 * L.tasks.n * L.models.n);
    return REPORT_OK;
}

#else

static int write_plot(const Results *r, const char *out, char *err, size_t errlen)
{
    snprintf(err, errlen, "--plot: this occkd_report was built without PLplot (install libplplot-dev and "
                          "plplot-driver-cairo, e.g. with jobs/setup-debian.sh, and rebuild)");
    return REPORT_FAILED;
}

#endif

/* ---------------------------------------------------------------- main */

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
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    char err[2 * TEXT_LEN];
    Results r;
    if (results_open(args.input, &r, err, sizeof err) < 0) {
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
    results_close(&r);
    return rc;
}
