/* rng.h - counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
 *
 * A random value is a pure function of a key (two 32-bit words, e.g. the run
 * seed) and a counter (four 32-bit words, e.g. step, sample index, layer,
 * element). Nothing is stateful, so the number drawn for a sample is the same
 * whichever rank draws it and in whatever order. data/ uses this header too.
 */
#ifndef OCCKD_RNG_H
#define OCCKD_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct {
    uint32_t v[4];
} RngBlock;

static inline RngBlock philox4x32(uint64_t key, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3)
{
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    uint32_t x0 = c0, x1 = c1, x2 = c2, x3 = c3;
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * x0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * x2;
        uint32_t y0 = (uint32_t)(p1 >> 32) ^ x1 ^ k0;
        uint32_t y1 = (uint32_t)p1;
        uint32_t y2 = (uint32_t)(p0 >> 32) ^ x3 ^ k1;
        uint32_t y3 = (uint32_t)p0;
        x0 = y0, x1 = y1, x2 = y2, x3 = y3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    RngBlock b = {{x0, x1, x2, x3}};
    return b;
}

/* Uniform in [0, 1) from 32 random bits (24 significant, exact in float). */
static inline float rng_u01(uint32_t bits) { return (float)(bits >> 8) * (1.0f / 16777216.0f); }

/* Four uniforms for (key; a, b, c, d). */
static inline void rng_uniform4(uint64_t key, uint32_t a, uint32_t b, uint32_t c, uint32_t d, float out[4])
{
    RngBlock r = philox4x32(key, a, b, c, d);
    for (int i = 0; i < 4; i++)
        out[i] = rng_u01(r.v[i]);
}

/* One standard normal from (key; a, b, c, d) by Box-Muller. */
static inline double rng_normal(uint64_t key, uint32_t a, uint32_t b, uint32_t c, uint32_t d)
{
    RngBlock r = philox4x32(key, a, b, c, d);
    double u1 = ((double)r.v[0] + 1.0) / 4294967296.0; /* (0, 1] */
    double u2 = (double)r.v[1] / 4294967296.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Mixes 64-bit words into one key (SplitMix64 finaliser). */
static inline uint64_t rng_mix(uint64_t a, uint64_t b)
{
    uint64_t z = a + 0x9E3779B97F4A7C15ull * (b + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#endif
