// The simulated models. Each turns a validated request (see check_inputs) into a
// response; they are called on gRPC threads and touch only the request, the response and
// the version's thread-safe sequence table.
//
// identity: every input becomes an output of the same datatype, shape and data, byte for
//   byte. Input "INPUTx" -> output "OUTPUTx", "inputx" -> "outputx", any other name X ->
//   "OUTPUT_X". Raw inputs give raw outputs, typed contents give typed contents. If the
//   request lists outputs, only those come back, in the order listed.
// accumulate (and simple_sequence, with tensors INPUT and OUTPUT): a stateful sequence model.
// INPUT0 (INT32) is summed into the sequence's
//   running total, returned as OUTPUT0 (INT32, shape [1]) with the response parameter
//   sequence_count = requests seen in the sequence.
#pragma once

#include <grpcpp/support/status.h>

#include <string>

#include "benchmarks/sim/model_registry.h"
#include "inference/grpc_service.pb.h"

namespace infergate::sim {

// The identity output name for an input name.
std::string identity_output_name(const std::string& input_name);

// Fills `response` with the echoed tensors. `owned` is the same request when the caller
// owns it: its tensor data is then moved, not copied. INVALID_ARGUMENT for an unknown or
// repeated requested output.
grpc::Status run_identity(const inference::ModelInferRequest& request,
                          inference::ModelInferRequest* owned,
                          inference::ModelInferResponse* response);

// Triton's `simple` (INT32) and `simple_string` (BYTES holding decimal integers):
// OUTPUT0 = INPUT0 + INPUT1 and OUTPUT1 = INPUT0 - INPUT1, element by element, in the
// form (raw or typed) the inputs came in. INVALID_ARGUMENT for a missing input, another
// datatype, a string that is not an integer, or inputs of different sizes.
grpc::Status run_simple(const inference::ModelInferRequest& request, bool strings,
                        inference::ModelInferResponse* response);

// Applies the request to its sequence and fills `response`. INVALID_ARGUMENT when the
// sequence_id is missing, the sequence is unknown without sequence_start, or INPUT0 is
// missing or not INT32.
grpc::Status run_accumulate(const SimModel& model, VersionState& version,
                            const inference::ModelInferRequest& request, SteadyTime now,
                            inference::ModelInferResponse* response);

}  // namespace infergate::sim
