/*
 * io.c: files, for every layer (the frontend, the passes' statistics and
 * reports, codegen's outputs).  Reading whole inputs (read-only,
 * size-limited; "-" is standard input) and atomic writes (temporary file in
 * the target folder, fsync, rename; never onto a file registered as an
 * input).
 *
 * Temporary files are listed in a small process-wide registry while they
 * exist, so a SIGINT/SIGTERM handler (src/cli/main.c) can unlink them with
 * ir_remove_temp_files before the process dies: an interrupted run leaves
 * no partial file.  This registry is the one piece of global mutable state
 * in the library; it exists because a signal handler can reach nothing
 * else.  SIGINT and SIGTERM are blocked while a slot changes, so the
 * handler only ever sees complete names.
 */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ir/ir.h"


void ir_note_input(oct_ctx *ctx, const char *path)
{
    if (!path || !strcmp(path, "-"))
        return;
    char **list = realloc(ctx->noted_inputs,
                          (ctx->n_noted_inputs + 1) * sizeof *list);
    if (!list)
        return;
    ctx->noted_inputs = list;
    char *copy = strdup(path);
    if (copy)
        list[ctx->n_noted_inputs++] = copy;
}

/* Reads all of fd into oct_malloc'ed memory, growing as needed. */
static oct_status read_stream(oct_ctx *ctx, int fd, const char *path,
                              uint64_t limit, uint8_t **data, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = oct_malloc(ctx, cap);
    if (!buf)
        return OCT_EINTERNAL;
    for (;;) {
        if (n == cap) {
            if (cap > SIZE_MAX / 2) {
                oct_free(ctx, buf, cap);
                return oct_error(ctx, OCT_EINPUT, "input too large");
            }
            uint8_t *nb = oct_realloc(ctx, buf, cap, cap * 2);
            if (!nb) {
                oct_free(ctx, buf, cap);
                return OCT_EINTERNAL;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            oct_free(ctx, buf, cap);
            return oct_error(ctx, OCT_EINPUT, "cannot read '%s': %s", path,
                             strerror(e));
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > limit) {
            oct_free(ctx, buf, cap);
            return oct_error(ctx, OCT_EINPUT,
                             "'%s' is larger than the limit of %llu bytes "
                             "(max_file_bytes)",
                             path, (unsigned long long)limit);
        }
    }
    /* Shrink to the exact size so the caller frees with `len`. */
    uint8_t *exact = oct_realloc(ctx, buf, cap, n ? n : 1);
    if (!exact) {
        oct_free(ctx, buf, cap);
        return OCT_EINTERNAL;
    }
    *data = exact;
    *len = n;
    return OCT_OK;
}

bool ir_read_at(int fd, uint8_t *buf, size_t len, long long offset)
{
    while (len) {
        ssize_t r = pread(fd, buf, len, (off_t)offset);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        buf += r;
        len -= (size_t)r;
        offset += r;
    }
    return true;
}

oct_status ir_read_file(oct_ctx *ctx, const char *path, uint64_t limit,
                        uint8_t **data, size_t *len)
{
    if (!strcmp(path, "-"))
        return read_stream(ctx, STDIN_FILENO, "<stdin>", limit, data, len);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return oct_error(ctx, OCT_EINPUT, "cannot open '%s': %s", path,
                         strerror(errno));
    struct stat sb;
    oct_status st;
    if (fstat(fd, &sb) != 0) {
        st = oct_error(ctx, OCT_EINPUT, "cannot stat '%s': %s", path,
                       strerror(errno));
    } else if (S_ISDIR(sb.st_mode)) {
        st = oct_error(ctx, OCT_EINPUT, "'%s' is a directory", path);
    } else if (!S_ISREG(sb.st_mode)) {
        st = read_stream(ctx, fd, path, limit, data, len);
    } else if ((uint64_t)sb.st_size > limit) {
        st = oct_error(ctx, OCT_EINPUT,
                       "'%s' is %lld bytes, over the limit of %llu bytes "
                       "(max_file_bytes)",
                       path, (long long)sb.st_size, (unsigned long long)limit);
    } else {
        size_t n = (size_t)sb.st_size;
        uint8_t *buf = oct_malloc(ctx, n ? n : 1);
        if (!buf) {
            st = OCT_EINTERNAL;
        } else if (n && !ir_read_at(fd, buf, n, 0)) {
            oct_free(ctx, buf, n ? n : 1);
            st = oct_error(ctx, OCT_EINPUT, "cannot read '%s'", path);
        } else {
            *data = buf;
            *len = n;
            st = OCT_OK;
        }
    }
    close(fd);
    return st;
}

/* ---- temporary-file registry ------------------------------------------- */

enum { TEMP_SLOTS = 8, TEMP_PATH_MAX = PATH_MAX + 32 };

/* used: 0 free, 1 claimed (name being copied), 2 holds a live temporary.
 * Slots are claimed with an atomic compare-and-swap, so threads writing at
 * once never share one; the handler only trusts state 2. */
static struct {
    volatile sig_atomic_t used;
    char path[TEMP_PATH_MAX];
} temp_files[TEMP_SLOTS];

/* Blocks (block = true) or restores SIGINT and SIGTERM around a registry
 * change. */
static void temp_signals(bool block, sigset_t *old)
{
    if (block) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, old);
    } else {
        pthread_sigmask(SIG_SETMASK, old, NULL);
    }
}

