/* image.c - decoding (stb_image from libstb, which already holds the
 * implementation), resampling, cropping and grey <-> RGB conversion. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image.h>

#include "data/internal.h"

/* Larger images are refused before they are decoded (their header can claim
 * any size): 2^26 pixels, 8192 x 8192. */
#define IMAGE_MAX_PIXELS (1 << 26)

static int read_whole_file(const char *path, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        data_err(err, errlen, "%s: cannot open image: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = malloc(cap);
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap)
            break;
        uint8_t *nb = realloc(b, cap * 2);
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    int failed = ferror(f);
    fclose(f);
    if (!b || failed) {
        free(b);
        data_err(err, errlen, "%s: cannot read image", path);
        return -1;
    }
    *buf = b;
    *len = n;
    return 0;
}

/* Where a JPEG's data after its start marker (SOI: FF D8, after any number
 * of FF fill bytes, as stb_image reads it) begins; 0 when b is no JPEG. */
static size_t jpeg_body(const uint8_t *b, size_t n)
{
    size_t i = 0;
    while (i < n && b[i] == 0xFF)
        i++;
    return i > 0 && i < n && b[i] == 0xD8 ? i + 1 : 0;
}

/* A JPEG must start with SOI (FF D8) and hold EOI (FF D9) near its end;
 * stb_image would otherwise decode a cut file into grey garbage. */
static int jpeg_truncated(const uint8_t *b, size_t n)
{
    size_t body = jpeg_body(b, n);
    if (n < 4 || !body)
        return 0; /* not a JPEG */
    size_t from = n > 4096 ? n - 4096 : body;
    for (size_t i = n - 1; i > from; i--)
        if (b[i - 1] == 0xFF && b[i] == 0xD9)
            return 0;
    return 1;
}

/* 1 for the formats stb_image decodes that no reader lists (has_image_ext):
 * Photoshop, Softimage PIC and Radiance HDR, known by their first bytes.
 * stb_image would decode them whatever the file's name says. */
static int unlisted_format(const uint8_t *b, size_t n)
{
    static const struct {
        const char *magic;
        size_t len;
    } m[] = {{"8BPS", 4}, {"\x53\x80\xF6\x34", 4}, {"#?RADIANCE\n", 11}, {"#?RGBE\n", 7}};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (n >= m[i].len && memcmp(b, m[i].magic, m[i].len) == 0)
            return 1;
    return 0;
}

/* 1 when the file opens with PNG's signature. */
static int is_png(const uint8_t *b, size_t n)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    return n >= 8 && memcmp(b, sig, 8) == 0;
}

/* 1 for a TGA whose file holds fewer bytes than its header's pixels need.
 * Stored without compression, stb_image 2.27 leaves the rows it cannot read
 * as they were in memory (a 23-byte file decoded to 16658 x 1873 pixels;
 * fuzz target); compressed (RLE), it reads zeros past the file's end, and
 * such a file needs at least a packet per 128 pixels. TGA has no magic:
 * stb_image tries it last, after the formats known by their first bytes,
 * and its header is read here as stb_image's test reads it. */
static int tga_truncated(const uint8_t *b, size_t n)
{
    if (n < 18 || jpeg_body(b, n) || is_png(b, n) || memcmp(b, "BM", 2) == 0 ||
        memcmp(b, "GIF8", 4) == 0 || (b[0] == 'P' && (b[1] == '5' || b[1] == '6')) || unlisted_format(b, n))
        return 0;
    int mapped = b[1], type = b[2], bits = b[16];
    if (mapped > 1 || (mapped ? type != 1 && type != 9 : type != 2 && type != 3 && type != 10 && type != 11))
        return 0;
    if (mapped && b[7] != 8 && b[7] != 15 && b[7] != 16 && b[7] != 24 && b[7] != 32)
        return 0;
    if ((mapped && bits != 8 && bits != 16) || (bits != 8 && bits != 15 && bits != 16 && bits != 24 && bits != 32))
        return 0;
    uint64_t w = (uint64_t)(b[12] | b[13] << 8), h = (uint64_t)(b[14] | b[15] << 8);
    uint64_t pixel = (uint64_t)(bits + 7) / 8, map = mapped ? (uint64_t)(b[5] | b[6] << 8) * ((b[7] + 7u) / 8) : 0;
    uint64_t pixels = type < 8 ? w * h * pixel : (w * h + 127) / 128 * (1 + pixel);
    return w > 0 && h > 0 && n < 18 + (uint64_t)b[0] + map + pixels;
}

