/* synth.c - the built-in synthetic faces.
 *
 * Face `index` of seed `seed` is a pure function of (seed, index, side,
 * channels): every random number is Philox keyed by the seed with the index
 * and a purpose tag as counter (layers/rng.h), never a stream.
 *
 * Geometry is in units of the image side (0-1, y down), scaled by s, the
 * face size. The face centre (cx, cy) sits near the image centre, so the
 * upper half of the image holds hair, forehead, eyebrows and eyes, and the
 * lower half holds the nose tip, mouth, jaw and chin:
 *   hairline cy-0.30s, forehead lines cy-0.27s..-0.21s, brows cy-0.15s,
 *   eyes cy-0.08s, nostrils cy+0.05s, mouth cy+0.18s, chin cy+0.38s.
 *
 * Labels (block 0): expression uniform over the 8 FER+ classes; gender 0
 * (male) or 1 (female) with probability 1/2; age a whole number of years,
 * uniform in 5-85. They are drawn independently.
 *
 * Expression, upper half (weaker) and lower half (stronger). Each class has
 * a prototype (brow raise b, brow tilt t, eye opening e | mouth curve c,
 * mouth opening o, asymmetry a, mouth width w), see `proto` below. A sample
 * takes the deviation from neutral times an intensity k ~ U(0.35, 1) plus
 * normal noise (sd 0.12 on each of the seven values):
 *   upper: brows raised by 0.045s*b, their inner ends lifted by 0.04s*t,
 *          eye half-height 0.025s*e;
 *   lower: mouth corners lifted by 0.065s*c (smile) or lowered (frown), an
 *          open dark mouth of height 0.04s*o, one corner lifted by 0.04s*a
 *          (contempt, disgust), mouth half-width 0.09s*w.
 * Gender: four cues, each normal around a gender mean with sd 0.2
 * (female / male means given):
 *   upper: hair length 0.75 / 0.2 (side hair reaching down to at most the
 *          eye line), eyebrow thickness 0.011s / 0.019s (sd 0.003s);
 *   lower: jaw squareness 0.25 / 0.8 (superellipse exponent 2 + 1.5 q and
 *          a 10% wider jaw), lip redness 0.7 / 0.25, and for males of 18 or
 *          more a beard shadow of strength U(0, 1) with probability 0.7.
 * Age: with A = clamp((age - 25) / 50):
 *   upper: three forehead lines of contrast 0.4 A (x0.7-1.0), and grey hair:
 *          the hair colour mixed towards light grey by clamp((age-35)/40 +
 *          0.15 N);
 *   lower: nasolabial lines (nose wing to past the mouth corner) of contrast
 *          0.45 clamp((age - 20) / 55) (x0.7-1.0), and jowl sag: the jaw
 *          widens and the chin drops by up to 6% with clamp((age - 40) / 40).
 * Nuisance: centre jitter +-0.04 (x) and +-0.03 (y), size s in 0.92-1.08,
 * skin tone (light to dark), hair colour (black, brown, blond), background
 * colour, lighting gain 0.8-1.2 with a left-right gradient of +-25%, and
 * uniform pixel noise of amplitude 3-9 grey levels. Grey output is the luma
 * of the RGB drawing.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"
#include "layers/rng.h"

enum { TAG_LABEL = 0xFACE0, TAG_PARAM = 0xFACE1, TAG_NOISE = 0xFACE2 };

/* b t e | c o a w, FER+ order */
static const float proto[FERPLUS_CLASSES][7] = {
    {0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 1.0f},      /* neutral */
    {0.2f, 0.0f, 0.75f, 1.0f, 0.35f, 0.0f, 1.25f},   /* happiness */
    {1.0f, 0.2f, 1.5f, 0.0f, 1.0f, 0.0f, 0.75f},     /* surprise */
    {0.3f, 1.0f, 0.85f, -0.9f, 0.0f, 0.0f, 0.95f},   /* sadness */
    {-1.0f, -1.0f, 0.9f, -0.3f, 0.15f, 0.0f, 0.9f},  /* anger */
    {-0.6f, -0.4f, 0.6f, -0.5f, 0.25f, 0.4f, 0.95f}, /* disgust */
    {0.8f, 0.8f, 1.4f, -0.4f, 0.5f, 0.0f, 1.15f},    /* fear */
    {0.0f, 0.0f, 0.9f, 0.1f, 0.0f, 1.0f, 1.0f},      /* contempt */
};
static const float neutral[7] = {0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 1.0f};

