/* cache.c - the HDF5 cache of a decoded data set (serial HDF5, one writer).
 *
 * Layout (readable with h5dump / h5py without occkd):
 *   /images            uint8 (n, channels, side, side), contiguous, so that a
 *                      sample is one run of bytes a loader reads directly
 *   /split             uint8 (n): 0 train, 1 val, 2 test
 *   /names             fixed-length strings (n): source file or row id
 *   /labels/expression int32 (n)   } each only when the source has it;
 *   /labels/gender     int32 (n)   } -1 where a sample lacks it
 *   /labels/class      int32 (n)   }
 *   /labels/age        float32 (n), NaN where unknown
 *   /labels/soft       float32 (n, k): FER+ vote distributions
 *   /class_names       fixed-length strings (classes of image folders)
 * Root attributes: format, options (the canonical options text), fingerprint
 * (hash of the source files' names, sizes and modification times, hex),
 * source_files, source_summary (the first files with sizes and times),
 * source_desc, side, channels, n_classes[4], dropped, bad, and pixel_sum /
 * pixel_sum_sq (3 x 4: exact sums of the pixel values and their squares per
 * split and channel, for normalisation without a pass over the images).
 *
 * The images are written in runs of samples as they are fetched from a
 * PixelSource, so writing a cache needs memory for one run, not for the data
 * set; a reader keeps the labels in memory and streams the images (see
 * dataset_read_sample).
 *
 * A cache is valid when format, options and fingerprint all match. It is
 * written to <path>.tmp.<pid> and renamed over <path>, so readers never see
 * a half-written file. With several ranks only rank 0 writes (dataset.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data/internal.h"

#define CACHE_FORMAT "occkd-data-cache 3" /* 3: checksums (Fletcher-32 on the tables, CRC-32 per image) */
#define RUN_BYTES ((size_t)8 << 20) /* images written per H5Dwrite */

static const char *const label_names[ATTR_COUNT] = {"expression", "gender", "age_unused", "class"};

/* Runs HDF5 calls without its automatic error printing (we report ourselves). */
typedef struct {
    H5E_auto2_t func;
    void *data;
} QuietH5;

static void h5_quiet(QuietH5 *q)
{
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void h5_loud(const QuietH5 *q) { H5Eset_auto2(H5E_DEFAULT, q->func, q->data); }

/* ---------------------------------------------------------------- write */

static int put_attr_str(hid_t loc, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(value) + 1);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, t, value) < 0;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
    return rc ? -1 : 0;
}

static int put_attr_i64(hid_t loc, const char *name, const int64_t *v, hsize_t n)
{
    hid_t s = H5Screate_simple(1, &n, NULL);
    hid_t a = H5Acreate2(loc, name, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, H5T_NATIVE_INT64, v) < 0;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(s);
    return rc ? -1 : 0;
}

static int put_data(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, int rank, const hsize_t *dims,
                    const void *data)
{
    hid_t s = H5Screate_simple(rank, dims, NULL);
    /* checksummed (a flipped byte is refused on reading): the filter needs a
     * chunked layout, one chunk per table */
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    int empty = 0;
    for (int i = 0; i < rank; i++)
        empty |= dims[i] == 0;
    if (!empty) {
        H5Pset_chunk(dcpl, rank, dims);
        H5Pset_fletcher32(dcpl);
    }
    hid_t d = H5Dcreate2(loc, name, file_type, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    int rc = d < 0 || H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0;
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(s);
    return rc ? -1 : 0;
}

/* Strings as one fixed-length string dataset (width of the longest + 1). */
static int put_strings(hid_t loc, const char *name, char *const *v, int n)
{
    size_t w = 1;
    for (int i = 0; i < n; i++)
        if (v[i] && strlen(v[i]) + 1 > w)
            w = strlen(v[i]) + 1;
    char *buf = calloc(n > 0 ? (size_t)n : 1, w);
    if (!buf)
        return -1;
    for (int i = 0; i < n; i++)
        if (v[i])
            memcpy(buf + (size_t)i * w, v[i], strlen(v[i]));
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, w);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    hsize_t dims[1] = {(hsize_t)n};
    int rc = put_data(loc, name, t, t, 1, dims, buf);
    H5Tclose(t);
    free(buf);
    return rc;
}

