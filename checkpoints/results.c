/* results.c - writing one cell's outcome (a small file per cell) and the
 * job's results.h5, assembled from the cells by world rank 0
 * (results_read.c reads them).
 *
 * A cell's group (the root of a cell file, /<task>/<model>/<method>/seed-<n>
 * in results.h5) holds
 *     attributes   task, model, method, seed, status, message, metric, value,
 *                  value_occluded, p_value, p_value_occluded, seconds, epochs,
 *                  best_epoch, n_test, classes
 *     history      compound table per epoch (epoch, lr, train_loss,
 *                  val_metric, images_per_s, wait_share)
 *     test/labels, test/predictions (n_test) float32
 *     test/predictions_occluded (n_test)         teachers only
 *     test/probabilities (n_test, classes)       when kept
 *     test/confusion (classes, classes) int64    classification
 * The seed level is always present, whether the job has one seed or several,
 * so that programs find a cell at the same depth in every file.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints.h"
#include "h5io.h"

/* ------------------------------------------------------------- checks */

static int bad_name(const char *s, const char *field, const char *path, char *err, size_t errlen)
{
    const char *why = NULL;
    if (!s[0])
        why = "is empty";
    else if (strchr(s, '/'))
        why = "contains '/'";
    else if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        why = "is not a usable group name";
    if (why)
        snprintf(err, errlen, "file %s: the cell's %s \"%s\" %s", path, field, s, why);
    return why != NULL;
}

