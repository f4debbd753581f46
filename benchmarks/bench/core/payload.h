// The request tensors the bench sends: presets shaped like HEP workloads. Pure and
// deterministic for a given seed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace infergate::bench {

enum class Preset {
  k1kb,        // INPUT0 FP32 [1,256], random values (1 KiB)
  kDeepmet,    // INPUT0 FP32 [1,4500,8]: 800 random particles, the rest zero-padded
  kProtodune,  // INPUT0 FP32 [1693,48,48]: a few % of pixels non-zero, in clusters
  kRandom,     // INPUT0 FP32 [1,N], dense random, N * 4 = --bytes
};

std::optional<Preset> parse_preset(std::string_view name);
std::string_view preset_name(Preset preset);

// One input tensor, ready to go into raw_input_contents.
struct Payload {
  std::string input_name = "INPUT0";
  std::string datatype = "FP32";
  std::vector<std::int64_t> shape;
  std::string bytes;  // little-endian FP32, product(shape) * 4 bytes
};

inline constexpr std::uint64_t kDefaultSeed = 42;
inline constexpr int kDeepmetParticles = 4500;
inline constexpr int kDeepmetFilled = 800;

// Builds the preset's tensor. random_bytes is used by kRandom only and must be a
// positive multiple of 4 (the caller validates it).
Payload make_payload(Preset preset, std::uint64_t random_bytes, std::uint64_t seed = kDefaultSeed);

// The fraction of FP32 elements that are exactly zero.
double zero_fraction(const Payload& payload);

}  // namespace infergate::bench
