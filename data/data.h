/* data.h - data sets, occlusion, augmentation and the distributed sampler.
 *
 * A data set is decoded once into an HDF5 cache as uint8 images of one side
 * and channel count, CHW per sample, with every attribute its source
 * provides (expression, gender, age, class) and the split each sample
 * belongs to. Only the labels, splits and names are held in memory; a
 * sample's pixels are read from the cache when a loader needs them (the
 * ranks of a node share the operating system's page cache), so the memory a
 * rank spends on data does not grow with the data set. Without a cache folder
 * the pixels are decoded into memory instead. A loader then turns sample indices into float batches:
 * augmentation (crop with padding, flip) keyed by seed, epoch and sample
 * index; the clean image and its occluded twin from the same augmentation;
 * normalisation. data/ knows nothing of models; it learns rank and world size
 * from the caller and synchronises through the DataComm callbacks, so the
 * trainer decides how (MPI through comm/, or nothing for one process).
 */
#ifndef OCCKD_DATA_H
#define OCCKD_DATA_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------ attributes */

typedef enum { ATTR_EXPRESSION, ATTR_GENDER, ATTR_AGE, ATTR_CLASS, ATTR_COUNT } Attr;

/* The 8 FER+ emotions, in FER+ column order. */
#define FERPLUS_CLASSES 8
extern const char *const ferplus_emotions[FERPLUS_CLASSES]; /* neutral, happiness, ... contempt */

typedef enum { SPLIT_TRAIN = 0, SPLIT_VAL = 1, SPLIT_TEST = 2, SPLIT_NONE = 3 } Split;

typedef enum { SOURCE_SYNTH, SOURCE_FERPLUS, SOURCE_AFFECTNET, SOURCE_UTKFACE, SOURCE_IDX, SOURCE_FOLDER } Source;

typedef enum { BAD_SAMPLE_SKIP, BAD_SAMPLE_FAIL } BadSamplePolicy;

/* Options of a data source (a task's `data` section in a job file). */
typedef struct {
    Source source;
    char path[1024];       /* file or folder (FER+: folder holding fer2013.csv and fer2013new.csv;
                              AffectNet: folder with training.csv, validation.csv and the images;
                              UTKFace / image folders: the folder; IDX: folder with the four files) */
    char images[1024];     /* AffectNet image root if not `path` */
    int side;              /* stored side in pixels */
    int channels;          /* 1 or 3 */
    int ferplus_distribution; /* 0: majority labels, 1: vote distributions as soft targets */
    float val_fraction, test_fraction; /* sources without official splits (UTKFace, folders, IDX val) */
    uint64_t split_seed;
    BadSamplePolicy on_bad_sample;
    /* synthetic faces */
    int synth_count;       /* samples in total */
    uint64_t synth_seed;
    int limit;             /* keep at most this many samples per split (0: all), for short runs */
    int in_memory;         /* 1: read the cache's images into memory instead of streaming them */
    int cache_side;        /* cap on the side stored in the cache (0: the source's own, see data_stored_geometry) */
} DataOptions;

/* A decoded data set. All arrays have n entries; attr arrays a value per
 * sample or NULL where the source lacks the attribute (-1 / NaN per sample
 * where a single sample lacks it). Expressions always use the FER+ order of
 * ferplus_emotions (AffectNet's codes are mapped to it). */
typedef struct {
    int n;
    int side, channels;
    uint8_t *pixels;           /* n x channels x side x side */
    int *attr_class[ATTR_COUNT]; /* class attributes: expression 0-7, gender 0/1, class */
    float *age;                /* years, or NULL */
    float *soft;               /* n x soft_k vote distributions (FER+ distribution mode), or NULL */
    int soft_k;
    int n_classes[ATTR_COUNT]; /* number of classes of each class attribute (0: absent) */
    char **class_name;         /* n_classes[ATTR_CLASS] names (image folders), or NULL */
    uint8_t *split;            /* Split of each sample */
    char **name;               /* source file name or row id per sample (may be NULL) */
    /* what loading dropped, for the report */
    int64_t dropped;           /* rows dropped by label rules (FER+ unknown/NF, AffectNet 8-10) */
    int64_t bad;               /* unreadable / malformed samples skipped */
    char source_desc[256];     /* "fer2013.csv + fer2013new.csv (majority)" */
    int64_t *origin;           /* while loading: each sample's index in the source's listing
                                  (limits and bad samples remove entries); NULL afterwards */
    int from_cache;            /* 1: read from a valid HDF5 cache, 0: decoded from the source */
    char cache_path[1024];     /* the cache file used or written ("" without a cache) */
    /* streamed pixels (pixels == NULL): sample i is the bytes at
     * image_offset + i * (channels x side x side) of the cache file, open
     * as fd */
    int streaming;             /* 1: pixels come from fd */
    int fd;
    int64_t image_offset;
    uint32_t *image_crc;       /* (n) CRC-32 of each sample's bytes, checked on every read; NULL: none */
    int64_t *bytes_read;       /* pixel bytes read from the cache so far (shared counter), or NULL */
    /* exact pixel sums per split and channel, recorded when the cache was
     * written (has_sums), so that normalisation needs no pass over the data */
    int has_sums;
    uint64_t pixel_sum[3][4], pixel_sum_sq[3][4];
} Dataset;

