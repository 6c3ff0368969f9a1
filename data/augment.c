/* augment.c - random crop with zero padding, horizontal flip, normalisation.
 *
 * A sample's draw is Philox of (seed, epoch, global sample index): it does
 * not depend on the rank that prepares the sample, on the batch it lands in
 * or on the order in which samples are prepared.
 */
#include "data/data.h"
#include "layers/rng.h"

#define AUGMENT_TAG 0x6175676d656e7421ull

AugmentDraw augment_identity(const AugmentOptions *o)
{
    AugmentDraw d = {o->pad, o->pad, 0};
    return d;
}

AugmentDraw augment_draw(const AugmentOptions *o, uint64_t seed, int64_t epoch, int64_t id)
{
    uint64_t key = rng_mix(seed, AUGMENT_TAG);
    RngBlock b = philox4x32(key, (uint32_t)epoch, (uint32_t)((uint64_t)epoch >> 32), (uint32_t)id,
                            (uint32_t)((uint64_t)id >> 32));
    AugmentDraw d = augment_identity(o);
    if (o->pad > 0) {
        uint32_t span = 2u * (uint32_t)o->pad + 1u;
        d.ox = (int)(b.v[0] % span);
        d.oy = (int)(b.v[1] % span);
    }
    d.flip = o->flip ? (int)(b.v[2] >> 31) : 0;
    return d;
}

void augment_apply(const uint8_t *src, int channels, int side, int pad, AugmentDraw d, float *dst)
{
    size_t plane = (size_t)side * side;
    int dx = d.ox - pad, dy = d.oy - pad; /* source offset of the crop */
    for (int c = 0; c < channels; c++) {
        const uint8_t *s = src + (size_t)c * plane;
        float *o = dst + (size_t)c * plane;
        for (int y = 0; y < side; y++) {
            int sy = y + dy;
            for (int x = 0; x < side; x++) {
                int sx = (d.flip ? side - 1 - x : x) + dx;
                int inside = sy >= 0 && sy < side && sx >= 0 && sx < side;
                o[(size_t)y * side + x] = inside ? (float)s[(size_t)sy * side + sx] / 255.0f : 0.0f;
            }
        }
    }
}

void normalise_image(float *img, int channels, int side, const float *mean, const float *std)
{
    size_t plane = (size_t)side * side;
    for (int c = 0; c < channels; c++) {
        float m = mean[c], s = std[c];
        float *p = img + (size_t)c * plane;
        for (size_t i = 0; i < plane; i++)
            p[i] = (p[i] - m) / s;
    }
}
