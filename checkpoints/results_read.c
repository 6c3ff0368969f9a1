/* results_read.c - reading cell files and results.h5 back (results.c
 * writes them; the layout is documented there and at results_write).
 *
 * The strict readers (cell_result_load, results_read_cell, and
 * results_read_cells in RESULTS_CELLS_FULL mode) want every attribute and
 * dataset of a cell's group. The readers for showing a job (the brief cells
 * and /job) take what a file has and leave the rest empty, so that files
 * written by hand or by other tools in the documented layout still show.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoints.h"
#include "h5io.h"

/* ------------------------------------------------------------- one cell */

/* Reads an optional float dataset of the given shape; NULL when absent. */
static int read_floats(hid_t g, const char *name, int ndims, const hsize_t *dims, int required, float **out,
                       const char *file, const char *where, char *err, size_t errlen)
{
    char what[600];
    snprintf(what, sizeof what, "%s/%s", where, name);
    *out = NULL;
    if (!h5io_exists(g, name)) {
        if (!required)
            return 0;
        snprintf(err, errlen, "file %s: dataset %s is missing", file, what);
        return -1;
    }
    size_t count = 1;
    for (int i = 0; i < ndims; i++)
        count *= (size_t)dims[i];
    *out = malloc((count ? count : 1) * sizeof(float));
    return h5io_read(g, name, H5T_NATIVE_FLOAT, ndims, dims, *out, file, what, err, errlen);
}

static int read_cell_attrs(hid_t g, CellResult *r, int *n_epochs, const char *file, const char *where, char *err,
                           size_t errlen)
{
    int64_t epochs;
    if (h5io_read_cell_attrs(g, r, &epochs, file, where, err, errlen))
        return -1;
    if (r->n_test < 0 || r->classes < 0 || r->classes > (1 << 20)) {
        snprintf(err, errlen, "file %s: %s: invalid n_test %lld or classes %d", file, where, (long long)r->n_test,
                 r->classes);
        return -1;
    }
    *n_epochs = (int)epochs;
    return 0;
}

static int read_cell(hid_t g, CellResult *r, const char *file, const char *where, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    char what[600];
    int declared;
    if (read_cell_attrs(g, r, &declared, file, where[0] ? where : "/", err, errlen))
        return -1;
    snprintf(what, sizeof what, "%s/history", where);
    if (h5io_read_history(g, "history", &r->history, file, what, err, errlen))
        return -1;
    if (r->history.n != declared) {
        snprintf(err, errlen, "file %s: %s has %d rows but the attribute epochs says %d", file, what, r->history.n,
                 declared);
        return -1;
    }
    hsize_t n[1] = {(hsize_t)r->n_test}, nk[2] = {(hsize_t)r->n_test, (hsize_t)r->classes},
            kk[2] = {(hsize_t)r->classes, (hsize_t)r->classes};
    if (read_floats(g, "test/labels", 1, n, 1, &r->labels, file, where, err, errlen) ||
        read_floats(g, "test/predictions", 1, n, 1, &r->predictions, file, where, err, errlen) ||
        read_floats(g, "test/predictions_occluded", 1, n, 0, &r->predictions_occluded, file, where, err, errlen) ||
        read_floats(g, "test/probabilities", 2, nk, 0, &r->probabilities, file, where, err, errlen))
        return -1;
    if (h5io_exists(g, "test/confusion")) {
        snprintf(what, sizeof what, "%s/test/confusion", where);
        r->confusion = malloc((size_t)(r->classes ? r->classes * r->classes : 1) * sizeof(int64_t));
        if (h5io_read(g, "test/confusion", H5T_NATIVE_INT64, 2, kk, r->confusion, file, what, err, errlen))
            return -1;
    }
    return 0;
}


static int load_cell_file(hid_t f, const char *path, void *r, char *err, size_t errlen)
{
    return h5io_check_format(f, CELL_FORMAT, NULL, "cell file", path, err, errlen) ||
                   read_cell(f, r, path, "", err, errlen)
               ? -1
               : 0;
}

int cell_result_load(const char *path, CellResult *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    int rc = h5io_load(path, load_cell_file, r, err, errlen);
    if (rc)
        cell_result_free(r);
    return rc;
}

/* ------------------------------------------------------------- results.h5 */

