/* loader.h - occlusion, augmentation, the distributed sampler and the
 * background batch loader (part of data.h; include data.h, not this file).
 *
 * The path of one sample, in this order:
 *
 *   uint8 CHW pixels (0..255) as stored
 *     -> resized to the batch's side (the same filter the readers use), grey
 *        replicated to colour when the batch asks for 3 channels
 *     -> augmentation (training only): zero padding by `pad`, a random crop
 *        back to the side, a random horizontal flip; all keyed by
 *        (seed, epoch, global sample index), so the same whatever the ranks
 *     -> float CHW on the 0-1 scale (pixel / 255)    = the clean image
 *     -> a copy with the occlusion painted in         = the occluded image
 *        (0-1 scale: black is 0, the mean fill is the data set's mean
 *        colour, noise is uniform in [0, 1))
 *     -> both normalised per channel: (v - mean[c]) / std[c], with mean and
 *        std on the 0-1 scale as dataset_channel_stats gives them
 *
 * Occlusion happens before normalisation, so `black` really is a black pixel
 * and `mean` becomes exactly 0 after normalisation. The clean and the occluded
 * image of a sample come from the same augmentation: outside the hidden
 * pixels they are bit for bit equal. Evaluation samples are not augmented and
 * are occluded the same way on every run (noise is keyed by the occlusion seed
 * and the sample index only).
 */
#ifndef OCCKD_DATA_LOADER_H
#define OCCKD_DATA_LOADER_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------- occlusion */

typedef enum { OCC_NONE, OCC_VR, OCC_MASK } OcclusionKind;
typedef enum { OCC_FILL_BLACK, OCC_FILL_MEAN, OCC_FILL_NOISE } OcclusionFill;
typedef enum { OCC_SHAPE_BAND, OCC_SHAPE_OUTLINE } OcclusionShape;

/* `vr` hides the upper part of the image (eyes and eyebrows, as a headset),
 * `mask` the lower part (nose tip to chin, as a surgical mask). `fraction` is
 * the share of the image height the occluder spans: the band hides exactly
 * the top (vr) or bottom (mask) round(fraction * side) rows; an outline is
 * drawn inside that band (a headset: a rounded rectangle from side to side
 * with a cut-out for the nose bridge; a surgical mask: a rounded trapezoid
 * over nose and chin with straps toward the ears), so it hides a subset of
 * the band's pixels. */
typedef struct {
    OcclusionKind kind;
    float fraction;       /* (0, 1]; default 0.5 */
    OcclusionFill fill;
    OcclusionShape shape;
    uint64_t seed;        /* key of the noise fill */
} Occlusion;

/* kind none, fraction 0.5, black, band, seed 0 */
Occlusion occlusion_default(void);

/* Names -> enums ("none" "vr" "mask" / "black" "mean" "noise" / "band"
 * "outline"). Return 0, or -1 with a message listing the known names. */
int occlusion_parse_kind(const char *name, OcclusionKind *out, char *err, size_t errlen);
int occlusion_parse_fill(const char *name, OcclusionFill *out, char *err, size_t errlen);
int occlusion_parse_shape(const char *name, OcclusionShape *out, char *err, size_t errlen);
const char *occlusion_kind_name(OcclusionKind k);
const char *occlusion_fill_name(OcclusionFill f);
const char *occlusion_shape_name(OcclusionShape s);

/* Checks the options (fraction in (0, 1], known enums). 0 or -1 + message. */
int occlusion_check(const Occlusion *o, char *err, size_t errlen);

/* Rows of the band: round(fraction * side), clamped to [0, side]. */
int occlusion_band_rows(const Occlusion *o, int side);

/* hidden (side, side): 1 where the occluder covers the pixel, else 0.
 * Depends only on kind, fraction, shape and side (never on the sample). */
void occlusion_mask(const Occlusion *o, int side, uint8_t *hidden);

/* Paints the fill into the hidden pixels of img (C, side, side), 0-1 scale.
 * mean (C): the data set's mean colour, 0-1 scale (used by the mean fill).
 * id: global sample index (keys the noise together with o->seed). Pixels that
 * are not hidden are not written. */
