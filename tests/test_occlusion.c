/* test_occlusion.c - occlusion geometry and fills.
 *
 * For vr and mask, band and outline, fractions 0.25 / 0.5 / 0.75, an even and
 * an odd side, and the three fills: the band hides exactly its rows (vr the
 * top, mask the bottom), an outline hides a left-right symmetric subset of
 * the band that still covers its landmarks (eyes / mouth) and spares others
 * (the nose bridge / the lower corners), hidden pixels carry the fill (black
 * and mean exactly, noise the deterministic keyed value) and every other
 * pixel is bit for bit untouched. Also the name parsers and bad options.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "tests/gradcheck.h"

static char err[512];

static void check_parsers(void)
{
    OcclusionKind k;
    OcclusionFill f;
    OcclusionShape s;
    CHECK(occlusion_parse_kind("vr", &k, err, sizeof err) == 0 && k == OCC_VR, "vr");
    CHECK(occlusion_parse_kind("mask", &k, err, sizeof err) == 0 && k == OCC_MASK, "mask");
    CHECK(occlusion_parse_kind("none", &k, err, sizeof err) == 0 && k == OCC_NONE, "none");
    CHECK(occlusion_parse_fill("black", &f, err, sizeof err) == 0 && f == OCC_FILL_BLACK, "black");
    CHECK(occlusion_parse_fill("mean", &f, err, sizeof err) == 0 && f == OCC_FILL_MEAN, "mean");
    CHECK(occlusion_parse_fill("noise", &f, err, sizeof err) == 0 && f == OCC_FILL_NOISE, "noise");
    CHECK(occlusion_parse_shape("band", &s, err, sizeof err) == 0 && s == OCC_SHAPE_BAND, "band");
    CHECK(occlusion_parse_shape("outline", &s, err, sizeof err) == 0 && s == OCC_SHAPE_OUTLINE, "outline");
    k = OCC_MASK;
    CHECK(occlusion_parse_kind("VR", &k, err, sizeof err) != 0 && k == OCC_MASK, "VR (upper case) accepted");
    CHECK(strstr(err, "'VR'") && strstr(err, "none") && strstr(err, "vr") && strstr(err, "mask"),
          "message should name the input and list the kinds: %s", err);
    CHECK(occlusion_parse_fill("grey", &f, err, sizeof err) != 0 && strstr(err, "black, mean, noise"), "%s", err);
    CHECK(occlusion_parse_shape("", &s, err, sizeof err) != 0 && strstr(err, "band, outline"), "%s", err);
    CHECK(occlusion_parse_shape(NULL, &s, err, sizeof err) != 0, "NULL name accepted");
    CHECK(strcmp(occlusion_kind_name(OCC_MASK), "mask") == 0 && strcmp(occlusion_fill_name(OCC_FILL_NOISE), "noise") == 0 &&
              strcmp(occlusion_shape_name(OCC_SHAPE_OUTLINE), "outline") == 0,
          "names");

    Occlusion o = occlusion_default();
    CHECK(o.kind == OCC_NONE && o.fraction == 0.5f && o.fill == OCC_FILL_BLACK && o.shape == OCC_SHAPE_BAND, "defaults");
    CHECK(occlusion_check(&o, err, sizeof err) == 0, "%s", err);
    float bad[] = {0.0f, -0.5f, 1.01f, NAN};
    for (int i = 0; i < 4; i++) {
        o.fraction = bad[i];
        CHECK(occlusion_check(&o, err, sizeof err) != 0 && strstr(err, "fraction"), "fraction %g accepted",
              (double)bad[i]);
    }
    o.fraction = 1.0f;
    CHECK(occlusion_check(&o, err, sizeof err) == 0, "fraction 1 refused: %s", err);
    o.kind = (OcclusionKind)7;
    CHECK(occlusion_check(&o, err, sizeof err) != 0, "kind 7 accepted");
}

/* Geometry of one kind / shape / fraction / side. */
static void check_geometry(OcclusionKind kind, OcclusionShape shape, float fraction, int side)
{
    Occlusion o = occlusion_default();
    o.kind = kind;
    o.shape = shape;
    o.fraction = fraction;
    int rows = occlusion_band_rows(&o, side);
    CHECK(rows == (int)lround(fraction * side), "side %d fraction %g: %d rows", side, (double)fraction, rows);
    uint8_t *h = malloc((size_t)side * side);
    occlusion_mask(&o, side, h);
    const char *what = kind == OCC_VR ? "vr" : "mask";
    int band_lo = kind == OCC_VR ? 0 : side - rows, band_hi = kind == OCC_VR ? rows : side;
    long hidden = 0, outside = 0, asym = 0, values = 0;
    for (int y = 0; y < side; y++)
        for (int x = 0; x < side; x++) {
            uint8_t v = h[y * side + x];
            int in_band = y >= band_lo && y < band_hi;
            values += v > 1;
            hidden += v;
            outside += v && !in_band;
            asym += v != h[y * side + side - 1 - x];
            if (shape == OCC_SHAPE_BAND)
                CHECK(v == in_band, "%s band side %d f %g: pixel (%d, %d) is %d", what, side, (double)fraction, y, x, v);
        }
    CHECK(values == 0, "mask values other than 0/1");
    CHECK(outside == 0, "%s %s f %g: %ld hidden pixels outside the band", what, occlusion_shape_name(shape),
          (double)fraction, outside);
    CHECK(asym == 0, "%s %s f %g: not left-right symmetric (%ld pixels)", what, occlusion_shape_name(shape),
          (double)fraction, asym);
    long band = (long)rows * side;
    if (shape == OCC_SHAPE_OUTLINE) {
        CHECK(hidden < band && hidden > band / 2, "%s outline side %d f %g hides %ld of the band's %ld pixels", what,
              side, (double)fraction, hidden, band);
        if (kind == OCC_VR) {
            int eye_row = (int)(0.6 * rows), nose_row = rows - 1;
            CHECK(h[eye_row * side + side / 4] && h[eye_row * side + 3 * side / 4], "headset misses the eyes (row %d)",
                  eye_row);
            CHECK(h[eye_row * side] && h[eye_row * side + side - 1], "headset does not reach the sides (row %d)",
                  eye_row);
            CHECK(!h[nose_row * side + side / 2], "headset covers the nose bridge (row %d)", nose_row);
            CHECK(!h[side / 2], "headset covers the top middle (forehead strip)");
        } else {
            int mouth_row = side - rows + (int)(0.5 * rows), top = side - rows;
            CHECK(h[mouth_row * side + side / 2] && h[mouth_row * side + side / 3], "surgical mask misses the mouth");
            CHECK(!h[(side - 1) * side] && !h[(side - 1) * side + side - 1], "surgical mask covers the lower corners");
            CHECK(!h[top * side + side / 2], "surgical mask starts at the band's very edge");
            int strap = 0; /* some hidden pixel at the image edge: a strap reaching toward the ear */
            for (int y = top; y < side; y++)
                strap |= h[y * side];
            CHECK(strap, "surgical mask without straps reaching the sides (side %d f %g)", side, (double)fraction);
        }
    }
    free(h);
}

