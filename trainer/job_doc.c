/* job_doc.c - the key reference of jobs/README.md, written from the key
 * tables: a markdown table per group, each between begin and end comment
 * lines so that the README's copy can be compared and replaced
 * (tests/test_job_keys.sh).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "trainer/job_internal.h"

static const char *kind_doc(const KeyRow *r)
{
    if (r->type_doc)
        return r->type_doc;
    switch (r->kind) {
    case K_INT:
    case K_I64:
    case K_U64: return "int";
    case K_FLOAT:
    case K_DOUBLE: return "number";
    case K_BOOL: return "bool";
    case K_STRING: return "string";
    case K_ENUM: return "enum";
    case K_GROUP: return "group";
    case K_REF: return "";
    }
    return "";
}

/* The range column: the row's text, the enum's names or the numeric range. */
static void range_doc(const KeyRow *r, char *buf, size_t len)
{
    buf[0] = '\0';
    if (r->range_doc) {
        snprintf(buf, len, "%s", r->range_doc);
    } else if (r->kind == K_ENUM) {
        const char *names[KEY_NAMES_MAX];
        int n = row_names(r, names);
        size_t used = 0;
        for (int i = 0; i < n && used + 1 < len; i++)
            used += (size_t)snprintf(buf + used, len - used, "%s`%s`", i ? ", " : "", names[i]);
    } else if (r->kind <= K_DOUBLE && !(isinf(r->r.lo) && isinf(r->r.hi))) {
        char d[96];
        range_desc(r->r, d, sizeof d);
        snprintf(buf, len, "%s", strncmp(d, "in ", 3) == 0 ? d + 3 : d);
    }
}

/* The default column: the row's text, or its default value. */
static void default_doc(const KeyRow *r, char *buf, size_t len)
{
    buf[0] = '\0';
    if (r->def_doc)
        snprintf(buf, len, "%s", r->def_doc);
    else if (r->flags & KEY_NO_DEFAULT)
        return;
    else if (r->kind == K_BOOL)
        snprintf(buf, len, "%s", r->def ? "true" : "false");
    else if (r->kind == K_ENUM) {
        const char *names[KEY_NAMES_MAX];
        int n = row_names(r, names), v = (int)r->def;
        snprintf(buf, len, "`%s`", v >= 0 && v < n ? names[v] : "?");
    } else if (r->kind == K_STRING && r->def_str)
        snprintf(buf, len, "`\"%s\"`", r->def_str);
    else if (r->kind <= K_DOUBLE)
        snprintf(buf, len, "%g", r->def);
}

static void table_markdown(const KeyTable *t, FILE *f)
{
    fprintf(f, "<!-- keys %s begin -->\n\n", t->name);
    fprintf(f, "| key | type | range | default | meaning |\n|---|---|---|---|---|\n");
    for (int i = 0; i < t->n; i++) {
        const KeyRow *r = &t->rows[i];
        char range[512], def[256];
        range_doc(r, range, sizeof range);
        default_doc(r, def, sizeof def);
        const char *cells[4] = {kind_doc(r), range, def, r->doc ? r->doc : ""};
        fprintf(f, "| `%s` |", r->name);
        for (int j = 0; j < 4; j++)
            fprintf(f, " %s%s|", cells[j], cells[j][0] ? " " : "");
        fprintf(f, "\n");
    }
    fprintf(f, "\n<!-- keys %s end -->\n", t->name);
}

void job_keys_markdown(FILE *f)
{
    for (int i = 0; i < n_doc_tables; i++)
        table_markdown(doc_tables[i], f);
}