static int check_cell(const CellResult *r, const char *path, char *err, size_t errlen)
{
    if (bad_name(r->task, "task", path, err, errlen) || bad_name(r->model, "model", path, err, errlen) ||
        bad_name(r->method, "method", path, err, errlen))
        return -1;
    if (strcmp(r->task, "job") == 0 || strcmp(r->task, "summary") == 0) {
        snprintf(err, errlen, "file %s: a task may not be named \"%s\" (results.h5 uses /%s)", path, r->task, r->task);
        return -1;
    }
    const char *why = NULL;
    if (r->n_test < 0 || r->classes < 0)
        why = "negative test size or class count";
    else if (r->n_test > 0 && (!r->labels || !r->predictions))
        why = "test labels or predictions missing";
    if (why) {
        snprintf(err, errlen, "file %s: cell %s/%s/%s seed %llu: %s", path, r->task, r->model, r->method,
                 (unsigned long long)r->seed, why);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- one cell */

static int write_cell(hid_t g, const CellResult *r, const char *file, const char *where, char *err, size_t errlen)
{
    if (h5io_write_cell_attrs(g, r)) {
        snprintf(err, errlen, "file %s: cannot write the attributes of %s", file, where);
        return -1;
    }
    hsize_t n[1] = {(hsize_t)r->n_test}, nk[2] = {(hsize_t)r->n_test, (hsize_t)r->classes},
            kk[2] = {(hsize_t)r->classes, (hsize_t)r->classes};
    float none[1] = {0};
    if (h5io_write_history(g, "history", &r->history, file, err, errlen) ||
        h5io_write(g, "test/labels", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 1, n, r->labels ? r->labels : none, file,
                   err, errlen) ||
        h5io_write(g, "test/predictions", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 1, n,
                   r->predictions ? r->predictions : none, file, err, errlen))
        return -1;
    if (r->predictions_occluded && h5io_write(g, "test/predictions_occluded", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 1,
                                              n, r->predictions_occluded, file, err, errlen))
        return -1;
    if (r->probabilities && r->classes > 0 &&
        h5io_write(g, "test/probabilities", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 2, nk, r->probabilities, file, err,
                   errlen))
        return -1;
    if (r->confusion && r->classes > 0 &&
        h5io_write(g, "test/confusion", H5T_NATIVE_INT64, H5T_STD_I64LE, 2, kk, r->confusion, file, err, errlen))
        return -1;
    return 0;
}

static int fill_cell_file(hid_t f, const char *tmp, const void *ctx, char *err, size_t errlen)
{
    if (h5io_attr_str(f, "format", CELL_FORMAT)) {
        snprintf(err, errlen, "file %s: cannot write the attribute format", tmp);
        return -1;
    }
    return write_cell(f, ctx, tmp, "/", err, errlen);
}

int cell_result_save(const char *path, const CellResult *r, char *err, size_t errlen)
{
    if (check_cell(r, path, err, errlen))
        return -1;
    return h5io_save(path, fill_cell_file, r, err, errlen);
}

void cell_result_free(CellResult *r)
{
    if (!r)
        return;
    history_free(&r->history);
    free(r->labels);
    free(r->predictions);
    free(r->predictions_occluded);
    free(r->probabilities);
    free(r->confusion);
    r->labels = r->predictions = r->predictions_occluded = r->probabilities = NULL;
    r->confusion = NULL;
    r->n_test = 0;
}

/* ------------------------------------------------------------- summary */

static int is_teacher(const CellResult *c) { return strcmp(c->method, "teacher") == 0; }

/* The summary row of cell c: occluded selects a teacher's second row. */
static SummaryRow cell_row(const CellResult *c, int occluded)
{
    SummaryRow r;
    memset(&r, 0, sizeof r);
    snprintf(r.task, sizeof r.task, "%s", c->task);
    snprintf(r.model, sizeof r.model, "%s", c->model);
    snprintf(r.method, sizeof r.method, "%s%s", c->method, occluded ? " (occluded)" : "");
    snprintf(r.seed, sizeof r.seed, "%llu", (unsigned long long)c->seed);
    snprintf(r.metric, sizeof r.metric, "%s", c->metric);
    snprintf(r.status, sizeof r.status, "%s", c->status);
    r.value = occluded ? c->value_occluded : c->value;
    r.p_value = occluded ? c->p_value_occluded : c->p_value;
    return r;
}

static int same_key(const SummaryRow *a, const SummaryRow *b)
{
    return strcmp(a->task, b->task) == 0 && strcmp(a->model, b->model) == 0 && strcmp(a->method, b->method) == 0;
}

/* Mean and sample standard deviation over the finished seeds of rows
 * [0, n) (all of one key). */
static void seed_stats(const SummaryRow *rows, int n, SummaryRow *mean, SummaryRow *sd)
{
    double sum = 0, sq = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (strcmp(rows[i].status, "done") == 0 && isfinite(rows[i].value)) {
            sum += rows[i].value;
            k++;
        }
    double m = k ? sum / k : NAN;
    for (int i = 0; i < n; i++)
        if (strcmp(rows[i].status, "done") == 0 && isfinite(rows[i].value))
            sq += (rows[i].value - m) * (rows[i].value - m);
    *mean = rows[0];
    *sd = rows[0];
    snprintf(mean->seed, sizeof mean->seed, "mean");
    snprintf(sd->seed, sizeof sd->seed, "std");
    mean->value = m;
    sd->value = k >= 2 ? sqrt(sq / (k - 1)) : NAN;
    mean->p_value = sd->p_value = NAN;
    const char *status = k == n ? "done" : k == 0 ? "failed" : "incomplete";
    snprintf(mean->status, sizeof mean->status, "%s", status);
    snprintf(sd->status, sizeof sd->status, "%s", status);
}

static int count_seeds(const CellResult *cells, int n)
{
    int distinct = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = cells[j].seed == cells[i].seed;
        distinct += !seen;
    }
    return distinct;
}

/* Rows in first-appearance order of (task, model, method); each key's seeds
 * together, followed by its mean and std rows when the job has several
 * seeds. Returns the row count; *out is malloc'ed. */
static int build_summary(const CellResult *cells, int n, SummaryRow **out)
{
    SummaryRow *flat = malloc((size_t)(2 * n + 1) * sizeof(SummaryRow));
    int nf = 0;
    for (int i = 0; i < n; i++) {
        flat[nf++] = cell_row(&cells[i], 0);
        if (is_teacher(&cells[i]))
            flat[nf++] = cell_row(&cells[i], 1);
    }
    int several = count_seeds(cells, n) >= 2;
    SummaryRow *rows = malloc((size_t)(3 * nf + 1) * sizeof(SummaryRow));
    SummaryRow *group = malloc((size_t)(nf + 1) * sizeof(SummaryRow));
    char *used = calloc((size_t)nf + 1, 1);
    int nr = 0;
    for (int i = 0; i < nf; i++) {
        if (used[i])
            continue;
        int ng = 0;
        for (int j = i; j < nf; j++)
            if (!used[j] && same_key(&flat[i], &flat[j])) {
                used[j] = 1;
                group[ng++] = flat[j];
            }
        memcpy(rows + nr, group, (size_t)ng * sizeof(SummaryRow));
        nr += ng;
        if (several) {
            seed_stats(group, ng, &rows[nr], &rows[nr + 1]);
            nr += 2;
        }
    }
    free(flat);
    free(group);
    free(used);
    *out = rows;
    return nr;
}

/* ------------------------------------------------------------- results.h5 */

static int write_job(hid_t f, const ResultsInfo *info, const char *file, char *err, size_t errlen)
{
    hid_t g = H5Gcreate2(f, "job", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = g < 0 ? -1 : 0;
    if (g >= 0) {
        const char *const text[][2] = {{"format", RESULTS_FORMAT}, {"job_file", info->job_text},
                                       {"job_path", info->job_path}, {"occkd_version", info->version},
                                       {"start", info->start},       {"end", info->end},
                                       {"blas_kernels", info->blas}}; /* the last one only when known */
        for (int i = 0; i < (int)(sizeof text / sizeof text[0]); i++)
            if (text[i][1] || strcmp(text[i][0], "blas_kernels") != 0)
                rc |= h5io_attr_str(g, text[i][0], text[i][1]);
        rc |= h5io_attr_i64(g, "ranks", info->ranks);
        if (info->peak_rss_bytes && info->data_bytes_read && info->ranks > 0) {
            int64_t peak = 0, total = 0;
            for (int r = 0; r < info->ranks; r++) {
                peak = info->peak_rss_bytes[r] > peak ? info->peak_rss_bytes[r] : peak;
                total += info->data_bytes_read[r];
            }
            hsize_t dims[1] = {(hsize_t)info->ranks};
            rc |= h5io_attr_i64(g, "peak_rss_max_bytes", peak);
            rc |= h5io_attr_i64(g, "data_bytes_read_total", total);
            rc |= h5io_write(g, "peak_rss_bytes", H5T_NATIVE_INT64, H5T_STD_I64LE, 1, dims, info->peak_rss_bytes, file,
                             err, errlen);
            rc |= h5io_write(g, "data_bytes_read", H5T_NATIVE_INT64, H5T_STD_I64LE, 1, dims, info->data_bytes_read,
                             file, err, errlen);
        }
        H5Gclose(g);
    }
    rc |= h5io_attr_str(f, "format", RESULTS_FORMAT);
    if (rc)
        snprintf(err, errlen, "file %s: cannot write /job", file);
    return rc ? -1 : 0;
}

void results_group_name(const char *task, const char *model, const char *method, uint64_t seed, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s/%s/seed-%llu", task, model, method, (unsigned long long)seed);
}

static int check_cells(const CellResult *cells, int n, const char *path, char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        if (check_cell(&cells[i], path, err, errlen))
            return -1;
        for (int j = 0; j < i; j++)
            if (strcmp(cells[i].task, cells[j].task) == 0 && strcmp(cells[i].model, cells[j].model) == 0 &&
                strcmp(cells[i].method, cells[j].method) == 0 && cells[i].seed == cells[j].seed) {
                snprintf(err, errlen, "file %s: cell %s/%s/%s seed %llu is listed twice", path, cells[i].task,
                         cells[i].model, cells[i].method, (unsigned long long)cells[i].seed);
                return -1;
            }
    }
    return 0;
}

static int write_cells(hid_t f, const CellResult *cells, int n, const char *file, char *err, size_t errlen)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char name[300], where[310];
        results_group_name(cells[i].task, cells[i].model, cells[i].method, cells[i].seed, name, sizeof name);
        snprintf(where, sizeof where, "/%s", name);
        hid_t g = H5Gcreate2(f, name, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) {
            char why[256];
            h5io_last_error(why, sizeof why);
            snprintf(err, errlen, "file %s: cannot create group %s: %s", file, where, why);
            rc = -1;
            break;
        }
        rc = write_cell(g, &cells[i], file, where, err, errlen);
        H5Gclose(g);
    }
    H5Pclose(lcpl);
    return rc;
}

typedef struct {
    const ResultsInfo *info;
    const CellResult *cells;
    int n_cells;
    const SummaryRow *rows;
    int n_rows;
} ResultsParts;

static int fill_results(hid_t f, const char *tmp, const void *ctx, char *err, size_t errlen)
{
    const ResultsParts *p = ctx;
    hid_t t = h5io_summary_type();
    hsize_t dims[1] = {(hsize_t)p->n_rows};
    int bad = write_job(f, p->info, tmp, err, errlen) ||
              h5io_write(f, "summary", t, 0, 1, dims, p->rows, tmp, err, errlen) ||
              write_cells(f, p->cells, p->n_cells, tmp, err, errlen);
    H5Tclose(t);
    return bad ? -1 : 0;
}

int results_write(const char *path, const ResultsInfo *info, const CellResult *cells, int n_cells, char *err,
                  size_t errlen)
{
    if (check_cells(cells, n_cells, path, err, errlen))
        return -1;
    ResultsParts p = {info, cells, n_cells, NULL, 0};
    SummaryRow *rows;
    p.n_rows = build_summary(cells, n_cells, &rows);
    p.rows = rows;
    int rc = h5io_save(path, fill_results, &p, err, errlen);
    free(rows);
    return rc;
}
