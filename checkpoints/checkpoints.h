/* checkpoints.h - everything occkd writes to or reads from HDF5 files besides
 * the data cache: training checkpoints, per-cell results, the job's
 * results.h5, and pretrained weights.
 *
 * Every file is written to "<path>.tmp", flushed and closed, then renamed
 * over <path>, so a crash at any moment leaves either the old file or the new
 * one, never a torn one. Datasets carry the Fletcher-32 checksum filter, so a
 * flipped byte is detected on reading and the file is refused.
 *
 * Tensors are stored by layer and tensor name (/params/conv1/weight ...), so
 * files are readable with h5dump or h5py without occkd, and weights move
 * between networks that share layer names.
 */
#ifndef OCCKD_CHECKPOINTS_H
#define OCCKD_CHECKPOINTS_H

#include <stddef.h>
#include <stdint.h>

#include "layers/layers.h"

#define CHECKPOINT_FORMAT "occkd-checkpoint-2" /* 2: the cell stamp */
#define RESULTS_FORMAT "occkd-results-1"
#define WEIGHTS_FORMAT "occkd-weights-1" /* weights_save and the PyTorch converter */
#define CELL_FORMAT "occkd-cell-2"       /* cell_result_save; 2: the cell stamp */

/* ------------------------------------------------------------ run state */

/* One finished epoch of a cell's training: a row of the /history table of
 * checkpoints and cell results, stored as it is (a compound of these fields). */
typedef struct {
    int64_t epoch;           /* 1-based */
    double lr, train_loss, val_metric, images_per_s, wait_share;
} EpochRecord;

/* The finished epochs in order. It grows as epochs finish, so nothing is
 * reserved for epochs not yet run. Zero-initialised is empty. */
typedef struct {
    EpochRecord *rows;       /* (n), malloc'ed */
    int n, cap;
} History;

/* Appends a row; 0, or -1 when out of memory (h unchanged). */
int history_append(History *h, const EpochRecord *row);
void history_free(History *h);

/* Where a cell's training stands, besides the network's and the optimiser's
 * buffers and the history: what continuing it bit for bit needs. The
 * trainer's state, checkpoints (as attributes of /) and nothing else hold it. */
typedef struct {
    int64_t step;            /* optimiser steps done */
    int64_t epoch;           /* epochs done */
    int64_t sampler_epoch, sampler_batch; /* the next micro-batch of the training loader */
    double best_metric;      /* NaN until the first validation */
    int64_t best_epoch;      /* 0-based; -1 before the first */
    double seconds;          /* training time so far */
    double epoch_loss_sum;   /* the unfinished epoch's sums, so its train loss survives a restart */
    double epoch_seen;
} RunState;

/* ------------------------------------------------------------ whose a file is */

/* The cell that wrote a file and exactly the settings that determine it (the
 * trainer's job_cell_stamp), stored as the attributes cell, settings_sha256
 * and settings of checkpoints, model files and cell results: a file is
 * reused only by its own cell and only while its settings are the same. */
#define CELL_SETTINGS_MAX 16384
typedef struct {
    char cell[256];          /* "expression/vgg_face/kd seed 1" */
    char settings_sha256[65];
    char settings[CELL_SETTINGS_MAX]; /* "key = value" lines */
} CellStamp;

/* 0 when `found` (read from the file at path) is `want`; otherwise -1 with
 * a message that names the file and what differs: another cell, or the
 * settings that changed, each with its value in the file and now. */
int cell_stamp_compare(const char *path, const CellStamp *found, const CellStamp *want, char *err, size_t errlen);
/* Reads the stamp attributes of a file's root (a checkpoint or a model
 * file); -1 with a message when the file or its stamp cannot be read. */
int cell_stamp_read(const char *path, CellStamp *out, char *err, size_t errlen);

/* --------------------------------------------------------- checkpoints */

/* A checkpoint's metadata: the run state and history, and whose it is. */
typedef struct {
    CellStamp stamp;         /* a checkpoint of another cell, or of other settings, is refused */
    int world;               /* ranks of the group that trained it */
    uint64_t seed;
    RunState run;
    History history;
} CheckpointMeta;

/* Writes net's params and state, the optimiser's velocity (n_params), the
 * best epoch's params (n_params) and state (n_state), and meta, atomically
 * with checksums. velocity, best_params or best_state may be NULL: that part
 * is not written. Parent folders are created. Layout:
 *     /params/<layer>/<tensor>, /state/<layer>/<tensor>
 *     /optimizer/<layer>/<tensor>                 (velocity, shaped as params)
 *     /best/params/<layer>/<tensor>, /best/state/<layer>/<tensor>
 *     /history    compound table of EpochRecord rows (epoch, lr,
 *                 train_loss, val_metric, images_per_s, wait_share)
 *     attributes of /: format, cell, settings_sha256, settings, world, seed, step, epoch,
 *                 sampler_epoch, sampler_batch, best_metric, best_epoch,
 *                 seconds, epochs, and the network's arch, input, channels,
 *                 width, fc, fc_layers, batchnorm, classes (for information). */