void occlusion_apply(const Occlusion *o, const uint8_t *hidden, float *img, int channels, int side,
                     const float *mean, int64_t id);

/* The noise value of channel c of pixel p (= y * side + x) of sample id, in
 * [0, 1): what occlusion_apply writes for the noise fill. */
float occlusion_noise(uint64_t seed, int64_t id, int pixel, int c);

/* ---------------------------------------------------------- augmentation */

typedef struct {
    int pad;   /* zero padding in pixels; the crop offset is drawn from [0, 2 pad] (0: no crop) */
    int flip;  /* 1: horizontal flip with probability 1/2 */
} AugmentOptions;

/* One sample's draw: the crop offset into the padded image and the flip. */
typedef struct {
    int ox, oy; /* in [0, 2 pad]; pad, pad is the identity */
    int flip;
} AugmentDraw;

/* The draw of (seed, epoch, id): a pure function, the same on every rank and
 * whatever else is in the batch. */
AugmentDraw augment_draw(const AugmentOptions *o, uint64_t seed, int64_t epoch, int64_t id);

/* The identity draw (evaluation). */
AugmentDraw augment_identity(const AugmentOptions *o);

/* src (C, side, side) uint8 -> dst (C, side, side) float, 0-1 scale:
 * dst[c][y][x] = padded[c][y + oy][x' + ox] / 255 with x' = side-1-x if flipped,
 * where padded is src surrounded by `pad` zeros. */
void augment_apply(const uint8_t *src, int channels, int side, int pad, AugmentDraw d, float *dst);

/* img (C, side, side): v -> (v - mean[c]) / std[c] (0-1 scale in). */
void normalise_image(float *img, int channels, int side, const float *mean, const float *std);

/* ----------------------------------------------------------------- sampler */

/* Where a sampler stands: the next global batch to hand out. Checkpointed
 * as two integers. */
typedef struct {
    int64_t epoch;
    int64_t batch;
} SamplerPos;

typedef struct {
    uint64_t seed;
    int global_batch;  /* B: samples per global batch over all ranks */
    int drop_last;     /* 1: drop the last partial batch (training); 0: keep it (evaluation) */
    int shuffle;       /* 1: a fresh permutation per epoch; 0: the split's order */
    int rank, world;
} SamplerOptions;

/* The sampler cuts the epoch's permutation into global batches of B
 * positions, [b*B, (b+1)*B), and each global batch into `world` contiguous
 * slices: rank r gets count = B/w + (r < B%w) positions starting at
 * r*(B/w) + min(r, B%w), so sizes differ by at most one and the earlier ranks
 * hold the extra samples. The union over ranks is the global batch, the
 * slices are disjoint, and rank order is batch order (so an all-gather in
 * rank order rebuilds the global batch). */
typedef struct {
    SamplerOptions o;
    int64_t n;        /* samples in the split */
    int64_t *ids;     /* (n) the split's global sample indices */
    int64_t *perm;    /* (n) the permutation of perm_epoch */
    int64_t perm_epoch;
    SamplerPos pos;
} Sampler;

/* This rank's part of one global batch. */
typedef struct {
    int64_t epoch, batch;
    int global_n;     /* samples in the whole global batch (normalise losses by it) */
    int offset;       /* where this rank's slice starts in the global batch */
    int n;            /* samples of this rank */
} SamplerSlice;

/* ids (n): the split's global sample indices (copied). 0 or -1 + message. */
int sampler_init(Sampler *s, const int64_t *ids, int64_t n, const SamplerOptions *o, char *err, size_t errlen);
void sampler_free(Sampler *s);

/* Global batches per epoch: floor(n/B) with drop_last, else ceil(n/B). */
int64_t sampler_batches_per_epoch(const Sampler *s);

/* The largest slice any rank can get: ceil(B / world). */
int sampler_max_slice(const Sampler *s);

/* Rank r's part of global batch `batch` of `epoch`; ids_out (max_slice) gets
 * the slice's global sample indices. Does not move the position. */
