/* synth.c - the built-in synthetic faces.
 *
 * Face `index` of seed `seed` is a pure function of (seed, index, side,
 * channels): every random number is Philox keyed by the seed with the index
 * and a purpose tag as counter (layers/rng.h), never a stream. The face is
 * drawn straight at the target side with anti-aliased shapes whose sizes are
 * fractions of the side, so a 32 px face shows the same features as a 64 px
 * one, only coarser; strokes are never thinner than about one pixel.
 *
 * Geometry is in units of the image side (0-1, y down), relative to the face
 * centre (cx, cy) and scaled by s, the face size. The face fills most of the
 * image: the upper half of the image holds hair, forehead, eyebrows and eyes;
 * the lower half the nostrils, mouth, jaw and chin:
 *   head top cy-0.42s, hairline cy-0.31s, forehead lines cy-0.285s..-0.215s,
 *   brows cy-0.175s, eyes cy-0.07s, nostrils cy+0.075s, mouth cy+0.225s,
 *   chin cy+0.42s; the face is 0.66s wide.
 *
 * Labels (block 0): expression uniform over the 8 FER+ classes; gender 0
 * (male) or 1 (female) with probability 1/2; age a whole number of years,
 * uniform in 5-85. They are drawn independently.
 *
 * Expression. Each class has a prototype of seven values (brow raise b, brow
 * tilt t, eye opening e | mouth curve c, mouth opening o, asymmetry a, mouth
 * width w), see `proto` below. A sample takes the deviation from neutral
 * times an intensity k ~ U(0.6, 1) plus normal noise (sd 0.1 on each value):
 *   upper: brows (bars of thickness given by gender) raised by 0.05s*b,
 *          their inner ends lifted by 0.045s*t; eyes (a dark almond with a
 *          light corner either side) of half-height 0.032s*e;
 *   lower: mouth corners lifted by 0.075s*c (smile) or lowered (frown), an
 *          open dark mouth of half-height 0.05s*o, one corner lifted by
 *          0.05s*a (contempt, disgust), mouth half-width 0.14s*w.
 * The prototypes make some classes look alike in one half and differ in the
 * other: neutral and contempt share their brows and eyes, surprise and fear
 * their open mouths, sadness, anger and disgust their frowns.
 * Gender: five cues, each normal around a gender mean (female / male):
 *   upper: hair length 0.8 / 0.15 (sd 0.2; long hair falls beside the face
 *          and over its sides, never below the face centre), eyebrow
 *          thickness 0.036s / 0.054s (sd 0.008s);
 *   lower: jaw width 0.94 / 1.06 of the forehead (sd 0.04) and squareness
 *          0.2 / 0.75 (sd 0.2; superellipse exponent 2 + 1.6 q), lip
 *          thickness 0.05s / 0.036s (sd 0.007s), and for males of 18 or more
 *          a beard shadow of strength U(0.3, 1) with probability 0.6.
 * Age: with Y = clamp((20 - age) / 15) (childhood),
 *   upper: three forehead lines darkening the skin by 0.45 clamp((age - 25)
 *          / 45) (x0.75-1.0); hair mixed towards light grey by clamp((age -
 *          35) / 40 + 0.12 N); wider eyes in childhood (half-width 0.065s +
 *          0.015s Y);
 *   lower: nasolabial lines (nose wing to past the mouth corner) darkening by
 *          0.45 clamp((age - 20) / 50) (x0.75-1.0), lines down from the mouth
 *          corners darkening by 0.4 clamp((age - 45) / 35), and the jaw: the
 *          chin drops and the jaw widens by 5% with clamp((age - 40) / 40),
 *          and the chin is up to 0.06s higher in childhood.
 * Nuisance: centre jitter +-0.025 (x) and +-0.02 (y), size s in 0.95-1.05,
 * skin tone (light to medium dark), hair colour (black, dark brown, brown),
 * background colour, lighting gain 0.9-1.1 with a left-right gradient of
 * +-10%, and uniform pixel noise of amplitude 2-5 grey levels. Grey output
 * is the luma of the RGB drawing.
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
    {0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 1.0f},       /* neutral */
    {0.1f, 0.0f, 0.6f, 1.0f, 0.4f, 0.0f, 1.25f},      /* happiness */
    {1.0f, 0.0f, 1.6f, 0.0f, 1.0f, 0.0f, 0.75f},      /* surprise */
    {0.2f, 1.0f, 0.8f, -0.9f, 0.0f, 0.0f, 0.9f},      /* sadness */
    {-1.0f, -1.0f, 1.1f, -0.4f, 0.0f, 0.0f, 0.8f},    /* anger */
    {-0.5f, -0.3f, 0.55f, -0.5f, 0.3f, 0.6f, 0.9f},   /* disgust */
    {0.8f, 0.9f, 1.5f, -0.3f, 0.8f, 0.0f, 0.95f},     /* fear */
    {0.0f, 0.0f, 0.9f, 0.3f, 0.0f, 1.0f, 1.0f},       /* contempt */
};
static const float neutral[7] = {0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 1.0f};

