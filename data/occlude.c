/* occlude.c - VR headset and surgical mask occlusion of float CHW images.
 *
 * Geometry works in normalised coordinates: u = (x + 0.5) / side across,
 * v = (y + 0.5) / side down, so the same shape scales to any side. Every
 * shape lies inside its band (the top or bottom `rows` rows), which is what
 * lets the tests check "vr hides only the top, mask only the bottom".
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "data/data.h"
#include "layers/rng.h"

/* Tag mixed into the occlusion seed so noise never shares a stream with
 * augmentation or the sampler. */
#define OCC_NOISE_TAG 0x6f63636c6e6f6973ull

static const char *const kind_names[] = {"none", "vr", "mask"};
static const char *const fill_names[] = {"black", "mean", "noise"};
static const char *const shape_names[] = {"band", "outline"};

Occlusion occlusion_default(void)
{
    Occlusion o = {OCC_NONE, 0.5f, OCC_FILL_BLACK, OCC_SHAPE_BAND, 0};
    return o;
}

/* Finds name in names (n); -1 with "unknown <what> 'x' (known: a, b, c)". */
static int parse_name(const char *name, const char *const *names, int n, const char *what, char *err,
                      size_t errlen)
{
    for (int i = 0; i < n; i++)
        if (name && strcmp(name, names[i]) == 0)
            return i;
    size_t used = (size_t)snprintf(err, errlen, "unknown %s '%s' (known:", what, name ? name : "(null)");
    for (int i = 0; i < n && used < errlen; i++)
        used += (size_t)snprintf(err + used, errlen - used, "%s %s", i ? "," : "", names[i]);
    if (used < errlen)
        snprintf(err + used, errlen - used, ")");
    return -1;
}

int occlusion_parse_kind(const char *name, OcclusionKind *out, char *err, size_t errlen)
{
    int i = parse_name(name, kind_names, 3, "occlusion", err, errlen);
    if (i < 0)
        return -1;
    *out = (OcclusionKind)i;
    return 0;
}

int occlusion_parse_fill(const char *name, OcclusionFill *out, char *err, size_t errlen)
{
    int i = parse_name(name, fill_names, 3, "occlusion fill", err, errlen);
    if (i < 0)
        return -1;
    *out = (OcclusionFill)i;
    return 0;
}

int occlusion_parse_shape(const char *name, OcclusionShape *out, char *err, size_t errlen)
{
    int i = parse_name(name, shape_names, 2, "occlusion shape", err, errlen);
    if (i < 0)
        return -1;
    *out = (OcclusionShape)i;
    return 0;
}

const char *occlusion_kind_name(OcclusionKind k) { return (unsigned)k < 3 ? kind_names[k] : "?"; }
const char *occlusion_fill_name(OcclusionFill f) { return (unsigned)f < 3 ? fill_names[f] : "?"; }
const char *occlusion_shape_name(OcclusionShape s) { return (unsigned)s < 2 ? shape_names[s] : "?"; }

int occlusion_check(const Occlusion *o, char *err, size_t errlen)
{
    if ((unsigned)o->kind > OCC_MASK || (unsigned)o->fill > OCC_FILL_NOISE || (unsigned)o->shape > OCC_SHAPE_OUTLINE) {
        snprintf(err, errlen, "occlusion: kind, fill or shape out of range (%d, %d, %d)", (int)o->kind,
                 (int)o->fill, (int)o->shape);
        return -1;
    }
    if (!(o->fraction > 0.0f && o->fraction <= 1.0f)) {
        snprintf(err, errlen, "occlusion: hidden fraction %g outside (0, 1]", (double)o->fraction);
        return -1;
    }
    return 0;
}

int occlusion_band_rows(const Occlusion *o, int side)
{
    int rows = (int)floor((double)o->fraction * side + 0.5);
    return rows < 0 ? 0 : rows > side ? side : rows;
}

/* Inside a rectangle [x0,x1] x [y0,y1] with corners rounded by radius r. */
static int in_rounded_rect(double u, double v, double x0, double x1, double y0, double y1, double r)
{
    if (u < x0 || u > x1 || v < y0 || v > y1)
        return 0;
    double cx = u < x0 + r ? x0 + r : u > x1 - r ? x1 - r : u;
    double cy = v < y0 + r ? y0 + r : v > y1 - r ? y1 - r : v;
    return (u - cx) * (u - cx) + (v - cy) * (v - cy) <= r * r;
}

/* Distance from (u, v) to the segment (ax, ay)-(bx, by). */
static double segment_distance(double u, double v, double ax, double ay, double bx, double by)
{
    double dx = bx - ax, dy = by - ay;
    double t = ((u - ax) * dx + (v - ay) * dy) / (dx * dx + dy * dy);
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double ex = ax + t * dx - u, ey = ay + t * dy - v;
    return sqrt(ex * ex + ey * ey);
}

