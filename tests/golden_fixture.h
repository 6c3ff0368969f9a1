/* golden_fixture.h - reading the PyTorch fixtures of test_golden (HDF5
 * files written by tests/golden/make_fixtures.py) and comparing occkd's
 * numbers with them, each comparison printed and failed above its
 * tolerance. */
#ifndef OCCKD_TESTS_GOLDEN_FIXTURE_H
#define OCCKD_TESTS_GOLDEN_FIXTURE_H

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

/* Denominator floor, so that an all-zero reference still demands ~zero. */
#define SCALE_FLOOR 1e-8

typedef struct {
    const char *name; /* file name, for messages */
    hid_t h;
} Fixture;

typedef struct {
    int ndims;
    hsize_t dims[8];
    size_t count;
    void *v; /* float or int, as read */
} Blob;

/* ------------------------------------------------------------ HDF5 reading */

static inline int fixture_open(Fixture *fx, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", GOLDEN_DIR, name);
    fx->name = name;
    fx->h = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(fx->h >= 0, "cannot open the fixture %s (run tests/golden/make_fixtures.py?)", path);
    return fx->h >= 0 ? 0 : -1;
}

static inline void fixture_close(Fixture *fx)
{
    if (fx->h >= 0)
        H5Fclose(fx->h);
    fx->h = -1;
}

/* 1 if every component of the absolute path `path` exists in the file. */
static inline int path_exists(hid_t h, const char *path)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *s = buf + 1;; s++) {
        char c = *s;
        if (c == '/' || c == '\0') {
            *s = '\0';
            if (H5Lexists(h, buf, H5P_DEFAULT) <= 0)
                return 0;
            if (c == '\0')
                return 1;
            *s = c;
        }
    }
}

/* Reads the dataset `path` into b->v converted to `mem_type` (4-byte float or
 * int). 0 on success; -1 after a failed CHECK naming the file and dataset. */
static inline int blob_read(const Fixture *fx, const char *path, hid_t mem_type, Blob *b)
{
    memset(b, 0, sizeof *b);
    if (!path_exists(fx->h, path)) {
        CHECK(0, "%s: dataset %s is missing", fx->name, path);
        return -1;
    }
    hid_t d = H5Dopen2(fx->h, path, H5P_DEFAULT);
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    int ok = nd >= 0 && nd <= 8;
    if (ok) {
        H5Sget_simple_extent_dims(sp, b->dims, NULL);
        b->ndims = nd;
        b->count = 1;
        for (int i = 0; i < nd; i++)
            b->count *= (size_t)b->dims[i];
        b->v = malloc((b->count ? b->count : 1) * 4);
        ok = H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, b->v) >= 0;
    }
    if (sp >= 0)
        H5Sclose(sp);
    if (d >= 0)
        H5Dclose(d);
    if (!ok) {
        free(b->v);
        b->v = NULL;
        CHECK(0, "%s: cannot read dataset %s as a float/int array", fx->name, path);
        return -1;
    }
    return 0;
}

static inline int read_f32(const Fixture *fx, const char *path, Blob *b) { return blob_read(fx, path, H5T_NATIVE_FLOAT, b); }
static inline int read_i32(const Fixture *fx, const char *path, Blob *b) { return blob_read(fx, path, H5T_NATIVE_INT, b); }

/* A scalar dataset as a double (the losses are stored in float64). */
static inline int read_scalar(const Fixture *fx, const char *path, double *v)
{
    hid_t d = path_exists(fx->h, path) ? H5Dopen2(fx->h, path, H5P_DEFAULT) : -1;
    int ok = d >= 0 && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
    if (d >= 0)
        H5Dclose(d);
    CHECK(ok, "%s: scalar dataset %s is missing or unreadable", fx->name, path);
    return ok ? 0 : -1;
}

/* Attribute `name` of the object at `obj_path` read as `mem_type`. */
static inline int read_attr(const Fixture *fx, const char *obj_path, const char *name, hid_t mem_type, void *out)
{
    int ok = H5Aexists_by_name(fx->h, obj_path, name, H5P_DEFAULT) > 0;
    hid_t a = ok ? H5Aopen_by_name(fx->h, obj_path, name, H5P_DEFAULT, H5P_DEFAULT) : -1;
    ok = a >= 0 && H5Aread(a, mem_type, out) >= 0;
    if (a >= 0)
        H5Aclose(a);
    CHECK(ok, "%s: attribute %s of %s is missing or unreadable", fx->name, name, obj_path);
    return ok ? 0 : -1;
}

/* A fixed-length string attribute of the root group. */
static inline int read_attr_str(const Fixture *fx, const char *name, char *out, size_t cap)
{
    hid_t a = H5Aexists(fx->h, name) > 0 ? H5Aopen(fx->h, name, H5P_DEFAULT) : -1;
    hid_t ft = a >= 0 ? H5Aget_type(a) : -1;
    int ok = ft >= 0 && H5Tget_class(ft) == H5T_STRING && !H5Tis_variable_str(ft) && H5Tget_size(ft) < cap;
    if (ok) {
        memset(out, 0, cap);
        ok = H5Aread(a, ft, out) >= 0;
    }
    if (ft >= 0)
        H5Tclose(ft);
    if (a >= 0)
        H5Aclose(a);
    CHECK(ok, "%s: attribute %s is missing or not a fixed-length string", fx->name, name);
    return ok ? 0 : -1;
}

/* --------------------------------------------------------------- comparing */

/* got vs want (n): prints the worst absolute error and that error relative to
 * max |want|, and fails above tol. Returns the relative error (NaN-safe: a
 * NaN in got counts as an infinite error). */
static inline double compare(const char *fix, const char *what, const float *got, const float *want, size_t n, double tol)
{
    double scale = 0, worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs((double)want[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)want[i]);
        if (!(e <= worst)) {
            worst = isnan(e) ? INFINITY : e;
            at = i;
        }
    }
    double rel = worst / fmax(scale, SCALE_FLOOR);
    printf("  %-44s %7zu values  max|ref| %.3e  worst err %.3e  rel %.2e\n", what, n, scale, worst, rel);
    CHECK(rel <= tol, "%s: %s differs from PyTorch by %.3e of its scale (tolerance %.0e) at element %zu: occkd %.8g, "
          "PyTorch %.8g", fix, what, rel, tol, at, n ? (double)got[at] : 0.0, n ? (double)want[at] : 0.0);
    return rel;
}

/* Compares got (n) with the float dataset `path`, which must hold n values. */
static inline double compare_ds(const Fixture *fx, const char *path, const float *got, size_t n, double tol)
{
    Blob b;
    if (read_f32(fx, path, &b))
        return INFINITY;
    double rel = INFINITY;
    CHECK(b.count == n, "%s: %s holds %zu values, occkd has %zu", fx->name, path, b.count, n);
    if (b.count == n)
        rel = compare(fx->name, path, got, b.v, n, tol);
    free(b.v);
    return rel;
}

#endif