/* Creates the temporary for `path` (mkstemp on "<path>.tmp.XXXXXX") and
 * registers it; signals are blocked in between so a handler never misses
 * it.  Returns the descriptor (-1 with errno set on failure) and the slot
 * (-1 if the registry is full or the name too long: the file is then made
 * but not registered, which only loses the cleanup-on-signal guarantee). */
static int temp_create(char *tmp, int *slot)
{
    sigset_t old;
    temp_signals(true, &old);
    int fd = mkstemp(tmp);
    *slot = -1;
    if (fd >= 0 && strlen(tmp) < TEMP_PATH_MAX)
        for (int i = 0; i < TEMP_SLOTS; i++) {
            sig_atomic_t free_slot = 0;
            if (__atomic_compare_exchange_n(&temp_files[i].used, &free_slot, 1,
                                            false, __ATOMIC_ACQ_REL,
                                            __ATOMIC_RELAXED)) {
                memcpy(temp_files[i].path, tmp, strlen(tmp) + 1);
                __atomic_store_n(&temp_files[i].used, 2, __ATOMIC_RELEASE);
                *slot = i;
                break;
            }
        }
    int e = errno;
    temp_signals(false, &old);
    errno = e;
    return fd;
}

/* Renames (rename_to != NULL) or unlinks the registered temporary and
 * drops it from the registry (not after a failed rename: the caller then
 * unlinks it with rename_to NULL), with signals blocked.  Returns rename's
 * or unlink's result; errno is kept. */
static int temp_finish(const char *tmp, int slot, const char *rename_to)
{
    sigset_t old;
    temp_signals(true, &old);
    int r = rename_to ? rename(tmp, rename_to) : unlink(tmp);
    int e = errno;
    /* a failed rename leaves the temporary registered until its unlink */
    if (slot >= 0 && (r == 0 || !rename_to))
        __atomic_store_n(&temp_files[slot].used, 0, __ATOMIC_RELEASE);
    temp_signals(false, &old);
    errno = e;
    return r;
}

void ir_remove_temp_files(void)
{
    /* async-signal-safe: reads flags and calls unlink only */
    for (int i = 0; i < TEMP_SLOTS; i++)
        if (__atomic_load_n(&temp_files[i].used, __ATOMIC_ACQUIRE) == 2)
            unlink(temp_files[i].path);
}

/* ---- atomic writes ------------------------------------------------------ */

