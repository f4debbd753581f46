// Decides, from a seeded random source, the fate of each inference request: served,
// refused at once, hung, or failed after its latency. The rates partition [0, 1): one
// uniform draw per request, so each fate happens at exactly its configured fraction in
// the long run and the same seed gives the same sequence of fates. Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <random>

namespace infergate::sim {

class FailurePlan {
 public:
  enum class Fate { kServe, kRefuse, kHang, kError };

  struct Rates {
    double refuse = 0;
    double hang = 0;
    double error = 0;  // the three add up to at most 1
  };

  FailurePlan(Rates rates, std::uint64_t seed) : rates_(rates), rng_(seed) {}

  // The fate of the next request; any thread.
  Fate next();

 private:
  Rates rates_;
  std::mutex mu_;
  std::mt19937_64 rng_;
};

}  // namespace infergate::sim
