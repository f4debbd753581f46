// Runs the fuzz target's entry point over its seed corpus and over seeded random and
// mutated inputs, so the scanner's robustness is checked in every build, not only in
// fuzzing runs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size);

namespace {

std::vector<std::vector<std::uint8_t>> corpus() {
  std::vector<std::vector<std::uint8_t>> out;
  for (const auto& entry : std::filesystem::directory_iterator(INFERGATE_FUZZ_CORPUS)) {
    std::ifstream in(entry.path(), std::ios::binary);
    out.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return out;
}

TEST(FuzzReplay, CorpusRunsClean) {
  auto seeds = corpus();
  ASSERT_GE(seeds.size(), 5u);
  for (const auto& s : seeds) EXPECT_EQ(LLVMFuzzerTestOneInput(s.data(), s.size()), 0);
}

TEST(FuzzReplay, MutationsOfTheCorpusRunClean) {
  std::mt19937 rng(12345);
  for (const auto& seed : corpus()) {
    for (int i = 0; i < 300; ++i) {
      std::vector<std::uint8_t> m = seed;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits && !m.empty(); ++e) {
        const size_t at = rng() % m.size();
        switch (rng() % 3) {
          case 0:
            m[at] = static_cast<std::uint8_t>(rng());
            break;
          case 1:
            m.erase(m.begin() + static_cast<long>(at));
            break;
          default:
            m.insert(m.begin() + static_cast<long>(at), static_cast<std::uint8_t>(rng()));
        }
      }
      LLVMFuzzerTestOneInput(m.data(), m.size());
    }
  }
}

TEST(FuzzReplay, RandomBytesRunClean) {
  std::mt19937 rng(99);
  for (int i = 0; i < 2000; ++i) {
    std::vector<std::uint8_t> m(rng() % 300);
    for (auto& b : m) b = static_cast<std::uint8_t>(rng());
    LLVMFuzzerTestOneInput(m.data(), m.size());
  }
}

}  // namespace