/* 1 when a JPEG holds a Huffman table (DHT segment) of more than 256
 * codes: stb_image 2.27 writes them into its 257-entry table, past its
 * end. The segments are walked as stb_image walks them (by their lengths,
 * then byte by byte to the next marker after a scan's data). */
static int jpeg_bad_huffman(const uint8_t *b, size_t n)
{
    size_t i = jpeg_body(b, n);
    if (i == 0)
        return 0;
    while (i + 1 < n) {
        uint8_t m = b[i + 1];
        if (b[i] != 0xFF || m == 0xFF) { /* entropy-coded data, fill bytes */
            i++;
            continue;
        }
        if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { /* stuffed zero, TEM, RSTn */
            i += 2;
            continue;
        }
        if (m == 0xD9 || i + 4 > n)
            break;
        size_t len = (size_t)b[i + 2] << 8 | b[i + 3];
        if (m == 0xC4) /* tables of 1 + 16 + (codes) bytes while the length lasts; past the end of the
                          file stb_image reads zeros */
            for (size_t k = i + 4, left = len >= 2 ? len - 2 : 0; left > 0 && k < n;) {
                size_t codes = 0;
                for (size_t c = 1; c <= 16 && k + c < n; c++)
                    codes += b[k + c];
                if (codes > 256)
                    return 1;
                k += 17 + codes;
                left = left > 17 + codes ? left - (17 + codes) : 0;
            }
        i += 2 + len;
    }
    return 0;
}

/* Why a binary PGM or PPM (P5, P6) is refused, or NULL: stb_image 2.27
 * overflows an int on a header number of more than 9 digits, and leaves
 * the pixels a short file lacks as they were in memory. The header is read
 * as stb_image reads it: magic, white space and # comments, width, height,
 * maximum (a field without digits is 0), one white-space byte. */
static const char *pnm_refused(const uint8_t *b, size_t n)
{
    if (n < 2 || b[0] != 'P' || (b[1] != '5' && b[1] != '6'))
        return NULL;
    size_t i = 2;
    uint64_t v[3] = {0, 0, 0};
    for (int field = 0; field < 3; field++) {
        for (;;) {
            while (i < n && isspace(b[i]))
                i++;
            if (i >= n || b[i] != '#')
                break;
            while (i < n && b[i] != '\n' && b[i] != '\r')
                i++;
        }
        size_t start = i;
        while (i < n && isdigit(b[i]))
            v[field] = v[field] * 10 + (uint64_t)(b[i++] - '0');
        if (i - start > 9)
            return "a PNM header number of more than 9 digits";
        /* no digits: stb_image reads 0 and goes on (a maximum of 0 passes) */
    }
    i++;
    uint64_t need = v[0] * v[1] * (b[1] == '5' ? 1u : 3u) * (v[2] > 255 ? 2u : 1u);
    return i > n || n - i < need ? "truncated PNM (fewer pixel bytes than its header says)" : NULL;
}

/* Why a PNG is refused, or NULL; its chunks are walked to IEND as
 * stb_image walks them. A first IDAT chunk that is empty made stb_image
 * offset its still NULL data buffer (undefined behaviour); a chunk claiming
 * more bytes than the file holds had stb_image grow its buffer to that size
 * before reading (a 136-byte file, 2 GB). Both found by the image fuzz
 * target; no encoder writes either. */
static const char *png_refused(const uint8_t *b, size_t n)
{
    if (!is_png(b, n))
        return NULL;
    int seen_idat = 0;
    for (size_t i = 8; i + 8 <= n;) {
        uint32_t len = data_be32(b + i);
        if (memcmp(b + i + 4, "IEND", 4) == 0)
            break;
        if (memcmp(b + i + 4, "IDAT", 4) == 0 && !seen_idat++ && len == 0)
            return "corrupt PNG (its first image data chunk is empty)";
        if (len > n - i - 8)
            return "truncated PNG (a chunk longer than the rest of the file)";
        i += 12 + (size_t)len;
    }
    return NULL;
}

/* n pixels of n_in channels (grey, grey + alpha, RGB, RGBA) as `channels`
 * (1 or 3) in a new buffer; px is freed. NULL when out of memory. */
static uint8_t *convert_channels(uint8_t *px, int n_in, size_t n, int channels)
{
    uint8_t *out = malloc(n * (size_t)channels);
    for (size_t i = 0; out && i < n; i++) {
        const uint8_t *p = px + i * (size_t)n_in;
        if (channels == 1 && n_in >= 3)
            image_rgb_to_grey(p, 1, out + i);
        else if (channels == 1)
            out[i] = p[0];
        else
            for (int c = 0; c < 3; c++)
                out[3 * i + (size_t)c] = p[n_in >= 3 ? c : 0];
    }
    stbi_image_free(px);
    return out;
}

