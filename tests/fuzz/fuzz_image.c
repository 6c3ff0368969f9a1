/* fuzz_image.c - the image decoding path of data/image.c: the input is an
 * image file (JPEG, PNG, BMP, GIF, ...) decoded to 1 or 3 channels, then
 * cropped and resized to CHW as the readers do. The first byte chooses the
 * channels (bit 0) and the last four bytes the crop box.
 *
 * stb_image's decoders are compiled into this program, so that they are
 * instrumented like the rest (image.c's calls reach this copy, not
 * libstb's). While fuzzing (OCCKD_FUZZING, the libFuzzer programs), inputs
 * whose header claims more than 2^16 pixels are left out to keep the fuzzer
 * fast (resizing whole images of up to 2^20 pixels took most of its time, in
 * code whose paths do not depend on the size); the replay takes every input
 * to image_load, whose own limit is 2^26.
 */
#define STB_IMAGE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include "data/internal.h"
#include "tests/fuzz/fuzz_common.h"

#ifdef OCCKD_FUZZING
/* The pixels an image's header claims (0 when unknown; a top-down BMP's
 * height, which stb_image gives negative, counts by its size). A JPEG's frame
 * header is found here, and PNM headers are not read: stb_image's own
 * header reading already meets what image_load refuses in them. */
static int64_t claimed_pixels(const uint8_t *b, size_t n)
{
    size_t start = 0;
    while (start < n && b[start] == 0xFF) /* fill bytes before SOI, as stb_image allows */
        start++;
    if (start > 0 && start < n && b[start] == 0xD8) {
        for (size_t i = start + 1; i + 9 < n;) {
            uint8_t m = b[i + 1];
            if (b[i] != 0xFF || m == 0xFF)
                i++;
            else if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD7))
                i += 2;
            else if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) /* SOF0-SOF15 */
                return (int64_t)(b[i + 5] << 8 | b[i + 6]) * (b[i + 7] << 8 | b[i + 8]);
            else
                i += 2 + (size_t)(b[i + 2] << 8 | b[i + 3]);
        }
        return 0;
    }
    if (n >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6')) /* PNM: image_load wants all its pixels in the
                                                                  file, so it is small */
        return 0;
    int w, h, c;
    return n <= INT32_MAX && stbi_info_from_memory(b, (int)n, &w, &h, &c) ? llabs((int64_t)w * h) : 0;
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[128];
    if (!path[0])
        fuzz_path(path, sizeof path, "image");
#ifdef OCCKD_FUZZING
    if (claimed_pixels(data, size) > (1 << 16))
        return 0;
#endif
    fuzz_write(path, data, size);
    int channels = size && (data[0] & 1) ? 1 : 3;
    uint8_t *hwc = NULL;
    int w = 0, h = 0;
    char err[512];
    int rc = image_load(path, channels, &hwc, &w, &h, err, sizeof err);
    fuzz_note("image_load", rc, err);
    if (rc)
        return 0;
    if (w <= 0 || h <= 0) {
        fprintf(stderr, "decoded to %d x %d\n", w, h);
        abort();
    }
    /* a box from the last four bytes: x, y in [-8, 247], w, h in [1, 256] */
    uint8_t t[4] = {0, 0, 255, 255};
    for (int k = 0; k < 4 && (size_t)k < size; k++)
        t[k] = data[size - 1 - (size_t)k];
    uint8_t out[3 * 24 * 24];
    image_crop_to_chw(hwc, w, h, channels, (int)t[0] - 8, (int)t[1] - 8, (int)t[2] + 1, (int)t[3] + 1, 24,
                      channels == 1 ? 3 : 1, out);
    image_crop_to_chw(hwc, w, h, channels, 0, 0, w, h, 16, channels, out);
    free(hwc);
    return 0;
}
