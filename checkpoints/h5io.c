/* h5io.c - HDF5 helpers: atomic files, checksummed datasets, attributes and
 * readable error messages (see h5io.h). */
#include "h5io.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Chunks of at most this many bytes: small enough that a checksum failure
 * points at a small region, large enough that big tensors stay fast. */
#define CHUNK_BYTES ((size_t)1 << 20)

/* ------------------------------------------------------------- errors */

/* HDF5 closes what is still open when the process exits; after a failed
 * close (a full disk) that crashes inside the library. occkd closes every
 * file itself, so the library's exit hook is turned off before its first
 * use. */
__attribute__((constructor)) static void h5io_no_exit_hook(void) { H5dont_atexit(); }

void h5io_quiet(H5Quiet *q)
{
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void h5io_loud(const H5Quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->func, q->data); }

typedef struct {
    char innermost[256];
    char system[128];        /* the operating system's words, when a read or write failed */
    int found;
    int checksum;
} ErrWalk;

static herr_t err_walk(unsigned n, const H5E_error2_t *e, void *user)
{
    ErrWalk *w = user;
    const char *d = e->desc ? e->desc : "";
    if (!w->found) { /* walking upward: the first entry is where the error was detected */
        snprintf(w->innermost, sizeof w->innermost, "%s", d);
        w->found = 1;
    }
    if (strstr(d, "checksum") || strstr(d, "Fletcher"))
        w->checksum = 1;
    /* the file driver's "..., errno = 28, error message = 'No space left on device', ..." */
    const char *m = strstr(d, "error message = '");
    if (m && !w->system[0]) {
        m += strlen("error message = '");
        const char *end = strchr(m, '\'');
        snprintf(w->system, sizeof w->system, "%.*s", end ? (int)(end - m) : (int)strlen(m), m);
    }
    return 0;
}

int h5io_last_error(char *buf, size_t n)
{
    ErrWalk w;
    memset(&w, 0, sizeof w);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, err_walk, &w);
    H5Eclear2(H5E_DEFAULT);
    if (w.system[0]) /* what the system said is what a user can act on */
        snprintf(buf, n, "%s", w.system);
    else
        snprintf(buf, n, "%s", w.found ? w.innermost : "unknown HDF5 error");
    return w.checksum;
}

/* A read failure as a message: checksum failures get their own wording. */
void h5io_read_failure(const char *file, const char *what, char *err, size_t errlen)
{
    char why[256];
    if (h5io_last_error(why, sizeof why))
        snprintf(err, errlen, "file %s: checksum mismatch in %s (the file is corrupted)", file, what);
    else
        snprintf(err, errlen, "file %s: cannot read %s: %s", file, what, why);
}

/* ------------------------------------------------------------- files */

int h5io_make_parents(const char *path, char *err, size_t errlen)
{
    size_t len = strlen(path);
    char *dir = malloc(len + 1);
    memcpy(dir, path, len + 1);
    int rc = 0;
    for (size_t i = 1; i < len && rc == 0; i++) {
        if (dir[i] != '/')
            continue;
        dir[i] = '\0';
        if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create folder %s: %s", dir, strerror(errno));
            rc = -1;
        }
        dir[i] = '/';
    }
    free(dir);
    return rc;
}

static hid_t make_fapl(int writing)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* Written in the 1.8 format, which checksums all metadata and is read by
     * every current HDF5 (h5py, MATLAB); any format is read. STRONG closes
     * whatever an error path left open. */
    if (writing)
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18);
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
#if H5_VERSION_GE(1, 10, 7)
    /* Files are renamed into place, never shared while written, so HDF5's
     * flock is not needed; it fails on parallel file systems without locks. */
    H5Pset_file_locking(fapl, 0, 1);
#endif
    return fapl;
}

/* ------------------------------------------------------------- whole-file checksum */

/* The user block of every file occkd writes: SUM_MAGIC, the CRC-32 of the
 * bytes after the block and their count, as one line of text, then NUL
 * bytes. HDF5 finds its superblock after the block by itself (h5dump and
 * h5py read such files as any other). */
#define SUM_BLOCK H5IO_SUM_BLOCK
#define SUM_MAGIC H5IO_SUM_MAGIC

