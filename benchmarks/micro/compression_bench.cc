// Google Benchmark: what compressing a request costs and buys, per algorithm, on the
// bench's HEP-like tensors (zero-padded DeepMET, mostly-empty ProtoDUNE patches, dense
// random). Reports throughput (bytes in per second) and the compression ratio.
//   build/benchmarks/micro/infergate-micro-bench --benchmark_filter=Compress
#include <benchmark/benchmark.h>

#include <map>
#include <span>

#include "benchmarks/bench/core/payload.h"
#include "gateway/wire/message_compressor.h"

namespace {

using infergate::bench::Preset;
using infergate::gateway::Encoding;

const std::string& tensor(Preset preset) {
  static std::map<Preset, std::string> cache;
  auto it = cache.find(preset);
  if (it == cache.end()) {
    it = cache.emplace(preset, infergate::bench::make_payload(preset, 4u << 20).bytes).first;
  }
  return it->second;
}

void BM_Compress(benchmark::State& state, Preset preset, Encoding encoding) {
  const std::string& data = tensor(preset);
  const std::span<const std::uint8_t> body(reinterpret_cast<const std::uint8_t*>(data.data()),
                                           data.size());
  size_t out = 0;
  for (auto _ : state) {
    infergate::gateway::CompressedMessage m = infergate::gateway::compress_message(encoding, body);
    out = m.framed.size();
    benchmark::DoNotOptimize(m.framed.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
  state.counters["ratio"] = static_cast<double>(data.size()) / static_cast<double>(out);
  state.counters["in_bytes"] = static_cast<double>(data.size());
  state.counters["out_bytes"] = static_cast<double>(out);
}

BENCHMARK_CAPTURE(BM_Compress, deepmet_gzip, Preset::kDeepmet, Encoding::kGzip);
BENCHMARK_CAPTURE(BM_Compress, deepmet_deflate, Preset::kDeepmet, Encoding::kDeflate);
BENCHMARK_CAPTURE(BM_Compress, protodune_gzip, Preset::kProtodune, Encoding::kGzip)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Compress, protodune_deflate, Preset::kProtodune, Encoding::kDeflate)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Compress, random4mib_gzip, Preset::kRandom, Encoding::kGzip)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Compress, random4mib_deflate, Preset::kRandom, Encoding::kDeflate)
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
