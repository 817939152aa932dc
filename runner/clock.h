// The run's two clocks, behind one seam so that tests drive time: the steady
// clock measures (wall_s, start_delay_s, the timeout and its grace), the wall
// clock stamps (started_at, finished_at). Nothing else in the run pipeline reads
// a clock.
#pragma once

#include <chrono>

namespace cronrun {

using SteadyTime = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual SteadyTime steady() const = 0;
  virtual WallTime wall() const = 0;
};

// The host's clocks (CLOCK_MONOTONIC and CLOCK_REALTIME through the vDSO).
class SystemClock final : public Clock {
 public:
  SteadyTime steady() const override { return std::chrono::steady_clock::now(); }
  WallTime wall() const override { return std::chrono::system_clock::now(); }
};

// Seconds between two steady instants.
inline double seconds_between(SteadyTime from, SteadyTime to) {
  return std::chrono::duration<double>(to - from).count();
}

}  // namespace cronrun