typedef struct {
    float cx, cy, s;
    /* expression (image units) */
    float brow_y, brow_tilt, eye_h, eye_w;
    float mouth_curve, mouth_open, mouth_asym, mouth_hw;
    /* gender */
    float hair_len, brow_thick, jaw_w, jaw_p, lip_thick, beard;
    /* age */
    float wrinkles, naso, marionette, chin;
    /* colours and lighting */
    float skin[3], hair[3], brow[3], bg[3], lips[3];
    float gain, grad, noise;
} Face;

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }
static float mixf(float a, float b, float t) { return a + (b - a) * t; }
static float ramp(float v) { return clampf(v, 0.0f, 1.0f); }

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

static void draw_expression(Draw *d, int expression, Face *f)
{
    float s = f->s, k = 0.6f + 0.4f * uni(d), v[7];
    for (int j = 0; j < 7; j++)
        v[j] = neutral[j] + k * (proto[expression][j] - neutral[j]) + 0.1f * nrm(d);
    f->brow_y = f->cy - 0.175f * s - 0.05f * s * v[0];
    f->brow_tilt = 0.045f * s * v[1];
    f->eye_h = 0.032f * s * clampf(v[2], 0.35f, 1.8f);
    f->mouth_curve = 0.075f * s * v[3];
    f->mouth_open = 0.05f * s * clampf(v[4], 0.0f, 1.5f);
    f->mouth_asym = 0.05f * s * v[5];
    f->mouth_hw = 0.14f * s * clampf(v[6], 0.6f, 1.5f);
}

static void draw_gender_age(Draw *d, const SynthLabels *l, Face *f)
{
    int fem = l->gender == 1;
    float s = f->s, age = l->age;
    f->hair_len = clampf((fem ? 0.7f : 0.3f) + 0.25f * nrm(d), 0.0f, 1.0f);
    f->brow_thick = clampf((fem ? 0.04f : 0.05f) + 0.008f * nrm(d), 0.02f, 0.08f) * s;
    f->jaw_w = clampf((fem ? 0.94f : 1.06f) + 0.04f * nrm(d), 0.85f, 1.15f);
    float jaw_q = clampf((fem ? 0.2f : 0.75f) + 0.2f * nrm(d), 0.0f, 1.0f);
    f->jaw_p = 2.0f + 1.6f * jaw_q;
    f->lip_thick = clampf((fem ? 0.05f : 0.036f) + 0.007f * nrm(d), 0.02f, 0.07f) * s;
    float has_beard = uni(d), beard = uni(d);
    f->beard = (!fem && age >= 18.0f && has_beard < 0.6f) ? 0.3f + 0.7f * beard : 0.0f;
    float young = ramp((20.0f - age) / 15.0f), sag = ramp((age - 40.0f) / 40.0f);
    f->eye_w = (0.065f + 0.015f * young) * s;
    f->wrinkles = 0.45f * ramp((age - 25.0f) / 45.0f) * (0.75f + 0.25f * uni(d));
    f->naso = 0.45f * ramp((age - 20.0f) / 50.0f) * (0.75f + 0.25f * uni(d));
    f->marionette = 0.4f * ramp((age - 45.0f) / 35.0f) * (0.75f + 0.25f * uni(d));
    f->chin = (0.42f + 0.05f * sag - 0.06f * young) * s;
    f->jaw_w *= 1.0f + 0.05f * sag;
    float grey = ramp((age - 35.0f) / 40.0f + 0.12f * nrm(d));
    static const float hairs[3][3] = {{30, 25, 22}, {70, 45, 30}, {120, 80, 45}};
    int hc = (int)(uni(d) * 3.0f);
    for (int c = 0; c < 3; c++)
        f->hair[c] = mixf(hairs[hc > 2 ? 2 : hc][c], 215.0f, grey);
}