typedef struct {
    float cx, cy, s;
    float brow_y, brow_tilt, brow_thick, eye_h;
    float mouth_curve, mouth_open, mouth_asym, mouth_hw;
    float hair_len, jaw_q, lip_red, beard;
    float wrinkles, naso, sag;
    float skin[3], hair[3], bg[3], lips[3];
    float gain, grad, noise;
} Face;

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }
static float mixf(float a, float b, float t) { return a + (b - a) * t; }

/* Uniforms and normals of one face, keyed by (seed; index, block, tag). */
typedef struct {
    uint64_t seed;
    uint32_t lo, hi;
    uint32_t block;
    float u[4];
    int used;
} Draw;

static float uni(Draw *d)
{
    if (d->used == 4) {
        rng_uniform4(d->seed, d->lo, d->hi, d->block++, TAG_PARAM, d->u);
        d->used = 0;
    }
    return d->u[d->used++];
}

static float nrm(Draw *d)
{
    float u1 = uni(d), u2 = uni(d);
    return sqrtf(-2.0f * logf(1.0f - u1)) * cosf(6.2831853f * u2);
}

SynthLabels synth_labels(uint64_t seed, int64_t index)
{
    float u[4];
    rng_uniform4(seed, (uint32_t)index, (uint32_t)((uint64_t)index >> 32), 0, TAG_LABEL, u);
    SynthLabels l;
    l.expression = (int)(u[0] * FERPLUS_CLASSES);
    l.gender = u[1] < 0.5f ? 0 : 1;
    l.age = 5.0f + floorf(u[2] * 81.0f);
    return l;
}

static void draw_face(uint64_t seed, int64_t index, const SynthLabels *l, Face *f)
{
    Draw d = {seed, (uint32_t)index, (uint32_t)((uint64_t)index >> 32), 1, {0}, 4};
    int fem = l->gender == 1;
    float age = l->age;
    f->s = 0.92f + 0.16f * uni(&d);
    f->cx = 0.5f + 0.04f * (2.0f * uni(&d) - 1.0f);
    f->cy = 0.5f + 0.03f * (2.0f * uni(&d) - 1.0f);
    float s = f->s;
    /* expression */
    float k = 0.35f + 0.65f * uni(&d), v[7];
    for (int j = 0; j < 7; j++)
        v[j] = neutral[j] + k * (proto[l->expression][j] - neutral[j]) + 0.12f * nrm(&d);
    f->brow_y = f->cy - 0.15f * s - 0.045f * s * v[0];
    f->brow_tilt = 0.04f * s * v[1];
    f->eye_h = 0.025f * s * clampf(v[2], 0.25f, 2.0f);
    f->mouth_curve = 0.065f * s * v[3];
    f->mouth_open = 0.04f * s * clampf(v[4], 0.0f, 1.5f);
    f->mouth_asym = 0.04f * s * v[5];
    f->mouth_hw = 0.09f * s * clampf(v[6], 0.5f, 1.6f);
    /* gender */
    f->hair_len = clampf((fem ? 0.75f : 0.2f) + 0.2f * nrm(&d), 0.0f, 1.0f);
    f->brow_thick = clampf((fem ? 0.011f : 0.019f) + 0.003f * nrm(&d), 0.006f, 0.03f) * s;
    f->jaw_q = clampf((fem ? 0.25f : 0.8f) + 0.2f * nrm(&d), 0.0f, 1.0f);
    f->lip_red = clampf((fem ? 0.7f : 0.25f) + 0.2f * nrm(&d), 0.0f, 1.0f);
    float has_beard = uni(&d), beard = uni(&d);
    f->beard = (!fem && age >= 18.0f && has_beard < 0.7f) ? beard : 0.0f;
    /* age */
    f->wrinkles = 0.4f * clampf((age - 25.0f) / 50.0f, 0.0f, 1.0f) * (0.7f + 0.3f * uni(&d));
    f->naso = 0.45f * clampf((age - 20.0f) / 55.0f, 0.0f, 1.0f) * (0.7f + 0.3f * uni(&d));
    f->sag = clampf((age - 40.0f) / 40.0f, 0.0f, 1.0f);
    float grey = clampf((age - 35.0f) / 40.0f + 0.15f * nrm(&d), 0.0f, 1.0f);
    /* colours */
    static const float light[3] = {235, 200, 170}, dark[3] = {105, 70, 50};
    static const float hairs[3][3] = {{30, 25, 20}, {100, 65, 35}, {200, 170, 110}};
    float tone = uni(&d);
    int hc = (int)(uni(&d) * 3.0f);
    for (int c = 0; c < 3; c++) {
        f->skin[c] = mixf(light[c], dark[c], tone);
        f->hair[c] = mixf(hairs[hc > 2 ? 2 : hc][c], 200.0f, grey);
        f->bg[c] = 40.0f + 180.0f * uni(&d);
    }
    static const float red[3] = {185, 60, 70};
    for (int c = 0; c < 3; c++)
        f->lips[c] = mixf(f->skin[c] * 0.8f, red[c], f->lip_red);
    f->gain = 0.8f + 0.4f * uni(&d);
    f->grad = 0.25f * (2.0f * uni(&d) - 1.0f);
    f->noise = 3.0f + 6.0f * uni(&d);
}

