/* test_job_keys.c - prints the key reference of jobs/README.md as the key
 * tables give it (job_keys_markdown); tests/test_job_keys.sh compares it
 * with the README and, with --write, puts it there.
 *
 * Usage: test_job_keys > keys.md
 */
#include <stdio.h>

#include "trainer/job.h"

int main(void)
{
    job_keys_markdown(stdout);
    return fflush(stdout) == 0 ? 0 : 1;
}