/* The block that records crc and n: its line of text, then NUL bytes. */
static void sum_block(char block[SUM_BLOCK], unsigned crc, unsigned long long n)
{
    memset(block, 0, SUM_BLOCK);
    snprintf(block, SUM_BLOCK, SUM_MAGIC "crc32 %08x bytes %llu\n", crc, n);
}

/* CRC-32 (zlib's polynomial) and count of fd's bytes from SUM_BLOCK on. */
static int sum_of(int fd, uint32_t *crc, uint64_t *count)
{
    enum { BUF = 1 << 20 };
    unsigned char *buf = malloc(BUF);
    if (!buf)
        return -1;
    uLong c = crc32(0L, Z_NULL, 0);
    uint64_t n = 0;
    for (;;) {
        ssize_t got = pread(fd, buf, BUF, (off_t)(SUM_BLOCK + n));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            free(buf);
            return -1;
        }
        if (got == 0)
            break;
        c = crc32(c, buf, (uInt)got);
        n += (uint64_t)got;
    }
    free(buf);
    *crc = (uint32_t)c;
    *count = n;
    return 0;
}

int h5io_sum_stamp(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR);
    uint32_t crc = 0;
    uint64_t n = 0;
    char block[SUM_BLOCK];
    if (fd >= 0 && sum_of(fd, &crc, &n) == 0) {
        sum_block(block, crc, n);
        if (pwrite(fd, block, sizeof block, 0) == (ssize_t)sizeof block) {
            close(fd);
            return 0;
        }
    }
    snprintf(err, errlen, "file %s: cannot write its checksum: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

int h5io_sum_check(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(err, errlen, "file %s: %s", path, strerror(errno));
        return -1;
    }
    char block[SUM_BLOCK + 1] = {0};
    ssize_t got = pread(fd, block, SUM_BLOCK, 0);
    if (got < (ssize_t)strlen(SUM_MAGIC) || memcmp(block, SUM_MAGIC, strlen(SUM_MAGIC)) != 0) {
        close(fd); /* no checksum: a file of another writer (the PyTorch converter, h5py), read as it is */
        return 0;
    }
    unsigned want_crc = 0;
    unsigned long long want_n = 0;
    int fields = sscanf(block + strlen(SUM_MAGIC), "crc32 %8x bytes %llu", &want_crc, &want_n);
    if (fields == 2) { /* the block is exactly what h5io_sum_stamp writes, its NUL bytes included */
        char expect[SUM_BLOCK];
        sum_block(expect, want_crc, want_n);
        if (memcmp(expect, block, SUM_BLOCK) != 0)
            fields = 0;
    }
    uint32_t crc = 0;
    uint64_t n = 0;
    int rc = got == SUM_BLOCK && fields == 2 ? sum_of(fd, &crc, &n) : 0;
    close(fd);
    const char *advice = "(the file is corrupted, or was changed after occkd wrote it; to read a file changed on "
                         "purpose, clear its first 512 bytes: dd if=/dev/zero of=FILE bs=512 count=1 conv=notrunc)";
    if (got != SUM_BLOCK || fields != 2)
        snprintf(err, errlen, "file %s: its checksum header (the first 512 bytes) is damaged or cut short %s", path,
                 advice);
    else if (rc != 0)
        snprintf(err, errlen, "file %s: cannot read: %s", path, strerror(errno));
    else if (n != want_n)
        snprintf(err, errlen,
                 "file %s: %llu bytes after its checksum header, which says %llu (truncated or extended) %s", path,
                 (unsigned long long)n, want_n, advice);
    else if (crc != want_crc)
        snprintf(err, errlen, "file %s: checksum mismatch over the whole file %s", path, advice);
    else
        return 0;
    return -1;
}

hid_t h5io_create(const char *path, char *tmp, size_t tmplen, char *err, size_t errlen)
{
    if (h5io_make_parents(path, err, errlen))
        return -1;
    if ((size_t)snprintf(tmp, tmplen, "%s.tmp", path) >= tmplen) {
        snprintf(err, errlen, "file %s: path too long", path);
        return -1;
    }
    hid_t fapl = make_fapl(1), fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_userblock(fcpl, SUM_BLOCK); /* h5io_commit writes the checksum there */
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl);
    char why[256];
    if (f < 0)
        h5io_last_error(why, sizeof why);
    H5Pclose(fcpl);
    H5Pclose(fapl);
    if (f < 0)
        snprintf(err, errlen, "file %s: cannot create: %s", tmp, why);
    return f;
}

