/* job_load.c - the job file's text (read whole, at most 16 MiB, no NUL
 * bytes), the line of a syntax error, the integer literals libconfig reads
 * wrongly, and the job's identity: the SHA-256 of the text and the --set
 * arguments.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/job_internal.h"

#define JOB_FILE_MAX (16L << 20)

/* The bytes of f into a new NUL-terminated buffer; NULL with *why set. */
static char *read_all(FILE *f, size_t *len, const char **why)
{
    char *text = NULL;
    size_t used = 0, cap = 0;
    *why = NULL;
    while (!*why) {
        if (used + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *t = realloc(text, cap);
            if (!t) {
                *why = "out of memory";
                break;
            }
            text = t;
        }
        size_t got = fread(text + used, 1, cap - used - 1, f);
        used += got;
        if (used > (size_t)JOB_FILE_MAX)
            *why = "larger than 16 MiB";
        else if (got == 0 && ferror(f))
            *why = "read error";
        else if (got == 0)
            break;
    }
    if (*why) {
        free(text);
        return NULL;
    }
    text[used] = '\0';
    *len = used;
    return text;
}

char *read_text(const char *path, size_t *len, char *err, size_t errlen)
{
    if (path_kind(path) == 2) {
        snprintf(err, errlen, "%s: is a folder, not a job file", path);
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    const char *why;
    char *text = read_all(f, len, &why);
    fclose(f);
    if (!text)
        snprintf(err, errlen, "%s: %s", path, why);
    else if (strlen(text) != *len) {
        snprintf(err, errlen, "%s: holds a NUL byte at offset %zu (not a text file)", path, strlen(text));
        free(text);
        return NULL;
    }
    return text;
}

void line_excerpt(const char *text, int line, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!text || line < 1)
        return;
    const char *p = text;
    for (int i = 1; i < line && p; i++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (!p)
        return;
    while (*p == ' ' || *p == '\t')
        p++;
    int n = (int)strcspn(p, "\r\n");
    if (n > 60)
        n = 60;
    if (n > 0)
        snprintf(buf, len, " (in '%.*s')", n, p);
}

/* ------------------------------------------------------ wide integers */

LitKind int_literal(const char *w, size_t n, long long *v, int *has_suffix)
{
    size_t body = n;
    while (body > 0 && w[body - 1] == 'L' && n - body < 2)
        body--;
    *has_suffix = body < n;
    int hex = body > 2 && w[0] == '0' && (w[1] == 'x' || w[1] == 'X');
    size_t i = hex ? 2 : (body > 0 && (w[0] == '-' || w[0] == '+'));
    if (i >= body)
        return LIT_NONE;
    for (size_t k = i; k < body; k++)
        if (hex ? !isxdigit((unsigned char)w[k]) : !isdigit((unsigned char)w[k]))
            return LIT_NONE;
    char buf[64];
    if (body >= sizeof buf)
        return LIT_BEYOND; /* digits only, and more of them than any 64-bit value has */
    memcpy(buf, w, body);
    buf[body] = '\0';
    errno = 0;
    long long x;
    if (hex) {
        unsigned long long u = strtoull(buf + 2, NULL, 16);
        if (errno || u > (unsigned long long)LLONG_MAX)
            return LIT_BEYOND;
        x = (long long)u;
    } else {
        x = strtoll(buf, NULL, 10);
        if (errno)
            return LIT_BEYOND;
    }
    *v = x;
    return *has_suffix || (x >= INT_MIN && x <= INT_MAX) ? LIT_FITS : LIT_WIDE;
}

/* A walk over libconfig's grammar that keeps the key path of each value:
 * only as much of the syntax as tells values apart (the text parsed). */
typedef struct {
    const char *p;
    WideLiteral *out;
    int max, n, depth;
} Scan;

int word_char(int ch) { return ch && (isalnum(ch) || strchr("_+-.*", ch)); }

/* Bytes of the libconfig name or number at p. */
static size_t word_len(const char *p)
{
    size_t n = 0;
    while (word_char((unsigned char)p[n]))
        n++;
    return n;
}

/* Past white space, comments and @include lines. */
static void scan_space(Scan *s)
{
    for (;;) {
        while (isspace((unsigned char)*s->p))
            s->p++;
        if (*s->p == '#' || *s->p == '@' || (s->p[0] == '/' && s->p[1] == '/'))
            s->p += strcspn(s->p, "\n");
        else if (s->p[0] == '/' && s->p[1] == '*') {
            const char *e = strstr(s->p + 2, "*/");
            s->p = e ? e + 2 : s->p + strlen(s->p);
        } else
            return;
    }
}

static int scan_value(Scan *s, const char *path);

/* Members of a group up to `close` ('\0' at the top). 0, or -1 when the
 * text is not as expected. */
static int scan_group(Scan *s, const char *prefix, char close)
{
    for (;;) {
        scan_space(s);
        if (*s->p == close) {
            s->p += close != '\0';
            return 0;
        }
        size_t n = word_len(s->p);
        if (n == 0)
            return -1;
        char path[sizeof s->out->path];
        snprintf(path, sizeof path, "%s%s%.*s", prefix, *prefix ? "." : "", (int)n, s->p);
        s->p += n;
        scan_space(s);
        if (*s->p != '=' && *s->p != ':')
            return -1;
        s->p++;
        if (scan_value(s, path))
            return -1;
        scan_space(s);
        if (*s->p == ';' || *s->p == ',')
            s->p++;
    }
}

/* Elements of a list or an array up to `close`. */
static int scan_list(Scan *s, const char *prefix, char close)
{
    for (int i = 0;; i++) {
        scan_space(s);
        if (*s->p == close) {
            s->p++;
            return 0;
        }
        char path[sizeof s->out->path];
        snprintf(path, sizeof path, "%s[%d]", prefix, i);
        if (scan_value(s, path))
            return -1;
        scan_space(s);
        if (*s->p == ',')
            s->p++;
        else if (*s->p != close)
            return -1;
    }
}

static int scan_value(Scan *s, const char *path)
{
    scan_space(s);
    char c = *s->p;
    if (c == '{' || c == '[' || c == '(') {
        if (++s->depth > 64)
            return -1;
        s->p++;
        int rc = c == '{' ? scan_group(s, path, '}') : scan_list(s, path, c == '[' ? ']' : ')');
        s->depth--;
        return rc;
    }
    if (c == '"') { /* adjacent strings are one value */
        while (*s->p == '"') {
            for (s->p++; *s->p && *s->p != '"'; s->p++)
                if (*s->p == '\\' && s->p[1])
                    s->p++;
            if (!*s->p)
                return -1;
            s->p++;
            scan_space(s);
        }
        return 0;
    }
    size_t n = word_len(s->p);
    if (n == 0)
        return -1;
    long long v = 0;
    int suffix;
    LitKind k = int_literal(s->p, n, &v, &suffix);
    if (k == LIT_WIDE || k == LIT_BEYOND) {
        if (s->n < s->max) {
            WideLiteral *w = &s->out[s->n];
            snprintf(w->path, sizeof w->path, "%s", path);
            snprintf(w->text, sizeof w->text, "%.*s%s", n < sizeof w->text - 4 ? (int)n : (int)sizeof w->text - 4,
                     s->p, n < sizeof w->text - 4 ? "" : "...");
            w->value = v;
            w->beyond = k == LIT_BEYOND;
        }
        s->n++;
    }
    s->p += n;
    return 0;
}

int scan_wide_literals(const char *text, WideLiteral *out, int max)
{
    Scan s = {.p = text, .out = out, .max = max};
    scan_group(&s, "", '\0');
    return s.n;
}

void hash_job(Job *job, const char *const *sets, int n_sets, size_t text_len)
{
    Sha256 h;
    sha256_init(&h);
    sha256_update(&h, job->text, text_len);
    size_t total = 1;
    for (int i = 0; i < n_sets; i++) {
        sha256_update(&h, "\n--set ", 7);
        sha256_update(&h, sets[i], strlen(sets[i]));
        total += strlen(sets[i]) + 1;
    }
    sha256_final_hex(&h, job->sha256);
    job->sets = malloc(total);
    if (job->sets) {
        job->sets[0] = '\0';
        size_t used = 0;
        for (int i = 0; i < n_sets; i++)
            used += (size_t)sprintf(job->sets + used, "%s%s", i ? "\n" : "", sets[i]);
    }
}
