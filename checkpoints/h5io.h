/* h5io.h - HDF5 helpers shared by the files of checkpoints/ (private to
 * that folder).
 *
 * Writing: h5io_create makes the parent folders, creates "<path>.tmp" and
 * h5io_commit flushes, closes, checksums, fsyncs and renames it over <path>,
 * then fsyncs the folder. Every dataset is chunked with the Fletcher-32
 * filter; files use the HDF5 1.8 object format, whose metadata (superblock,
 * object headers, version 2 B-trees) carries checksums of its own. Some of
 * HDF5's structures have none (the version 1 B-trees that index chunks, the
 * global heap), and damage there crashed HDF5 itself (tests/fuzz/
 * regressions/checkpoint), so every file also carries the CRC-32 of all its
 * bytes in a 512-byte user block, checked by h5io_open before HDF5 reads
 * anything.
 *
 * Reading: the helpers return -1 and a message naming the file and the
 * object; a Fletcher-32 or metadata checksum failure reads "checksum
 * mismatch in <object> (the file is corrupted)", the whole-file checksum's
 * "checksum mismatch over the whole file". Files without the user block
 * (written by the PyTorch converter or by h5py) are read as they are.
 *
 * HDF5 prints its error stack by default; callers wrap their work in
 * h5io_quiet / h5io_loud so that only occkd's own messages appear.
 */
#ifndef OCCKD_CHECKPOINTS_H5IO_H
#define OCCKD_CHECKPOINTS_H5IO_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "checkpoints/checkpoints.h"

typedef struct {
    H5E_auto2_t func;
    void *data;
} H5Quiet;

void h5io_quiet(H5Quiet *q);
void h5io_loud(const H5Quiet *q);

/* The innermost message of HDF5's current error stack (cleared afterwards);
 * returns 1 when the stack reports a checksum failure. */
int h5io_last_error(char *buf, size_t n);

/* A failed read of `what` as a message, from HDF5's error stack: "file F:
 * checksum mismatch in W (the file is corrupted)" or "file F: cannot read
 * W: <HDF5's reason>". */
void h5io_read_failure(const char *file, const char *what, char *err, size_t errlen);

/* mkdir -p of path's parent folder. */
int h5io_make_parents(const char *path, char *err, size_t errlen);

/* The user block that holds the whole-file checksum, and how it opens. */
#define H5IO_SUM_BLOCK 512
#define H5IO_SUM_MAGIC "occkd-sum-1 "

/* The whole-file checksum in path's user block: h5io_sum_stamp writes it
 * (the file was created by h5io_create and is closed); h5io_sum_check
 * returns 0 when it matches or the file has none, else -1 and a message. */
int h5io_sum_stamp(const char *path, char *err, size_t errlen);
int h5io_sum_check(const char *path, char *err, size_t errlen);

/* Creates "<path>.tmp" (replacing a stale one); tmp receives its name. */
hid_t h5io_create(const char *path, char *tmp, size_t tmplen, char *err, size_t errlen);
/* Flushes and closes file, fsyncs tmp, renames it to path and fsyncs the
 * folder. On failure tmp is removed. Always consumes file. */
int h5io_commit(hid_t file, const char *tmp, const char *path, char *err, size_t errlen);
/* Closes and removes a file being written after an error. */
void h5io_abandon(hid_t file, const char *tmp);
hid_t h5io_open(const char *path, char *err, size_t errlen);

/* Writes an array (ndims >= 1, any dims may be 0) as a chunked, checksummed
 * dataset at loc/name (intermediate groups are created). file_type 0 means
 * mem_type. */
int h5io_write(hid_t loc, const char *name, hid_t mem_type, hid_t file_type, int ndims, const hsize_t *dims,
               const void *data, const char *file, char *err, size_t errlen);

/* Whether loc/name exists (every component of a relative path is checked). */
int h5io_exists(hid_t loc, const char *name);

/* 0 when a chunk's stored size does not fit its elements and checksum (a
 * damaged chunk index, which HDF5 would allocate, read past or copy out
 * whole): exactly where the pipeline only checksums, within bounds
 * otherwise; see h5io.c. */
int h5io_chunks_plausible(hid_t ds);
/* Reads loc/name into data after checking its shape equals (ndims, dims).
 * `what` names the dataset in messages (e.g. "/params/conv1/weight"). */
int h5io_read(hid_t loc, const char *name, hid_t mem_type, int ndims, const hsize_t *dims, void *data,
              const char *file, const char *what, char *err, size_t errlen);
/* The shape of loc/name: *ndims (<= max) and dims. */
int h5io_shape(hid_t loc, const char *name, int max, int *ndims, hsize_t *dims, const char *file, const char *what,
               char *err, size_t errlen);

/* "(a, b, c)" */
void h5io_shape_text(int ndims, const hsize_t *dims, char *buf, size_t n);

/* Attributes on an object: strings are variable-length UTF-8. */
int h5io_attr_str(hid_t obj, const char *name, const char *value);
int h5io_attr_i64(hid_t obj, const char *name, int64_t value);
int h5io_attr_u64(hid_t obj, const char *name, uint64_t value);
int h5io_attr_f64(hid_t obj, const char *name, double value);

/* Readers return -1 with a message naming file, where and the attribute. */
int h5io_get_str(hid_t obj, const char *name, char *out, size_t n, const char *file, const char *where, char *err,
                 size_t errlen);
