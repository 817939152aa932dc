// libFuzzer's entry point for one harness; CMake compiles this file once per
// fuzzer with CRONRUN_FUZZ_HARNESS naming the harness function.
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return CRONRUN_FUZZ_HARNESS(data, size);
}
