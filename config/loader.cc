#include "config/loader.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <map>
#include <sstream>

#include "config/yaml_reader.h"

namespace infergate::config {
namespace {

bool valid_backend_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

BackendConfig read_backend(const Value& v) {
  BackendConfig b;
  MapReader m(v);
  if (auto name = m.require("name")) {
    if (auto s = name->string()) {
      if (valid_backend_name(*s)) {
        b.name = *s;
      } else {
        name->problem("backend name '" + *s +
                      "' must be 1-64 characters of letters, digits, '-', '_' or '.'");
      }
    }
  }
  if (auto address = m.require("address")) {
    if (auto hp = address->host_port(/*allow_port_zero=*/false)) b.address = *hp;
  }
  m.finish();
  return b;
}

// Checks that need the whole list: unique names and addresses.
void check_backends(const Value& list, const std::vector<BackendConfig>& backends) {
  std::map<std::string, size_t> names;
  std::map<std::string, size_t> addresses;
  for (size_t i = 0; i < backends.size(); ++i) {
    const BackendConfig& b = backends[i];
    Value item(list.node()[i], list.path() + "[" + std::to_string(i) + "]", list.sink());
    if (!b.name.empty()) {
      auto [it, inserted] = names.emplace(b.name, i);
      if (!inserted) {
        item.problem("duplicate backend name '" + b.name + "' (also backends[" +
                     std::to_string(it->second) + "])");
      }
    }
    if (b.address.port != 0) {
      auto [it, inserted] = addresses.emplace(b.address.to_string(), i);
      if (!inserted) {
        item.problem("backend address " + b.address.to_string() + " is also backends[" +
                     std::to_string(it->second) + "]");
      }
    }
  }
}

void read_root(const Value& root, Config& config) {
  MapReader m(root);
  if (!m.valid()) return;
  std::optional<Value> listen = m.get("listen");
  if (listen) {
    if (auto hp = listen->host_port(/*allow_port_zero=*/true)) config.listen = *hp;
  }
  if (auto admin = m.get("admin_listen")) {
    if (auto hp = admin->host_port(/*allow_port_zero=*/true)) {
      config.admin_listen = *hp;
      if (hp->port != 0 && hp->port == config.listen.port &&
          (hp->host == config.listen.host || hp->host == "0.0.0.0" ||
           config.listen.host == "0.0.0.0")) {
        admin->problem("admin_listen " + hp->to_string() + " collides with listen " +
                       config.listen.to_string());
      }
    }
  }
  if (auto backends = m.require("backends")) {
    bool is_list = backends->for_each_element(
        [&](const Value& item) { config.backends.push_back(read_backend(item)); });
    if (is_list && config.backends.empty()) {
      backends->problem("at least one backend is required");
    }
    if (is_list) check_backends(*backends, config.backends);
  }
  m.finish();
}

}  // namespace

LoadResult load_config_string(std::string_view yaml, const std::string& source) {
  ProblemSink sink(source);
  YAML::Node doc;
  try {
    doc = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    sink.add("", e.mark, "YAML syntax error: " + e.msg);
    return LoadResult{.problems = std::move(sink.problems())};
  }
  if (doc.IsNull()) {
    sink.add("", YAML::Mark(), "the config is empty; it needs at least 'backends'");
    return LoadResult{.problems = std::move(sink.problems())};
  }
  auto config = std::make_shared<Config>();
  config->source = source;
  read_root(Value(doc, "", &sink), *config);
  if (!sink.problems().empty()) return LoadResult{.problems = std::move(sink.problems())};
  return LoadResult{.config = std::move(config)};
}

LoadResult load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return LoadResult{.problems = {Problem{.file = path, .message = "cannot open the file"}}};
  }
  std::ostringstream text;
  text << in.rdbuf();
  return load_config_string(text.str(), path);
}

}  // namespace infergate::config
