/* layout.c - conversions between NCHW and the channel-blocked layout
 * (layers.h: LAYOUT_BLOCK channels innermost). Each (image, channel block)
 * is a transpose of a 16 x HW tile, done in 16 x 16 pieces so that both
 * sides stay in cache; the team splits the (image, block) pairs. */
#include "internal.h"

#define B LAYOUT_BLOCK

/* One (image, block): q (hw rows of 16) (=|+=) p^T, p being 16 rows of hw. */
static void to_blocked_tile(const float *restrict p, float *restrict q, size_t hw, int acc)
{
    for (size_t i0 = 0; i0 < hw; i0 += B) {
        size_t i1 = i0 + B < hw ? i0 + B : hw;
        for (int c = 0; c < B; c++)
            for (size_t i = i0; i < i1; i++)
                q[i * B + c] = acc ? q[i * B + c] + p[(size_t)c * hw + i] : p[(size_t)c * hw + i];
    }
}

/* One (image, block): p (16 rows of hw) (=|+=) q^T. */
static void to_nchw_tile(const float *restrict q, float *restrict p, size_t hw, int acc)
{
    for (size_t i0 = 0; i0 < hw; i0 += B) {
        size_t i1 = i0 + B < hw ? i0 + B : hw;
        for (int c = 0; c < B; c++)
            for (size_t i = i0; i < i1; i++)
                p[(size_t)c * hw + i] = acc ? p[(size_t)c * hw + i] + q[i * B + c] : q[i * B + c];
    }
}

/* Each (image, block) of n images of c channels through one tile function. */
static void over_tiles(void (*tile)(const float *restrict, float *restrict, size_t, int), const float *from,
                       float *to, int n, int c, size_t hw, int acc)
{
    const int units = n * (c / B);
    const size_t per = (size_t)B * hw;
#pragma omp parallel for schedule(static) if (OMP_WORTH((size_t)units * per))
    for (int u = 0; u < units; u++)
        tile(from + (size_t)u * per, to + (size_t)u * per, hw, acc);
}

void layout_to_blocked(const float *x, int n, int c, size_t hw, float *y, int acc)
{
    over_tiles(to_blocked_tile, x, y, n, c, hw, acc);
}

void layout_to_nchw(const float *x, int n, int c, size_t hw, float *y, int acc)
{
    over_tiles(to_nchw_tile, x, y, n, c, hw, acc);
}
