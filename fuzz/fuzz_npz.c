/*
 * fuzz_npz.c: libFuzzer target for the .npz reader (zip end record,
 * central directory, local headers, stored and deflated members, CRC, the
 * .npy inside).  The reader takes a path, so the input is put in a memfd
 * and read through /proc/self/fd.
 */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz.npz", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    oct_ctx *ctx = fuzz_ctx();
    if (ctx) {
        ir_tensor **arrays = NULL;
        size_t n = 0;
        fe_read_npz(ctx, path, &arrays, &n);
        oct_ctx_free(ctx);
    }
    close(fd);
    return 0;
}