int image_load(const char *path, int channels, uint8_t **hwc, int *w, int *h, char *err, size_t errlen)
{
    uint8_t *buf;
    size_t len;
    if (read_whole_file(path, &buf, &len, err, errlen))
        return -1;
    if (len == 0 || len > (size_t)INT32_MAX) {
        free(buf);
        data_err(err, errlen, "%s: empty or oversized image file (%zu bytes)", path, len);
        return -1;
    }
    if (jpeg_truncated(buf, len)) {
        free(buf);
        data_err(err, errlen, "%s: truncated JPEG (no end-of-image marker)", path);
        return -1;
    }
    if (unlisted_format(buf, len)) {
        free(buf);
        data_err(err, errlen, "%s: a Photoshop, Softimage PIC or Radiance HDR image (read: JPEG, PNG, BMP, GIF, TGA, "
                 "PGM, PPM)", path);
        return -1;
    }
    if (jpeg_bad_huffman(buf, len)) {
        free(buf);
        data_err(err, errlen, "%s: corrupt JPEG (a Huffman table of more than 256 codes)", path);
        return -1;
    }
    const char *png = png_refused(buf, len);
    if (png) {
        free(buf);
        data_err(err, errlen, "%s: %s", path, png);
        return -1;
    }
    if (tga_truncated(buf, len)) {
        free(buf);
        data_err(err, errlen, "%s: truncated TGA (fewer bytes than its header's pixels need)", path);
        return -1;
    }
    const char *pnm = pnm_refused(buf, len);
    if (pnm) {
        free(buf);
        data_err(err, errlen, "%s: %s", path, pnm);
        return -1;
    }
    /* stb_image gives a top-down BMP's height negative, as in its header:
     * the pixel limit takes its size (a 64-byte BMP claiming 12 x 2^24
     * rows decoded for seconds; fuzz target). */
    int n_in, known = stbi_info_from_memory(buf, (int)len, w, h, &n_in);
    if (known && (int64_t)*w * llabs((long long)*h) > IMAGE_MAX_PIXELS) {
        free(buf);
        data_err(err, errlen, "%s: image of %d x %d pixels (at most %d pixels)", path, *w, abs(*h), IMAGE_MAX_PIXELS);
        return -1;
    }
    /* stb_image converts the channels of a 16-bit PNM as if it had 8 bits
     * and then reads twice the bytes it made (a heap overflow): 16-bit
     * images are decoded in their own channels and converted here. */
    int wide = stbi_is_16_bit_from_memory(buf, (int)len);
    uint8_t *px = stbi_load_from_memory(buf, (int)len, w, h, &n_in, wide ? 0 : channels);
    free(buf);
    if (px && wide && n_in != channels)
        px = convert_channels(px, n_in, (size_t)*w * (size_t)*h, channels);
    if (!px) {
        data_err(err, errlen, "%s: cannot decode image: %s", path, wide ? "16-bit image" : stbi_failure_reason());
        return -1;
    }
    if (*w <= 0 || *h <= 0) { /* stb_image returns some empty images (a PNM header of height 0) */
        stbi_image_free(px);
        data_err(err, errlen, "%s: empty image (%d x %d pixels)", path, *w, *h);
        return -1;
    }
    *hwc = px;
    return 0;
}

/* Source taps of one output coordinate. */
typedef struct {
    int first, count;
    float *w;
} Taps;

/* Triangle filter of half-width max(1, scale) centred on the source position
 * of each output pixel centre: bilinear when enlarging, area-like when
 * shrinking. Edges are clamped. */
static Taps *make_taps(int src, int dst, float **store)
{
    float scale = (float)src / (float)dst;
    float support = scale > 1.0f ? scale : 1.0f;
    int max_taps = (int)ceilf(2.0f * support) + 2;
    Taps *t = malloc(sizeof(Taps) * (size_t)dst);
    *store = calloc((size_t)dst * (size_t)max_taps, sizeof(float));
    if (!t || !*store) {
        free(t);
        free(*store);
        return NULL;
    }
    for (int o = 0; o < dst; o++) {
        float centre = ((float)o + 0.5f) * scale - 0.5f;
        int lo = (int)floorf(centre - support) + 1, hi = (int)ceilf(centre + support) - 1;
        if (hi - lo + 1 > max_taps)
            hi = lo + max_taps - 1;
        t[o].first = lo;
        t[o].count = hi - lo + 1;
        t[o].w = *store + (size_t)o * (size_t)max_taps;
        float sum = 0.0f;
        for (int k = 0; k < t[o].count; k++) {
            float d = fabsf((float)(lo + k) - centre) / support;
            float wk = d < 1.0f ? 1.0f - d : 0.0f;
            t[o].w[k] = wk;
            sum += wk;
        }
        for (int k = 0; k < t[o].count; k++)
            t[o].w[k] = sum > 0.0f ? t[o].w[k] / sum : 0.0f;
        if (sum <= 0.0f) { /* cannot happen with support >= 1, kept for safety */
            t[o].count = 1;
            t[o].w[0] = 1.0f;
        }
    }
    return t;
}

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

