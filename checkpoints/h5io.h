/* h5io.h - HDF5 helpers shared by checkpoint.c and results.c (private to
 * checkpoints/).
 *
 * Writing: h5io_create makes the parent folders, creates "<path>.tmp" and
 * h5io_commit flushes, closes, fsyncs and renames it over <path>, then fsyncs
 * the folder. Every dataset is chunked with the Fletcher-32 filter; files use
 * the HDF5 1.8 object format, whose metadata (superblock, object headers,
 * B-trees) carries checksums of its own, so flipped bytes anywhere are found.
 *
 * Reading: the helpers return -1 and a message naming the file and the
 * object; a Fletcher-32 or metadata checksum failure reads "checksum
 * mismatch in <object> (the file is corrupted)".
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

/* mkdir -p of path's parent folder. */
int h5io_make_parents(const char *path, char *err, size_t errlen);

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

/* The per-epoch history table: a compound dataset of EpochRecord rows. */
hid_t h5io_history_type(void); /* close with H5Tclose */
int h5io_write_history(hid_t loc, const char *name, const History *h, const char *file, char *err, size_t errlen);
/* Reads a history table into *h (empty first; free with history_free). */
int h5io_read_history(hid_t loc, const char *name, History *h, const char *file, const char *what, char *err,
                      size_t errlen);

#endif
