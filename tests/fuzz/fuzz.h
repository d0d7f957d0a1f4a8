/* fuzz.h — what every libFuzzer target in tests/fuzz/ shares: libFuzzer's entry point, which
 * each target defines, and CHECK, which traps when an invariant of the code under test
 * breaks (libFuzzer then reports the crash with the input that caused it, and
 * tests/run-fuzz.sh keeps it under build/fuzz/artifacts/). */
#ifndef SW_TEST_FUZZ_H
#define SW_TEST_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)              \
    do {                      \
        if (!(c))             \
            __builtin_trap(); \
    } while (0)

#endif