/* Coverage of a pixel by a shape from its signed distance (inside < 0). */
static inline float cover(float sd, float inv_px) { return clampf(0.5f - sd * inv_px, 0.0f, 1.0f); }

static inline float ellipse_sd(float dx, float dy, float a, float b)
{
    float fx = dx / a, fy = dy / b;
    float fv = fx * fx + fy * fy - 1.0f;
    float gx = 2.0f * dx / (a * a), gy = 2.0f * dy / (b * b);
    float g = sqrtf(gx * gx + gy * gy);
    return g > 1e-6f ? fv / g : -1.0f;
}

static inline float segment_dist(float x, float y, float ax, float ay, float bx, float by)
{
    float vx = bx - ax, vy = by - ay, wx = x - ax, wy = y - ay;
    float t = clampf((wx * vx + wy * vy) / (vx * vx + vy * vy), 0.0f, 1.0f);
    float ex = wx - t * vx, ey = wy - t * vy;
    return sqrtf(ex * ex + ey * ey);
}

static inline void blend(float *col, const float *src, float a)
{
    for (int c = 0; c < 3; c++)
        col[c] += (src[c] - col[c]) * a;
}

static inline void darken(float *col, float a)
{
    for (int c = 0; c < 3; c++)
        col[c] *= 1.0f - a;
}

/* Signed distance to the face outline: an ellipse above cy, a superellipse
 * (squarer for a square jaw, wider and longer with sag) below. */
static float face_sd(const Face *f, float x, float y)
{
    float s = f->s, dx = x - f->cx, dy = y - f->cy;
    float a = 0.27f * s;
    if (dy < 0.0f)
        return ellipse_sd(dx, dy, a, 0.34f * s);
    float aw = a * (1.0f + 0.1f * f->jaw_q + 0.05f * f->sag), b = 0.38f * s * (1.0f + 0.06f * f->sag);
    float p = 2.0f + 1.5f * f->jaw_q;
    float r = powf(powf(fabsf(dx) / aw, p) + powf(dy / b, p), 1.0f / p);
    return (r - 1.0f) * (aw < b ? aw : b);
}

/* Hair behind the face: a cap over the head, and side hair whose length
 * grows with hair_len, never below the eye line. */
static float hair_back_cover(const Face *f, float x, float y, float inv_px)
{
    float s = f->s, dx = x - f->cx;
    float cap = cover(ellipse_sd(dx, y - (f->cy - 0.12f * s), 0.31f * s, 0.31f * s), inv_px);
    float bottom = f->cy - 0.2f * s + f->hair_len * 0.14f * s;
    if (bottom > f->cy - 0.08f * s)
        bottom = f->cy - 0.08f * s;
    float side = 0.0f;
    if (y > f->cy - 0.2f * s && fabsf(dx) < 0.36f * s)
        side = cover(y - bottom, inv_px) * cover(fabsf(dx) - (0.27f + 0.08f * f->hair_len) * s, inv_px) *
               (f->hair_len > 0.05f ? 1.0f : 0.0f);
    return cap > side ? cap : side;
}

