/*
 * fe_io.c: external tensor data confined to the model's folder: the
 * location must be a relative path without "..", and every component is
 * opened with O_NOFOLLOW relative to its parent, so no symlink is ever
 * followed.  (Whole-file reads and atomic writes are in src/ir/io.c.)
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

#include "frontend/fe_internal.h"

/* ---- external data ------------------------------------------------------ */

/* Opens `location` beneath the folder `base_dir`, one component at a time
 * with O_NOFOLLOW, refusing absolute paths, "..", and empty names.  Returns
 * the descriptor of the regular file, or -1 with a diagnostic. */
static int open_beneath(oct_ctx *ctx, const char *base_dir, const char *tensor,
                        const char *location)
{
    const char *why = NULL;
    if (location[0] == '/')
        why = "is an absolute path";
    size_t n = strlen(location);
    char *copy = why ? NULL : malloc(n + 1);
    if (!why && !copy) {
        oct_error(ctx, OCT_EINTERNAL, "out of memory");
        return -1;
    }
    if (copy) {
        memcpy(copy, location, n + 1);
        for (char *c = strtok(copy, "/"); c && !why; c = strtok(NULL, "/"))
            if (!strcmp(c, ".."))
                why = "contains '..'";
    }
    int dir = -1, fd = -1;
    if (!why && (dir = open(base_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        why = "cannot open the model's folder";
    if (!why) {
        memcpy(copy, location, n + 1);
        char *save = NULL;
        char *c = strtok_r(copy, "/", &save);
        while (c) {
            char *next = strtok_r(NULL, "/", &save);
            int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
                        (next ? O_DIRECTORY : 0);
            int f = openat(dir, c, flags);
            if (f < 0) {
                why = errno == ELOOP || errno == ENOTDIR
                          ? "goes through a symbolic link or non-folder"
                          : "cannot be opened";
                break;
            }
            close(dir);
            dir = f;
            c = next;
        }
        if (!why) {
            struct stat sb;
            if (fstat(dir, &sb) != 0 || !S_ISREG(sb.st_mode))
                why = "is not a regular file";
            else
                fd = dir, dir = -1;
        }
    }
    if (dir >= 0)
        close(dir);
    free(copy);
    if (why)
        oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, tensor,
                  "external data location '%s' %s (it must be a file beneath "
                  "the model's folder, reached without symbolic links)",
                  location, why);
    return fd;
}

oct_status fe_read_external(oct_ctx *ctx, const char *base_dir,
                            const char *tensor, const char *location,
                            uint64_t offset, bool has_length, uint64_t length,
                            uint64_t nbytes, void **data)
{
    int fd = open_beneath(ctx, base_dir, tensor, location);
    if (fd < 0)
        return OCT_EINPUT;
    struct stat sb;
    oct_status st = OCT_OK;
    uint64_t size = fstat(fd, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    uint64_t end;
    if (!has_length)
        length = offset <= size ? size - offset : 0;
    if (offset > size || ir_add_overflow_u64(offset, length, &end) ||
        end > size) {
        st = oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, tensor,
                       "external data offset %llu + length %llu runs past the "
                       "end of '%s' (%llu bytes)",
                       (unsigned long long)offset, (unsigned long long)length,
                       location, (unsigned long long)size);
    } else if (length != nbytes) {
        st = oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, tensor,
                       "external data length %llu does not match the "
                       "tensor's %llu bytes",
                       (unsigned long long)length, (unsigned long long)nbytes);
    } else {
        uint8_t *buf = ir_alloc(ctx, nbytes ? nbytes : 1);
        if (!buf)
            st = OCT_EINTERNAL;
        else if (nbytes && !ir_read_at(fd, buf, nbytes, (off_t)offset))
            st = oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, tensor,
                           "cannot read external data from '%s'", location);
        else
            *data = buf;
    }
    close(fd);
    return st;
}
