#include "agent/network/cni.h"

#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "agent/network/process.h"

namespace skiff::agent::network {
namespace {

using nlohmann::json;

constexpr int kCniErrTryAgainLater = 11;

// Field readers that never throw on input of the wrong shape.
std::string get_str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}
int get_int(const json& j, const char* key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int>() : 0;
}
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == '\n' || s[i] == ' ')) ++i;
  return s.substr(i);
}

std::string timeout_text(std::chrono::milliseconds t) {
  if (t.count() % 1000 == 0) return std::to_string(t.count() / 1000) + "s";
  return std::to_string(t.count()) + "ms";
}

// Executes one plugin binary for one command. Returns its standard output on success.
Result<std::string> exec_plugin(const std::string& type, const std::string& command,
                                const std::string& input, const CniRuntime& rt) {
  if (type.empty() || type.find('/') != std::string::npos) {
    return Status::Invalid("CNI plugin type \"" + type + "\" is not a plugin name");
  }
  const std::string path = rt.bin_dir + "/" + type;
  if (::access(path.c_str(), X_OK) != 0) {
    return Status::Unavailable("CNI plugin " + path +
                               " not found or not executable: install the "
                               "containernetworking-plugins package");
  }
  std::vector<std::string> env = helper_environment({
      "CNI_COMMAND=" + command,
      "CNI_CONTAINERID=" + rt.container_id,
      "CNI_NETNS=" + rt.netns,
      "CNI_IFNAME=" + rt.ifname,
      "CNI_ARGS=" + rt.args,
      "CNI_PATH=" + rt.bin_dir,
  });
  auto r = run_process({path}, env, input, rt.timeout);
  if (!r.ok()) return r.status();
  const std::string what = "CNI plugin \"" + type + "\" " + command + " for " + rt.container_id;
  if (r->timed_out) {
    return Status::Unavailable(what + " timed out after " + timeout_text(rt.timeout));
  }
  if (r->exit_code == 0) return std::move(r->stdout_text);
  // A failing plugin prints {"code": N, "msg": "...", "details": "..."} on standard output.
  json err = json::parse(r->stdout_text, nullptr, false);
  if (!err.is_discarded() && err.is_object() && err.contains("msg")) {
    int code = get_int(err, "code");
    std::string msg = what + " failed: " + get_str(err, "msg");
    std::string details = get_str(err, "details");
    if (!details.empty()) msg += ": " + details;
    msg += " (CNI error code " + std::to_string(code) + ")";
    if (code == kCniErrTryAgainLater) return Status::Unavailable(msg);
    return Status::Internal(msg);
  }
  std::string out = trim(r->stdout_text + "\n" + r->stderr_text);
  return Status::Internal(what + " failed with exit code " + std::to_string(r->exit_code) +
                          (out.empty() ? std::string() : ": " + out));
}

json port_mappings_json(const std::vector<CniPortMapping>& mappings) {
  json a = json::array();
  for (const auto& m : mappings) {
    json e = {{"hostPort", m.host_port},
              {"containerPort", m.container_port},
              {"protocol", m.protocol.empty() ? "tcp" : m.protocol}};
    if (!m.host_ip.empty()) e["hostIP"] = m.host_ip;
    a.push_back(std::move(e));
  }
  return a;
}

// The configuration one plugin of a list gets on standard input, as libcni builds it: the
// plugin's own section plus the list's name and version, runtimeConfig for the capabilities
// it declares, and prevResult.
json plugin_input(const json& list, const json& plugin, const json* prev, const CniRuntime& rt) {
  json c = plugin;
  c["name"] = get_str(list, "name");
  c["cniVersion"] = get_str(list, "cniVersion");
  if (prev != nullptr) c["prevResult"] = *prev;
  auto caps = plugin.find("capabilities");
  if (caps != plugin.end() && caps->is_object() && (*caps)["portMappings"] == true &&
      !rt.port_mappings.empty()) {
    c["runtimeConfig"]["portMappings"] = port_mappings_json(rt.port_mappings);
  }
  return c;
}

Result<json> parse_object(const std::string& text, const std::string& what) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Internal(what + " is not a JSON object");
  }
  return j;
}

Result<json> parse_list(const std::string& conflist) {
  auto list = parse_object(conflist, "CNI network configuration list");
  if (!list.ok()) return list.status();
  if (!list->contains("plugins") || !(*list)["plugins"].is_array() || (*list)["plugins"].empty()) {
    return Status::Internal("CNI network configuration list has no plugins");
  }
  return list;
}

}  // namespace

std::string render_conflist(const CniNetworkConfig& config) {
  json bridge = {
      {"type", "bridge"},
      {"bridge", config.bridge},
      {"isGateway", true},
      {"ipMasq", true},
      {"hairpinMode", true},
      {"ipam",
       {{"type", "host-local"},
        {"ranges",
         json::array({json::array({{{"subnet", config.subnet}, {"gateway", config.gateway}}})})},
        {"routes", json::array({{{"dst", "0.0.0.0/0"}}})},
        {"dataDir", config.ipam_data_dir}}},
  };
  if (config.mtu > 0) bridge["mtu"] = config.mtu;
  json portmap = {
      {"type", "portmap"},
      {"capabilities", {{"portMappings", true}}},
      {"snat", true},
  };
  json list = {
      {"cniVersion", config.cni_version},
      {"name", config.name},
      {"plugins", json::array({bridge, portmap})},
  };
  return list.dump(2) + "\n";
}

std::string render_loopback_config(const std::string& cni_version) {
  json c = {{"cniVersion", cni_version}, {"name", "cni-loopback"}, {"type", "loopback"}};
  return c.dump(2) + "\n";
}