static int fsync_path(const char *path, int dir)
{
    int fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static void parent_of(const char *path, char *dir, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, n, ".");
    else if (slash == path)
        snprintf(dir, n, "/");
    else
        snprintf(dir, n, "%.*s", (int)(slash - path), path);
}

/* Fault injection for the crash tests: with OCCKD_FAULT_KILL_COMMIT=N in the
 * environment, the process kills itself (SIGKILL, no clean-up) at its N-th
 * commit, after the temporary file is complete and before the rename. */
static void fault_before_rename(void)
{
    static int commits; /* per process; only ever counts when the variable is set */
    const char *v = getenv("OCCKD_FAULT_KILL_COMMIT");
    if (v && ++commits == atoi(v)) {
        fprintf(stderr, "occkd: fault injection: killed before renaming commit %d into place\n", commits);
        fflush(stderr);
        raise(SIGKILL);
    }
}

int h5io_commit(hid_t file, const char *tmp, const char *path, char *err, size_t errlen)
{
    herr_t a = H5Fflush(file, H5F_SCOPE_LOCAL);
    herr_t b = H5Fclose(file);
    if (a < 0 || b < 0) {
        char why[256];
        h5io_last_error(why, sizeof why);
        snprintf(err, errlen, "file %s: writing failed: %s", tmp, why);
        unlink(tmp);
        return -1;
    }
    if (h5io_sum_stamp(tmp, err, errlen) != 0) {
        unlink(tmp);
        return -1;
    }
    if (fsync_path(tmp, 0) != 0) {
        snprintf(err, errlen, "file %s: fsync failed: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    fault_before_rename();
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "file %s: cannot rename to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    char dir[4096];
    parent_of(path, dir, sizeof dir);
    if (fsync_path(dir, 1) != 0) {
        snprintf(err, errlen, "folder %s: fsync failed: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

void h5io_abandon(hid_t file, const char *tmp)
{
    H5Fclose(file);
    H5Eclear2(H5E_DEFAULT);
    unlink(tmp);
}

hid_t h5io_open(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "file %s: %s", path, strerror(errno));
        return -1;
    }
    if (h5io_sum_check(path, err, errlen) != 0)
        return -1;
    H5Quiet q;
    h5io_quiet(&q);
    hid_t fapl = make_fapl(0);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    char why[256];
    int sum = f < 0 ? h5io_last_error(why, sizeof why) : 0; /* before any other call clears the stack */
    H5Pclose(fapl);
    h5io_loud(&q);
    if (f < 0 && sum)
        snprintf(err, errlen, "file %s: checksum mismatch in the file's metadata (the file is corrupted)", path);
    else if (f < 0)
        snprintf(err, errlen, "file %s: not a readable HDF5 file (truncated or corrupted?): %s", path, why);
    return f;
}

/* ------------------------------------------------------------- datasets */

void h5io_shape_text(int ndims, const hsize_t *dims, char *buf, size_t n)
{
    size_t used = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < ndims && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
    if (used < n)
        snprintf(buf + used, n - used, ")");
}

/* Chunk dims: the whole array, halved along the leading axes until a chunk
 * fits CHUNK_BYTES; zero-length axes get chunks of 1. */
static void chunk_dims(int ndims, const hsize_t *dims, size_t elem, hsize_t *chunk)
{
    for (int i = 0; i < ndims; i++)
        chunk[i] = dims[i] ? dims[i] : 1;
    for (;;) {
        size_t bytes = elem;
        for (int i = 0; i < ndims; i++)
            bytes *= (size_t)chunk[i];
        if (bytes <= CHUNK_BYTES)
            return;
        int i = 0;
        while (i < ndims - 1 && chunk[i] == 1)
            i++;
        if (chunk[i] == 1)
            return;
        chunk[i] = (chunk[i] + 1) / 2;
    }
}

int h5io_write(hid_t loc, const char *name, hid_t mem_type, hid_t file_type, int ndims, const hsize_t *dims,
               const void *data, const char *file, char *err, size_t errlen)
{
    hsize_t maxdims[8], chunk[8];
    size_t count = 1;
    for (int i = 0; i < ndims; i++) {
        maxdims[i] = dims[i] ? dims[i] : H5S_UNLIMITED; /* a chunk of 1 must fit a zero-length axis */
        count *= (size_t)dims[i];
    }
    if (!file_type)
        file_type = mem_type;
    chunk_dims(ndims, dims, H5Tget_size(file_type), chunk);
    hid_t space = H5Screate_simple(ndims, dims, maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, ndims, chunk);
    H5Pset_fletcher32(dcpl);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t ds = H5Dcreate2(loc, name, file_type, space, lcpl, dcpl, H5P_DEFAULT);
    herr_t rc = ds < 0 ? -1 : 0;
    if (ds >= 0 && count > 0)
        rc = H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    char why[256];
    if (rc < 0)
        h5io_last_error(why, sizeof why);
    if (ds >= 0)
        H5Dclose(ds);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(space);
    if (rc < 0) {
        snprintf(err, errlen, "file %s: cannot write dataset %s: %s", file, name, why);
        return -1;
    }
    return 0;
}

int h5io_exists(hid_t loc, const char *name)
{
    char part[1024];
    size_t len = strlen(name);
    if (len == 0 || len >= sizeof part)
        return 0;
    for (size_t i = 0; i <= len; i++) {
        if (name[i] != '/' && name[i] != '\0')
            continue;
        memcpy(part, name, i);
        part[i] = '\0';
        if (i > 0 && H5Lexists(loc, part, H5P_DEFAULT) <= 0) {
            H5Eclear2(H5E_DEFAULT);
            return 0;
        }
    }
    return 1;
}

int h5io_shape(hid_t loc, const char *name, int max, int *ndims, hsize_t *dims, const char *file, const char *what,
               char *err, size_t errlen)
{
    if (!h5io_exists(loc, name)) {
        snprintf(err, errlen, "file %s: dataset %s is missing", file, what);
        return -1;
    }
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (ds < 0) {
        h5io_read_failure(file, what, err, errlen);
        return -1;
    }
    hid_t space = H5Dget_space(ds);
    int nd = H5Sget_simple_extent_ndims(space);
    int rc = 0;
    if (nd < 0 || nd > max) {
        snprintf(err, errlen, "file %s: dataset %s has %d dimensions, at most %d expected", file, what, nd, max);
        rc = -1;
    } else {
        H5Sget_simple_extent_dims(space, dims, NULL);
        *ndims = nd;
    }
    H5Sclose(space);
    H5Dclose(ds);
    return rc;
}

/* The position of filter `id` in a dataset's pipeline, or -1; *sized (may
 * be NULL) is set to 1 when every filter of the pipeline keeps the data's
 * size (Fletcher-32 adds its 4 bytes, shuffling reorders), so that a
 * chunk's stored size is known exactly. */
static int filter_index(hid_t dcpl, H5Z_filter_t id, int *sized)
{
    int n = H5Pget_nfilters(dcpl), at = -1;
    if (sized)
        *sized = n >= 0 && n <= 32;
    for (int k = 0; k < n && k < 32; k++) {
        unsigned flags = 0;
        size_t nvals = 0;
        H5Z_filter_t f = H5Pget_filter2(dcpl, (unsigned)k, &flags, &nvals, NULL, 0, NULL, NULL);
        if (f == id && at < 0)
            at = k;
        if (sized && f != H5Z_FILTER_FLETCHER32 && f != H5Z_FILTER_SHUFFLE)
            *sized = 0;
    }
    return at;
}

/* The chunk index (a version 1 B-tree in 1.8-format files) has no checksum,
 * and HDF5 1.10 trusts the stored sizes it gives: gigabytes are allocated
 * inside H5Dread (tests/fuzz/regressions/checkpoint/hdf5_chunk_read_4gb);
 * under the Fletcher-32 filter, fewer bytes than its 4 are subtracted
 * unchecked and read far past the chunk (hdf5_fletcher32_chunk_under_4_bytes);
 * a chunk shorter than its elements, its filter marked as skipped, is copied
 * out as if it were whole (hdf5_chunk_shorter_than_its_elements). So before
 * a dataset is read, every chunk's stored size is checked: where the
 * pipeline only checksums (occkd's own files), it must be exactly the
 * elements' bytes plus the checksum where one applies; otherwise (files of
 * other writers, compressed) at most what the elements can take (filters
 * add a few bytes; compression of random bytes a little) and at least the
 * checksum. */
int h5io_chunks_plausible(hid_t ds)
{
    hid_t dcpl = H5Dget_create_plist(ds), type = H5Dget_type(ds);
    int ok = 1;
    if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
        hsize_t chunk[8];
        int nd = H5Pget_chunk(dcpl, 8, chunk);
        hsize_t raw = H5Tget_size(type), n = 0;
        for (int i = 0; i < nd; i++)
            raw *= chunk[i];
        hsize_t limit = raw + raw / 64 + 1024;
        int sized = 0, fletcher = filter_index(dcpl, H5Z_FILTER_FLETCHER32, &sized);
        hid_t space = H5Dget_space(ds);
        ok = nd > 0 && space >= 0 && H5Dget_num_chunks(ds, space, &n) >= 0;
        for (hsize_t i = 0; ok && i < n; i++) {
            hsize_t size = 0;
            unsigned skipped = 0; /* bit k: filter k was not applied to this chunk */
            ok = H5Dget_chunk_info(ds, space, i, NULL, &skipped, NULL, &size) >= 0;
            int summed = fletcher >= 0 && !(skipped >> fletcher & 1);
            if (ok && sized)
                ok = size == raw + (summed ? 4 : 0);
            else if (ok)
                ok = size <= limit && (!summed || size >= 4);
        }
        if (space >= 0)
            H5Sclose(space);
    }
    H5Tclose(type);
    H5Pclose(dcpl);
    return ok;
}

int h5io_read(hid_t loc, const char *name, hid_t mem_type, int ndims, const hsize_t *dims, void *data,
              const char *file, const char *what, char *err, size_t errlen)
{
    int nd;
    hsize_t got[8];
    if (h5io_shape(loc, name, 8, &nd, got, file, what, err, errlen))
        return -1;
    int same = nd == ndims;
    size_t count = 1;
    for (int i = 0; same && i < nd; i++) {
        same = got[i] == dims[i];
        count *= (size_t)dims[i];
    }
    if (!same) {
        char a[128], b[128];
        h5io_shape_text(nd, got, a, sizeof a);
        h5io_shape_text(ndims, dims, b, sizeof b);
        snprintf(err, errlen, "file %s: dataset %s has shape %s in the file, expected %s", file, what, a, b);
        return -1;
    }
    if (count == 0)
        return 0;
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (ds >= 0 && !h5io_chunks_plausible(ds)) {
        H5Dclose(ds);
        H5Eclear2(H5E_DEFAULT);
        snprintf(err, errlen,
                 "file %s: dataset %s: its chunk index is corrupted (a chunk's stored size does not fit its elements "
                 "and checksum)",
                 file, what);
        return -1;
    }
    herr_t rc = ds < 0 ? -1 : H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (rc < 0)
        h5io_read_failure(file, what, err, errlen); /* before H5Dclose clears the error stack */
    if (ds >= 0)
        H5Dclose(ds);
    return rc < 0 ? -1 : 0;
}

/* ------------------------------------------------------------- attributes */

static int attr_write(hid_t obj, const char *name, hid_t type, const void *value)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, type, value);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(space);
    return rc < 0 ? -1 : 0;
}

