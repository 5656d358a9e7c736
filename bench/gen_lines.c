/* SPDX-License-Identifier: MIT */
/*
 * Prints BYTES bytes (default 1 GiB) of 32-byte lines to stdout in 64 KiB
 * writes: the producer for the log throughput benchmark. BYTES must be a
 * multiple of 32 so that the output ends with a whole line. The same 64 KiB
 * block (2,048 numbered lines) is written over and over, so the producer
 * costs next to nothing and the consumer is what is measured.
 *
 *   gen_lines [BYTES]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINE 32
#define BLOCK 65536

int main(int argc, char **argv)
{
    unsigned long long total = argc > 1 ? strtoull(argv[1], NULL, 10) : 1ULL << 30;
    if (total % LINE) {
        fprintf(stderr, "gen_lines: BYTES must be a multiple of %d\n", LINE);
        return 2;
    }
    static char block[BLOCK + 1];
    for (size_t off = 0; off < BLOCK; off += LINE)
        snprintf(block + off, LINE + 1, "kiln benchmark line %011zu\n", off / LINE);
    while (total) {
        size_t n = total < BLOCK ? (size_t)total : BLOCK;
        for (size_t off = 0; off < n;) {
            ssize_t w = write(1, block + off, n - off);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                perror("gen_lines: write");
                return 1;
            }
            off += (size_t)w;
        }
        total -= n;
    }
    return 0;
}
