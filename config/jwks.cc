#include "config/jwks.h"

#include <algorithm>

#include <yaml-cpp/yaml.h>

namespace infergate::config {
namespace {

constexpr int kMaxJwksDepth = 8;

}  // namespace

int json_nesting_depth(std::string_view json) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      deepest = std::max(deepest, ++depth);
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return deepest;
}

JwksKeys parse_jwks(std::string_view json) {
  JwksKeys out;
  if (json_nesting_depth(json) > kMaxJwksDepth) {
    out.error = "nested deeper than a key set is";
    return out;
  }
  YAML::Node doc;
  try {
    doc = YAML::Load(std::string(json));
  } catch (const YAML::Exception& e) {
    out.error = "not JSON: " + e.msg;
    return out;
  }
  if (!doc.IsMap() || !doc["keys"] || !doc["keys"].IsSequence()) {
    out.error = "not a key set (expected an object with a list of keys)";
    return out;
  }
  for (const YAML::Node& key : doc["keys"]) {
    if (!key.IsMap() || !key["kid"] || !key["kid"].IsScalar() || !key["kty"] ||
        !key["kty"].IsScalar()) {
      continue;
    }
    const std::string kty = key["kty"].Scalar();
    if (kty == "RSA" || kty == "EC") out.kids.push_back(key["kid"].Scalar());
  }
  if (out.kids.empty()) out.error = "holds no RSA or EC key with a \"kid\"";
  return out;
}

}  // namespace infergate::config