static void shade_skin(const Face *f, float x, float y, float inv_px, float *col)
{
    float s = f->s, dx = x - f->cx, dy = y - f->cy;
    float line = 0.011f * s > 0.9f / inv_px ? 0.011f * s : 0.9f / inv_px;
    /* forehead lines (upper half, age) */
    if (f->wrinkles > 0.0f && fabsf(dx) < 0.15f * s && dy > -0.29f * s && dy < -0.19f * s)
        for (int k = 0; k < 3; k++) {
            float yk = f->cy - 0.265f * s + 0.028f * s * k + 0.004f * s * sinf(dx * 60.0f);
            darken(col, f->wrinkles * cover(fabsf(y - yk) - 0.5f * line, inv_px));
        }
    /* nasolabial lines (lower half, age) */
    if (f->naso > 0.0f && dy > 0.03f * s && dy < 0.26f * s)
        for (int side = -1; side <= 1; side += 2) {
            float dist = segment_dist(x, y, f->cx + side * 0.055f * s, f->cy + 0.05f * s, f->cx + side * 0.12f * s,
                                      f->cy + 0.24f * s);
            darken(col, f->naso * cover(dist - 0.5f * line, inv_px));
        }
    /* beard shadow below the nose (lower half, gender) */
    if (f->beard > 0.0f && dy > 0.09f * s)
        darken(col, 0.35f * f->beard * clampf((dy - 0.09f * s) * inv_px * 0.5f, 0.0f, 1.0f));
}

static void draw_features(const Face *f, float x, float y, float inv_px, float *col)
{
    float s = f->s, dx = x - f->cx, adx = fabsf(dx);
    float brow_col[3] = {f->hair[0] * 0.6f, f->hair[1] * 0.6f, f->hair[2] * 0.6f};
    /* eyebrows: inner end (0.04s from the middle) lifted by the tilt */
    if (adx > 0.02f * s && adx < 0.16f * s && fabsf(y - f->brow_y) < 0.07f * s) {
        float side = dx < 0 ? -1.0f : 1.0f;
        float dist = segment_dist(x, y, f->cx + side * 0.04f * s, f->brow_y - f->brow_tilt,
                                  f->cx + side * 0.135f * s, f->brow_y + 0.2f * f->brow_tilt);
        blend(col, brow_col, cover(dist - 0.5f * f->brow_thick, inv_px));
    }
    /* eyes */
    float ey = f->cy - 0.08f * s;
    if (fabsf(y - ey) < 0.06f * s && adx < 0.15f * s) {
        float ex = f->cx + (dx < 0 ? -0.085f : 0.085f) * s;
        static const float white[3] = {235, 235, 230}, iris[3] = {40, 30, 25};
        blend(col, white, cover(ellipse_sd(x - ex, y - ey, 0.045f * s, f->eye_h), inv_px));
        float ir = 0.02f * s < f->eye_h ? 0.02f * s : f->eye_h;
        float di = sqrtf((x - ex) * (x - ex) + (y - ey) * (y - ey));
        blend(col, iris, cover(di - ir, inv_px));
    }
    /* nostrils */
    float ny = f->cy + 0.05f * s;
    if (fabsf(y - ny) < 0.03f * s && adx < 0.05f * s) {
        float nd = sqrtf((adx - 0.025f * s) * (adx - 0.025f * s) + (y - ny) * (y - ny));
        darken(col, 0.45f * cover(nd - 0.012f * s, inv_px));
    }
    /* mouth: centre line y(dx) with curved corners and an optional opening */
    float my = f->cy + 0.18f * s, hw = f->mouth_hw;
    if (adx < hw + 0.02f * s && fabsf(y - my) < 0.12f * s) {
        float r = clampf(dx / hw, -1.0f, 1.0f);
        float yc = my - f->mouth_curve * r * r - f->mouth_asym * (r > 0.0f ? r : 0.0f);
        float half = f->mouth_open * (1.0f - r * r) * 0.5f;
        float inside = cover(adx - hw, inv_px);
        static const float dark_mouth[3] = {60, 20, 25};
        float lip = 0.012f * s > 0.9f / inv_px ? 0.012f * s : 0.9f / inv_px;
        float lips = cover(fabsf(y - yc) - half - lip, inv_px) * inside;
        blend(col, f->lips, lips);
        if (half > 0.0f)
            blend(col, dark_mouth, cover(fabsf(y - yc) - half, inv_px) * inside);
    }
}

