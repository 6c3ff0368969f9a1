/* csv.c - occkd_report --csv: /summary as it is stored, one line per row
 * (RFC 4180 quoting; numbers that read back as the same doubles). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

static void csv_field(const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

/* A number for machines: the shortest of %.15g..%.17g that reads back as
 * the same double, empty when not a number. */
static void csv_number(double v)
{
    if (isfinite(v)) {
        char s[40];
        for (int digits = 15; digits <= 17; digits++) {
            snprintf(s, sizeof s, "%.*g", digits, v);
            if (strtod(s, NULL) == v)
                break;
        }
        fputs(s, stdout);
    }
    else if (isinf(v))
        printf("%s", v > 0 ? "inf" : "-inf");
}

void print_csv(const Report *r)
{
    printf("task,model,method,seed,metric,value,p_value,status\n");
    for (int i = 0; i < r->n_rows; i++) {
        const SummaryRow *row = &r->rows[i];
        const char *s[] = {row->task, row->model, row->method, row->seed, row->metric};
        for (int k = 0; k < 5; k++) {
            csv_field(s[k]);
            putchar(',');
        }
        csv_number(row->value);
        putchar(',');
        csv_number(row->p_value);
        putchar(',');
        csv_field(row->status);
        putchar('\n');
    }
}
