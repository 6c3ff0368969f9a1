/* tables.c - the tables and attribute lists of occkd's files, each described
 * once by its fields (h5io.h): the per-epoch history of checkpoints and
 * cells, results.h5's /summary, and a cell group's attributes. Writing and
 * reading both follow from the lists. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5io.h"

/* ------------------------------------------------------------- history */

/* The history table's fields; the first three are what a curve needs, the
 * others read NaN where a file lacks them. */
static const H5ioField HISTORY_FIELDS[] = {
    {"epoch", H5IO_I64, offsetof(EpochRecord, epoch), sizeof(int64_t), 0},
    {"lr", H5IO_F64, offsetof(EpochRecord, lr), sizeof(double), 1},
    {"train_loss", H5IO_F64, offsetof(EpochRecord, train_loss), sizeof(double), 0},
    {"val_metric", H5IO_F64, offsetof(EpochRecord, val_metric), sizeof(double), 0},
    {"images_per_s", H5IO_F64, offsetof(EpochRecord, images_per_s), sizeof(double), 1},
    {"wait_share", H5IO_F64, offsetof(EpochRecord, wait_share), sizeof(double), 1},
};
#define N_HISTORY_FIELDS ((int)(sizeof HISTORY_FIELDS / sizeof HISTORY_FIELDS[0]))

hid_t h5io_history_type(void) { return h5io_table_type(HISTORY_FIELDS, N_HISTORY_FIELDS, sizeof(EpochRecord)); }

int h5io_write_history(hid_t loc, const char *name, const History *h, const char *file, char *err, size_t errlen)
{
    EpochRecord none;
    hid_t t = h5io_history_type();
    hsize_t dims[1] = {(hsize_t)h->n};
    int rc = h5io_write(loc, name, t, 0, 1, dims, h->n ? h->rows : &none, file, err, errlen);
    H5Tclose(t);
    return rc;
}

int h5io_read_history(hid_t loc, const char *name, History *h, const char *file, const char *what, char *err,
                      size_t errlen)
{
    memset(h, 0, sizeof *h);
    void *rows;
    int n;
    if (h5io_read_table(loc, name, HISTORY_FIELDS, N_HISTORY_FIELDS, sizeof(EpochRecord), &rows, &n, file, what, err,
                        errlen))
        return -1;
    h->rows = rows, h->n = h->cap = n;
    return 0;
}

/* ------------------------------------------------------------- summary */

#define SUMMARY_FIELD(f, kind, size) {#f, kind, offsetof(SummaryRow, f), size, 0}
static const H5ioField SUMMARY_FIELDS[] = {
    SUMMARY_FIELD(task, H5IO_STR, SUMMARY_STR),   SUMMARY_FIELD(model, H5IO_STR, SUMMARY_STR),
    SUMMARY_FIELD(method, H5IO_STR, SUMMARY_STR), SUMMARY_FIELD(seed, H5IO_STR, SUMMARY_STR),
    SUMMARY_FIELD(metric, H5IO_STR, SUMMARY_STR), SUMMARY_FIELD(value, H5IO_F64, sizeof(double)),
    SUMMARY_FIELD(p_value, H5IO_F64, sizeof(double)), SUMMARY_FIELD(status, H5IO_STR, SUMMARY_STR),
};
#undef SUMMARY_FIELD
#define N_SUMMARY_FIELDS ((int)(sizeof SUMMARY_FIELDS / sizeof SUMMARY_FIELDS[0]))

hid_t h5io_summary_type(void) { return h5io_table_type(SUMMARY_FIELDS, N_SUMMARY_FIELDS, sizeof(SummaryRow)); }

int h5io_read_summary(hid_t f, SummaryRow **rows, int *n_rows, const char *file, char *err, size_t errlen)
{
    void *r;
    *rows = NULL;
    *n_rows = 0;
    if (!h5io_exists(f, "summary")) {
        snprintf(err, errlen, "file %s: /summary is missing (the job has not finished a cell yet, or the file is damaged)",
                 file);
        return -1;
    }
    if (h5io_read_table(f, "summary", SUMMARY_FIELDS, N_SUMMARY_FIELDS, sizeof(SummaryRow), &r, n_rows, file,
                        "/summary", err, errlen)) {
        if (strstr(err, "has no field"))
            snprintf(err + strlen(err), errlen - strlen(err),
                     " (expected task, model, method, seed, metric, value, p_value, status)");
        return -1;
    }
    *rows = r;
    return 0;
}

/* ------------------------------------------------------------- cell attributes */

#define CELL_FIELD(f, kind) {#f, kind, offsetof(CellResult, f), sizeof(((CellResult *)0)->f), 0}
static const H5ioField CELL_ATTRS[] = {
    CELL_FIELD(task, H5IO_STR),        CELL_FIELD(model, H5IO_STR),           CELL_FIELD(method, H5IO_STR),
    CELL_FIELD(seed, H5IO_U64),        CELL_FIELD(status, H5IO_STR),          CELL_FIELD(message, H5IO_STR),
    CELL_FIELD(metric, H5IO_STR),      CELL_FIELD(value, H5IO_F64),           CELL_FIELD(value_occluded, H5IO_F64),
    CELL_FIELD(p_value, H5IO_F64),     CELL_FIELD(p_value_occluded, H5IO_F64), CELL_FIELD(seconds, H5IO_F64),
    CELL_FIELD(best_epoch, H5IO_INT),  CELL_FIELD(n_test, H5IO_I64),          CELL_FIELD(classes, H5IO_INT),
};
#undef CELL_FIELD
#define N_CELL_ATTRS ((int)(sizeof CELL_ATTRS / sizeof CELL_ATTRS[0]))

int h5io_write_cell_attrs(hid_t g, const CellResult *r)
{
    return h5io_write_attrs(g, CELL_ATTRS, N_CELL_ATTRS, r) || h5io_attr_i64(g, "epochs", r->history.n) ? -1 : 0;
}

int h5io_read_cell_attrs(hid_t g, CellResult *r, int64_t *epochs, const char *file, const char *where, char *err,
                         size_t errlen)
{
    return h5io_read_attrs(g, CELL_ATTRS, N_CELL_ATTRS, r, file, where, err, errlen) ||
                   h5io_get_i64(g, "epochs", epochs, file, where, err, errlen)
               ? -1
               : 0;
}