void synth_face(uint64_t seed, int64_t index, int side, int channels, uint8_t *pixels, SynthLabels *labels)
{
    SynthLabels l = synth_labels(seed, index);
    Face f;
    draw_face(seed, index, &l, &f);
    if (labels)
        *labels = l;
    float inv_px = (float)side, px = 1.0f / (float)side;
    size_t np = (size_t)side * side;
    uint32_t lo = (uint32_t)index, hi = (uint32_t)((uint64_t)index >> 32);
    float noise[4];
    for (int py = 0; py < side; py++)
        for (int qx = 0; qx < side; qx++) {
            size_t p = (size_t)py * side + qx;
            float x = ((float)qx + 0.5f) * px, y = ((float)py + 0.5f) * px;
            float col[3] = {f.bg[0], f.bg[1], f.bg[2]};
            blend(col, f.hair, hair_back_cover(&f, x, y, inv_px));
            float face = cover(face_sd(&f, x, y), inv_px);
            if (face > 0.0f) {
                float skin[3] = {f.skin[0], f.skin[1], f.skin[2]};
                shade_skin(&f, x, y, inv_px, skin);
                /* hairline: hair over the top of the face */
                float hx = (x - f.cx) / (0.27f * f.s);
                float hl = f.cy - 0.30f * f.s + 0.05f * f.s * hx * hx;
                blend(skin, f.hair, cover(y - hl, inv_px));
                draw_features(&f, x, y, inv_px, skin);
                blend(col, skin, face);
            }
            if ((p & 3) == 0)
                rng_uniform4(seed, lo, hi, (uint32_t)(p >> 2), TAG_NOISE, noise);
            float light = f.gain * (1.0f + f.grad * (2.0f * x - 1.0f));
            float nz = f.noise * (2.0f * noise[p & 3] - 1.0f);
            float rgb[3];
            for (int c = 0; c < 3; c++)
                rgb[c] = clampf(col[c] * light + nz, 0.0f, 255.0f);
            if (channels == 1) {
                pixels[p] = (uint8_t)lrintf(clampf(0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2], 0, 255));
            } else {
                for (int c = 0; c < 3; c++)
                    pixels[(size_t)c * np + p] = (uint8_t)lrintf(rgb[c]);
            }
        }
}

/* ------------------------------------------------------------ as a source */

typedef struct {
    uint64_t seed;
} SynthCtx;

static int synth_decode(void *ctx, const DataOptions *o, int64_t i, uint8_t *pixels, char *err, size_t errlen)
{
    SynthCtx *c = ctx;
    synth_face(c->seed, i, o->side, o->channels, pixels, NULL);
    return DECODE_OK;
}

static void synth_close(void *ctx) { free(ctx); }

int synth_open(const DataOptions *o, Dataset *meta, Reader *r, int verbose, char *err, size_t errlen)
{
    if (o->side < 16) {
        data_err(err, errlen, "synth: side %d too small for faces (expected >= 16)", o->side);
        return -1;
    }
    SynthCtx *c = malloc(sizeof *c);
    if (!c || meta_init(meta, 1, 1, 0, 1, 0)) {
        free(c);
        data_err(err, errlen, "synth: out of memory");
        return -1;
    }
    c->seed = o->synth_seed;
    int cap = 0;
    char name[32];
    for (int i = 0; i < o->synth_count; i++) {
        int j = meta_push(meta, &cap);
        snprintf(name, sizeof name, "synth:%d", i);
        if (j < 0 || !(meta->name[j] = str_dup(name))) {
            free(c);
            data_err(err, errlen, "synth: out of memory");
            return -1;
        }
        SynthLabels l = synth_labels(o->synth_seed, i);
        meta->attr_class[ATTR_EXPRESSION][j] = l.expression;
        meta->attr_class[ATTR_GENDER][j] = l.gender;
        meta->age[j] = l.age;
    }
    meta->n_classes[ATTR_EXPRESSION] = FERPLUS_CLASSES;
    meta->n_classes[ATTR_GENDER] = 2;
    snprintf(meta->source_desc, sizeof meta->source_desc, "synthetic faces (seed %llu, %d faces)",
             (unsigned long long)o->synth_seed, o->synth_count);
    r->ctx = c;
    r->decode = synth_decode;
    r->close = synth_close;
    r->pool_split = 1;
    return 0;
}
