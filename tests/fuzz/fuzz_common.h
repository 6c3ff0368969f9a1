/* fuzz_common.h - what the fuzz targets share: one scratch folder per
 * process, files written from an input, and inputs cut into parts.
 *
 * Every target defines LLVMFuzzerTestOneInput. With clang and
 * -fsanitize=fuzzer it is a libFuzzer program; with replay.c's main() it
 * replays files (the seed corpus and the regression inputs) in any build.
 */
#ifndef OCCKD_FUZZ_COMMON_H
#define OCCKD_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A folder of this process under /tmp, made on first use and removed at
 * exit; NULL when it cannot be made. */
static char fuzz_dir_path[64];

static inline void fuzz_dir_remove(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_path);
    if (fuzz_dir_path[0] && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", fuzz_dir_path);
}

static inline const char *fuzz_dir(void)
{
    if (!fuzz_dir_path[0]) {
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "/tmp/occkd_fuzz_XXXXXX");
        if (!mkdtemp(fuzz_dir_path)) {
            perror("mkdtemp");
            abort();
        }
        atexit(fuzz_dir_remove);
    }
    return fuzz_dir_path;
}

/* <fuzz_dir>/<name> into buf. */
static inline void fuzz_path(char *buf, size_t len, const char *name) { snprintf(buf, len, "%s/%s", fuzz_dir(), name); }

/* Writes n bytes to path (replacing it); aborts when it cannot, since an
 * input that never reaches the code under test would pass unseen. */
static inline void fuzz_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f)) {
        perror(path);
        abort();
    }
}

/* The parts of an input separated by NUL bytes, as NUL-terminated strings
 * in one copy of it: at most max parts, the last one holding the rest
 * (with its NULs). Returns the number of parts; free(*copy) after use. */
static inline int fuzz_split_nul(const uint8_t *data, size_t size, char **part, size_t *len, int max, char **copy)
{
    char *c = malloc(size + 1);
    if (!c)
        abort();
    if (size)
        memcpy(c, data, size);
    c[size] = '\0';
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= size && n < max; i++)
        if (i == size || (c[i] == '\0' && n < max - 1)) {
            part[n] = c + start;
            len[n] = i - start;
            n++;
            start = i + 1;
        }
    *copy = c;
    return n;
}

/* The input cut at its first NUL into the files a and b (b empty without
 * a NUL). */
static inline void fuzz_write_two(const uint8_t *data, size_t size, const char *a, const char *b)
{
    char *part[2], *copy;
    size_t len[2];
    int n = fuzz_split_nul(data, size, part, len, 2, &copy);
    fuzz_write(a, part[0], len[0]);
    fuzz_write(b, n > 1 ? part[1] : "", n > 1 ? len[1] : 0);
    free(copy);
}

/* With OCCKD_FUZZ_VERBOSE set, prints what the code under test said of an
 * input (to see whether seeds load or where they are refused). */
static inline void fuzz_note(const char *what, int rc, const char *err)
{
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("OCCKD_FUZZ_VERBOSE") != NULL;
    if (verbose)
        fprintf(stderr, "%s: %s%s\n", what, rc ? "refused: " : "accepted", rc ? err : "");
}

#endif
