/* layout.c - conversions between NCHW and the channel-blocked layout
 * (layers.h: LAYOUT_BLOCK channels innermost). Each (image, channel block)
 * is a transpose of a 16 x HW tile, done in 16 x 16 pieces so that both
 * sides stay in cache; the team splits the (image, block) pairs. */
#include "internal.h"

#define B LAYOUT_BLOCK

/* One (image, block): plain p (16 rows of hw) <-> blocked q (hw rows of
 * 16). to_blocked: q (=|+=) p^T; else p (=|+=) q^T. */
static void tile(float *restrict p, float *restrict q, size_t hw, int to_blocked, int acc)
{
    for (size_t i0 = 0; i0 < hw; i0 += B) {
        size_t i1 = i0 + B < hw ? i0 + B : hw;
        for (int c = 0; c < B; c++)
            for (size_t i = i0; i < i1; i++) {
                float *dst = to_blocked ? &q[i * B + c] : &p[(size_t)c * hw + i];
                float v = to_blocked ? p[(size_t)c * hw + i] : q[i * B + c];
                *dst = acc ? *dst + v : v;
            }
    }
}

static void convert(float *plain, float *blocked, int n, int c, size_t hw, int to_blocked, int acc)
{
    const int units = n * (c / B);
    const size_t per = (size_t)B * hw;
#pragma omp parallel for schedule(static) if (OMP_WORTH((size_t)units * per))
    for (int u = 0; u < units; u++)
        tile(plain + (size_t)u * per, blocked + (size_t)u * per, hw, to_blocked, acc);
}

void layout_to_blocked(const float *x, int n, int c, size_t hw, float *y, int acc)
{
    convert((float *)x, y, n, c, hw, 1, acc);
}

void layout_to_nchw(const float *x, int n, int c, size_t hw, float *y, int acc)
{
    convert(y, (float *)x, n, c, hw, 0, acc);
}