/* What results files must be before HDF5 opens them. */
static int check_file(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "file %s: %s", path, errno == ENOENT ? "no such file" : strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "file %s: not a regular file", path);
        return -1;
    }
    H5Quiet q;
    h5io_quiet(&q);
    htri_t hdf5 = H5Fis_hdf5(path);
    H5Eclear2(H5E_DEFAULT);
    h5io_loud(&q);
    if (hdf5 <= 0) {
        snprintf(err, errlen, "file %s: not an HDF5 file (expected an occkd results.h5)", path);
        return -1;
    }
    return 0;
}

/* The format sits on / (results_write puts it on /job as well); a file
 * with it on /job alone is accepted. */
static int check_results_format(hid_t f, const char *path, char *err, size_t errlen)
{
    hid_t obj = f;
    if (H5Aexists(f, "format") <= 0 && h5io_exists(f, "job")) {
        hid_t g = H5Oopen(f, "job", H5P_DEFAULT);
        if (g >= 0 && H5Aexists(g, "format") > 0)
            obj = g;
        else if (g >= 0)
            H5Oclose(g);
    }
    int rc = h5io_check_format(obj, RESULTS_FORMAT, NULL, "results file", path, err, errlen);
    if (obj != f)
        H5Oclose(obj);
    return rc;
}

/* Opens the file, checks it is a results file and calls read. */
static int load_results(const char *path, H5ioReader read, void *ctx, char *err, size_t errlen)
{
    return check_file(path, err, errlen) || h5io_load(path, read, ctx, err, errlen) ? -1 : 0;
}

typedef struct {
    SummaryRow *rows;
    int n;
} Summary;

static int load_summary(hid_t f, const char *path, void *ctx, char *err, size_t errlen)
{
    Summary *s = ctx;
    return check_results_format(f, path, err, errlen) || h5io_read_summary(f, &s->rows, &s->n, path, err, errlen)
               ? -1
               : 0;
}

int results_read_summary(const char *path, SummaryRow **rows, int *n_rows, char *err, size_t errlen)
{
    Summary s = {NULL, 0};
    int rc = load_results(path, load_summary, &s, err, errlen);
    *rows = s.rows;
    *n_rows = s.n;
    return rc;
}

int summary_row_is_cell(const SummaryRow *row, uint64_t *seed)
{
    if (strcmp(row->method, "teacher (occluded)") == 0)
        return 0;
    char *end;
    unsigned long long v = strtoull(row->seed, &end, 10);
    if (!row->seed[0] || *end || row->seed[0] == '-')
        return 0;
    *seed = (uint64_t)v;
    return 1;
}

/* Opens the group of a cell; -1 with a message when it is not there. */
static hid_t open_cell_group(hid_t f, const char *name, const char *where, const char *path, char *err,
                             size_t errlen)
{
    if (!h5io_exists(f, name)) {
        snprintf(err, errlen, "file %s: no cell %s", path, where);
        return -1;
    }
    hid_t g = H5Gopen2(f, name, H5P_DEFAULT);
    if (g < 0) {
        char why[256];
        int sum = h5io_last_error(why, sizeof why);
        snprintf(err, errlen, "file %s: %s %s%s", path, sum ? "checksum mismatch in" : "cannot open", where,
                 sum ? " (the file is corrupted)" : "");
    }
    return g;
}

/* The whole group of one cell. */
static int read_full(hid_t f, const char *task, const char *model, const char *method, uint64_t seed, CellResult *r,
                     const char *path, char *err, size_t errlen)
{
    char name[300], where[310];
    results_group_name(task, model, method, seed, name, sizeof name);
    snprintf(where, sizeof where, "/%s", name);
    memset(r, 0, sizeof *r);
    hid_t g = open_cell_group(f, name, where, path, err, errlen);
    if (g < 0)
        return -1;
    int rc = read_cell(g, r, path, where, err, errlen);
    H5Gclose(g);
    return rc;
}

/* What /summary's row says of a cell, and its group's message and history
 * where the file has them (a group without the seed level is taken too). */