int checkpoint_save(const char *path, const Net *net, const float *velocity, const float *best_params,
                    const float *best_state, const CheckpointMeta *meta, char *err, size_t errlen);

/* Reads a checkpoint into net (whose layout must match: every tensor by
 * name and shape, and no tensor in /params or /state that net lacks) and the
 * buffers (same sizes as for saving; a NULL buffer is not read, a non-NULL
 * one must be in the file). meta (may be NULL) receives the attributes and
 * the history (free with checkpoint_meta_free). A file that fails its
 * checksum, has another format, or whose stamp is not `expect` (when not
 * NULL: another cell, or other settings) is refused with a message. All or
 * nothing: on failure net and the buffers are unchanged. */
int checkpoint_load(const char *path, Net *net, float *velocity, float *best_params, float *best_state,
                    CheckpointMeta *meta, const CellStamp *expect, char *err, size_t errlen);
void checkpoint_meta_free(CheckpointMeta *m);

/* Loads only the weights (params and state) of a checkpoint or a weights
 * file (format WEIGHTS_FORMAT, e.g. from tests/convert/torchvision_to_occkd.py)
 * by layer and tensor name. Layers of net missing from the file are left as
 * they are when `partial` (e.g. a classifier of another size), else refused;
 * a tensor present in both with another shape is always refused, naming it
 * and both shapes; tensors of the file that net lacks are ignored; a file
 * sharing no tensor with net is refused. *loaded (optional) counts copied
 * tensors (params and state). All or nothing, like checkpoint_load. */
int weights_load(const char *path, Net *net, int partial, int *loaded, char *err, size_t errlen);
/* Writes only the weights (/params, /state) of net, atomically, with the
 * stamp of the cell that trained them (NULL: none, e.g. a converted file). */
int weights_save(const char *path, const Net *net, const CellStamp *stamp, char *err, size_t errlen);

/* --------------------------------------------------------- cell results */

/* The outcome of one cell (task, model, method, seed), one file per cell;
 * results.h5 is assembled from them. */
typedef struct {
    char task[64], model[64], method[64]; /* method: "teacher", ..., or a fusion's name */
    uint64_t seed;
    char status[16];         /* "done", "failed", "skipped" */
    char message[1024];      /* why it failed or was skipped */
    char metric[16];         /* "accuracy" or "mae" */
    double value;            /* test metric (students: occluded faces; teachers: clean faces) */
    double value_occluded;   /* teachers: test metric on occluded faces; NaN otherwise */
    double p_value;          /* paired test against `student` on the same faces; NaN when not applicable */
    double p_value_occluded; /* teachers on occluded faces vs student; NaN otherwise */
    double seconds;
    int best_epoch;
    CellStamp stamp;         /* a finished cell is reused only with the same settings */
    History history;         /* the training's epochs (none for fusions) */
    int64_t n_test;
    int classes;             /* 0: regression */
    float *labels, *predictions;      /* (n_test) */
    float *predictions_occluded;      /* teachers: (n_test), else NULL */
    float *probabilities;             /* (n_test, classes) or NULL (kept for fusions) */
    int64_t *confusion;               /* (classes, classes) or NULL */
} CellResult;

/* One cell file (format CELL_FORMAT): the cell's group of results.h5 (see
 * results_write) at the root, written atomically with checksums. Names must
 * be non-empty and free of '/'; a task may not be called "job" or "summary".
 * NULL arrays with a zero count are fine (a failed or skipped cell). */
int cell_result_save(const char *path, const CellResult *r, char *err, size_t errlen);
/* Fills r; its arrays are malloc'ed (free with cell_result_free). Optional
 * datasets that are absent leave their pointer NULL. */
int cell_result_load(const char *path, CellResult *r, char *err, size_t errlen);
/* Frees r's arrays (all of them are malloc'ed) and sets them to NULL. */
void cell_result_free(CellResult *r);

/* ------------------------------------------------------------- results.h5 */

typedef struct {
    const char *job_text;    /* stored as /job attribute "job_file" */
    const char *job_path;
    const char *version;     /* occkd version */
    int ranks;
    const char *start, *end; /* ISO 8601 times */
    /* what the run cost, per world rank (NULL: not recorded): peak resident
     * memory (VmHWM) and pixel bytes read from data caches */
    const int64_t *peak_rss_bytes, *data_bytes_read;
    const char *blas;        /* the BLAS kernels in use (attribute blas_kernels), or NULL */
} ResultsInfo;

