// The answers the gateway gives for the whole fleet, as pure functions of the fleet
// snapshot and of what backends said. No I/O; unit-tested.
#pragma once

#include <string>
#include <vector>

#include "inference/grpc_service.pb.h"
#include "routing/fleet.h"

namespace infergate::gateway {

// ServerReady: at least one backend is healthy.
inference::ServerReadyResponse fleet_server_ready(const routing::Fleet& fleet);

// ModelReady: some healthy backend has the model (version) ready.
inference::ModelReadyResponse fleet_model_ready(const routing::Fleet& fleet,
                                                const inference::ModelReadyRequest& request);

// RepositoryIndex: the union over healthy backends, one entry per (model, version);
// READY wins when backends disagree. `ready_only` keeps READY entries only.
inference::RepositoryIndexResponse fleet_repository_index(const routing::Fleet& fleet,
                                                          bool ready_only);

// ServerMetadata as the fleet's: the name most healthy backends report ("triton" when
// none says), the oldest version among them, and the extensions they all share. (The
// gateway's own version goes in the infergate-version header of its answers.)
inference::ServerMetadataResponse fleet_server_metadata(const routing::Fleet& fleet);

// ModelStatistics merged per (model, version): counts and durations summed,
// last_inference the latest, batch statistics summed per batch size. The first
// backend's message for a model is the base, so fields this build does not know
// (newer Triton versions) survive from it.
inference::ModelStatisticsResponse merge_statistics(
    const std::vector<inference::ModelStatisticsResponse>& responses);

}  // namespace infergate::gateway