/* Fills: hidden pixels carry the fill, the rest are untouched. */
static void check_fill(OcclusionKind kind, OcclusionShape shape, float fraction, OcclusionFill fill, int side,
                       int channels)
{
    Occlusion o = occlusion_default();
    o.kind = kind;
    o.shape = shape;
    o.fraction = fraction;
    o.fill = fill;
    o.seed = 99;
    size_t plane = (size_t)side * side, count = plane * channels;
    uint8_t *h = malloc(plane);
    float *img = malloc(count * sizeof *img), *orig = malloc(count * sizeof *orig), *again = malloc(count * sizeof *again);
    occlusion_mask(&o, side, h);
    fill_uniform(orig, count, 5);
    for (size_t i = 0; i < count; i++)
        orig[i] = 0.5f + 0.5f * orig[i];
    const float mean[3] = {0.41f, 0.52f, 0.33f};
    memcpy(img, orig, count * sizeof *img);
    occlusion_apply(&o, h, img, channels, side, mean, 1234567890123ll);
    long wrong = 0, touched = 0, noise_out = 0;
    for (int c = 0; c < channels; c++)
        for (size_t p = 0; p < plane; p++) {
            float v = img[c * plane + p];
            if (!h[p]) {
                touched += memcmp(&v, &orig[c * plane + p], sizeof v) != 0;
                continue;
            }
            float want = fill == OCC_FILL_BLACK ? 0.0f
                         : fill == OCC_FILL_MEAN ? mean[c]
                                                 : occlusion_noise(99, 1234567890123ll, (int)p, c);
            wrong += v != want;
            noise_out += !(v >= 0.0f && v < 1.0f);
        }
    CHECK(wrong == 0 && noise_out == 0, "%s %s f %g fill %s: %ld hidden values wrong, %ld outside [0,1)",
          occlusion_kind_name(kind), occlusion_shape_name(shape), (double)fraction, occlusion_fill_name(fill), wrong,
          noise_out);
    CHECK(touched == 0, "%s %s f %g fill %s: %ld visible values changed", occlusion_kind_name(kind),
          occlusion_shape_name(shape), (double)fraction, occlusion_fill_name(fill), touched);
    if (fill == OCC_FILL_NOISE) {
        memcpy(again, orig, count * sizeof *again);
        occlusion_apply(&o, h, again, channels, side, mean, 1234567890123ll);
        CHECK(memcmp(img, again, count * sizeof *img) == 0, "noise of the same sample differs between calls");
        memcpy(again, orig, count * sizeof *again);
        occlusion_apply(&o, h, again, channels, side, mean, 1234567890124ll);
        CHECK(memcmp(img, again, count * sizeof *img) != 0, "two samples get the same noise");
        o.seed = 100;
        memcpy(again, orig, count * sizeof *again);
        occlusion_apply(&o, h, again, channels, side, mean, 1234567890123ll);
        CHECK(memcmp(img, again, count * sizeof *img) != 0, "two seeds give the same noise");
        if (channels == 3) { /* channels get their own noise */
            long same = 0, n = 0;
            for (size_t p = 0; p < plane; p++)
                if (h[p]) {
                    same += img[p] == img[plane + p];
                    n++;
                }
            CHECK(same < n / 10 + 1, "channels 0 and 1 share noise at %ld of %ld pixels", same, n);
        }
    }
    free(h);
    free(img);
    free(orig);
    free(again);
}

