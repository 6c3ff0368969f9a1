/* fuzz_checkpoint.c - the checkpoint and weights loader: the input is
 * written as an HDF5 file and read by checkpoint_load (every buffer and the
 * metadata, then with a cell stamp to match), by cell_stamp_read and by
 * weights_load, whole and partial, into fuzz_net(); then no HDF5 object may
 * be left open. HDF5's own error stack printing is off.
 *
 * An input that carries occkd's whole-file checksum gets it recomputed
 * before the loads (unless its last byte is odd), so that damage reaches
 * HDF5's parsing as it would in a file whose checksum was forged or that
 * another program wrote; the odd inputs exercise the checksum's own check.
 */
#include <hdf5.h>
#include <string.h>

#include "checkpoints/checkpoints.h"
#include "checkpoints/h5io.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/fuzz/fuzz_net.h"

/* HDF5 1.10 loses parts of its metadata cache on some corrupt object
 * headers: leaks inside the library, which LeakSanitizer is told to ignore.
 * Handles the loaders leave open are caught below instead. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libhdf5_serial.so\n"; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[128];
    static Net *net;
    static float *vel, *best_params, *best_state;
    if (!net) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        fuzz_path(path, sizeof path, "checkpoint.h5");
        net = fuzz_net();
        vel = calloc(net->n_params, sizeof(float));
        best_params = calloc(net->n_params, sizeof(float));
        best_state = calloc(net->n_state ? net->n_state : 1, sizeof(float));
        if (!vel || !best_params || !best_state)
            abort();
    }
    fuzz_write(path, data, size);
    char err[1024];
    if (size > H5IO_SUM_BLOCK && memcmp(data, H5IO_SUM_MAGIC, strlen(H5IO_SUM_MAGIC)) == 0 && !(data[size - 1] & 1) &&
        h5io_sum_stamp(path, err, sizeof err) != 0)
        abort();
    CheckpointMeta meta;
    int rc = checkpoint_load(path, net, vel, best_params, best_state, &meta, NULL, err, sizeof err);
    fuzz_note("checkpoint_load", rc, err);
    if (rc == 0)
        checkpoint_meta_free(&meta);
    static CellStamp other = {.cell = "task/model/method seed 1", .settings_sha256 = "0123"};
    (void)checkpoint_load(path, net, NULL, NULL, NULL, NULL, &other, err, sizeof err);
    static CellStamp stamp;
    (void)cell_stamp_read(path, &stamp, err, sizeof err);
    int loaded = 0;
    rc = weights_load(path, net, 0, &loaded, err, sizeof err);
    fuzz_note("weights_load", rc, err);
    (void)weights_load(path, net, 1, &loaded, err, sizeof err);
    /* every file, group, dataset and attribute opened was closed again */
    ssize_t open_ids = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (open_ids != 0) {
        fprintf(stderr, "%zd HDF5 objects left open\n", open_ids);
        abort();
    }
    return 0;
}