/* Writes results.h5 from the cells, atomically:
 *   /job         group; attributes format, job_file (the job's text),
 *                job_path, occkd_version, ranks, start, end,
 *                peak_rss_max_bytes, data_bytes_read_total, blas_kernels; datasets
 *                peak_rss_bytes and data_bytes_read (int64, one per rank)
 *   /summary     compound table (task, model, method, seed, metric: strings of
 *                SUMMARY_STR bytes, NUL-terminated; value, p_value: doubles;
 *                status: string), one row per cell in the order of `cells`,
 *                rows of the same (task, model, method) kept together.
 *                Teachers give two rows: method "teacher" (clean faces) and
 *                "teacher (occluded)" (value_occluded, p_value_occluded).
 *                seed is the seed as text. When the cells carry two or more
 *                distinct seeds, every (task, model, method) is followed by
 *                rows with seed "mean" and "std" (sample standard deviation)
 *                over its seeds whose status is "done"; their status is
 *                "done" (all seeds done), "incomplete" or "failed", p_value
 *                NaN, std NaN with fewer than two finished seeds.
 *   /<task>/<model>/<method>/seed-<seed>
 *                one group per cell, always with the seed level: attributes
 *                task, model, method, seed, status, message, metric, value,
 *                value_occluded, p_value, p_value_occluded, seconds, epochs,
 *                best_epoch, n_test, classes; datasets history (compound, as
 *                in checkpoints), test/labels, test/predictions,
 *                test/predictions_occluded (teachers), test/probabilities
 *                (when kept), test/confusion (int64, classification).
 * A cell listed twice (same task, model, method and seed) is refused. */
int results_write(const char *path, const ResultsInfo *info, const CellResult *cells, int n_cells, char *err,
                  size_t errlen);

/* One row of /summary, as stored. */
#define SUMMARY_STR 64
typedef struct {
    char task[SUMMARY_STR], model[SUMMARY_STR], method[SUMMARY_STR], seed[SUMMARY_STR], metric[SUMMARY_STR];
    double value, p_value;
    char status[SUMMARY_STR];
} SummaryRow;

/* Reading a results.h5 (results_read.c). Every reader first checks that
 * path is a regular HDF5 file whose "format" attribute (on / or, in files
 * written by other tools, on /job) is RESULTS_FORMAT; messages name the
 * file and the object: "file <path>: no such file", "...: not an HDF5
 * file", "...: not an occkd results file (no 'format' attribute ...)",
 * "...: /summary has no field 'p_value' ...". Fields are found by name, so
 * files written by hand in the layout above (other field orders, string
 * sizes and numeric types) read as well. */

/* Reads /summary; *rows is malloc'ed. */
int results_read_summary(const char *path, SummaryRow **rows, int *n_rows, char *err, size_t errlen);

/* Whether a /summary row stands for a stored cell: its seed is a number
 * (not "mean" or "std") and it is not a teacher's second row ("teacher
 * (occluded)"). *seed gets the seed. */
int summary_row_is_cell(const SummaryRow *row, uint64_t *seed);

/* Reads one cell's group of a results.h5 into r (free with cell_result_free). */
int results_read_cell(const char *path, const char *task, const char *model, const char *method, uint64_t seed,
                      CellResult *r, char *err, size_t errlen);

/* How much of each cell results_read_cells reads. */
typedef enum {
    RESULTS_CELLS_FULL,  /* the whole group, as results_read_cell; a listed cell without one is refused */
    RESULTS_CELLS_BRIEF  /* what a report shows: /summary's task, model, method, seed, metric, status,
                          * value and p_value, and from the group (when there is one) the message and
                          * the history; no test arrays. Absent parts stay empty. */
} ResultsCellsMode;

/* Reads every cell that /summary lists (summary_row_is_cell), in its order;
 * *cells is malloc'ed (free with results_cells_free). */
int results_read_cells(const char *path, ResultsCellsMode mode, CellResult **cells, int *n_cells, char *err,
                       size_t errlen);
void results_cells_free(CellResult *cells, int n_cells);

/* /job of a results.h5 as read back: the fields of ResultsInfo, malloc'ed.
 * A string the file lacks is NULL, a number -1 (a file without /job gives
 * only those); the per-rank datasets, when present, have n_rank_values
 * entries each. */
typedef struct {
    char *job_text;          /* attribute job_file */
    char *job_path, *version, *start, *end, *blas;
    int64_t ranks;
    int64_t peak_rss_max_bytes, data_bytes_read_total;
    int n_rank_values;       /* 0: not recorded */
    int64_t *peak_rss_bytes, *data_bytes_read;
} ResultsJob;

int results_read_job(const char *path, ResultsJob *job, char *err, size_t errlen);
void results_job_free(ResultsJob *job);

#endif
