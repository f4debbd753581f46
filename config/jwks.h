// JSON Web Key Sets (RFC 7517), as far as the gateway needs to know them: which key ids a
// set holds. The keys themselves are handed to scitokens-cpp, which checks signatures.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace infergate::config {

struct JwksKeys {
  std::vector<std::string> kids;  // every key's "kid", in the set's order
  std::string error;              // why the document is not a usable key set (empty: it is)
};

// Reads a JWKS document: a JSON object with "keys", a list of RSA or EC keys, each with a
// "kid". A key of another type is skipped; a set without one usable key is an error.
JwksKeys parse_jwks(std::string_view json);

// How deeply `json` nests objects and arrays (not counting brackets inside strings). The
// YAML parser that reads JSON here recurses once per level: callers bound it first.
int json_nesting_depth(std::string_view json);

}  // namespace infergate::config
