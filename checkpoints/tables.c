/* tables.c - compound tables described by their fields (h5io.h), and the
 * tables and attribute lists of occkd's files, each described once: the
 * per-epoch history of checkpoints and cells, results.h5's /summary, and a
 * cell group's attributes. Writing and reading both follow from the lists. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5io.h"

/* ------------------------------------------------------------- tables */

static hid_t fixed_str_type(size_t size, H5T_cset_t cset)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, size);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    H5Tset_cset(t, cset);
    return t;
}

static hid_t field_type(const H5ioField *f, H5T_cset_t cset)
{
    switch (f->kind) {
    case H5IO_STR: return fixed_str_type(f->size, cset);
    case H5IO_I64: return H5Tcopy(H5T_NATIVE_INT64);
    case H5IO_U64: return H5Tcopy(H5T_NATIVE_UINT64);
    case H5IO_INT: return H5Tcopy(H5T_NATIVE_INT);
    default: return H5Tcopy(H5T_NATIVE_DOUBLE);
    }
}

hid_t h5io_table_type(const H5ioField *fields, int n, size_t record)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, record);
    for (int i = 0; i < n; i++) {
        hid_t m = field_type(&fields[i], H5T_CSET_ASCII);
        H5Tinsert(t, fields[i].name, fields[i].offset, m);
        H5Tclose(m);
    }
    return t;
}

/* The memory type for reading `fields` from a table of file type ft: each
 * field that ft has must be of a matching class (strings: fixed-length, read
 * in the file's character set); a field ft lacks is refused unless optional,
 * and then marked in absent[]. */
static hid_t table_read_type(hid_t ft, const H5ioField *fields, int n, size_t record, char *absent,
                             const char *file, const char *what, char *err, size_t errlen)
{
    if (H5Tget_class(ft) != H5T_COMPOUND) {
        snprintf(err, errlen, "file %s: %s is not a compound table", file, what);
        return -1;
    }
    hid_t mt = H5Tcreate(H5T_COMPOUND, record);
    for (int i = 0; i < n; i++) {
        const H5ioField *f = &fields[i];
        int idx = H5Tget_member_index(ft, f->name);
        absent[i] = idx < 0;
        if (idx < 0 && f->optional)
            continue;
        if (idx < 0) {
            snprintf(err, errlen, "file %s: %s has no field '%s'", file, what, f->name);
            H5Tclose(mt);
            return -1;
        }
        H5T_class_t c = H5Tget_member_class(ft, (unsigned)idx);
        hid_t member = H5Tget_member_type(ft, (unsigned)idx);
        int vlen = c == H5T_STRING && H5Tis_variable_str(member) > 0;
        H5T_cset_t cset = c == H5T_STRING ? H5Tget_cset(member) : H5T_CSET_ASCII;
        H5Tclose(member);
        if (f->kind == H5IO_STR ? (c != H5T_STRING || vlen) : (c != H5T_FLOAT && c != H5T_INTEGER)) {
            snprintf(err, errlen, "file %s: %s: field '%s' should be %s", file, what, f->name,
                     f->kind == H5IO_STR ? "a fixed-length string" : "a number");
            H5Tclose(mt);
            return -1;
        }
        hid_t m = field_type(f, cset);
        H5Tinsert(mt, f->name, f->offset, m);
        H5Tclose(m);
    }
    return mt;
}

/* Optional fields the file lacks: NaN, 0 or "" in every row. */
static void fill_absent(const H5ioField *fields, int n, const char *absent, char *rows, int n_rows, size_t record)
{
    for (int i = 0; i < n; i++)
        for (int r = 0; absent[i] && r < n_rows; r++) {
            char *at = rows + (size_t)r * record + fields[i].offset;
            if (fields[i].kind == H5IO_F64)
                *(double *)at = NAN;
            else
                memset(at, 0, fields[i].size);
        }
}

int h5io_read_table(hid_t loc, const char *name, const H5ioField *fields, int n_fields, size_t record, void **rows,
                    int *n_rows, const char *file, const char *what, char *err, size_t errlen)
{
    *rows = NULL;
    *n_rows = 0;
    int nd;
    hsize_t dims[8];
    if (h5io_shape(loc, name, 8, &nd, dims, file, what, err, errlen))
        return -1;
    if (nd != 1 || dims[0] > (1u << 30)) {
        snprintf(err, errlen, "file %s: %s is not a 1-D table", file, what);
        return -1;
    }
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    hid_t ft = H5Dget_type(ds);
    char absent[64];
    int rc = -1, n = (int)dims[0];
    hid_t mt = n_fields <= 64 ? table_read_type(ft, fields, n_fields, record, absent, file, what, err, errlen) : -1;
    char *buf = mt >= 0 ? calloc(n ? (size_t)n : 1, record) : NULL;
    if (mt >= 0 && !buf)
        snprintf(err, errlen, "file %s: %s: out of memory for %d rows", file, what, n);
    else if (buf && !h5io_chunks_plausible(ds))
        snprintf(err, errlen,
                 "file %s: %s: its chunk index is corrupted (a chunk's stored size does not fit its rows and "
                 "checksum)",
                 file, what);
    else if (buf && n > 0 && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        h5io_read_failure(file, what, err, errlen); /* before H5Dclose clears the error stack */
    else if (buf)
        rc = 0;
    if (rc == 0) {
        fill_absent(fields, n_fields, absent, buf, n, record);
        *rows = buf;
        *n_rows = n;
    } else {
        free(buf);
    }
    if (mt >= 0)
        H5Tclose(mt);
    H5Tclose(ft);
    H5Dclose(ds);
    return rc;
}

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
    {"cell", H5IO_STR, offsetof(CellResult, stamp.cell), sizeof(((CellResult *)0)->stamp.cell), 0},
    {"settings_sha256", H5IO_STR, offsetof(CellResult, stamp.settings_sha256),
     sizeof(((CellResult *)0)->stamp.settings_sha256), 0},
    {"settings", H5IO_STR, offsetof(CellResult, stamp.settings), sizeof(((CellResult *)0)->stamp.settings), 0},
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