static int read_brief(hid_t f, const SummaryRow *row, uint64_t seed, CellResult *c, const char *path, char *err,
                      size_t errlen)
{
    memset(c, 0, sizeof *c);
    snprintf(c->task, sizeof c->task, "%s", row->task);
    snprintf(c->model, sizeof c->model, "%s", row->model);
    snprintf(c->method, sizeof c->method, "%s", row->method);
    snprintf(c->metric, sizeof c->metric, "%.*s", (int)sizeof c->metric - 1, row->metric);
    snprintf(c->status, sizeof c->status, "%.*s", (int)sizeof c->status - 1, row->status);
    c->seed = seed;
    c->value = row->value;
    c->p_value = row->p_value;
    c->value_occluded = c->p_value_occluded = c->seconds = NAN;
    c->best_epoch = -1;
    char name[300], where[310], *msg = NULL, scratch[256];
    results_group_name(row->task, row->model, row->method, seed, name, sizeof name);
    if (!h5io_exists(f, name))
        snprintf(name, sizeof name, "%s/%s/%s", row->task, row->model, row->method);
    if (!h5io_exists(f, name))
        return 0;
    hid_t g = H5Gopen2(f, name, H5P_DEFAULT);
    if (g < 0) {
        H5Eclear2(H5E_DEFAULT);
        return 0;
    }
    if (H5Aexists(g, "message") > 0 && h5io_get_str_alloc(g, "message", &msg, path, name, scratch, sizeof scratch) == 0)
        snprintf(c->message, sizeof c->message, "%s", msg);
    free(msg);
    H5Eclear2(H5E_DEFAULT);
    snprintf(where, sizeof where, "/%s/history", name);
    int rc = h5io_exists(g, "history") ? h5io_read_history(g, "history", &c->history, path, where, err, errlen) : 0;
    H5Gclose(g);
    return rc;
}

typedef struct {
    const char *task, *model, *method;
    uint64_t seed;
    CellResult *r;
} OneCell;

static int load_one_cell(hid_t f, const char *path, void *ctx, char *err, size_t errlen)
{
    OneCell *o = ctx;
    return check_results_format(f, path, err, errlen) ||
                   read_full(f, o->task, o->model, o->method, o->seed, o->r, path, err, errlen)
               ? -1
               : 0;
}

int results_read_cell(const char *path, const char *task, const char *model, const char *method, uint64_t seed,
                      CellResult *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    OneCell o = {task, model, method, seed, r};
    int rc = load_results(path, load_one_cell, &o, err, errlen);
    if (rc)
        cell_result_free(r);
    return rc;
}

typedef struct {
    ResultsCellsMode mode;
    CellResult *cells;
    int n;
} CellList;

static int load_cells(hid_t f, const char *path, void *ctx, char *err, size_t errlen)
{
    CellList *l = ctx;
    Summary s = {NULL, 0};
    if (check_results_format(f, path, err, errlen) || h5io_read_summary(f, &s.rows, &s.n, path, err, errlen))
        return -1;
    l->cells = calloc((size_t)s.n + 1, sizeof *l->cells);
    int rc = l->cells ? 0 : -1;
    if (rc)
        snprintf(err, errlen, "file %s: out of memory for %d cells", path, s.n);
    for (int i = 0; i < s.n && rc == 0; i++) {
        const SummaryRow *row = &s.rows[i];
        uint64_t seed;
        if (!summary_row_is_cell(row, &seed))
            continue;
        CellResult *c = &l->cells[l->n++];
        rc = l->mode == RESULTS_CELLS_FULL ? read_full(f, row->task, row->model, row->method, seed, c, path, err, errlen)
                                           : read_brief(f, row, seed, c, path, err, errlen);
    }
    free(s.rows);
    return rc;
}

int results_read_cells(const char *path, ResultsCellsMode mode, CellResult **cells, int *n_cells, char *err,
                       size_t errlen)
{
    CellList l = {mode, NULL, 0};
    int rc = load_results(path, load_cells, &l, err, errlen);
    if (rc) {
        results_cells_free(l.cells, l.n);
        l.cells = NULL, l.n = 0;
    }
    *cells = l.cells;
    *n_cells = l.n;
    return rc;
}

void results_cells_free(CellResult *cells, int n_cells)
{
    for (int i = 0; cells && i < n_cells; i++)
        cell_result_free(&cells[i]);
    free(cells);
}

/* ------------------------------------------------------------- /job */