/* Strings are written fixed-length, sized to the value. Variable-length
 * strings live in HDF5's global heap, which carries no checksum: a damaged
 * heap object makes HDF5 itself copy 2^48 bytes or loop forever
 * (tests/fuzz/regressions/checkpoint/hdf5_global_heap_*), so occkd neither
 * writes nor reads them. Everything else in a file written in the 1.8
 * format is checksummed. */
int h5io_attr_str(hid_t obj, const char *name, const char *value)
{
    const char *v = value ? value : "";
    size_t n = strlen(v);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, n ? n : 1);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    H5Tset_cset(t, H5T_CSET_UTF8);
    int rc = attr_write(obj, name, t, v); /* an empty string: its one byte, the NUL */
    H5Tclose(t);
    return rc;
}

int h5io_attr_i64(hid_t obj, const char *name, int64_t value) { return attr_write(obj, name, H5T_NATIVE_INT64, &value); }
int h5io_attr_u64(hid_t obj, const char *name, uint64_t value)
{
    return attr_write(obj, name, H5T_NATIVE_UINT64, &value);
}
int h5io_attr_f64(hid_t obj, const char *name, double value) { return attr_write(obj, name, H5T_NATIVE_DOUBLE, &value); }

/* Opens attribute `name` of obj, or sets a message. */
static hid_t attr_open(hid_t obj, const char *name, const char *file, const char *where, char *err, size_t errlen)
{
    htri_t e = H5Aexists(obj, name);
    if (e <= 0) {
        if (e < 0)
            h5io_read_failure(file, where, err, errlen);
        else
            snprintf(err, errlen, "file %s: attribute %s of %s is missing", file, name, where);
        return -1;
    }
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        h5io_read_failure(file, where, err, errlen);
    return a;
}

