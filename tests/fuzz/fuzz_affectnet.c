/* fuzz_affectnet.c - the AffectNet reader: the input up to its first NUL
 * is training.csv, the rest validation.csv. The image root holds one real
 * picture, a.png (40 x 30 RGB), so rows naming it reach the face-box crop;
 * other names are missing images (skipped, or failing the load when the
 * input's last byte is odd: on_bad_sample = fail).
 */
#include <stb/stb_image_write.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char a[128], b[128];
    if (!a[0]) {
        char img[128];
        fuzz_path(a, sizeof a, "training.csv");
        fuzz_path(b, sizeof b, "validation.csv");
        fuzz_path(img, sizeof img, "a.png");
        uint8_t px[40 * 30 * 3];
        for (int i = 0; i < (int)sizeof px; i++)
            px[i] = (uint8_t)(i * 7);
        if (!stbi_write_png(img, 40, 30, 3, px, 40 * 3))
            abort();
    }
    fuzz_write_two(data, size, a, b);
    DataOptions o = fuzz_data_options(SOURCE_AFFECTNET, 16);
    o.channels = size && (data[size - 1] & 2) ? 3 : 1;
    o.on_bad_sample = size && (data[size - 1] & 1) ? BAD_SAMPLE_FAIL : BAD_SAMPLE_SKIP;
    fuzz_load(&o);
    return 0;
}
