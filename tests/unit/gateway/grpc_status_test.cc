#include "gateway/wire/grpc_status.h"

#include <gtest/gtest.h>

#include "gateway/wire/methods.h"

namespace infergate::gateway {
namespace {

using namespace std::chrono;

TEST(GrpcStatus, NamesAndParsing) {
  EXPECT_EQ(grpc_code_name(GrpcCode::kOk), "OK");
  EXPECT_EQ(grpc_code_name(GrpcCode::kResourceExhausted), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(grpc_code_name(GrpcCode::kUnauthenticated), "UNAUTHENTICATED");
  EXPECT_EQ(parse_grpc_status("14"), GrpcCode::kUnavailable);
  EXPECT_EQ(parse_grpc_status("0"), GrpcCode::kOk);
  EXPECT_FALSE(parse_grpc_status("17"));
  EXPECT_FALSE(parse_grpc_status(""));
  EXPECT_FALSE(parse_grpc_status("1a"));
  EXPECT_FALSE(parse_grpc_status("100"));
}

TEST(GrpcStatus, MessagesArePercentEncoded) {
  EXPECT_EQ(percent_encode_grpc_message("plain text: ok"), "plain text: ok");
  EXPECT_EQ(percent_encode_grpc_message("100%"), "100%25");
  EXPECT_EQ(percent_encode_grpc_message("line\nbreak"), "line%0Abreak");
  EXPECT_EQ(percent_encode_grpc_message("\xC3\xA9"), "%C3%A9");
}

// Issue 10: a 512 MiB model name was echoed into grpc-message.
TEST(GrpcStatus, ClientTextIsClippedInMessages) {
  EXPECT_EQ(clip("resnet50"), "resnet50");
  const std::string huge(1 << 20, 'm');
  EXPECT_EQ(clip(huge).size(), 128u + 3);
  EXPECT_EQ(clip(huge, 4), "mmmm...");
}

TEST(GrpcStatus, TimeoutUnits) {
  EXPECT_EQ(parse_grpc_timeout("100m"), nanoseconds(milliseconds(100)));
  EXPECT_EQ(parse_grpc_timeout("5S"), nanoseconds(seconds(5)));
  EXPECT_EQ(parse_grpc_timeout("2M"), nanoseconds(minutes(2)));
  EXPECT_EQ(parse_grpc_timeout("1H"), nanoseconds(hours(1)));
  EXPECT_EQ(parse_grpc_timeout("30u"), nanoseconds(microseconds(30)));
  EXPECT_EQ(parse_grpc_timeout("99999999n"), nanoseconds(99999999));
  // Eight digits of hours overflow int64 nanoseconds: gRPC saturates, and so do we, to a
  // deadline that stays representable when added to any clock's now().
  EXPECT_EQ(parse_grpc_timeout("99999999H"), kMaxGrpcTimeout);
  EXPECT_EQ(parse_grpc_timeout("2562048H"), kMaxGrpcTimeout);
  EXPECT_EQ(parse_grpc_timeout("99999999M"), kMaxGrpcTimeout);
  EXPECT_EQ(parse_grpc_timeout("99999999S"), nanoseconds(seconds(99999999)));
  EXPECT_EQ(parse_grpc_timeout("876000H"), kMaxGrpcTimeout);
  EXPECT_EQ(parse_grpc_timeout("875999H"), nanoseconds(hours(875999)));
  EXPECT_LT(system_clock::now().time_since_epoch(),
            system_clock::duration::max() - duration_cast<system_clock::duration>(kMaxGrpcTimeout));
  EXPECT_FALSE(parse_grpc_timeout("123456789S"));  // nine digits
  EXPECT_FALSE(parse_grpc_timeout("10"));
  EXPECT_FALSE(parse_grpc_timeout("m"));
  EXPECT_FALSE(parse_grpc_timeout("1x"));
}

TEST(Methods, PathsMapToMethods) {
  EXPECT_EQ(method_from_path("/inference.GRPCInferenceService/ModelInfer"), Method::kModelInfer);
  EXPECT_EQ(method_from_path("/inference.GRPCInferenceService/ModelStreamInfer"),
            Method::kModelStreamInfer);
  EXPECT_EQ(method_from_path("/inference.GRPCInferenceService/LogSettings"), Method::kLogSettings);
  EXPECT_EQ(method_from_path("/inference.GRPCInferenceService/Nope"), Method::kUnknown);
  EXPECT_EQ(method_from_path("/other.Service/ModelInfer"), Method::kUnknown);
  EXPECT_EQ(method_from_path(""), Method::kUnknown);
  EXPECT_TRUE(method_info(Method::kCudaSharedMemoryRegister).shared_memory);
  EXPECT_FALSE(method_info(Method::kModelInfer).shared_memory);
  EXPECT_EQ(method_info(Method::kRepositoryModelLoad).model_field, 2);
  EXPECT_TRUE(method_info(Method::kModelStreamInfer).client_streaming);
  for (int m = 0; m < kMethodCount; ++m) {
    EXPECT_EQ(static_cast<int>(method_info(static_cast<Method>(m)).method), m);
  }
}

}  // namespace
}  // namespace infergate::gateway
