#include "benchmarks/bench/core/payload.h"

#include <cmath>
#include <cstring>

#include "benchmarks/bench/core/split_mix.h"

namespace infergate::bench {
namespace {

constexpr int kPatches = 1693;
constexpr int kSide = 48;

void put(std::string& bytes, size_t index, float value) {
  std::memcpy(bytes.data() + index * sizeof(float), &value, sizeof(float));
}

Payload with_shape(std::vector<std::int64_t> shape) {
  Payload p;
  std::int64_t elements = 1;
  for (std::int64_t d : shape) elements *= d;
  p.shape = std::move(shape);
  p.bytes.assign(static_cast<size_t>(elements) * sizeof(float), '\0');
  return p;
}

// Values in [lo, hi): never zero when lo > 0.
void fill_random(std::string& bytes, size_t first, size_t count, float lo, float hi,
                 SplitMix64& rng) {
  for (size_t i = first; i < first + count; ++i) {
    put(bytes, i, lo + (hi - lo) * static_cast<float>(rng.uniform01()));
  }
}

// Charge deposits: each patch gets 1-5 round clusters of radius 2-4 pixels whose
// amplitude falls off from the centre, like hits in a wire-plane image.
void fill_protodune(std::string& bytes, SplitMix64& rng) {
  for (int patch = 0; patch < kPatches; ++patch) {
    size_t base = static_cast<size_t>(patch) * kSide * kSide;
    int clusters = 1 + static_cast<int>(rng.below(5));
    for (int c = 0; c < clusters; ++c) {
      int cx = static_cast<int>(rng.below(kSide));
      int cy = static_cast<int>(rng.below(kSide));
      int r = 2 + static_cast<int>(rng.below(3));
      float amplitude = 10.0f + 190.0f * static_cast<float>(rng.uniform01());
      for (int y = std::max(0, cy - r); y <= std::min(kSide - 1, cy + r); ++y) {
        for (int x = std::max(0, cx - r); x <= std::min(kSide - 1, cx + r); ++x) {
          float d = std::sqrt(static_cast<float>((x - cx) * (x - cx) + (y - cy) * (y - cy)));
          if (d > static_cast<float>(r)) continue;
          put(bytes, base + static_cast<size_t>(y * kSide + x),
              amplitude * (1.0f - d / static_cast<float>(r + 1)));
        }
      }
    }
  }
}

}  // namespace

std::optional<Preset> parse_preset(std::string_view name) {
  for (Preset p : {Preset::k1kb, Preset::kDeepmet, Preset::kProtodune, Preset::kRandom}) {
    if (preset_name(p) == name) return p;
  }
  return std::nullopt;
}

std::string_view preset_name(Preset preset) {
  switch (preset) {
    case Preset::k1kb:
      return "1kb";
    case Preset::kDeepmet:
      return "deepmet";
    case Preset::kProtodune:
      return "protodune";
    case Preset::kRandom:
      return "random";
  }
  return "?";
}

Payload make_payload(Preset preset, std::uint64_t random_bytes, std::uint64_t seed) {
  SplitMix64 rng(seed);
  switch (preset) {
    case Preset::k1kb: {
      Payload p = with_shape({1, 256});
      fill_random(p.bytes, 0, 256, -1.0f, 1.0f, rng);
      return p;
    }
    case Preset::kDeepmet: {
      Payload p = with_shape({1, kDeepmetParticles, 8});
      fill_random(p.bytes, 0, kDeepmetFilled * 8, 0.01f, 10.0f, rng);
      return p;
    }
    case Preset::kProtodune: {
      Payload p = with_shape({kPatches, kSide, kSide});
      fill_protodune(p.bytes, rng);
      return p;
    }
    case Preset::kRandom: {
      auto n = static_cast<std::int64_t>(random_bytes / sizeof(float));
      Payload p = with_shape({1, n});
      fill_random(p.bytes, 0, static_cast<size_t>(n), 0.001f, 1.0f, rng);
      return p;
    }
  }
  return {};
}

double zero_fraction(const Payload& payload) {
  size_t n = payload.bytes.size() / sizeof(float);
  if (n == 0) return 0;
  size_t zeros = 0;
  for (size_t i = 0; i < n; ++i) {
    float v;
    std::memcpy(&v, payload.bytes.data() + i * sizeof(float), sizeof(float));
    zeros += v == 0.0f ? 1 : 0;
  }
  return static_cast<double>(zeros) / static_cast<double>(n);
}

}  // namespace infergate::bench
