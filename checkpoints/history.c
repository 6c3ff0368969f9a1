/* history.c - the per-epoch history of a cell's training (see History in
 * checkpoints.h): one growing array of rows, stored as it is. */
#include <stdlib.h>
#include <string.h>

#include "checkpoints/checkpoints.h"

int history_append(History *h, const EpochRecord *row)
{
    if (h->n == h->cap) {
        int cap = h->cap ? 2 * h->cap : 16;
        EpochRecord *rows = realloc(h->rows, (size_t)cap * sizeof *rows);
        if (!rows)
            return -1;
        h->rows = rows, h->cap = cap;
    }
    h->rows[h->n++] = *row;
    return 0;
}

void history_free(History *h)
{
    if (!h)
        return;
    free(h->rows);
    memset(h, 0, sizeof *h);
}
