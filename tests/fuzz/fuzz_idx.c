/* fuzz_idx.c - the IDX reader (raw and gzip). Input layout: one byte of
 * modes, two bits per file (train images, train labels, test images, test
 * labels; low bits first): 0 the bytes as <name>, 1 the bytes gzip-compressed
 * as <name>.gz, 2 the bytes as they are under <name>.gz (a damaged gzip
 * stream), 3 no file. Then the first three files, each as a 2-byte
 * big-endian length and that many bytes; the rest of the input is the
 * fourth file.
 */
#include <zlib.h>

#include "tests/fuzz/fuzz_data.h"

static const char *const names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                                     "t10k-labels-idx1-ubyte"};

static void put_file(int k, int mode, const uint8_t *p, size_t n)
{
    char plain[160], gz[170];
    fuzz_path(plain, sizeof plain, names[k]);
    snprintf(gz, sizeof gz, "%s.gz", plain);
    unlink(plain);
    unlink(gz);
    if (mode == 0 || mode == 2) {
        fuzz_write(mode ? gz : plain, p, n);
    } else if (mode == 1) {
        gzFile g = gzopen(gz, "wb");
        if (!g || (n && gzwrite(g, p, (unsigned)n) != (int)n) || gzclose(g) != Z_OK)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned modes = data[0];
    size_t at = 1;
    for (int k = 0; k < 4; k++) {
        size_t n = size - at;
        if (k < 3) {
            n = at + 2 <= size ? (size_t)data[at] << 8 | data[at + 1] : 0;
            at = at + 2 <= size ? at + 2 : size;
            if (n > size - at)
                n = size - at;
        }
        put_file(k, (int)(modes >> (2 * k) & 3), data + at, n);
        at += n;
    }
    DataOptions o = fuzz_data_options(SOURCE_IDX, 8);
    o.val_fraction = 0.25f;
    fuzz_load(&o);
    return 0;
}