/* Headset over the band v in [0, h): a rounded rectangle from side to side,
 * leaving a little forehead above it, with a half-disc cut out of its lower
 * edge where the nose bridge passes. */
static int in_headset(double u, double v, double h)
{
    double top = 0.12 * h, r = fmin(0.3 * h, 0.15);
    if (!in_rounded_rect(u, v, 0.0, 1.0, top, h, r))
        return 0;
    double nose = fmin(0.09, 0.3 * h);
    return (u - 0.5) * (u - 0.5) + (v - h) * (v - h) > nose * nose;
}

/* Surgical mask over the band v in [1 - h, 1): a trapezoid that widens from
 * the nose to the cheeks and closes in a half ellipse under the chin, with
 * two straps on each side running up toward the ears. */
static int in_surgical_mask(double u, double v, double h, double strap)
{
    double v0 = 1.0 - h, t = (v - v0) / h, du = fabs(u - 0.5);
    if (t < 0.0 || t >= 1.0)
        return 0;
    double half;
    if (t < 0.08)
        half = -1.0; /* the top edge sits a little below the band's edge */
    else if (t < 0.55)
        half = 0.22 + (0.36 - 0.22) * (t - 0.08) / 0.47;
    else {
        double e = (t - 0.55) / 0.45;
        half = 0.36 * sqrt(fmax(0.0, 1.0 - e * e));
    }
    if (du <= half)
        return 1;
    /* straps (mirrored: work on the left half) from the mask's side toward
     * the image edge, rising slightly as toward an ear */
    double ul = 0.5 - du;
    double upper = segment_distance(ul, v, 0.5 - 0.24, v0 + 0.12 * h, 0.0, v0 + 0.03 * h);
    double lower = segment_distance(ul, v, 0.5 - 0.34, v0 + 0.55 * h, 0.0, v0 + 0.32 * h);
    return upper <= strap || lower <= strap;
}

void occlusion_mask(const Occlusion *o, int side, uint8_t *hidden)
{
    int rows = occlusion_band_rows(o, side);
    double h = (double)rows / side, strap = fmax(0.75 / side, 0.015);
    for (int y = 0; y < side; y++) {
        int in_band = o->kind == OCC_VR ? y < rows : o->kind == OCC_MASK ? y >= side - rows : 0;
        for (int x = 0; x < side; x++) {
            double u = (x + 0.5) / side, v = (y + 0.5) / side;
            int hide = in_band;
            if (in_band && o->shape == OCC_SHAPE_OUTLINE)
                hide = o->kind == OCC_VR ? in_headset(u, v, h) : in_surgical_mask(u, v, h, strap);
            hidden[(size_t)y * side + x] = (uint8_t)hide;
        }
    }
}

/* Noise of channels 4q..4q+3 of one pixel: one Philox block. */
static RngBlock noise_block(uint64_t key, int64_t id, int pixel, int quad)
{
    return philox4x32(key, (uint32_t)id, (uint32_t)((uint64_t)id >> 32), (uint32_t)pixel, (uint32_t)quad);
}

float occlusion_noise(uint64_t seed, int64_t id, int pixel, int c)
{
    RngBlock b = noise_block(rng_mix(seed, OCC_NOISE_TAG), id, pixel, c >> 2);
    return rng_u01(b.v[c & 3]);
}

/* Writes one hidden pixel p of every channel. */
static void fill_pixel(const Occlusion *o, uint64_t key, float *img, int channels, size_t plane, size_t p,
                       const float *mean, int64_t id)
{
    RngBlock b = {{0, 0, 0, 0}};
    for (int c = 0; c < channels; c++) {
        float v = 0.0f;
        if (o->fill == OCC_FILL_MEAN)
            v = mean[c];
        else if (o->fill == OCC_FILL_NOISE) {
            if ((c & 3) == 0)
                b = noise_block(key, id, (int)p, c >> 2);
            v = rng_u01(b.v[c & 3]);
        }
        img[(size_t)c * plane + p] = v;
    }
}

void occlusion_apply(const Occlusion *o, const uint8_t *hidden, float *img, int channels, int side,
                     const float *mean, int64_t id)
{
    if (o->kind == OCC_NONE || !hidden)
        return;
    size_t plane = (size_t)side * side;
    uint64_t key = rng_mix(o->seed, OCC_NOISE_TAG);
    for (size_t p = 0; p < plane; p++)
        if (hidden[p])
            fill_pixel(o, key, img, channels, plane, p, mean, id);
}
