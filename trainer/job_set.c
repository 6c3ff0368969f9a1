/* job_set.c - --set key.path=value: each argument is grafted onto the
 * libconfig tree before validation (the new settings carry the argument as
 * their hook, so messages name it), so a key set this way is read and
 * checked exactly as one in the file.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/job_internal.h"

static void fail_set(Ctx *c, const char *arg, const char *fmt, ...)
{
    c->n_errors++;
    if (c->n_errors > JOB_MAX_ERRORS)
        return;
    append_f(c, "%s--set '%s': ", c->used ? "\n" : "", arg);
    va_list ap;
    va_start(ap, fmt);
    append_v(c, fmt, ap);
    va_end(ap);
}

/* Copies src (and its children) into parent as `name` (NULL inside lists
 * and arrays). */
static config_setting_t *copy_setting(config_setting_t *parent, const char *name, const config_setting_t *src)
{
    int type = config_setting_type(src);
    config_setting_t *d = config_setting_add(parent, name, type);
    if (!d)
        return NULL;
    switch (type) {
    case CONFIG_TYPE_INT: config_setting_set_int(d, config_setting_get_int(src)); break;
    case CONFIG_TYPE_INT64: config_setting_set_int64(d, config_setting_get_int64(src)); break;
    case CONFIG_TYPE_FLOAT: config_setting_set_float(d, config_setting_get_float(src)); break;
    case CONFIG_TYPE_BOOL: config_setting_set_bool(d, config_setting_get_bool(src)); break;
    case CONFIG_TYPE_STRING: config_setting_set_string(d, config_setting_get_string(src)); break;
    default:
        for (int i = 0; i < config_setting_length(src); i++) {
            const config_setting_t *e = config_setting_get_elem(src, (unsigned)i);
            if (!copy_setting(d, type == CONFIG_TYPE_GROUP ? config_setting_name(e) : NULL, e))
                return NULL;
        }
    }
    return d;
}

/* The entry of list s called `name` (its name key, or its target/arch when it
 * has no name), or NULL. */
static config_setting_t *entry_named(const config_setting_t *s, const char *name)
{
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < config_setting_length(s); i++) {
            config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            const char *v = NULL;
            if (!config_setting_is_group(e))
                continue;
            if (pass == 0)
                config_setting_lookup_string(e, "name", &v);
            else if (!config_setting_get_member(e, "name") && !config_setting_lookup_string(e, "target", &v))
                config_setting_lookup_string(e, "arch", &v);
            if (v && strcmp(v, name) == 0)
                return e;
        }
    return NULL;
}

/* Child `comp` of cur: a group member (created as a group when missing and
 * `create`), a list index or a list entry's name. NULL after a message. */
static config_setting_t *set_child(Ctx *c, const char *arg, config_setting_t *cur, const char *comp, int create)
{
    char path[256];
    key_path(cur, path, sizeof path);
    if (config_setting_is_group(cur)) {
        config_setting_t *m = config_setting_get_member(cur, comp);
        if (m || !create)
            return m;
        m = config_setting_add(cur, comp, CONFIG_TYPE_GROUP);
        if (!m)
            fail_set(c, arg, "'%s' is not a valid key name", comp);
        else
            config_setting_set_hook(m, (void *)arg);
        return m;
    }
    if (config_setting_is_list(cur) || config_setting_is_array(cur)) {
        char *end;
        errno = 0;
        long idx = strtol(comp, &end, 10);
        int n = config_setting_length(cur);
        if (*comp && !*end && errno == 0) {
            if (idx >= 0 && idx < n)
                return config_setting_get_elem(cur, (unsigned)idx);
            fail_set(c, arg, "%s has %d entries: index %ld is out of range", path, n, idx);
            return NULL;
        }
        config_setting_t *e = entry_named(cur, comp);
        if (!e)
            fail_set(c, arg, "no entry of %s is named '%s' (use its name or its index from 0)", path, comp);
        return e;
    }
    fail_set(c, arg, "%s is %s, it has no '%s'", path, type_desc(config_setting_type(cur)), comp);
    return NULL;
}

/* Replaces element e of a list or array by the scalar v in place (libconfig
 * cannot insert at an index). */
static int set_element(Ctx *c, const char *arg, config_setting_t *e, const config_setting_t *v)
{
    int et = config_setting_type(e), vt = config_setting_type(v);
    int ok = 0;
    if (et == CONFIG_TYPE_STRING && vt == CONFIG_TYPE_STRING)
        ok = config_setting_set_string(e, config_setting_get_string(v));
    else if ((et == CONFIG_TYPE_INT || et == CONFIG_TYPE_INT64) && (vt == CONFIG_TYPE_INT || vt == CONFIG_TYPE_INT64)) {
        long long x = config_setting_get_int64(v);
        if (et == CONFIG_TYPE_INT && (x < INT_MIN || x > INT_MAX))
            e->type = CONFIG_TYPE_INT64; /* the entry keeps the value whole (libconfig would wrap it) */
        ok = config_setting_type(e) == CONFIG_TYPE_INT ? config_setting_set_int(e, (int)x)
                                                       : config_setting_set_int64(e, x);
    }
    else if (et == CONFIG_TYPE_FLOAT && vt == CONFIG_TYPE_FLOAT)
        ok = config_setting_set_float(e, config_setting_get_float(v));
    else if (et == CONFIG_TYPE_FLOAT && (vt == CONFIG_TYPE_INT || vt == CONFIG_TYPE_INT64))
        ok = config_setting_set_float(e, (double)config_setting_get_int64(v));
    else if (et == CONFIG_TYPE_BOOL && vt == CONFIG_TYPE_BOOL)
        ok = config_setting_set_bool(e, config_setting_get_bool(v));
    if (!ok) {
        fail_set(c, arg, "the entry is %s; the value must be of the same type", type_desc(et));
        return -1;
    }
    config_setting_set_hook(e, (void *)arg);
    return 0;
}