static void draw_colours(Draw *d, Face *f)
{
    static const float light[3] = {235, 205, 180}, dark[3] = {150, 110, 85}, red[3] = {165, 55, 65};
    float tone = uni(d), lip_red = uni(d);
    for (int c = 0; c < 3; c++) {
        f->skin[c] = mixf(light[c], dark[c], tone);
        f->bg[c] = 70.0f + 110.0f * uni(d);
        f->lips[c] = mixf(f->skin[c] * 0.5f, red[c] * (0.4f + 0.4f * (1.0f - tone)), 0.3f + 0.3f * lip_red);
        /* brows stay dark even under grey hair */
        f->brow[c] = 0.5f * (0.35f * f->skin[c]) + 0.5f * (0.6f * f->hair[c] < 60.0f ? 0.6f * f->hair[c] : 60.0f);
    }
    f->gain = 0.9f + 0.2f * uni(d);
    f->grad = 0.1f * (2.0f * uni(d) - 1.0f);
    f->noise = 2.0f + 3.0f * uni(d);
}

static void draw_face(uint64_t seed, int64_t index, const SynthLabels *l, Face *f)
{
    Draw d = {seed, (uint32_t)index, (uint32_t)((uint64_t)index >> 32), 1, {0}, 4};
    f->s = 0.95f + 0.1f * uni(&d);
    f->cx = 0.5f + 0.025f * (2.0f * uni(&d) - 1.0f);
    f->cy = 0.5f + 0.02f * (2.0f * uni(&d) - 1.0f);
    draw_expression(&d, l->expression, f);
    draw_gender_age(&d, l, f);
    draw_colours(&d, f);
}

/* Coverage of a pixel by a shape from its signed distance (inside < 0). */
static inline float cover(float sd, float inv_px) { return clampf(0.5f - sd * inv_px, 0.0f, 1.0f); }

