/* output.c - the job's output folder: checked before anything trains (it is
 * a folder, or can be made one, and occkd may write in it), and held by one
 * run at a time through a lock file naming the holder.
 *
 * The lock is a file created exclusively (O_EXCL, which also holds on NFS v3
 * and later) by world rank 0, holding one line:
 *     host=<name> pid=<pid> started=<ISO 8601> slurm_job=<id or ->
 * A lock is stale, and is taken over with a message, when its host is this
 * host and its process is gone (or a zombie, or another program by now), or when it was written by an earlier start
 * of this same Slurm job (a requeue, on any node). Any other lock refuses
 * the run with a message naming the holder.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "trainer/grid.h"

#define LOCK_NAME ".occkd-lock"

/* The nearest existing ancestor of path (path itself if it exists). */
static void existing_ancestor(const char *path, char *out, size_t len)
{
    snprintf(out, len, "%s", path[0] ? path : ".");
    struct stat st;
    while (stat(out, &st) != 0) {
        char *slash = strrchr(out, '/');
        if (!slash) {
            snprintf(out, len, ".");
            return;
        }
        if (slash == out) {
            out[1] = 0;
            return;
        }
        *slash = 0;
    }
}

int output_check(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "job.output: %s exists and is not a folder", dir);
            return -1;
        }
        if (access(dir, W_OK | X_OK) != 0) {
            snprintf(err, errlen, "job.output: cannot write in the folder %s (%s)", dir, strerror(errno));
            return -1;
        }
        return 0;
    }
    char anc[4096];
    existing_ancestor(dir, anc, sizeof anc);
    if (stat(anc, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "job.output: cannot create %s: %s is not a folder", dir, anc);
        return -1;
    }
    if (access(anc, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "job.output: cannot create %s: no permission to write in %s (%s)", dir, anc,
                 strerror(errno));
        return -1;
    }
    return 0;
}

/* mkdir -p */
static int make_folders(const char *dir, char *err, size_t errlen)
{
    char p[4096];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "job.output: cannot create the folder %s: %s", p, strerror(errno));
                return -1;
            }
            *s = c;
            if (!c)
                break;
        }
    }
    return 0;
}

int output_prepare(const char *dir, char *err, size_t errlen)
{
    if (output_check(dir, err, errlen) || make_folders(dir, err, errlen))
        return -1;
    /* a real write: a read-only mount or a full disk shows here, not after
     * the first teacher has trained */
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/.occkd-write-test-%ld", dir, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int ok = fd >= 0 && write(fd, "ok\n", 3) == 3;
    int e = errno;
    if (fd >= 0 && close(fd) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    unlink(probe);
    if (!ok) {
        snprintf(err, errlen, "job.output: cannot write in %s: %s", dir, strerror(e));
        return -1;
    }
    return 0;
}

static void lock_path(const char *dir, char *out, size_t len) { snprintf(out, len, "%s/" LOCK_NAME, dir); }

typedef struct {
    char host[256], started[64], slurm_job[64];
    long pid;
} LockInfo;

static int read_lock(const char *path, LockInfo *li)
{
    memset(li, 0, sizeof *li);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int n = fscanf(f, "host=%255s pid=%ld started=%63s slurm_job=%63s", li->host, &li->pid, li->started,
                   li->slurm_job);
    fclose(f);
    return n == 4 ? 0 : -1;
}

/* 0 when process pid of this host is surely not a running occkd: no such
 * process, a zombie (killed, not reaped yet), or another program (its id
 * reused); 1 otherwise. */
static int occkd_alive(long pid)
{
    if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno == ESRCH))
        return 0;
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1; /* no /proc: it may be alive */
    int n = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    const char *open = strchr(line, '('), *close = strrchr(line, ')');
    if (!n || !open || !close || close < open)
        return 1;
    char state = close[1] == ' ' ? close[2] : '?';
    int is_occkd = strncmp(open + 1, "occkd", 5) == 0;
    return state != 'Z' && state != 'X' && is_occkd;
}

/* Why a lock may be taken over, or NULL when its holder may be alive. */
static const char *stale_reason(const LockInfo *li, int readable)
{
    if (!readable)
        return NULL;
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    const char *job = getenv("SLURM_JOB_ID");
    if (job && strcmp(job, li->slurm_job) == 0)
        return "written by an earlier start of this Slurm job";
    if (strcmp(host, li->host) == 0 && !occkd_alive(li->pid))
        return "its process is gone";
    return NULL;
}

static int create_lock(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return -1;
    char host[256] = "", when[64], line[512];
    gethostname(host, sizeof host - 1);
    for (char *c = host; *c; c++)
        if (*c == ' ')
            *c = '_';
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const char *job = getenv("SLURM_JOB_ID");
    int n = snprintf(line, sizeof line, "host=%s pid=%ld started=%s slurm_job=%s\n", host[0] ? host : "?",
                     (long)getpid(), when, job && job[0] ? job : "-");
    int ok = write(fd, line, (size_t)n) == n;
    ok &= close(fd) == 0;
    if (!ok) {
        unlink(path);
        errno = EIO;
        return -1;
    }
    return 0;
}

int output_lock(const char *dir, char *err, size_t errlen)
{
    char path[4200];
    lock_path(dir, path, sizeof path);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (create_lock(path) == 0)
            return 0;
        if (errno != EEXIST) {
            snprintf(err, errlen, "cannot create the lock file %s: %s", path, strerror(errno));
            return -1;
        }
        LockInfo li;
        int readable = read_lock(path, &li) == 0;
        const char *why = stale_reason(&li, readable);
        if (!why || attempt > 0) {
            if (readable)
                snprintf(err, errlen,
                         "the output folder %s is in use by another run: process %ld on host %s, started %s%s%s "
                         "(lock file %s). Wait for it to end; if it is gone, delete the lock file",
                         dir, li.pid, li.host, li.started, strcmp(li.slurm_job, "-") ? ", Slurm job " : "",
                         strcmp(li.slurm_job, "-") ? li.slurm_job : "", path);
            else
                snprintf(err, errlen,
                         "the output folder %s holds a lock file %s that cannot be read; if no run uses the "
                         "folder, delete it",
                         dir, path);
            return -1;
        }
        printf("occkd: taking over the lock %s of process %ld on host %s (started %s): %s\n", path, li.pid, li.host,
               li.started, why);
        fflush(stdout);
        unlink(path);
    }
    return -1;
}

void output_unlock(const char *dir)
{
    char path[4200];
    lock_path(dir, path, sizeof path);
    LockInfo li;
    /* only our own lock */
    if (read_lock(path, &li) == 0 && li.pid == (long)getpid())
        unlink(path);
}
