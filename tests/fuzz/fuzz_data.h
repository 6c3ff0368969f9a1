/* fuzz_data.h - what the data-reader targets share: options for a reader of
 * the scratch folder, and one load of it. */
#ifndef OCCKD_FUZZ_DATA_H
#define OCCKD_FUZZ_DATA_H

#include "data/data.h"
#include "tests/fuzz/fuzz_common.h"

/* Defaults for `source` reading the scratch folder, at `side` px grey. */
static inline DataOptions fuzz_data_options(Source source, int side)
{
    DataOptions o;
    data_options_default(&o);
    o.source = source;
    snprintf(o.path, sizeof o.path, "%s", fuzz_dir());
    o.side = side;
    o.channels = 1;
    return o;
}

/* Loads once without a cache; the outcome noted, the data set freed.
 * Returns dataset_load's status. */
static inline int fuzz_load(const DataOptions *o)
{
    Dataset d;
    char err[1024];
    int rc = dataset_load(o, NULL, NULL, &d, err, sizeof err);
    fuzz_note("dataset_load", rc, err);
    if (rc == 0)
        dataset_free(&d);
    return rc;
}

#endif
