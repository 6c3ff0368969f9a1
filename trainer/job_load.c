/* job_load.c - the job file's text (read whole, at most 16 MiB, no NUL
 * bytes), the line of a syntax error, and the job's identity: the SHA-256
 * of the text and the --set arguments.
 */
#include <errno.h>
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
