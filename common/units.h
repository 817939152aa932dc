// Strict parsers and printers for the units users type: sizes (512M, 2G, 1.5GiB,
// bytes), durations (90s, 15m, 2h, 1h30m, 250ms) and CPU quotas (50%, 250%, 1.5 cores).
// Parsers reject anything they do not fully understand; the error text says what
// was expected and quotes what was given, for the caller to prefix with the flag.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.h"

namespace cronrun::units {

// K/M/G/T (and KB/KiB/...) are powers of 1024, as in cgroup files and `free -h`.
// A bare number is bytes. Fractions are allowed with a suffix ("1.5G").
Result<uint64_t> parse_size(std::string_view text);
// Durations: a sequence of number+unit (ms, s, m, h, d); a bare number is seconds.
// At most 36500d, so that adding one to a clock or converting it to nanoseconds
// cannot overflow.
Result<std::chrono::milliseconds> parse_duration(std::string_view text);
// "50%" -> 50, "250%" -> 250, "1.5" -> 150 (cores). Result is percent of one CPU.
Result<double> parse_cpu_percent(std::string_view text);

// "1.5 GiB", "512 MiB", "900 B" — for people.
std::string format_size(uint64_t bytes);
// "812.4s", "13m32s", "2h05m" — for people.
std::string format_duration_s(double seconds);

}  // namespace cronrun::units