/* "v = <value>;" for libconfig, with the L suffix on the value's integer
 * literals when one of them needs more than 32 bits (libconfig would keep
 * its low 32 bits): on all of them then, as an array's elements share one
 * type. NULL after a message when a literal fits no 64-bit integer. */
static char *set_text(Ctx *c, const char *arg, const char *value)
{
    size_t len = strlen(value), used = 0;
    char *text = malloc(2 * len + 8);
    int wide = 0;
    if (!text) {
        fail_set(c, arg, "out of memory");
        return NULL;
    }
    for (int pass = 0; pass < 2; pass++) {
        used = (size_t)sprintf(text, "v = ");
        for (size_t i = 0; i < len;) {
            if (value[i] == '"') { /* a string, copied as it is */
                size_t j = i + 1;
                while (j < len && value[j] != '"')
                    j += value[j] == '\\' && j + 1 < len ? 2 : 1;
                j = j < len ? j + 1 : len;
                memcpy(text + used, value + i, j - i);
                used += j - i, i = j;
                continue;
            }
            size_t n = 0;
            while (word_char((unsigned char)value[i + n]))
                n++;
            if (n == 0) {
                text[used++] = value[i++];
                continue;
            }
            long long v;
            int suffix;
            LitKind k = int_literal(value + i, n, &v, &suffix);
            if (k == LIT_BEYOND) {
                fail_set(c, arg, "the integer %.*s does not fit in a 64-bit integer", (int)(n < 40 ? n : 40),
                         value + i);
                free(text);
                return NULL;
            }
            wide |= k == LIT_WIDE;
            memcpy(text + used, value + i, n);
            used += n, i += n;
            if (pass == 1 && wide && k != LIT_NONE && !suffix)
                text[used++] = 'L';
        }
        if (!wide)
            break;
    }
    memcpy(text + used, ";", 2);
    return text;
}

/* Parses the value of a --set as libconfig would (integers in 64 bits when
 * they need them); a bare word it cannot parse is a string. tmp holds the
 * result in "v". */
static config_setting_t *set_value(Ctx *c, const char *arg, const char *value, config_t *tmp)
{
    size_t len = strlen(value);
    char *text = set_text(c, arg, value);
    if (!text)
        return NULL;
    int ok = config_read_string(tmp, text);
    free(text);
    if (ok)
        return config_lookup(tmp, "v");
    if (len && strchr("[({\"", value[0])) {
        fail_set(c, arg, "cannot parse the value '%s': %s", value,
                 config_error_text(tmp) ? config_error_text(tmp) : "syntax error");
        return NULL;
    }
    config_destroy(tmp);
    config_init(tmp);
    config_setting_t *v = config_setting_add(config_root_setting(tmp), "v", CONFIG_TYPE_STRING);
    if (v)
        config_setting_set_string(v, value);
    return v;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Grafts one "a.b.c=value" onto the tree. */
void apply_set(Ctx *c, config_t *cfg, const char *arg)
{
    if (strlen(arg) >= SET_MAX) {
        fail_set(c, "...", "argument longer than %d bytes", SET_MAX);
        return;
    }
    char buf[SET_MAX];
    snprintf(buf, sizeof buf, "%s", arg);
    char *eq = strchr(buf, '=');
    if (!eq) {
        fail_set(c, arg, "expected key.path=value (for example train.epochs=2)");
        return;
    }
    *eq = '\0';
    char *key = trim(buf), *value = trim(eq + 1);
    if (!key[0] || key[0] == '.' || key[strlen(key) - 1] == '.' || strstr(key, "..")) {
        fail_set(c, arg, "'%s' is not a key path (expected names and indices joined by dots, e.g. "
                         "tasks.0.data.count)", key);
        return;
    }
    config_t tmp;
    config_init(&tmp);
    config_setting_t *v = set_value(c, arg, value, &tmp);
    config_setting_t *cur = config_root_setting(cfg);
    char *save = NULL, *comp = strtok_r(key, ".", &save);
    while (v && cur && comp) {
        char *next = strtok_r(NULL, ".", &save);
        if (next) {
            cur = set_child(c, arg, cur, comp, 1);
        } else if (config_setting_is_group(cur)) {
            if (config_setting_get_member(cur, comp))
                config_setting_remove(cur, comp);
            config_setting_t *d = copy_setting(cur, comp, v);
            if (!d)
                fail_set(c, arg, "'%s' is not a valid key name", comp);
            else
                config_setting_set_hook(d, (void *)arg);
        } else {
            config_setting_t *e = set_child(c, arg, cur, comp, 0);
            if (e && config_setting_is_scalar(v) && config_setting_is_scalar(e))
                set_element(c, arg, e, v);
            else if (e)
                fail_set(c, arg, "only a single value can replace an entry of a list");
        }
        comp = next;
    }
    config_destroy(&tmp);
}