/* `none` hides nothing and changes nothing. */
static void check_none(void)
{
    Occlusion o = occlusion_default();
    uint8_t h[100];
    memset(h, 7, sizeof h);
    occlusion_mask(&o, 10, h);
    int any = 0;
    for (int i = 0; i < 100; i++)
        any |= h[i];
    CHECK(!any, "none hides pixels");
    float img[100], orig[100];
    fill_uniform(img, 100, 3);
    memcpy(orig, img, sizeof img);
    const float mean[1] = {0.5f};
    occlusion_apply(&o, h, img, 1, 10, mean, 0);
    CHECK(memcmp(img, orig, sizeof img) == 0, "none changed the image");
}

int main(void)
{
    const float fractions[] = {0.25f, 0.5f, 0.75f};
    const int sides[] = {32, 45, 64};
    for (int k = OCC_VR; k <= OCC_MASK; k++)
        for (int s = OCC_SHAPE_BAND; s <= OCC_SHAPE_OUTLINE; s++)
            for (int f = 0; f < 3; f++) {
                for (int si = 0; si < 3; si++)
                    check_geometry((OcclusionKind)k, (OcclusionShape)s, fractions[f], sides[si]);
                for (int fill = OCC_FILL_BLACK; fill <= OCC_FILL_NOISE; fill++) {
                    check_fill((OcclusionKind)k, (OcclusionShape)s, fractions[f], (OcclusionFill)fill, 33, 3);
                    check_fill((OcclusionKind)k, (OcclusionShape)s, fractions[f], (OcclusionFill)fill, 24, 1);
                }
            }
    check_none();
    check_parsers();
    return test_finish("test_occlusion");
}
