#include "gateway/wire/request_view.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>

#include "gateway/wire/prefix_inflater.h"
#include "inference/grpc_service.pb.h"

namespace infergate::gateway {
namespace {

std::span<const std::uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

inference::ModelInferRequest sample_request(size_t tensor_bytes = 4096) {
  inference::ModelInferRequest r;
  r.set_model_name("deepmet");
  r.set_model_version("3");
  r.set_id("event-42");
  (*r.mutable_parameters())["sequence_id"].set_uint64_param(77);
  (*r.mutable_parameters())["sequence_start"].set_bool_param(true);
  (*r.mutable_parameters())["priority"].set_int64_param(2);
  (*r.mutable_parameters())["unrelated"].set_string_param("x");
  auto* in = r.add_inputs();
  in->set_name("INPUT0");
  in->set_datatype("FP32");
  in->add_shape(1);
  in->add_shape(static_cast<std::int64_t>(tensor_bytes / 4));
  r.add_raw_input_contents(std::string(tensor_bytes, '\x01'));
  return r;
}

TEST(RequestView, ReadsTheRoutingFieldsOfACanonicalMessage) {
  const std::string wire = sample_request().SerializeAsString();
  ScanResult r = scan_request(bytes(wire), true, kModelInferLayout);
  ASSERT_EQ(r.status, ScanStatus::kDone) << r.error;
  EXPECT_EQ(r.view.model_name, "deepmet");
  EXPECT_EQ(r.view.model_version, "3");
  EXPECT_EQ(r.view.id, "event-42");
  EXPECT_EQ(r.view.sequence.kind, SequenceId::Kind::kNumber);
  EXPECT_EQ(r.view.sequence.number, 77u);
  EXPECT_TRUE(r.view.sequence_start);
  EXPECT_FALSE(r.view.sequence_end);
  EXPECT_EQ(r.view.priority, 2u);
}

TEST(RequestView, StopsAtTheFirstTensorFieldWithoutSeeingTheTensor) {
  const std::string wire = sample_request(1 << 20).SerializeAsString();
  // Only the first 200 bytes: the routing fields and the start of the inputs.
  ScanResult r = scan_request(bytes(wire).first(200), false, kModelInferLayout);
  ASSERT_EQ(r.status, ScanStatus::kDone);
  EXPECT_EQ(r.view.model_name, "deepmet");
  EXPECT_EQ(r.view.sequence.number, 77u);
}

TEST(RequestView, ViewsPointIntoTheScannedBytes) {
  const std::string wire = sample_request().SerializeAsString();
  ScanResult r = scan_request(bytes(wire), true, kModelInferLayout);
  EXPECT_GE(r.view.model_name.data(), wire.data());
  EXPECT_LT(r.view.model_name.data(), wire.data() + wire.size());
}

TEST(RequestView, EveryTruncationOfTheRoutingPrefixAsksForMore) {
  const std::string wire = sample_request().SerializeAsString();
  const size_t inputs_at = wire.find("INPUT0") - 4;  // somewhere inside field 5's header
  for (size_t n = 0; n < inputs_at; ++n) {
    ScanResult r = scan_request(bytes(wire).first(n), false, kModelInferLayout);
    EXPECT_EQ(r.status, ScanStatus::kNeedMore) << "at " << n;
  }
}

TEST(RequestView, TruncatedCompleteMessageIsMalformed) {
  const std::string wire = sample_request().SerializeAsString();
  ScanResult r = scan_request(bytes(wire).first(10), true, kModelInferLayout);
  EXPECT_EQ(r.status, ScanStatus::kMalformed);
  EXPECT_STREQ(r.error, "message ends inside a field");
}

TEST(RequestView, StringAndSignedSequenceIds) {
  inference::ModelInferRequest r;
  r.set_model_name("m");
  (*r.mutable_parameters())["sequence_id"].set_string_param("track-9");
  (*r.mutable_parameters())["sequence_end"].set_bool_param(true);
  std::string wire = r.SerializeAsString();
  ScanResult s = scan_request(bytes(wire), true, kModelInferLayout);
  ASSERT_EQ(s.status, ScanStatus::kDone);
  EXPECT_EQ(s.view.sequence.kind, SequenceId::Kind::kString);
  EXPECT_EQ(s.view.sequence.text, "track-9");
  EXPECT_TRUE(s.view.sequence_end);

  (*r.mutable_parameters())["sequence_id"].set_int64_param(5);
  wire = r.SerializeAsString();
  s = scan_request(bytes(wire), true, kModelInferLayout);
  EXPECT_EQ(s.view.sequence.kind, SequenceId::Kind::kNumber);
  EXPECT_EQ(s.view.sequence.number, 5u);
}

TEST(RequestView, ZeroOrEmptySequenceIdMeansNoSequence) {
  inference::ModelInferRequest r;
  r.set_model_name("m");
  (*r.mutable_parameters())["sequence_id"].set_uint64_param(0);
  std::string wire = r.SerializeAsString();
  EXPECT_FALSE(scan_request(bytes(wire), true, kModelInferLayout).view.sequence.present());
  (*r.mutable_parameters())["sequence_id"].set_string_param("");
  wire = r.SerializeAsString();
  EXPECT_FALSE(scan_request(bytes(wire), true, kModelInferLayout).view.sequence.present());
}

// Hand-written wire bytes: tag(field, wire type) then payload.
std::string field_bytes(int field, const std::string& value) {
  std::string out;
  out.push_back(static_cast<char>((field << 3) | 2));
  out.push_back(static_cast<char>(value.size()));
  return out + value;
}

TEST(RequestView, OutOfOrderFieldsNeedTheWholeMessage) {
  // inputs (5) before model_name (1): a prefix scan must not decide.
  const std::string input = field_bytes(1, "INPUT0");
  const std::string wire = field_bytes(5, input) + field_bytes(1, "late-model");
  EXPECT_EQ(scan_request(bytes(wire).first(4), false, kModelInferLayout).status,
            ScanStatus::kNeedWhole);
  ScanResult whole = scan_request(bytes(wire), true, kModelInferLayout);
  ASSERT_EQ(whole.status, ScanStatus::kDone);
  EXPECT_EQ(whole.view.model_name, "late-model");
}

TEST(RequestView, DecreasingFieldNumbersBeforeTheTensorsAreDetected) {
  // id (3) then model (1): out of order, though no tensor field came yet.
  const std::string wire = field_bytes(3, "id") + field_bytes(1, "m") + field_bytes(2, "1");
  EXPECT_EQ(scan_request(bytes(wire), false, kModelInferLayout).status, ScanStatus::kNeedWhole);
  ScanResult whole = scan_request(bytes(wire), true, kModelInferLayout);
  EXPECT_EQ(whole.view.model_name, "m");
  EXPECT_EQ(whole.view.id, "id");
}

TEST(RequestView, GarbageIsMalformedWithAReason) {
  const std::string wrong_wire_type = std::string("\x08\x05", 2);  // field 1 as a varint
  ScanResult r = scan_request(bytes(wrong_wire_type), true, kModelInferLayout);
  EXPECT_EQ(r.status, ScanStatus::kMalformed);
  EXPECT_STREQ(r.error, "model name has the wrong wire type");

  const std::string group = std::string("\x0b", 1);  // wire type 3 (start group)
  EXPECT_EQ(scan_request(bytes(group), false, kModelInferLayout).status, ScanStatus::kMalformed);

  const std::string zero_field = std::string("\x02\x00", 2);
  EXPECT_EQ(scan_request(bytes(zero_field), true, kModelInferLayout).status,
            ScanStatus::kMalformed);

  const std::string long_varint(11, '\xff');
  EXPECT_EQ(scan_request(bytes(long_varint), false, kModelInferLayout).status,
            ScanStatus::kMalformed);

  const std::string oversize_len = std::string("\x0a\xff\xff\xff\xff\x0f", 6);
  EXPECT_EQ(scan_request(bytes(oversize_len), true, kModelInferLayout).status,
            ScanStatus::kMalformed);
}

TEST(RequestView, ControlRequestsUseTheirOwnLayout) {
  inference::RepositoryModelLoadRequest load;
  load.set_repository_name("repo");
  load.set_model_name("resnet");
  const std::string wire = load.SerializeAsString();
  ScanResult r = scan_request(bytes(wire), true, ScanLayout{.model_field = 2, .version_field = 0});
  ASSERT_EQ(r.status, ScanStatus::kDone);
  EXPECT_EQ(r.view.model_name, "resnet");

  inference::ModelReadyRequest ready;
  ready.set_name("resnet");
  ready.set_version("2");
  const std::string w2 = ready.SerializeAsString();
  ScanResult r2 = scan_request(bytes(w2), true, ScanLayout{});
  EXPECT_EQ(r2.view.model_name, "resnet");
  EXPECT_EQ(r2.view.model_version, "2");
}

TEST(RequestView, EmptyMessageIsDoneWithNoModel) {
  ScanResult r = scan_request({}, true, kModelInferLayout);
  EXPECT_EQ(r.status, ScanStatus::kDone);
  EXPECT_TRUE(r.view.model_name.empty());
}

std::string compress(const std::string& in, int window_bits) {
  z_stream z{};
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, in.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

TEST(PrefixInflater, InflatesGzipOnlyAsFarAsAsked) {
  const std::string wire = sample_request(4 << 20).SerializeAsString();
  const std::string gz = compress(wire, 15 + 16);
  PrefixInflater inflater;
  ASSERT_TRUE(inflater.feed(bytes(gz), 4096));
  EXPECT_GE(inflater.output().size(), 4096u);
  EXPECT_LT(inflater.output().size(), 200u * 1024);  // not the 4 MiB message
  EXPECT_FALSE(inflater.finished());
  ScanResult r = scan_request(bytes(inflater.output()), false, kModelInferLayout);
  ASSERT_EQ(r.status, ScanStatus::kDone);
  EXPECT_EQ(r.view.model_name, "deepmet");
}

TEST(PrefixInflater, DeflateIsZlibWrappedAndCanBeFedInPieces) {
  const std::string wire = sample_request().SerializeAsString();
  const std::string z = compress(wire, 15);
  PrefixInflater inflater;
  for (size_t i = 0; i < z.size(); i += 7) {
    ASSERT_TRUE(inflater.feed(bytes(z).subspan(i, std::min<size_t>(7, z.size() - i)), 1 << 30));
  }
  EXPECT_TRUE(inflater.finished());
  EXPECT_EQ(inflater.output(), wire);
  EXPECT_EQ(inflater.consumed(), z.size());
}

TEST(PrefixInflater, CorruptDataIsAnError) {
  PrefixInflater inflater;
  const std::string junk = "this is not a compressed stream at all";
  EXPECT_FALSE(inflater.feed(bytes(junk), 1024));
  EXPECT_STRNE(inflater.error(), "");
}

TEST(PrefixInflater, EncodingNames) {
  EXPECT_EQ(parse_encoding(""), Encoding::kIdentity);
  EXPECT_EQ(parse_encoding("identity"), Encoding::kIdentity);
  EXPECT_EQ(parse_encoding("gzip"), Encoding::kGzip);
  EXPECT_EQ(parse_encoding("deflate"), Encoding::kDeflate);
  EXPECT_EQ(parse_encoding("snappy"), Encoding::kUnsupported);
}

}  // namespace
}  // namespace infergate::gateway
