/* common.c - the small helpers every reader uses: messages, strings, CSV
 * fields, strict numbers and sorted folder listings. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data/internal.h"

void data_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

char *str_dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int csv_split(char *line, char **field, int max)
{
    size_t len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    int n = 0;
    char *p = line;
    for (;;) {
        char *start = p, *out = p;
        if (*p == '"') { /* quoted: "" is a literal quote */
            p++;
            start = out = p;
            while (*p) {
                if (*p == '"' && p[1] == '"') {
                    *out++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *out++ = *p++;
                }
            }
            while (*p && *p != ',')
                p++;
        } else {
            while (*p && *p != ',')
                p++;
            out = p;
        }
        int last = *p == '\0';
        *out = '\0';
        if (n < max)
            field[n] = start;
        n++;
        if (last)
            break;
        p++;
    }
    return n;
}

/* s past its leading white space; NULL when nothing else is left. */
static const char *number_start(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    return *s ? s : NULL;
}

/* 1 when the number parsed up to `end` without errno set is all there is
 * (trailing white space allowed). */
static int number_whole(const char *end)
{
    if (errno)
        return 0;
    while (isspace((unsigned char)*end))
        end++;
    return *end == '\0';
}

int parse_int(const char *s, long *v)
{
    if (!(s = number_start(s)))
        return -1;
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (!number_whole(end))
        return -1;
    *v = x;
    return 0;
}

int parse_double(const char *s, double *v)
{
    if (!(s = number_start(s)))
        return -1;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (!number_whole(end) || !isfinite(x))
        return -1;
    *v = x;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int list_dir(const char *path, int dirs, char ***names, int *n, char *err, size_t errlen)
{
    DIR *d = opendir(path);
    if (!d) {
        data_err(err, errlen, "%s: cannot open folder: %s", path, strerror(errno));
        return -1;
    }
    int cap = 64, cnt = 0;
    char **v = malloc(sizeof(char *) * cap);
    struct dirent *e;
    char full[4096];
    while (v && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(full, sizeof full, "%s/%s", path, e->d_name);
        struct stat st;
        if (stat(full, &st))
            continue;
        if (dirs ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
            continue;
        if (cnt == cap) {
            char **nv = realloc(v, sizeof(char *) * (cap *= 2));
            if (!nv)
                break;
            v = nv;
        }
        v[cnt] = str_dup(e->d_name);
        if (!v[cnt])
            break;
        cnt++;
    }
    closedir(d);
    if (!v || e) {
        if (v)
            free_names(v, cnt);
        data_err(err, errlen, "%s: out of memory listing the folder", path);
        return -1;
    }
    qsort(v, (size_t)cnt, sizeof(char *), cmp_str);
    *names = v;
    *n = cnt;
    return 0;
}

void free_names(char **names, int n)
{
    if (!names)
        return;
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int has_image_ext(const char *name)
{
    static const char *const ext[] = {".jpg", ".jpeg", ".png", ".bmp", ".tga", ".pgm", ".ppm", ".gif"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t k = strlen(ext[i]);
        if (n > k && strcasecmp(name + n - k, ext[i]) == 0)
            return 1;
    }
    return 0;
}