/* As h5io_get_str, but the string is malloc'ed. */
int h5io_get_str_alloc(hid_t obj, const char *name, char **out, const char *file, const char *where, char *err,
                       size_t errlen);
int h5io_get_i64(hid_t obj, const char *name, int64_t *out, const char *file, const char *where, char *err,
                 size_t errlen);
int h5io_get_u64(hid_t obj, const char *name, uint64_t *out, const char *file, const char *where, char *err,
                 size_t errlen);
int h5io_get_f64(hid_t obj, const char *name, double *out, const char *file, const char *where, char *err,
                 size_t errlen);

/* Checks obj's "format" attribute: accept1, or accept2 when not NULL. The
 * message names the file and `kind` ("results file", "checkpoint", ...):
 * "not an occkd <kind> (no 'format' attribute; expected '...')", "the
 * 'format' attribute is not a readable string", "not an occkd <kind> of
 * this version (format '...', expected '...')". */
int h5io_check_format(hid_t obj, const char *accept1, const char *accept2, const char *kind, const char *file,
                      char *err, size_t errlen);

/* A whole file written or read in one call, with HDF5's own messages off.
 * h5io_save creates "<path>.tmp", calls fill (tmp names the file being
 * written, for messages) and commits it, or abandons it when fill fails.
 * h5io_load opens path read-only, calls read, closes the file and clears
 * HDF5's error stack. Both return 0 or -1 with err set. */
typedef int (*H5ioFill)(hid_t f, const char *tmp, const void *ctx, char *err, size_t errlen);
typedef int (*H5ioReader)(hid_t f, const char *path, void *ctx, char *err, size_t errlen);
int h5io_save(const char *path, H5ioFill fill, const void *ctx, char *err, size_t errlen);
int h5io_load(const char *path, H5ioReader read, void *ctx, char *err, size_t errlen);

/* Compound tables (rows of a C struct; tables.c), described once by their fields:
 * the same list gives the type for writing and finds the fields by name
 * when reading, whatever their order, string sizes or numeric types in the
 * file. */
/* char[size] (a fixed-length string in tables), double, int64_t, uint64_t, int */
typedef enum { H5IO_STR, H5IO_F64, H5IO_I64, H5IO_U64, H5IO_INT } H5ioKind;
typedef struct {
    const char *name;
    H5ioKind kind;
    size_t offset, size;     /* in the row struct; size: the field's bytes (a string's with its NUL) */
    int optional;            /* when reading: a file without it gives NaN, 0 or "" */
} H5ioField;

/* The native compound type of the fields (close with H5Tclose). */
hid_t h5io_table_type(const H5ioField *fields, int n, size_t record);
/* Reads the 1-D table loc/name into *rows (malloc'ed, *n_rows of `record`
 * bytes). Refused, naming the file, `what` and the field: a missing table,
 * a missing required field, a field of another class (a number where a
 * string is wanted, a variable-length string), more dimensions. */
int h5io_read_table(hid_t loc, const char *name, const H5ioField *fields, int n_fields, size_t record, void **rows,
                    int *n_rows, const char *file, const char *what, char *err, size_t errlen);

/* The same lists as attributes of one object (strings variable-length
 * UTF-8, integers int64). Reading wants every attribute; messages name the
 * file, `where` and the attribute. */
int h5io_write_attrs(hid_t obj, const H5ioField *fields, int n, const void *record);
int h5io_read_attrs(hid_t obj, const H5ioField *fields, int n, void *record, const char *file, const char *where,
                    char *err, size_t errlen);
/* The stamp attributes (cell, settings_sha256, settings) of an object. */
int h5io_write_stamp(hid_t obj, const CellStamp *s);
int h5io_read_stamp(hid_t obj, CellStamp *s, const char *file, const char *where, char *err, size_t errlen);

/* ---- the tables of occkd's files (tables.c) ---- */

/* The per-epoch history table: a compound dataset of EpochRecord rows
 * (lr, images_per_s and wait_share are NaN when a file lacks them). */
hid_t h5io_history_type(void); /* close with H5Tclose */
int h5io_write_history(hid_t loc, const char *name, const History *h, const char *file, char *err, size_t errlen);
/* Reads a history table into *h (empty first; free with history_free). */
int h5io_read_history(hid_t loc, const char *name, History *h, const char *file, const char *what, char *err,
                      size_t errlen);


/* The /summary table of results.h5: SummaryRow's fields. */
hid_t h5io_summary_type(void); /* close with H5Tclose */
/* Reads f's /summary into *rows (malloc'ed); a missing table or field is
 * refused with a message naming it. */
int h5io_read_summary(hid_t f, SummaryRow **rows, int *n_rows, const char *file, char *err, size_t errlen);

/* A cell group's attributes (see results.c), "epochs" being the history's
 * length; reading gives the stored epochs for checking. */
int h5io_write_cell_attrs(hid_t g, const CellResult *r);
int h5io_read_cell_attrs(hid_t g, CellResult *r, int64_t *epochs, const char *file, const char *where, char *err,
                         size_t errlen);

/* The group of a cell in results.h5: "<task>/<model>/<method>/seed-<seed>"
 * (results.c). */
void results_group_name(const char *task, const char *model, const char *method, uint64_t seed, char *buf, size_t n);

#endif
