/* occkd_train - trains a job's whole teacher/student grid.
 *
 *   occkd_train [--check] [--set key=value ...] job.cfg
 *   mpirun -np 16 occkd_train job.cfg
 *
 * --check validates the job file and prints the grid without training (no
 * MPI needed). Exit status: 0 success, 1 failure while running, 2 invalid
 * input (usage, job file). Rerunning the same command continues an
 * interrupted run; SIGTERM or SIGUSR1 checkpoint and stop with status 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/grid.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: occkd_train [--check] [--set key=value ...] job.cfg\n"
               "  --check          validate the job file, list its cells and estimate the disk and memory\n"
               "                   they need (OCCKD_RANKS=N: for N ranks), then exit\n"
               "  --no-path-check  with --check: do not require the data paths and weight files to exist\n"
               "  --set key=value  override a setting, e.g. --set train.epochs=2 (validated like the file)\n"
               "  --version        print the version\n"
               "Every key of a job file is described in jobs/README.md.\n");
}

/* The launcher's rank before MPI is up (to print once in --check mode). */
static int launcher_rank(void)
{
    const char *v = getenv("OMPI_COMM_WORLD_RANK");
    if (!v)
        v = getenv("PMI_RANK");
    if (!v)
        v = getenv("SLURM_PROCID");
    return v ? atoi(v) : 0;
}

/* --check: validates the job file (every process alike; the launcher's rank
 * 0 prints), lists its cells and estimates what it needs. */
static int check_job(const char *path, const char **sets, int n_sets, int no_paths)
{
    Job job;
    char err[8192];
    /* every process validates the same file the same way; one prints */
    int rc = job_load_ex(path, sets, n_sets, no_paths ? JOB_NO_PATH_CHECK : 0, &job, err, sizeof err);
    char out_err[4400];
    if (!rc && output_check(job.output, out_err, sizeof out_err)) {
        snprintf(err, sizeof err, "%s: %s", path, out_err);
        job_free(&job);
        rc = -1;
    }
    if (launcher_rank() == 0) {
        if (rc) {
            fprintf(stderr, "%s\n", err);
            /* where only paths are missing (a job planned on another
             * machine), the estimate still helps */
            Job j2;
            char e2[256];
            if (!no_paths && job_load_ex(path, sets, n_sets, JOB_NO_PATH_CHECK, &j2, e2, sizeof e2) == 0) {
                const char *r = getenv("OCCKD_RANKS");
                job_print_estimate(&j2, r && atoi(r) > 0 ? atoi(r) : 1, stdout);
                job_free(&j2);
            }
        } else {
            job_print(&job, stdout);
            const char *r = getenv("OCCKD_RANKS");
            if (!r)
                r = getenv("OMPI_COMM_WORLD_SIZE");
            if (!r)
                r = getenv("SLURM_NTASKS");
            job_print_estimate(&job, r && atoi(r) > 0 ? atoi(r) : 1, stdout);
            printf("%s: valid\n", path);
        }
    }
    if (!rc)
        job_free(&job);
    return rc ? EXIT_INVALID : EXIT_OK;
}

int main(int argc, char **argv)
{
    blas_kernel_select(argv); /* before MPI: may run the program again with better kernels */
    int check = 0, no_paths = 0, n_sets = 0;
    const char **sets = calloc((size_t)argc, sizeof(char *));
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--check")) {
            check = 1;
        } else if (!strcmp(argv[i], "--no-path-check")) {
            no_paths = 1;
        } else if (!strcmp(argv[i], "--set") && i + 1 < argc) {
            sets[n_sets++] = argv[++i];
        } else if (!strncmp(argv[i], "--set=", 6)) {
            sets[n_sets++] = argv[i] + 6;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            free(sets);
            return EXIT_OK;
        } else if (!strcmp(argv[i], "--version")) {
            printf("occkd %s\n", OCCKD_VERSION);
            free(sets);
            return EXIT_OK;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "occkd_train: unknown option '%s'\n", argv[i]);
            usage(stderr);
            free(sets);
            return EXIT_INVALID;
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, "occkd_train: one job file expected, got '%s' and '%s'\n", path, argv[i]);
            free(sets);
            return EXIT_INVALID;
        }
    }
    if (!path) {
        usage(stderr);
        free(sets);
        return EXIT_INVALID;
    }

    if (check) {
        int rc = check_job(path, sets, n_sets, no_paths);
        free(sets);
        return rc;
    }
    Job job;
    char err[8192];
    Comm comm;
    CommOptions co = {.threads = 0, .watchdog_seconds = 0};
    if (comm_init(&argc, &argv, &co, &comm)) {
        fprintf(stderr, "occkd_train: %s\n", comm.error);
        free(sets);
        return EXIT_FAILED;
    }
    /* validated on every rank; rank 0's verdict (or any rank's failure, e.g. a
     * file it cannot see) is everyone's */
    int rc = job_load(path, sets, n_sets, &job, err, sizeof err);
    char msg[COMM_MSG_MAX]; /* what a collective carries: the first COMM_MSG_MAX - 1 bytes */
    size_t msg_len = strnlen(err, sizeof msg - 1);
    memcpy(msg, err, msg_len);
    msg[msg_len] = '\0';
    if (comm_agree(&comm, COMM_SCOPE_WORLD, rc != 0, msg, sizeof msg, NULL)) {
        if (comm.rank == 0)
            fprintf(stderr, "%s\n", msg);
        if (!rc)
            job_free(&job);
        comm_finalize(&comm);
        free(sets);
        return EXIT_INVALID;
    }
    if (job.parallel.watchdog_seconds != 0)
        comm_set_watchdog(&comm, job.parallel.watchdog_seconds);
    int threads = job.parallel.threads > 0 ? job.parallel.threads : comm.threads;
    layers_set_threads(threads);
    if (comm.rank == 0) {
        char where[256];
        comm_describe(&comm, where, sizeof where);
        printf("occkd %s: %s; %d compute thread(s) per rank; %s\n", OCCKD_VERSION, where, threads,
               blas_kernel_describe());
        fflush(stdout);
        if (threads > comm.own_cores)
            fprintf(stderr,
                    "occkd: warning: parallel.threads = %d, but rank 0 may run on %d core(s) only (the CPU affinity "
                    "its launcher set), so its threads share them; start the ranks with mpirun --map-by slot:PE=%d "
                    "(or --bind-to none), or leave parallel.threads at 0\n",
                    threads, comm.own_cores, threads);
    }
    grid_install_signals();
    rc = grid_run(&job, &comm, err, sizeof err);
    if (rc != EXIT_OK && comm.rank == 0)
        fprintf(stderr, "occkd_train: %s\n", err);
    job_free(&job);
    comm_finalize(&comm);
    free(sets);
    return rc;
}