int sampler_slice(Sampler *s, int64_t epoch, int64_t batch, int64_t *ids_out, SamplerSlice *out, char *err,
                  size_t errlen);

/* The slice at the position, then the position moves to the next batch
 * (the next epoch after the last one). */
int sampler_next(Sampler *s, int64_t *ids_out, SamplerSlice *out, char *err, size_t errlen);

SamplerPos sampler_tell(const Sampler *s);
void sampler_seek(Sampler *s, SamplerPos pos);

/* perm (n) = ids shuffled by Fisher-Yates driven by Philox keyed by (seed,
 * epoch): identical on every rank. */
void sampler_permutation(uint64_t seed, int64_t epoch, const int64_t *ids, int64_t n, int64_t *perm);

/* Contiguous split of n items over `world` parts, the first n%world parts one
 * longer: part r is [*start, *start + *count). Used for batch slices and for
 * evaluation shards (rank r evaluates samples [start, start+count) of the
 * split in order, so gathering predictions in rank order keeps sample order). */
void shard_range(int64_t n, int rank, int world, int64_t *start, int64_t *count);

/* ------------------------------------------------------------------ loader */

typedef struct {
    Split split;         /* the samples to serve */
    Attr attr;           /* class attribute of the labels; ATTR_COUNT: no labels */
    int augment;         /* 1: crop + flip (training); 0: none (evaluation) */
    AugmentOptions aug;
    Occlusion occ;
    float mean[4], std[4]; /* per channel, 0-1 scale (dataset_channel_stats) */
    SamplerOptions sampler;
    SamplerPos start;    /* first batch to serve (resume) */
    int64_t max_epochs;  /* loader_next reports the end after this many epochs; 0: endless */
    int background;      /* 1: a thread prepares the next batches; 0: on demand in loader_next */
    int side, channels;  /* what batches hold (0: the data set's stored side / channels): a stored
                            image is resized (image_resize, per channel) and a grey one
                            replicated to colour first; mean[0] / std[0] then serve every channel */
} LoaderOptions;

/* A training default: train split, expression labels, pad 4 + flip, vr band
 * occlusion with black fill, mean 0 / std 1, global batch 32, drop last,
 * shuffled, rank 0 of 1, background thread. */
LoaderOptions loader_options_default(void);

/* One rank's part of one global batch. Pointers stay valid until the next
 * loader_next or loader_destroy. */
typedef struct {
    int n;                  /* samples of this rank */
    int global_n, offset;   /* the global batch size and this slice's place in it */
    int64_t epoch, batch;
    int channels, side;
    const int64_t *ids;     /* (n) global sample indices */
    const float *clean;     /* (n, C, side, side) normalised */
    const float *occluded;  /* (n, C, side, side) normalised */
    const int *label;       /* (n) class of the chosen attribute (-1: sample lacks it), or NULL */
    const float *age;       /* (n) years (NaN: sample lacks it), or NULL */
    const float *soft;      /* (n, soft_k) soft targets, or NULL */
    int soft_k;
} Batch;

typedef struct Loader Loader;

/* Batches a loader holds at once (the one in use and those prepared ahead),
 * for memory estimates. */
#define LOADER_SLOTS 3

enum { LOADER_OK = 0, LOADER_END = 1, LOADER_ERROR = -1 };

/* Checks the options against the data set and starts the thread. The data
 * set must outlive the loader and stay unchanged. 0 or -1 + message. */
int loader_create(const Dataset *d, const LoaderOptions *o, Loader **out, char *err, size_t errlen);

/* The next batch: LOADER_OK, LOADER_END after max_epochs, or LOADER_ERROR
 * with the message of whatever failed while preparing it (for example a
 * label out of range, naming the sample). An error is final: every later call
 * returns it again. */
int loader_next(Loader *l, Batch *b, char *err, size_t errlen);

/* The position of the batch the next loader_next returns (checkpoint it;
 * give it back as LoaderOptions.start to resume). */
SamplerPos loader_tell(const Loader *l);
int64_t loader_batches_per_epoch(const Loader *l);
void loader_destroy(Loader *l);

#endif