/* True if `path` names the same file as a noted input. */
static const char *same_as_input(const oct_ctx *ctx, const char *path)
{
    struct stat out_sb;
    bool have_out = stat(path, &out_sb) == 0;
    char *out_real = realpath(path, NULL);
    const char *hit = NULL;
    for (size_t i = 0; i < ctx->n_noted_inputs && !hit; i++) {
        const char *in = ctx->noted_inputs[i];
        struct stat in_sb;
        if (have_out && stat(in, &in_sb) == 0 && in_sb.st_dev == out_sb.st_dev &&
            in_sb.st_ino == out_sb.st_ino)
            hit = in;
        char *in_real = out_real ? realpath(in, NULL) : NULL;
        if (in_real && !strcmp(in_real, out_real))
            hit = in;
        free(in_real);
    }
    free(out_real);
    return hit;
}

static bool write_all(int fd, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        len -= (size_t)w;
    }
    return true;
}

/* Gives the temporary the mode the target would get: the existing target's
 * mode, else 0666 minus the umask (read from /proc, not changed).  Always
 * returns true: a failed chmod leaves the safe 0600 of mkstemp. */
static bool fchmod_default(const char *tmp, const char *path)
{
    struct stat sb;
    mode_t mode = 0644;
    if (stat(path, &sb) == 0) {
        mode = sb.st_mode & 07777;
    } else {
        FILE *f = fopen("/proc/self/status", "r");
        char line[128];
        unsigned mask;
        while (f && fgets(line, sizeof line, f))
            if (sscanf(line, "Umask: %o", &mask) == 1) {
                mode = 0666 & ~(mode_t)mask;
                break;
            }
        if (f)
            fclose(f);
    }
    chmod(tmp, mode);
    return true;
}

oct_status ir_write_atomic(oct_ctx *ctx, const char *path, const void *data,
                           size_t len)
{
    if (!strcmp(path, "-")) {
        if (!write_all(STDOUT_FILENO, data, len))
            return oct_error(ctx, OCT_EINTERNAL,
                             "cannot write standard output: %s",
                             strerror(errno));
        return OCT_OK;
    }
    const char *input = same_as_input(ctx, path);
    if (input)
        return oct_error(ctx, OCT_EUSAGE,
                         "refusing to write '%s': it is the input file '%s'",
                         path, input);
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        /* A device or pipe (e.g. /dev/null) cannot be replaced atomically. */
        if (S_ISDIR(sb.st_mode))
            return oct_error(ctx, OCT_EUSAGE, "'%s' is a directory", path);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            return oct_error(ctx, OCT_EINTERNAL, "cannot open '%s': %s", path,
                             strerror(errno));
        bool ok = write_all(fd, data, len);
        ok = (close(fd) == 0) && ok;
        return ok ? OCT_OK
                  : oct_error(ctx, OCT_EINTERNAL, "cannot write '%s'", path);
    }
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp)
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    /* The temporary sits beside the target: same folder, same filesystem. */
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    int slot;
    int fd = temp_create(tmp, &slot);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return oct_error(ctx, OCT_EINTERNAL, "cannot create a file beside '%s': %s",
                         path, strerror(e));
    }
    const char *failed = NULL;
    int err = 0;
    if (!write_all(fd, data, len))
        failed = "write", err = errno;
    else if (fsync(fd) != 0)
        failed = "fsync", err = errno;
    if (close(fd) != 0 && !failed)
        failed = "close", err = errno;
    if (!failed && fchmod_default(tmp, path) && temp_finish(tmp, slot, path) != 0)
        failed = "rename", err = errno;
    oct_status st = OCT_OK;
    if (failed) {
        temp_finish(tmp, slot, NULL);
        st = oct_error(ctx, OCT_EINTERNAL, "cannot write '%s' (%s): %s", path,
                       failed, strerror(err));
    }
    free(tmp);
    return st;
}