/* Synchronisation a parallel caller provides (NULL members: one process). */
typedef struct {
    int rank, world;
    void *ctx;
    int (*barrier)(void *ctx);
    /* sums n int64 values over ranks in place; returns 0 on success */
    int (*sum_i64)(void *ctx, int64_t *v, int n);
    /* rank 0's bytes to every rank */
    int (*bcast)(void *ctx, void *buf, size_t bytes);
    /* every rank's status (0 fine; else a message in msg): 0 when all are
     * fine, else non-zero with msg replaced everywhere by the lowest failing
     * rank's message, prefixed with that rank (optional: without it ranks
     * learn only that another rank failed) */
    int (*agree)(void *ctx, int failed, char *msg, size_t len);
} DataComm;

/* Loads a data set (from the cache when it is valid, building it otherwise).
 * Returns 0, or non-zero with a message in err naming the file/line/sample.
 *
 * cache_dir NULL or "": no cache, every process decodes everything itself.
 * Otherwise the cache is <cache_dir>/<source>-<hash of the options>.h5; it is
 * used when its recorded options and source fingerprint (file names, sizes,
 * modification times) match, and rebuilt with a message on stderr when not.
 * With comm->world > 1 the ranks build it together: rank r decodes samples
 * r, r + world, ... into a part file, rank 0 merges the parts into the cache
 * (written to a temporary file and renamed), and every rank then reads it.
 * All ranks must call dataset_load together and see the same cache_dir. */
int dataset_load(const DataOptions *o, const char *cache_dir, const DataComm *comm, Dataset *out, char *err,
                 size_t errlen);
void dataset_free(Dataset *d);

/* Copies sample id's pixels (channels, side, side) into dst, from memory or
 * from the cache file. Safe to call from several threads at once. 0, or -1
 * with a message naming the cache file and the sample. */
int dataset_read_sample(const Dataset *d, int64_t id, uint8_t *dst, char *err, size_t errlen);

/* Reads every sample into memory (d->pixels), closing the cache file: the
 * in-memory mode. 0, or -1 + message. */
int dataset_load_pixels(Dataset *d, char *err, size_t errlen);

/* Bytes of pixels read from the cache since the data set was loaded. */
int64_t dataset_bytes_read(const Dataset *d);

/* Options with the defaults of a job file (synthetic faces, 64 px, grey). */
void data_options_default(DataOptions *o);

/* The cache file dataset_load uses for these options (without touching it). */
int dataset_cache_path(const DataOptions *o, const char *cache_dir, char *path, size_t len);

/* The side and channels a cache stores for these options: the source's own
 * resolution, capped by cache_side (FER+ 48 px grey, UTKFace 200 px, IDX
 * 28 px grey; AffectNet and image folders, whose images vary: cache_side, or
 * side when it is 0; synthetic faces are drawn at side). Colour sources keep
 * the channels the job asks for. The loader resizes to the job's side and
 * channels (LoaderOptions.side, .channels). */
void data_stored_geometry(const DataOptions *o, int *side, int *channels);

/* Samples a source holds, known without reading it (synthetic faces: their
 * count; FER+, AffectNet, UTKFace, IDX: the published sizes; image folders: 0,
 * unknown), capped by `limit` per split. For plans and memory estimates. */
int64_t dataset_size_estimate(const DataOptions *o);

/* Number of samples in a split (SPLIT_NONE: all samples). */
int dataset_split_count(const Dataset *d, Split split);
const char *split_name(Split s); /* "train", "val", "test", "none" */
const char *source_name(Source s); /* "synth", "ferplus", ... */

/* Per-channel mean and standard deviation of the pixels of one split, on the
 * 0-1 scale (pixel / 255): mean[c], std[c] for c < d->channels. Returns
 * non-zero (with a message) when the split is empty. */
int dataset_channel_stats(const Dataset *d, Split split, float *mean, float *std, char *err, size_t errlen);

/* ------------------------------------------------------- synthetic faces */

/* The labels of synthetic face `index` for `seed` (a pure function). */
typedef struct {
    int expression; /* 0-7, FER+ order */
    int gender;     /* 0 male, 1 female */
    float age;      /* years, 5-85 */
} SynthLabels;

SynthLabels synth_labels(uint64_t seed, int64_t index);

/* Draws synthetic face `index` for `seed`: pixels (channels, side, side),
 * channels 1 or 3, side >= 16. A pure function of (seed, index, side,
 * channels); see data/synth.c for how each attribute is drawn. */
void synth_face(uint64_t seed, int64_t index, int side, int channels, uint8_t *pixels, SynthLabels *labels);

/* Occlusion, augmentation, the distributed sampler and the batch loader. */
#include "data/loader.h"

#endif