/* A string attribute of /job, or NULL where it is absent or not a string. */
static char *job_text(hid_t g, const char *name, const char *path)
{
    char *s = NULL, scratch[256];
    if (H5Aexists(g, name) > 0 && h5io_get_str_alloc(g, name, &s, path, "/job", scratch, sizeof scratch))
        s = NULL;
    H5Eclear2(H5E_DEFAULT);
    return s;
}

/* A count of /job, stored as a number or as decimal text; -1 where absent. */
static int64_t job_count(hid_t g, const char *name, const char *path)
{
    int64_t v = -1;
    char scratch[256];
    if (H5Aexists(g, name) <= 0 || h5io_get_i64(g, name, &v, path, "/job", scratch, sizeof scratch) == 0)
        return v;
    char *s = job_text(g, name, path);
    v = s ? strtoll(s, NULL, 10) : -1;
    free(s);
    return v;
}

/* peak_rss_bytes and data_bytes_read, when both are there. */
static int read_rank_values(hid_t g, ResultsJob *j, const char *path, char *err, size_t errlen)
{
    int nd;
    hsize_t dims[1];
    if (!h5io_exists(g, "peak_rss_bytes") || !h5io_exists(g, "data_bytes_read"))
        return 0;
    if (h5io_shape(g, "peak_rss_bytes", 1, &nd, dims, path, "/job/peak_rss_bytes", err, errlen))
        return -1;
    if (nd != 1 || dims[0] > (1u << 24)) {
        snprintf(err, errlen, "file %s: /job/peak_rss_bytes is not a list of ranks", path);
        return -1;
    }
    size_t n = (size_t)dims[0];
    j->peak_rss_bytes = calloc(n + 1, sizeof(int64_t));
    j->data_bytes_read = calloc(n + 1, sizeof(int64_t));
    if (h5io_read(g, "peak_rss_bytes", H5T_NATIVE_INT64, 1, dims, j->peak_rss_bytes, path, "/job/peak_rss_bytes", err,
                  errlen) ||
        h5io_read(g, "data_bytes_read", H5T_NATIVE_INT64, 1, dims, j->data_bytes_read, path,
                  "/job/data_bytes_read", err, errlen))
        return -1;
    j->n_rank_values = (int)n;
    return 0;
}

static int load_job(hid_t f, const char *path, void *ctx, char *err, size_t errlen)
{
    ResultsJob *j = ctx;
    if (check_results_format(f, path, err, errlen))
        return -1;
    if (!h5io_exists(f, "job"))
        return 0;
    hid_t g = H5Oopen(f, "job", H5P_DEFAULT);
    if (g < 0) {
        snprintf(err, errlen, "file %s: /job cannot be opened", path);
        return -1;
    }
    j->job_text = job_text(g, "job_file", path);
    j->job_path = job_text(g, "job_path", path);
    j->version = job_text(g, "occkd_version", path);
    if (!j->version)
        j->version = job_text(g, "version", path);
    j->start = job_text(g, "start", path);
    j->end = job_text(g, "end", path);
    j->blas = job_text(g, "blas_kernels", path);
    j->ranks = job_count(g, "ranks", path);
    j->peak_rss_max_bytes = job_count(g, "peak_rss_max_bytes", path);
    j->data_bytes_read_total = job_count(g, "data_bytes_read_total", path);
    int rc = read_rank_values(g, j, path, err, errlen);
    H5Oclose(g);
    return rc;
}

int results_read_job(const char *path, ResultsJob *job, char *err, size_t errlen)
{
    memset(job, 0, sizeof *job);
    job->ranks = job->peak_rss_max_bytes = job->data_bytes_read_total = -1;
    int rc = load_results(path, load_job, job, err, errlen);
    if (rc)
        results_job_free(job);
    return rc;
}

void results_job_free(ResultsJob *job)
{
    void *owned[] = {job->job_text, job->job_path, job->version,        job->start,
                     job->end,      job->blas,     job->peak_rss_bytes, job->data_bytes_read};
    for (int i = 0; i < (int)(sizeof owned / sizeof owned[0]); i++)
        free(owned[i]);
    memset(job, 0, sizeof *job);
    job->ranks = job->peak_rss_max_bytes = job->data_bytes_read_total = -1;
}
