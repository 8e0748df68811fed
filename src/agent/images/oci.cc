#include "agent/images/oci.h"

#include <sys/utsname.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "agent/images/digest.h"

namespace skiff::agent::images {
namespace {

using nlohmann::json;

Result<json> parse_json(std::string_view body, std::string_view what) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Invalid(std::string(what) + " is not a JSON object");
  }
  return j;
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::vector<std::string> str_list(const json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

Result<Descriptor> parse_descriptor(const json& j, std::string_view what) {
  if (!j.is_object()) return Status::Invalid(std::string(what) + ": descriptor is not an object");
  Descriptor d;
  d.media_type = str(j, "mediaType");
  d.digest = str(j, "digest");
  if (!is_valid_digest(d.digest)) {
    return Status::Invalid(std::string(what) + ": unsupported or invalid digest \"" + d.digest +
                           "\"");
  }
  if (auto it = j.find("size"); it != j.end() && it->is_number_integer()) {
    d.size = it->get<int64_t>();
    if (d.size < 0) return Status::Invalid(std::string(what) + ": negative size");
  }
  if (auto it = j.find("platform"); it != j.end() && it->is_object()) {
    d.platform.os = str(*it, "os");
    d.platform.architecture = str(*it, "architecture");
    d.platform.variant = str(*it, "variant");
  }
  if (auto it = j.find("annotations"); it != j.end() && it->is_object()) {
    for (const auto& [k, v] : it->items()) {
      if (v.is_string()) d.annotations[k] = v.get<std::string>();
    }
  }
  return d;
}

}  // namespace

bool is_index_media_type(std::string_view mt) {
  return mt == kOciIndex || mt == kDockerManifestList;
}

bool is_manifest_media_type(std::string_view mt) {
  return mt == kOciManifest || mt == kDockerManifest;
}

std::string detect_media_type(std::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return "";
  std::string mt = str(j, "mediaType");
  if (!mt.empty()) return mt;
  if (j.contains("manifests")) return std::string(kOciIndex);
  if (j.contains("config") && j.contains("layers")) return std::string(kOciManifest);
  return "";
}

Result<std::vector<Descriptor>> parse_index(std::string_view body) {
  auto j = parse_json(body, "image index");
  if (!j.ok()) return j.status();
  auto it = j->find("manifests");
  if (it == j->end() || !it->is_array()) {
    return Status::Invalid("image index has no \"manifests\" list");
  }
  std::vector<Descriptor> out;
  for (const auto& m : *it) {
    auto d = parse_descriptor(m, "image index");
    if (!d.ok()) return d.status();
    out.push_back(std::move(*d));
  }
  return out;
}

Result<Manifest> parse_manifest(std::string_view body) {
  auto j = parse_json(body, "image manifest");
  if (!j.ok()) return j.status();
  if (auto v = j->find("schemaVersion"); v != j->end() && v->is_number_integer() && *v == 1) {
    return Status::Invalid("image manifest uses Docker schema 1, which is not supported");
  }
  Manifest m;
  auto c = j->find("config");
  if (c == j->end()) return Status::Invalid("image manifest has no config");
  auto cd = parse_descriptor(*c, "image manifest config");
  if (!cd.ok()) return cd.status();
  m.config = std::move(*cd);
  auto l = j->find("layers");
  if (l == j->end() || !l->is_array()) return Status::Invalid("image manifest has no layers list");
  for (const auto& e : *l) {
    auto d = parse_descriptor(e, "image manifest layer");
    if (!d.ok()) return d.status();
    m.layers.push_back(std::move(*d));
  }
  return m;
}

Result<ParsedConfig> parse_config(std::string_view body) {
  auto j = parse_json(body, "image config");
  if (!j.ok()) return j.status();
  ParsedConfig p;
  p.os = str(*j, "os");
  p.architecture = str(*j, "architecture");
  p.created = str(*j, "created");
  if (auto r = j->find("rootfs"); r != j->end() && r->is_object()) {
    p.diff_ids = str_list(*r, "diff_ids");
  }
  for (const auto& d : p.diff_ids) {
    if (!is_valid_digest(d)) return Status::Invalid("image config: invalid diff_id \"" + d + "\"");
  }
  auto c = j->find("config");
  if (c == j->end()) c = j->find("container_config");
  if (c != j->end() && c->is_object()) {
    ImageConfig& ic = p.config;
    ic.entrypoint = str_list(*c, "Entrypoint");
    ic.cmd = str_list(*c, "Cmd");
    ic.env = str_list(*c, "Env");
    ic.working_dir = str(*c, "WorkingDir");
    ic.user = str(*c, "User");
    ic.stop_signal = str(*c, "StopSignal");
    if (auto e = c->find("ExposedPorts"); e != c->end() && e->is_object()) {
      for (const auto& [port, _] : e->items()) ic.exposed_ports.push_back(port);
      std::sort(ic.exposed_ports.begin(), ic.exposed_ports.end());
    }
    if (auto l = c->find("Labels"); l != c->end() && l->is_object()) {
      for (const auto& [k, v] : l->items()) {
        if (v.is_string()) ic.labels[k] = v.get<std::string>();
      }
    }
  }
  return p;
}

std::string host_architecture() {
  utsname u{};
  uname(&u);
  std::string m = u.machine;
  if (m == "x86_64") return "amd64";
  if (m == "aarch64" || m == "arm64") return "arm64";
  if (m.rfind("armv", 0) == 0 || m == "arm") return "arm";
  if (m == "i386" || m == "i686") return "386";
  if (m == "ppc64le" || m == "s390x" || m == "riscv64") return m;
  return m;
}

Result<Descriptor> select_platform(const std::vector<Descriptor>& entries, std::string_view os,
                                   std::string_view arch) {
  const Descriptor* best = nullptr;
  for (const auto& d : entries) {
    if (!is_manifest_media_type(d.media_type) && !d.media_type.empty()) continue;
    if (d.platform.os != os || d.platform.architecture != arch) continue;
    if (best == nullptr) best = &d;  // the first match, as containerd picks it
  }
  if (best == nullptr) {
    return Status::NotFound("no matching manifest for " + std::string(os) + "/" +
                            std::string(arch) + " in the manifest list entries");
  }
  return *best;
}

}  // namespace skiff::agent::images