static inline float ellipse_sd(float dx, float dy, float a, float b)
{
    float fx = dx / a, fy = dy / b;
    float fv = fx * fx + fy * fy - 1.0f;
    float gx = 2.0f * dx / (a * a), gy = 2.0f * dy / (b * b);
    float g = sqrtf(gx * gx + gy * gy);
    return g > 1e-6f ? fv / g : -(a < b ? a : b);
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

/* Half the width of a stroke: `w` of the face, at least 0.45 pixel. */
static inline float half_stroke(float w, float inv_px)
{
    float h = 0.5f * w, lo = 0.45f / inv_px;
    return h > lo ? h : lo;
}

/* Signed distance to the face outline: an ellipse above cy; below it a
 * superellipse (squarer with a square jaw) whose half-width moves from the
 * forehead's to the jaw's over the first 0.2s. */
static float face_sd(const Face *f, float x, float y)
{
    float s = f->s, dx = x - f->cx, dy = y - f->cy;
    float a = 0.33f * s;
    if (dy < 0.0f)
        return ellipse_sd(dx, dy, a, 0.42f * s);
    float t = ramp(dy / (0.2f * s));
    float aw = a * (1.0f + (f->jaw_w - 1.0f) * t * t * (3.0f - 2.0f * t)), b = f->chin;
    float r = powf(powf(fabsf(dx) / aw, f->jaw_p) + powf(dy / b, f->jaw_p), 1.0f / f->jaw_p);
    return (r - 1.0f) * (aw < b ? aw : b);
}

/* Lowest point of the hair at the sides (longer hair falls lower, never
 * below the face centre). */
static float hair_bottom(const Face *f) { return f->cy - 0.22f * f->s + 0.21f * f->s * f->hair_len; }

/* Hair behind the head: a cap, wider for longer hair, cut at hair_bottom. */
static float hair_back_cover(const Face *f, float x, float y, float inv_px)
{
    float s = f->s, dx = x - f->cx;
    if (y > hair_bottom(f) + 2.0f / inv_px)
        return 0.0f;
    float cap = cover(ellipse_sd(dx, y - (f->cy - 0.06f * s), (0.37f + 0.05f * f->hair_len) * s, 0.4f * s), inv_px);
    return cap * cover(y - hair_bottom(f), inv_px);
}

/* Hair over the face: the hairline across the top, and for longer hair
 * locks over the sides of the face down to hair_bottom. */
static float hair_front_cover(const Face *f, float x, float y, float inv_px)
{
    float s = f->s, dx = x - f->cx, hx = dx / (0.33f * s);
    float top = cover(y - (f->cy - 0.31f * s + 0.07f * s * hx * hx), inv_px);
    float edge = (0.31f - 0.06f * f->hair_len) * s;
    float locks = cover(edge - fabsf(dx), inv_px) * cover(y - hair_bottom(f), inv_px);
    return top > locks ? top : locks;
}

/* Skin marks: forehead lines (upper, age), nasolabial and marionette lines
 * (lower, age), beard shadow (lower, gender). */
static void shade_skin(const Face *f, float x, float y, float inv_px, float *col)
{
    float s = f->s, dx = x - f->cx, dy = y - f->cy, adx = fabsf(dx);
    float line = half_stroke(0.016f * s, inv_px);
    if (f->wrinkles > 0.0f && adx < 0.16f * s && dy > -0.31f * s && dy < -0.19f * s) {
        float fade = cover(adx - 0.15f * s, inv_px);
        for (int k = 0; k < 3; k++) {
            float yk = f->cy - 0.285f * s + 0.035f * s * k + 0.006f * s * sinf(dx / s * 40.0f);
            darken(col, f->wrinkles * fade * cover(fabsf(y - yk) - line, inv_px));
        }
    }
    float fold = half_stroke(0.022f * s, inv_px);
    if (f->naso > 0.0f && dy > 0.04f * s && dy < 0.31f * s) {
        float sx = dx < 0.0f ? -1.0f : 1.0f;
        float dist = segment_dist(x, y, f->cx + sx * 0.075f * s, f->cy + 0.07f * s, f->cx + sx * 0.17f * s,
                                  f->cy + 0.28f * s);
        darken(col, f->naso * cover(dist - fold, inv_px));
    }
    if (f->marionette > 0.0f && dy > 0.2f * s) {
        float sx = dx < 0.0f ? -1.0f : 1.0f, cxm = f->mouth_hw + 0.01f * s, my = f->cy + 0.225f * s;
        float dist = segment_dist(x, y, f->cx + sx * cxm, my + 0.03f * s, f->cx + sx * (cxm + 0.025f * s),
                                  my + 0.13f * s);
        darken(col, f->marionette * cover(dist - fold, inv_px));
    }
    if (f->beard > 0.0f && dy > 0.1f * s)
        darken(col, 0.45f * f->beard * ramp((dy - 0.1f * s) / (0.05f * s)));
}

/* Eyebrows: bars from 0.045s to 0.225s either side of the middle, their
 * inner ends lifted by the tilt. */
static void draw_brows(const Face *f, float x, float y, float inv_px, float *col)
{
    float s = f->s, dx = x - f->cx, adx = fabsf(dx);
    if (adx > 0.02f * s && adx < 0.25f * s && fabsf(y - f->brow_y) < 0.1f * s) {
        float sx = dx < 0 ? -1.0f : 1.0f;
        float dist = segment_dist(x, y, f->cx + sx * 0.045f * s, f->brow_y - f->brow_tilt, f->cx + sx * 0.225f * s,
                                  f->brow_y + 0.3f * f->brow_tilt);
        blend(col, f->brow, cover(dist - half_stroke(f->brow_thick, inv_px), inv_px));
    }
}

/* Eyes: a dark almond (lids, iris) of the eye's height with a light corner
 * either side, so the opening shows on any skin. */
static void draw_eyes(const Face *f, float x, float y, float inv_px, float *col)
{
    float s = f->s, dx = x - f->cx, ey = f->cy - 0.07f * s;
    if (fabsf(y - ey) > 0.08f * s || fabsf(dx) > 0.24f * s)
        return;
    float ex = f->cx + (dx < 0 ? -0.135f : 0.135f) * s;
    float h = f->eye_h > 0.45f / inv_px ? f->eye_h : 0.45f / inv_px;
    static const float dark[3] = {45, 32, 28}, white[3] = {240, 238, 232};
    float eye = cover(ellipse_sd(x - ex, y - ey, f->eye_w, h), inv_px);
    blend(col, dark, eye);
    float corner = cover(0.45f * f->eye_w - fabsf(x - ex), inv_px);
    blend(col, white, eye * (1.0f - corner) * 0.8f);
}

/* Nostrils: two dark dots below the face centre. */
static void draw_nose(const Face *f, float x, float y, float inv_px, float *col)
{
    float s = f->s, adx = fabsf(x - f->cx), ny = f->cy + 0.075f * s;
    if (fabsf(y - ny) > 0.05f * s || adx > 0.08f * s)
        return;
    float nd = sqrtf((adx - 0.035f * s) * (adx - 0.035f * s) + (y - ny) * (y - ny));
    darken(col, 0.55f * cover(nd - half_stroke(0.036f * s, inv_px), inv_px));
}

/* Mouth: lips along a centre line y(dx) with curved corners, around an
 * optional dark opening. */
static void draw_mouth(const Face *f, float x, float y, float inv_px, float *col)
{
    float s = f->s, dx = x - f->cx, adx = fabsf(dx), my = f->cy + 0.225f * s, hw = f->mouth_hw;
    if (adx > hw + 0.04f * s || fabsf(y - my) > 0.2f * s)
        return;
    float r = clampf(dx / hw, -1.0f, 1.0f);
    float yc = my - f->mouth_curve * r * r - f->mouth_asym * (r > 0.0f ? r * r : 0.0f);
    float half = f->mouth_open * (1.0f - r * r);
    float ends = cover(adx - hw, inv_px);
    static const float inside[3] = {35, 15, 20};
    float lips = cover(fabsf(y - yc) - half - half_stroke(f->lip_thick, inv_px), inv_px) * ends;
    blend(col, f->lips, lips);
    if (half > 0.0f)
        blend(col, inside, cover(fabsf(y - yc) - half, inv_px) * ends);
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
                draw_brows(&f, x, y, inv_px, skin);
                draw_eyes(&f, x, y, inv_px, skin);
                draw_nose(&f, x, y, inv_px, skin);
                draw_mouth(&f, x, y, inv_px, skin);
                blend(skin, f.hair, hair_front_cover(&f, x, y, inv_px));
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
    if (!c || meta_init(meta, META_EXPRESSION | META_GENDER | META_AGE, 0)) {
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
    *r = (Reader){.ctx = c, .decode = synth_decode, .close = synth_close, .pool_split = 1};
    return 0;
}
