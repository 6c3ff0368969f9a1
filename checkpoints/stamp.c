/* stamp.c - whose a file is (CellStamp in checkpoints.h): comparing a
 * file's stamp with the one a cell expects, naming what changed, and
 * reading the stamp of a file's root. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/h5io.h"

/* The value of the line "<key> = value" in text (the key's part before
 * " = " equal to `key`), copied to out; 0 found, -1 not. */
static int value_of(const char *text, const char *key, size_t key_len, char *out, size_t len)
{
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        if (n > key_len + 3 && strncmp(line, key, key_len) == 0 && strncmp(line + key_len, " = ", 3) == 0) {
            size_t v = n - key_len - 3;
            snprintf(out, len, "%.*s", (int)v, line + key_len + 3);
            return 0;
        }
        line += n + (end ? 1 : 0);
    }
    return -1;
}

/* Appends to msg the keys of `a`'s lines that differ in `b`, up to `max`
 * in all: with a the file's settings, each key missing from b or with
 * another value there; with a the wanted ones, each key missing from b.
 * Returns the count so far. */
static int list_changes(const char *a, const char *b, int a_is_file, char *msg, size_t len, int max, int count)
{
    for (const char *next = a; *next && count < max;) {
        const char *key = next, *end = strchr(key, '\n');
        size_t n = end ? (size_t)(end - key) : strlen(key);
        next = key + n + (end ? 1 : 0);
        const char *eq = memchr(key, '=', n);
        if (!eq || eq == key || eq[-1] != ' ')
            continue;
        size_t key_len = (size_t)(eq - 1 - key);
        char va[512], vb[512], *at = msg + strlen(msg);
        size_t room = len - (size_t)(at - msg);
        snprintf(va, sizeof va, "%.*s", (int)(n - key_len - 3), eq + 2);
        int has_b = value_of(b, key, key_len, vb, sizeof vb) == 0;
        if (a_is_file && !has_b)
            snprintf(at, room, "%s %.*s: %s in the file, not set now", count ? ";" : "", (int)key_len, key, va);
        else if (a_is_file && strcmp(va, vb) != 0)
            snprintf(at, room, "%s %.*s: %s in the file, %s now", count ? ";" : "", (int)key_len, key, va, vb);
        else if (!a_is_file && !has_b)
            snprintf(at, room, "%s %.*s: not in the file, %s now", count ? ";" : "", (int)key_len, key, va);
        else
            continue;
        count++;
    }
    return count;
}

int cell_stamp_compare(const char *path, const CellStamp *found, const CellStamp *want, char *err, size_t errlen)
{
    if (strcmp(found->cell, want->cell) != 0) {
        snprintf(err, errlen, "file %s was written by the cell %s, not by %s (was it copied or moved here?)", path,
                 found->cell[0] ? found->cell : "(none recorded)", want->cell);
        return -1;
    }
    if (strcmp(found->settings_sha256, want->settings_sha256) == 0)
        return 0;
    int k = snprintf(err, errlen, "file %s of %s was made with other settings:", path, want->cell);
    if (k < 0 || (size_t)k >= errlen)
        return -1;
    int count = list_changes(found->settings, want->settings, 1, err, errlen, 8, 0);
    count = list_changes(want->settings, found->settings, 0, err, errlen, 8, count);
    if (count == 0) {
        size_t used = strlen(err);
        snprintf(err + used, errlen - used, " (settings hash %.12s in the file, %.12s now)", found->settings_sha256,
                 want->settings_sha256);
    }
    return -1;
}

static const H5ioField STAMP_ATTRS[] = {
    {"cell", H5IO_STR, offsetof(CellStamp, cell), sizeof(((CellStamp *)0)->cell), 0},
    {"settings_sha256", H5IO_STR, offsetof(CellStamp, settings_sha256), sizeof(((CellStamp *)0)->settings_sha256), 0},
    {"settings", H5IO_STR, offsetof(CellStamp, settings), sizeof(((CellStamp *)0)->settings), 0},
};
#define N_STAMP_ATTRS ((int)(sizeof STAMP_ATTRS / sizeof STAMP_ATTRS[0]))

int h5io_write_stamp(hid_t obj, const CellStamp *s) { return h5io_write_attrs(obj, STAMP_ATTRS, N_STAMP_ATTRS, s); }

int h5io_read_stamp(hid_t obj, CellStamp *s, const char *file, const char *where, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    return h5io_read_attrs(obj, STAMP_ATTRS, N_STAMP_ATTRS, s, file, where, err, errlen);
}

int cell_stamp_read(const char *path, CellStamp *out, char *err, size_t errlen)
{
    H5Quiet q;
    h5io_quiet(&q);
    hid_t f = h5io_open(path, err, errlen);
    int rc = f < 0 ? -1 : h5io_read_stamp(f, out, path, "/", err, errlen);
    if (f >= 0)
        H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    h5io_loud(&q);
    return rc;
}