/* /images, written run by run from src; the pixel sums of each split on the way. */
static int write_images(hid_t f, const Dataset *d, const PixelSource *src, uint64_t sum[3][4], uint64_t sq[3][4],
                        uint32_t *crc, char *err, size_t errlen)
{
    hsize_t dims[4] = {(hsize_t)d->n, (hsize_t)d->channels, (hsize_t)d->side, (hsize_t)d->side};
    size_t np = (size_t)d->side * d->side, sz = (size_t)d->channels * np;
    hid_t fs = H5Screate_simple(4, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
    hid_t ds = H5Dcreate2(f, "images", H5T_STD_U8LE, fs, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    size_t run = RUN_BYTES / sz > 0 ? RUN_BYTES / sz : 1;
    uint8_t *buf = malloc(sz * run);
    int rc = ds < 0 || !buf ? -1 : 0;
    if (!buf)
        data_err(err, errlen, "data: out of memory for a run of %zu images", run);
    for (int64_t i0 = 0; !rc && i0 < d->n; i0 += (int64_t)run) {
        int64_t m = d->n - i0 < (int64_t)run ? d->n - i0 : (int64_t)run;
        for (int64_t k = 0; !rc && k < m; k++) {
            uint8_t *px = buf + (size_t)k * sz;
            rc = src->get(src->ctx, i0 + k, px, err, errlen);
            if (!rc)
                crc[i0 + k] = (uint32_t)crc32(0L, px, (uInt)sz);
            int split = d->split[i0 + k];
            for (int c = 0; !rc && split < 3 && c < d->channels; c++) {
                uint64_t a = 0, a2 = 0;
                for (size_t q = 0; q < np; q++) {
                    a += px[c * np + q];
                    a2 += (uint64_t)px[c * np + q] * px[c * np + q];
                }
                sum[split][c] += a;
                sq[split][c] += a2;
            }
        }
        if (rc)
            break;
        hsize_t start[4] = {(hsize_t)i0, 0, 0, 0}, count[4] = {(hsize_t)m, dims[1], dims[2], dims[3]};
        hid_t ms = H5Screate_simple(4, count, NULL);
        rc = H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
                     H5Dwrite(ds, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, buf) < 0
                 ? -1
                 : 0;
        H5Sclose(ms);
        if (rc)
            data_err(err, errlen, "HDF5 write of images %lld-%lld failed", (long long)i0, (long long)(i0 + m - 1));
    }
    free(buf);
    if (ds >= 0)
        H5Dclose(ds);
    H5Sclose(fs);
    return rc;
}

static int write_body(hid_t f, const Dataset *d, const char *options, const Fingerprint *fp, const PixelSource *src,
                      char *err, size_t errlen)
{
    hsize_t n = (hsize_t)d->n;
    char hex[32];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)fp->hash);
    int64_t files = fp->files, dropped = d->dropped, bad = d->bad, side = d->side, ch = d->channels;
    int64_t ncl[ATTR_COUNT];
    for (int a = 0; a < ATTR_COUNT; a++)
        ncl[a] = d->n_classes[a];
    uint64_t sum[3][4] = {{0}}, sq[3][4] = {{0}};
    uint32_t *crc = malloc((n ? n : 1) * sizeof *crc);
    if (!crc) {
        data_err(err, errlen, "data: out of memory for the images' checksums");
        return -1;
    }
    if (write_images(f, d, src, sum, sq, crc, err, errlen) ||
        put_data(f, "image_crc32", H5T_STD_U32LE, H5T_NATIVE_UINT32, 1, &n, crc)) {
        free(crc);
        return -1;
    }
    free(crc);
    int64_t sum_v[12], sq_v[12];
    for (int k = 0; k < 12; k++) {
        sum_v[k] = (int64_t)sum[k / 4][k % 4];
        sq_v[k] = (int64_t)sq[k / 4][k % 4];
    }
    int rc = put_attr_str(f, "format", CACHE_FORMAT) || put_attr_str(f, "options", options) ||
             put_attr_str(f, "fingerprint", hex) || put_attr_str(f, "source_summary", fp->summary) ||
             put_attr_str(f, "source_desc", d->source_desc) || put_attr_i64(f, "source_files", &files, 1) ||
             put_attr_i64(f, "side", &side, 1) || put_attr_i64(f, "channels", &ch, 1) ||
             put_attr_i64(f, "n_classes", ncl, ATTR_COUNT) || put_attr_i64(f, "dropped", &dropped, 1) ||
             put_attr_i64(f, "bad", &bad, 1) || put_attr_i64(f, "pixel_sum", sum_v, 12) ||
             put_attr_i64(f, "pixel_sum_sq", sq_v, 12);
    rc = rc || put_data(f, "split", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, &n, d->split);
    rc = rc || put_strings(f, "names", d->name, d->n);
    if (!rc && d->class_name)
        rc = put_strings(f, "class_names", d->class_name, d->n_classes[ATTR_CLASS]);
    hid_t g = rc ? -1 : H5Gcreate2(f, "labels", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return -1;
    for (int a = 0; a < ATTR_COUNT && !rc; a++)
        if (d->attr_class[a])
            rc = put_data(g, label_names[a], H5T_STD_I32LE, H5T_NATIVE_INT, 1, &n, d->attr_class[a]);
    if (!rc && d->age)
        rc = put_data(g, "age", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, &n, d->age);
    if (!rc && d->soft) {
        hsize_t sd[2] = {n, (hsize_t)d->soft_k};
        rc = put_data(g, "soft", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, sd, d->soft);
    }
    H5Gclose(g);
    return rc ? -1 : 0;
}

/* The PixelSource of a data set held in memory. */
static int memory_get(void *ctx, int64_t i, uint8_t *dst, char *err, size_t errlen)
{
    const Dataset *d = ctx;
    size_t sz = (size_t)d->channels * d->side * d->side;
    memcpy(dst, d->pixels + (size_t)i * sz, sz);
    return 0;
}

int cache_write(const char *path, const Dataset *d, const char *options, const Fingerprint *fp, const PixelSource *src,
                char *err, size_t errlen)
{
    char tmp[1300], why[512] = "";
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    PixelSource mem = {(void *)d, memory_get};
    QuietH5 q;
    h5_quiet(&q);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    int rc = f < 0 ? -1 : write_body(f, d, options, fp, src ? src : &mem, why, sizeof why);
    if (f >= 0 && H5Fclose(f) < 0)
        rc = -1;
    h5_loud(&q);
    if (!rc) { /* the data must be on disk before the name points at it */
        int fd = open(tmp, O_RDONLY);
        rc = fd < 0 || fsync(fd) != 0;
        if (fd >= 0)
            close(fd);
    }
    if (rc || rename(tmp, path)) {
        data_err(err, errlen, "%s: cannot write the data cache (%s)", path,
                 rc ? (why[0] ? why : "HDF5 write failed") : strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

/* ----------------------------------------------------------------- read */

static int get_attr_str(hid_t loc, const char *name, char *buf, size_t len)
{
    buf[0] = '\0';
    if (H5Aexists(loc, name) <= 0)
        return -1;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    size_t sz = H5Tget_size(t);
    int rc = -1;
    if (H5Tget_class(t) == H5T_STRING && !H5Tis_variable_str(t) && sz < len) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, sz);
        rc = H5Aread(a, mt, buf) < 0 ? -1 : 0;
        buf[sz] = '\0';
        H5Tclose(mt);
    }
    H5Tclose(t);
    H5Aclose(a);
    return rc;
}

static int get_attr_i64(hid_t loc, const char *name, int64_t *v, hsize_t n)
{
    if (H5Aexists(loc, name) <= 0)
        return -1;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t s = H5Aget_space(a);
    int rc = H5Sget_simple_extent_npoints(s) != (hssize_t)n || H5Aread(a, H5T_NATIVE_INT64, v) < 0;
    H5Sclose(s);
    H5Aclose(a);
    return rc ? -1 : 0;
}

/* Reads a dataset whose element count must be `count`, or NULL if absent. */
static int get_data(hid_t loc, const char *name, hid_t mem_type, size_t elem, size_t count, void **out)
{
    *out = NULL;
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
        return 0;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    hid_t s = H5Dget_space(d);
    int rc = -1;
    if ((size_t)H5Sget_simple_extent_npoints(s) == count) {
        *out = malloc(elem * (count ? count : 1));
        rc = !*out || H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0 ? -1 : 0;
    }
    H5Sclose(s);
    H5Dclose(d);
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

static int get_strings(hid_t loc, const char *name, int n, char ***out)
{
    *out = NULL;
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
        return 0;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    size_t w = H5Tget_size(t);
    int rc = -1;
    char *buf = NULL;
    char **v = calloc((size_t)(n ? n : 1), sizeof(char *));
    if (v && H5Tget_class(t) == H5T_STRING && !H5Tis_variable_str(t) && H5Sget_simple_extent_npoints(s) == n &&
        (buf = malloc((size_t)(n ? n : 1) * w + 1))) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, w);
        H5Tset_strpad(mt, H5T_STR_NULLPAD);
        rc = H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0 ? -1 : 0;
        H5Tclose(mt);
        for (int i = 0; i < n && !rc; i++) {
            v[i] = malloc(w + 1);
            if (!v[i]) {
                rc = -1;
                break;
            }
            memcpy(v[i], buf + (size_t)i * w, w);
            v[i][w] = '\0';
        }
    }
    free(buf);
    H5Tclose(t);
    H5Sclose(s);
    H5Dclose(d);
    if (rc) {
        free_names(v, n);
        return -1;
    }
    *out = v;
    return 0;
}

/* Where the contiguous /images (n, channels, side, side) starts in the file. */
static int images_offset(hid_t f, const Dataset *d, int64_t *offset)
{
    if (H5Lexists(f, "images", H5P_DEFAULT) <= 0)
        return -1;
    hid_t ds = H5Dopen2(f, "images", H5P_DEFAULT);
    hid_t sp = H5Dget_space(ds), dcpl = H5Dget_create_plist(ds), t = H5Dget_type(ds);
    hsize_t dims[4] = {0, 0, 0, 0};
    int ok = H5Sget_simple_extent_ndims(sp) == 4 && H5Sget_simple_extent_dims(sp, dims, NULL) == 4 &&
             dims[0] == (hsize_t)d->n && dims[1] == (hsize_t)d->channels && dims[2] == (hsize_t)d->side &&
             dims[3] == (hsize_t)d->side && H5Pget_layout(dcpl) == H5D_CONTIGUOUS && H5Tget_size(t) == 1;
    haddr_t a = ok ? H5Dget_offset(ds) : HADDR_UNDEF;
    if (ok && d->n == 0)
        a = 0;
    H5Tclose(t);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Dclose(ds);
    if (!ok || a == HADDR_UNDEF)
        return -1;
    *offset = (int64_t)a;
    return 0;
}

static int read_body(hid_t f, Dataset *d)
{
    int64_t side, ch, n_cl[ATTR_COUNT];
    if (get_attr_i64(f, "side", &side, 1) || get_attr_i64(f, "channels", &ch, 1) ||
        get_attr_i64(f, "n_classes", n_cl, ATTR_COUNT) || get_attr_i64(f, "dropped", &d->dropped, 1) ||
        get_attr_i64(f, "bad", &d->bad, 1))
        return -1;
    get_attr_str(f, "source_desc", d->source_desc, sizeof d->source_desc);
    if (H5Lexists(f, "split", H5P_DEFAULT) <= 0)
        return -1;
    hid_t sd = H5Dopen2(f, "split", H5P_DEFAULT), ss = H5Dget_space(sd);
    hssize_t n = H5Sget_simple_extent_npoints(ss);
    H5Sclose(ss);
    H5Dclose(sd);
    if (n < 0 || n > INT32_MAX || side < 1 || ch < 1)
        return -1;
    d->n = (int)n;
    d->side = (int)side;
    d->channels = (int)ch;
    for (int a = 0; a < ATTR_COUNT; a++)
        d->n_classes[a] = (int)n_cl[a];
    if (images_offset(f, d, &d->image_offset))
        return -1;
    int64_t sum_v[12], sq_v[12];
    if (get_attr_i64(f, "pixel_sum", sum_v, 12) || get_attr_i64(f, "pixel_sum_sq", sq_v, 12))
        return -1;
    for (int k = 0; k < 12; k++) {
        d->pixel_sum[k / 4][k % 4] = (uint64_t)sum_v[k];
        d->pixel_sum_sq[k / 4][k % 4] = (uint64_t)sq_v[k];
    }
    d->has_sums = 1;
    void *p;
    if (get_data(f, "image_crc32", H5T_NATIVE_UINT32, sizeof(uint32_t), (size_t)n, &p) || (!p && n > 0))
        return -1;
    d->image_crc = p;
    if (get_data(f, "split", H5T_NATIVE_UINT8, 1, (size_t)n, &p) || !p)
        return -1;
    d->split = p;
    if (get_strings(f, "names", d->n, &d->name) ||
        get_strings(f, "class_names", d->n_classes[ATTR_CLASS], &d->class_name))
        return -1;
    if (H5Lexists(f, "labels", H5P_DEFAULT) <= 0)
        return -1;
    hid_t g = H5Gopen2(f, "labels", H5P_DEFAULT);
    int rc = 0;
    for (int a = 0; a < ATTR_COUNT && !rc; a++) {
        rc = get_data(g, label_names[a], H5T_NATIVE_INT, sizeof(int), (size_t)n, &p);
        d->attr_class[a] = p;
    }
    if (!rc) {
        rc = get_data(g, "age", H5T_NATIVE_FLOAT, sizeof(float), (size_t)n, &p);
        d->age = p;
    }
    if (!rc && H5Lexists(g, "soft", H5P_DEFAULT) > 0) {
        hid_t ds = H5Dopen2(g, "soft", H5P_DEFAULT), sp = H5Dget_space(ds);
        hsize_t dims[2] = {0, 0};
        int ok = H5Sget_simple_extent_ndims(sp) == 2 && H5Sget_simple_extent_dims(sp, dims, NULL) == 2;
        H5Sclose(sp);
        H5Dclose(ds);
        d->soft_k = ok ? (int)dims[1] : 0;
        rc = !ok || get_data(g, "soft", H5T_NATIVE_FLOAT, sizeof(float), (size_t)n * d->soft_k, &p) ? -1 : 0;
        if (!rc && !p)
            rc = -1;
        d->soft = p;
        if (!rc && dims[0] != (hsize_t)n)
            rc = -1;
    }
    H5Gclose(g);
    return rc;
}

int cache_read(const char *path, Dataset *d, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    d->fd = -1;
    QuietH5 q;
    h5_quiet(&q);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    int rc = f < 0 ? -1 : read_body(f, d);
    if (f >= 0)
        H5Fclose(f);
    h5_loud(&q);
    if (rc) {
        dataset_free(d);
        data_err(err, errlen, "%s: cannot read the data cache (missing or malformed datasets)", path);
        return -1;
    }
    /* the file must hold every image the layout promises */
    struct stat st;
    int64_t need = d->image_offset + (int64_t)d->n * d->channels * d->side * d->side;
    d->fd = open(path, O_RDONLY | O_CLOEXEC);
    d->bytes_read = calloc(1, sizeof *d->bytes_read);
    if (d->fd < 0 || fstat(d->fd, &st) || (int64_t)st.st_size < need || !d->bytes_read) {
        data_err(err, errlen, "%s: cannot stream the data cache (%s)", path,
                 d->fd < 0 ? strerror(errno) : "the file is shorter than its images");
        dataset_free(d);
        return -1;
    }
    d->streaming = 1;
    snprintf(d->cache_path, sizeof d->cache_path, "%s", path);
    return 0;
}

int cache_check(const char *path, const char *options, const Fingerprint *fp, char *why, size_t whylen)
{
    struct stat st;
    if (stat(path, &st)) {
        data_err(why, whylen, "no cache yet: building");
        return 0;
    }
    QuietH5 q;
    h5_quiet(&q);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    int valid = 0;
    if (f < 0) {
        data_err(why, whylen, "cache unreadable: rebuilding");
    } else {
        char fmt[64], opt[3000], hex[32], mine[32];
        snprintf(mine, sizeof mine, "%016llx", (unsigned long long)fp->hash);
        if (get_attr_str(f, "format", fmt, sizeof fmt) || strcmp(fmt, CACHE_FORMAT))
            data_err(why, whylen, "cache has format '%s', not '%s': rebuilding", fmt, CACHE_FORMAT);
        else if (get_attr_str(f, "options", opt, sizeof opt) || strcmp(opt, options))
            data_err(why, whylen, "cache was built with other options or sizes: rebuilding");
        else if (get_attr_str(f, "fingerprint", hex, sizeof hex) || strcmp(hex, mine))
            data_err(why, whylen, "cache was built from different source files (sizes or times changed): rebuilding");
        else
            valid = 1;
        H5Fclose(f);
    }
    h5_loud(&q);
    return valid;
}
