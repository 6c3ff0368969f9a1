/* fuzz_ferplus.c - the FER+ reader: the input up to its first NUL is
 * fer2013.csv, the rest fer2013new.csv. The pair is loaded as a data set
 * (listing, splits, decoding into 16 x 16 images) in majority mode, and
 * once more in distribution mode with 3 channels when the first load
 * succeeded.
 */
#include "data/data.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char a[128], b[128];
    if (!a[0]) {
        fuzz_path(a, sizeof a, "fer2013.csv");
        fuzz_path(b, sizeof b, "fer2013new.csv");
    }
    char *part[2], *copy;
    size_t len[2];
    int n = fuzz_split_nul(data, size, part, len, 2, &copy);
    fuzz_write(a, part[0], len[0]);
    fuzz_write(b, n > 1 ? part[1] : "", n > 1 ? len[1] : 0);
    free(copy);
    DataOptions o;
    data_options_default(&o);
    o.source = SOURCE_FERPLUS;
    snprintf(o.path, sizeof o.path, "%s", fuzz_dir());
    o.side = 16;
    o.channels = 1;
    Dataset d;
    char err[1024];
    for (int mode = 0; mode < 2; mode++) {
        o.ferplus_distribution = mode;
        o.channels = mode ? 3 : 1;
        int rc = dataset_load(&o, NULL, NULL, &d, err, sizeof err);
        fuzz_note("dataset_load", rc, err);
        if (rc)
            break;
        dataset_free(&d);
    }
    return 0;
}
