/* fuzz_ferplus.c - the FER+ reader: the input up to its first NUL is
 * fer2013.csv, the rest fer2013new.csv. The pair is loaded as a data set
 * (listing, splits, decoding into 16 x 16 images) in majority mode, and
 * once more in distribution mode with 3 channels when the first load
 * succeeded.
 */
#include "tests/fuzz/fuzz_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char a[128], b[128];
    if (!a[0]) {
        fuzz_path(a, sizeof a, "fer2013.csv");
        fuzz_path(b, sizeof b, "fer2013new.csv");
    }
    fuzz_write_two(data, size, a, b);
    DataOptions o = fuzz_data_options(SOURCE_FERPLUS, 16);
    for (int mode = 0; mode < 2; mode++) {
        o.ferplus_distribution = mode;
        o.channels = mode ? 3 : 1;
        if (fuzz_load(&o))
            break;
    }
    return 0;
}
