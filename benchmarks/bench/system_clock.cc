#include "benchmarks/bench/system_clock.h"

#include <sys/resource.h>

#include <thread>

namespace infergate::bench {

std::chrono::steady_clock::time_point SystemRunClock::now() {
  return std::chrono::steady_clock::now();
}

void SystemRunClock::sleep_until(std::chrono::steady_clock::time_point t) {
  std::this_thread::sleep_until(t);
}

double SystemRunClock::cpu_seconds() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  auto secs = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec * 1e-6; };
  return secs(usage.ru_utime) + secs(usage.ru_stime);
}

}  // namespace infergate::bench