void image_resize(const uint8_t *src, int sw, int sh, int c, uint8_t *dst, int dw, int dh)
{
    if (sw == dw && sh == dh) {
        memcpy(dst, src, (size_t)sw * sh * c);
        return;
    }
    float *sx, *sy;
    Taps *tx = make_taps(sw, dw, &sx), *ty = make_taps(sh, dh, &sy);
    float *mid = malloc(sizeof(float) * (size_t)sh * dw * c); /* (sh, dw, c) */
    if (!tx || !ty || !mid) {
        memset(dst, 0, (size_t)dw * dh * c);
        goto done;
    }
    for (int y = 0; y < sh; y++)
        for (int x = 0; x < dw; x++)
            for (int ch = 0; ch < c; ch++) {
                float acc = 0.0f;
                for (int k = 0; k < tx[x].count; k++)
                    acc += tx[x].w[k] * src[((size_t)y * sw + clampi(tx[x].first + k, 0, sw - 1)) * c + ch];
                mid[((size_t)y * dw + x) * c + ch] = acc;
            }
    for (int y = 0; y < dh; y++)
        for (int x = 0; x < dw; x++)
            for (int ch = 0; ch < c; ch++) {
                float acc = 0.0f;
                for (int k = 0; k < ty[y].count; k++)
                    acc += ty[y].w[k] * mid[((size_t)clampi(ty[y].first + k, 0, sh - 1) * dw + x) * c + ch];
                long v = lrintf(acc);
                dst[((size_t)y * dw + x) * c + ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
done:
    free(mid);
    if (tx) {
        free(tx);
        free(sx);
    }
    if (ty) {
        free(ty);
        free(sy);
    }
}

void image_grey_to_rgb(const uint8_t *grey, size_t n, uint8_t *rgb)
{
    for (size_t i = n; i-- > 0;) { /* backwards: grey may alias the start of rgb */
        uint8_t v = grey[i];
        rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = v;
    }
}

void image_rgb_to_grey(const uint8_t *rgb, size_t n, uint8_t *grey)
{
    for (size_t i = 0; i < n; i++) {
        float v = 0.299f * rgb[3 * i] + 0.587f * rgb[3 * i + 1] + 0.114f * rgb[3 * i + 2];
        grey[i] = (uint8_t)lrintf(v > 255.0f ? 255.0f : v);
    }
}

int image_crop_to_chw(const uint8_t *src, int sw, int sh, int sc, int x, int y, int w, int h, int side,
                      int channels, uint8_t *chw)
{
    int x0 = clampi(x, 0, sw), y0 = clampi(y, 0, sh);
    int x1 = clampi(x + w, 0, sw), y1 = clampi(y + h, 0, sh);
    if (w <= 0 || h <= 0 || x1 <= x0 || y1 <= y0)
        return -1;
    int cw = x1 - x0, ch = y1 - y0;
    uint8_t *crop = malloc((size_t)cw * ch * sc);
    uint8_t *small = malloc((size_t)side * side * 3);
    uint8_t *conv = malloc((size_t)side * side * 3);
    if (!crop || !small || !conv) {
        free(crop);
        free(small);
        free(conv);
        return -1;
    }
    for (int r = 0; r < ch; r++)
        memcpy(crop + (size_t)r * cw * sc, src + ((size_t)(y0 + r) * sw + x0) * sc, (size_t)cw * sc);
    image_resize(crop, cw, ch, sc, small, side, side);
    size_t np = (size_t)side * side;
    const uint8_t *hwc = small;
    if (sc == 1 && channels == 3) {
        image_grey_to_rgb(small, np, conv);
        hwc = conv;
    } else if (sc == 3 && channels == 1) {
        image_rgb_to_grey(small, np, conv);
        hwc = conv;
    }
    for (int c = 0; c < channels; c++) /* HWC -> CHW */
        for (size_t p = 0; p < np; p++)
            chw[(size_t)c * np + p] = hwc[p * channels + c];
    free(crop);
    free(small);
    free(conv);
    return 0;
}