int h5io_get_str_alloc(hid_t obj, const char *name, char **out, const char *file, const char *where, char *err,
                       size_t errlen)
{
    *out = NULL;
    hid_t a = attr_open(obj, name, file, where, err, errlen);
    if (a < 0)
        return -1;
    hid_t ft = H5Aget_type(a), space = H5Aget_space(a);
    int rc = -1;
    if (H5Tget_class(ft) != H5T_STRING || H5Sget_simple_extent_npoints(space) != 1) {
        snprintf(err, errlen, "file %s: attribute %s of %s is not a string", file, name, where);
    } else if (H5Tis_variable_str(ft) != 0) {
        /* never read: see h5io_attr_str */
        snprintf(err, errlen,
                 "file %s: attribute %s of %s is a variable-length string; occkd reads fixed-length strings only "
                 "(a damaged variable-length string can crash the HDF5 library). Files written by h5py: store "
                 "strings as numpy.bytes_",
                 file, name, where);
    } else {
        /* the file's character set: HDF5 converts no strings between ASCII and UTF-8 */
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_cset(mt, H5Tget_cset(ft));
        size_t sz = H5Tget_size(ft);
        char *fixed = calloc(sz + 2, 1);
        H5Tset_size(mt, sz + 1);
        if (fixed && H5Aread(a, mt, fixed) >= 0) {
            *out = fixed;
            fixed = NULL;
            rc = 0;
        } else {
            h5io_read_failure(file, where, err, errlen);
        }
        free(fixed);
        H5Tclose(mt);
    }
    H5Sclose(space);
    H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

int h5io_get_str(hid_t obj, const char *name, char *out, size_t n, const char *file, const char *where, char *err,
                 size_t errlen)
{
    char *s;
    if (h5io_get_str_alloc(obj, name, &s, file, where, err, errlen))
        return -1;
    snprintf(out, n, "%s", s);
    free(s);
    return 0;
}

static int attr_read_num(hid_t obj, const char *name, hid_t mem_type, void *out, const char *file,
                         const char *where, char *err, size_t errlen)
{
    hid_t a = attr_open(obj, name, file, where, err, errlen);
    if (a < 0)
        return -1;
    hid_t ft = H5Aget_type(a);
    H5T_class_t cls = H5Tget_class(ft);
    int rc = -1;
    if (cls != H5T_INTEGER && cls != H5T_FLOAT)
        snprintf(err, errlen, "file %s: attribute %s of %s is not a number", file, name, where);
    else if (H5Aread(a, mem_type, out) < 0)
        h5io_read_failure(file, where, err, errlen);
    else
        rc = 0;
    H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

int h5io_get_i64(hid_t obj, const char *name, int64_t *out, const char *file, const char *where, char *err,
                 size_t errlen)
{
    return attr_read_num(obj, name, H5T_NATIVE_INT64, out, file, where, err, errlen);
}

int h5io_get_u64(hid_t obj, const char *name, uint64_t *out, const char *file, const char *where, char *err,
                 size_t errlen)
{
    return attr_read_num(obj, name, H5T_NATIVE_UINT64, out, file, where, err, errlen);
}

int h5io_get_f64(hid_t obj, const char *name, double *out, const char *file, const char *where, char *err,
                 size_t errlen)
{
    return attr_read_num(obj, name, H5T_NATIVE_DOUBLE, out, file, where, err, errlen);
}

/* ------------------------------------------------------------- formats */

int h5io_check_format(hid_t obj, const char *accept1, const char *accept2, const char *kind, const char *file,
                      char *err, size_t errlen)
{
    char *fmt = NULL;
    int present = H5Aexists(obj, "format") > 0;
    if (present && h5io_get_str_alloc(obj, "format", &fmt, file, "/", err, errlen) == 0 &&
        (strcmp(fmt, accept1) == 0 || (accept2 && strcmp(fmt, accept2) == 0))) {
        free(fmt);
        return 0;
    }
    H5Eclear2(H5E_DEFAULT);
    char also[160] = "";
    if (accept2)
        snprintf(also, sizeof also, " or '%s'", accept2);
    if (!present)
        snprintf(err, errlen, "file %s: not an occkd %s (no 'format' attribute; expected '%s'%s)", file, kind, accept1,
                 also);
    else if (!fmt) {
        char why[512];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "%s (expected format '%s'%s; a file of an earlier occkd build: regenerate it)",
                 why, accept1, also);
    }
    else
        snprintf(err, errlen, "file %s: not an occkd %s of this version (format '%s', expected '%s'%s)", file, kind,
                 fmt, accept1, also);
    free(fmt);
    return -1;
}

/* ------------------------------------------------------------- whole files */

int h5io_save(const char *path, H5ioFill fill, const void *ctx, char *err, size_t errlen)
{
    H5Quiet q;
    h5io_quiet(&q);
    char tmp[4096];
    int rc = -1;
    hid_t f = h5io_create(path, tmp, sizeof tmp, err, errlen);
    if (f >= 0 && fill(f, tmp, ctx, err, errlen))
        h5io_abandon(f, tmp);
    else if (f >= 0)
        rc = h5io_commit(f, tmp, path, err, errlen);
    h5io_loud(&q);
    return rc;
}

int h5io_load(const char *path, H5ioReader read, void *ctx, char *err, size_t errlen)
{
    H5Quiet q;
    h5io_quiet(&q);
    int rc = -1;
    hid_t f = h5io_open(path, err, errlen);
    if (f >= 0) {
        rc = read(f, path, ctx, err, errlen) ? -1 : 0;
        H5Fclose(f);
    }
    H5Eclear2(H5E_DEFAULT);
    h5io_loud(&q);
    return rc;
}

/* ------------------------------------------------------------- attribute lists */

int h5io_write_attrs(hid_t obj, const H5ioField *fields, int n, const void *record)
{
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *at = (const char *)record + fields[i].offset;
        switch (fields[i].kind) {
        case H5IO_STR: rc |= h5io_attr_str(obj, fields[i].name, at); break;
        case H5IO_F64: rc |= h5io_attr_f64(obj, fields[i].name, *(const double *)at); break;
        case H5IO_I64: rc |= h5io_attr_i64(obj, fields[i].name, *(const int64_t *)at); break;
        case H5IO_U64: rc |= h5io_attr_u64(obj, fields[i].name, *(const uint64_t *)at); break;
        case H5IO_INT: rc |= h5io_attr_i64(obj, fields[i].name, *(const int *)at); break;
        }
    }
    return rc ? -1 : 0;
}

int h5io_read_attrs(hid_t obj, const H5ioField *fields, int n, void *record, const char *file, const char *where,
                    char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        const H5ioField *f = &fields[i];
        char *at = (char *)record + f->offset;
        int rc = f->kind == H5IO_STR ? h5io_get_str(obj, f->name, at, f->size, file, where, err, errlen)
                 : f->kind == H5IO_F64 ? attr_read_num(obj, f->name, H5T_NATIVE_DOUBLE, at, file, where, err, errlen)
                 : f->kind == H5IO_U64 ? attr_read_num(obj, f->name, H5T_NATIVE_UINT64, at, file, where, err, errlen)
                 : f->kind == H5IO_INT ? attr_read_num(obj, f->name, H5T_NATIVE_INT, at, file, where, err, errlen)
                                       : attr_read_num(obj, f->name, H5T_NATIVE_INT64, at, file, where, err, errlen);
        if (rc)
            return -1;
    }
    return 0;
}