Result<std::string> cni_add_list(const std::string& conflist, const CniRuntime& runtime) {
  auto list = parse_list(conflist);
  if (!list.ok()) return list.status();
  json prev;
  bool have_prev = false;
  for (const json& plugin : (*list)["plugins"]) {
    json input = plugin_input(*list, plugin, have_prev ? &prev : nullptr, runtime);
    auto out = exec_plugin(get_str(plugin, "type"), "ADD", dump(input), runtime);
    if (!out.ok()) return out.status();
    auto result =
        parse_object(*out, "the result of CNI plugin \"" + get_str(plugin, "type") + "\" ADD");
    if (!result.ok()) return result.status();
    prev = std::move(*result);
    have_prev = true;
  }
  return dump(prev);
}

Status cni_del_list(const std::string& conflist, const CniRuntime& runtime,
                    const std::string& cached_result) {
  auto list = parse_list(conflist);
  if (!list.ok()) return list.status();
  json prev;
  bool have_prev = false;
  if (!cached_result.empty()) {
    prev = json::parse(cached_result, nullptr, false);
    have_prev = !prev.is_discarded() && prev.is_object();
  }
  const json& plugins = (*list)["plugins"];
  Status first;
  for (auto it = plugins.rbegin(); it != plugins.rend(); ++it) {
    json input = plugin_input(*list, *it, have_prev ? &prev : nullptr, runtime);
    auto out = exec_plugin(get_str(*it, "type"), "DEL", dump(input), runtime);
    if (!out.ok() && first.ok()) first = out.status();
  }
  return first;
}

Status cni_check_list(const std::string& conflist, const CniRuntime& runtime,
                      const std::string& cached_result) {
  auto list = parse_list(conflist);
  if (!list.ok()) return list.status();
  auto prev = parse_object(cached_result, "the cached CNI result");
  if (!prev.ok())
    return Status::Invalid("CNI CHECK needs the result of ADD: " + prev.status().message());
  for (const json& plugin : (*list)["plugins"]) {
    json input = plugin_input(*list, plugin, &*prev, runtime);
    auto out = exec_plugin(get_str(plugin, "type"), "CHECK", dump(input), runtime);
    if (!out.ok()) return out.status();
  }
  return Status::Ok();
}

Result<std::string> cni_add(const std::string& config, const CniRuntime& runtime) {
  auto c = parse_object(config, "CNI network configuration");
  if (!c.ok()) return c.status();
  return exec_plugin(get_str(*c, "type"), "ADD", config, runtime);
}

Status cni_del(const std::string& config, const CniRuntime& runtime) {
  auto c = parse_object(config, "CNI network configuration");
  if (!c.ok()) return c.status();
  auto out = exec_plugin(get_str(*c, "type"), "DEL", config, runtime);
  return out.ok() ? Status::Ok() : out.status();
}

Result<std::vector<std::string>> cni_supported_versions(const std::string& plugin_path) {
  auto slash = plugin_path.rfind('/');
  CniRuntime rt;
  rt.bin_dir = slash == std::string::npos ? "." : plugin_path.substr(0, slash);
  rt.container_id = "version";
  auto out = exec_plugin(plugin_path.substr(slash == std::string::npos ? 0 : slash + 1), "VERSION",
                         "{\"cniVersion\":\"1.0.0\"}", rt);
  if (!out.ok()) return out.status();
  auto j = parse_object(*out, "the VERSION answer of " + plugin_path);
  if (!j.ok()) return j.status();
  std::vector<std::string> versions;
  auto it = j->find("supportedVersions");
  if (it != j->end() && it->is_array()) {
    for (const auto& v : *it) {
      if (v.is_string()) versions.push_back(v.get<std::string>());
    }
  }
  if (versions.empty()) {
    return Status::Internal("the VERSION answer of " + plugin_path + " lists no versions");
  }
  return versions;
}

Result<CniResultSummary> parse_cni_result(const std::string& result, const std::string& ifname,
                                          const std::string& bridge) {
  auto j = parse_object(result, "the CNI result");
  if (!j.ok()) return j.status();
  CniResultSummary s;
  std::vector<json> interfaces;
  if (auto it = j->find("interfaces"); it != j->end() && it->is_array()) {
    for (const auto& i : *it) interfaces.push_back(i);
  }
  for (const auto& i : interfaces) {
    if (!i.is_object()) continue;
    std::string name = get_str(i, "name");
    bool in_sandbox = !get_str(i, "sandbox").empty();
    if (!in_sandbox && name != bridge && s.host_interface.empty()) s.host_interface = name;
    if (in_sandbox && name == ifname && s.mac.empty()) s.mac = get_str(i, "mac");
  }
  if (auto it = j->find("ips"); it != j->end() && it->is_array()) {
    for (const auto& ip : *it) {
      if (!ip.is_object()) continue;
      std::string address = get_str(ip, "address");
      auto slash = address.find('/');
      std::string addr = address.substr(0, slash);
      if (addr.find('.') == std::string::npos) continue;  // IPv6
      if (ip.contains("interface") && ip["interface"].is_number_integer()) {
        auto idx = ip["interface"].get<long long>();
        if (idx < 0 || static_cast<size_t>(idx) >= interfaces.size() ||
            !interfaces[idx].is_object() || get_str(interfaces[idx], "name") != ifname) {
          continue;
        }
      }
      s.pod_ip = addr;
      s.prefix_length = slash == std::string::npos ? 32 : std::atoi(address.c_str() + slash + 1);
      s.gateway = get_str(ip, "gateway");
      break;
    }
  }
  if (s.pod_ip.empty()) {
    return Status::Internal("the CNI result carries no IPv4 address for interface " + ifname);
  }
  return s;
}

}  // namespace skiff::agent::network
