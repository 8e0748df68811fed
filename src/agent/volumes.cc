#include "agent/volumes.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "client/client.h"
#include "client/informer.h"
#include "common/base64.h"
#include "common/log.h"
#include "common/quantity.h"
#include "common/random.h"
#include "common/strings.h"
#include "common/time.h"

namespace skiff::agent {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr char kDataLink[] = "..data";
constexpr char kDataTmpLink[] = "..data_tmp";
// What ServiceAccount admission gives the token of kube-api-access volumes.
constexpr int64_t kServiceAccountTokenSeconds = 3607;
// A repeated FailedMount with the same message is recorded again after this long.
constexpr auto kEventRepeat = std::chrono::seconds(60);

std::string str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

const json& sub(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it != j.end() ? *it : kNull;
}

bool flag(const json& j, const char* key) {
  const json& v = sub(j, key);
  return v.is_boolean() && v.get<bool>();
}

std::optional<bool> opt_flag(const json& j, const char* key) {
  const json& v = sub(j, key);
  if (!v.is_boolean()) return std::nullopt;
  return v.get<bool>();
}

std::optional<int64_t> opt_int(const json& j, const char* key) {
  const json& v = sub(j, key);
  if (!v.is_number_integer()) return std::nullopt;
  return v.get<int64_t>();
}

uint32_t mode_of(const json& j, const char* key, uint32_t fallback) {
  auto m = opt_int(j, key);
  return m ? static_cast<uint32_t>(*m) & 07777u : fallback;
}

std::optional<uint32_t> fs_group_of(const json& pod) {
  auto g = opt_int(sub(sub(pod, "spec"), "securityContext"), "fsGroup");
  if (!g || *g < 0) return std::nullopt;
  return static_cast<uint32_t>(*g);
}

std::vector<const json*> all_containers(const json& pod) {
  std::vector<const json*> out;
  for (const char* list : {"initContainers", "containers"}) {
    const json& cs = sub(sub(pod, "spec"), list);
    if (!cs.is_array()) continue;
    for (const auto& c : cs) out.push_back(&c);
  }
  return out;
}

bool mounts_path(const json& c, const std::string& path) {
  const json& mounts = sub(c, "volumeMounts");
  if (!mounts.is_array()) return false;
  for (const auto& m : mounts) {
    std::string p = str(m, "mountPath");
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    if (p == path) return true;
  }
  return false;
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read " + path);
  std::ostringstream o;
  o << in.rdbuf();
  return o.str();
}

Status write_file(const std::string& path, const std::string& data, uint32_t mode,
                  std::optional<uint32_t> gid) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) return Status::Internal("cannot write " + path);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!out) return Status::Internal("cannot write " + path);
  }
  if (gid && ::chown(path.c_str(), static_cast<uid_t>(-1), *gid) != 0) {
    return Status::Internal("chown " + path + ": " + std::strerror(errno));
  }
  if (::chmod(path.c_str(), mode) != 0) {
    return Status::Internal("chmod " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

// Mount points in this process's mount namespace at or below `prefix`, deepest first.
std::vector<std::string> mount_points_under(const std::string& prefix) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, point;
    if (!(fields >> id >> parent >> dev >> root >> point)) continue;
    std::string path;
    for (size_t i = 0; i < point.size(); ++i) {
      if (point[i] == '\\' && i + 3 < point.size()) {
        path += static_cast<char>(std::stoi(point.substr(i + 1, 3), nullptr, 8));
        i += 3;
      } else {
        path += point[i];
      }
    }
    if (path == prefix || path.rfind(prefix + "/", 0) == 0) out.push_back(path);
  }
  std::sort(out.begin(), out.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool is_mount_point(const std::string& path) {
  for (const auto& p : mount_points_under(path)) {
    if (p == path) return true;
  }
  return false;
}

// A tmpfs at `dir` (once). A host where mounting is not allowed keeps the plain directory.
void ensure_tmpfs(const std::string& dir, int64_t size_bytes, const char* mode) {
  if (is_mount_point(dir)) return;
  std::string opts = std::string("mode=") + mode;
  if (size_bytes > 0) opts += ",size=" + std::to_string(size_bytes);
  if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
    SKIFF_LOG(Warn) << "mounting a tmpfs at " << dir << ": " << std::strerror(errno)
                    << "; using the disk";
  }
}

Status validate_payload_path(const std::string& p) {
  if (p.empty()) return Status::Invalid("invalid path: must not be empty");
  if (p[0] == '/') return Status::Invalid("invalid path: must be relative path: " + p);
  size_t start = 0;
  bool first = true;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    std::string part = p.substr(start, end - start);
    if (part == "..") return Status::Invalid("invalid path: must not contain '..': " + p);
    if (first && part.rfind("..", 0) == 0) {
      return Status::Invalid("invalid path: must not start with '..': " + p);
    }
    first = false;
    start = end + 1;
  }
  return Status::Ok();
}

std::string top_component(const std::string& p) { return p.substr(0, p.find('/')); }

uint32_t effective_mode(uint32_t mode, std::optional<uint32_t> fs_group) {
  return fs_group ? (mode | 0440u) : mode;
}

// True when `ts_dir` holds exactly `files` with their modes.
bool same_content(const std::string& ts_dir,
                  const std::vector<std::pair<std::string, VolumeFile>>& files,
                  std::optional<uint32_t> fs_group) {
  std::error_code ec;
  size_t regular = 0;
  for (auto it = fs::recursive_directory_iterator(ts_dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) ++regular;
  }
  if (ec) return false;
  std::set<std::string> paths;
  for (const auto& [p, f] : files) paths.insert(p);
  if (regular != paths.size()) return false;
  // Later entries for one path win, as they were written.
  std::map<std::string, const VolumeFile*> last;
  for (const auto& [p, f] : files) last[p] = &f;
  for (const auto& [p, f] : last) {
    std::string path = ts_dir + "/" + p;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
    if ((st.st_mode & 07777) != effective_mode(f->mode, fs_group)) return false;
    if (fs_group && st.st_gid != *fs_group) return false;
    auto data = read_file(path);
    if (!data.ok() || *data != f->data) return false;
  }
  return true;
}

std::string timestamped_dir_name() {
  auto t = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "..%04d_%02d_%02d_%02d_%02d_%02d.%s", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                random_string(9, "0123456789").c_str());
  return buf;
}

// The claims of a JWT, or null.
json jwt_claims(const std::string& token) {
  size_t a = token.find('.');
  size_t b = a == std::string::npos ? a : token.find('.', a + 1);
  if (b == std::string::npos) return nullptr;
  auto decoded = base64url_decode(token.substr(a + 1, b - a - 1));
  if (!decoded.ok()) return nullptr;
  json claims = json::parse(*decoded, nullptr, false);
  return claims.is_discarded() || !claims.is_object() ? json(nullptr) : claims;
}

// When a token with these claims is due for refresh: at `fraction` of its lifetime (and at
// most a day after it was issued, as the kubelet does).
std::optional<TimePoint> token_refresh_time(const json& claims, double fraction) {
  auto iat = opt_int(claims, "iat");
  auto exp = opt_int(claims, "exp");
  if (!iat || !exp || *exp <= *iat) return std::nullopt;
  int64_t ttl = *exp - *iat;
  int64_t after =
      std::min<int64_t>(static_cast<int64_t>(static_cast<double>(ttl) * fraction), 24 * 3600);
  return TimePoint(std::chrono::seconds(*iat + after));
}

std::string format_map(const json& m) {
  std::map<std::string, std::string> sorted;
  if (m.is_object()) {
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (it->is_string()) sorted[it.key()] = it->get<std::string>();
    }
  }
  std::string out;
  for (const auto& [k, v] : sorted) out += k + "=" + go_quote(v) + "\n";
  if (!out.empty()) out.pop_back();
  return out;
}

// Environment variable names as Kubernetes 1.32 accepts them: printable ASCII except '='.
bool valid_env_name(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (c < ' ' || c > '~' || c == '=') return false;
  }
  return true;
}

using Payload = std::vector<std::pair<std::string, VolumeFile>>;
using StringMap = std::map<std::string, std::string>;

StringMap config_map_data(const json& cm, bool binary) {
  StringMap out;
  const json& data = sub(cm, "data");
  if (data.is_object()) {
    for (auto it = data.begin(); it != data.end(); ++it) {
      if (it->is_string()) out[it.key()] = it->get<std::string>();
    }
  }
  const json& bin = sub(cm, "binaryData");
  if (binary && bin.is_object()) {
    for (auto it = bin.begin(); it != bin.end(); ++it) {
      if (!it->is_string()) continue;
      auto d = base64_decode(it->get<std::string>());
      if (d.ok()) out[it.key()] = *d;
    }
  }
  return out;
}

StringMap secret_data(const json& secret) {
  StringMap out;
  const json& data = sub(secret, "data");
  if (data.is_object()) {
    for (auto it = data.begin(); it != data.end(); ++it) {
      if (!it->is_string()) continue;
      auto d = base64_decode(it->get<std::string>());
      if (d.ok()) out[it.key()] = *d;
    }
  }
  const json& plain = sub(secret, "stringData");
  if (plain.is_object()) {
    for (auto it = plain.begin(); it != plain.end(); ++it) {
      if (it->is_string()) out[it.key()] = it->get<std::string>();
    }
  }
  return out;
}

// The files of a configMap or secret source: its items, or every key.
Status add_keyed(Payload* out, const StringMap& data, const json& items, uint32_t default_mode,
                 bool optional, bool secret) {
  if (items.is_array() && !items.empty()) {
    for (const auto& item : items) {
      std::string key = str(item, "key");
      std::string path = str(item, "path");
      auto it = data.find(key);
      if (it == data.end()) {
        if (optional) continue;
        return Status::NotFound(secret ? "references non-existent secret key: " + key
                                       : "configmap references non-existent config key: " + key);
      }
      out->push_back({path, {it->second, mode_of(item, "mode", default_mode)}});
    }
    return Status::Ok();
  }
  for (const auto& [k, v] : data) out->push_back({k, {v, default_mode}});
  return Status::Ok();
}

const json* find_container(const json& pod, const std::string& name) {
  for (const json* c : all_containers(pod)) {
    if (str(*c, "name") == name) return c;
  }
  return nullptr;
}

}  // namespace

Result<std::string> downward_field_value(const json& pod, const std::string& path) {
  const json& m = sub(pod, "metadata");
  if (path == "metadata.name") return str(m, "name");
  if (path == "metadata.namespace") return str(m, "namespace");
  if (path == "metadata.uid") return str(m, "uid");
  if (path == "metadata.labels") return format_map(sub(m, "labels"));
  if (path == "metadata.annotations") return format_map(sub(m, "annotations"));
  for (const char* map : {"labels", "annotations"}) {
    std::string prefix = std::string("metadata.") + map + "['";
    if (path.rfind(prefix, 0) == 0 && path.size() > prefix.size() + 2 &&
        path.compare(path.size() - 2, 2, "']") == 0) {
      std::string key = path.substr(prefix.size(), path.size() - prefix.size() - 2);
      return str(sub(m, map), key.c_str());
    }
  }
  if (path == "spec.nodeName") return str(sub(pod, "spec"), "nodeName");
  if (path == "spec.serviceAccountName") return str(sub(pod, "spec"), "serviceAccountName");
  return Status::Invalid("unsupported fieldPath: " + path);
}

Result<std::string> resource_field_value(const json& pod, const std::string& container_name,
                                         const json& ref, int64_t node_cpu_milli,
                                         int64_t node_memory_bytes) {
  std::string name = str(ref, "containerName");
  if (name.empty()) name = container_name;
  const json* c = find_container(pod, name);
  if (c == nullptr) return Status::Invalid("container " + name + " not found");
  std::string resource = str(ref, "resource");
  Quantity divisor = Quantity::from_int(1);
  if (ref.contains("divisor") && !ref["divisor"].is_null()) {
    auto d = Quantity::from_json(ref["divisor"]);
    if (!d.ok()) return d.status();
    if (!d->is_zero()) divisor = *d;
  }
  size_t dot = resource.find('.');
  if (dot == std::string::npos)
    return Status::Invalid("unsupported container resource: " + resource);
  std::string kind = resource.substr(0, dot);  // limits or requests
  std::string what = resource.substr(dot + 1);
  if (kind != "limits" && kind != "requests") {
    return Status::Invalid("unsupported container resource: " + resource);
  }
  const json& res = sub(sub(*c, "resources"), kind.c_str());
  std::optional<Quantity> q;
  if (res.is_object() && res.contains(what)) {
    auto parsed = Quantity::from_json(res[what]);
    if (parsed.ok()) q = *parsed;
  }
  auto ceil_div = [](int64_t a, int64_t b) {
    if (b <= 0) return a;
    return a / b + (a % b != 0 && a > 0 ? 1 : 0);
  };
  if (what == "cpu") {
    int64_t milli = q ? q->milli_value() : (kind == "limits" ? node_cpu_milli : 0);
    return std::to_string(ceil_div(milli, divisor.milli_value()));
  }
  if (what == "memory" || what == "ephemeral-storage" || what.rfind("hugepages-", 0) == 0) {
    int64_t bytes = q ? q->value() : (kind == "limits" && what == "memory" ? node_memory_bytes : 0);
    return std::to_string(ceil_div(bytes, divisor.value()));
  }
  return Status::Invalid("unsupported container resource: " + resource);
}

Status write_atomic_volume(const std::string& dir,
                           const std::vector<std::pair<std::string, VolumeFile>>& files,
                           std::optional<uint32_t> fs_group) {
  std::set<std::string> tops;
  for (const auto& [p, f] : files) {
    Status s = validate_payload_path(p);
    if (!s.ok()) return s;
    tops.insert(top_component(p));
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::Internal("creating " + dir + ": " + ec.message());

  std::string current;
  {
    char buf[4096];
    ssize_t n = ::readlink((dir + "/" + kDataLink).c_str(), buf, sizeof buf - 1);
    if (n > 0) current.assign(buf, static_cast<size_t>(n));
  }
  bool unchanged = !current.empty() && same_content(dir + "/" + current, files, fs_group);
  if (!unchanged) {
    std::string ts;
    for (int attempt = 0; attempt < 10; ++attempt) {
      ts = timestamped_dir_name();
      if (::mkdir((dir + "/" + ts).c_str(), 0755) == 0) break;
      if (errno != EEXIST) {
        return Status::Internal("creating " + dir + "/" + ts + ": " + std::strerror(errno));
      }
      ts.clear();
    }
    if (ts.empty()) return Status::Internal("cannot create a timestamped dir in " + dir);
    ::chmod((dir + "/" + ts).c_str(), 0755);
    for (const auto& [p, f] : files) {
      std::string path = dir + "/" + ts + "/" + p;
      std::string parent = fs::path(path).parent_path().string();
      if (parent != dir + "/" + ts) {
        fs::create_directories(parent, ec);
        if (ec) return Status::Internal("creating " + parent + ": " + ec.message());
        for (fs::path d = parent; d.string().size() > (dir + "/" + ts).size();
             d = d.parent_path()) {
          ::chmod(d.c_str(), 0755);
        }
      }
      Status s = write_file(path, f.data, effective_mode(f.mode, fs_group), fs_group);
      if (!s.ok()) {
        fs::remove_all(dir + "/" + ts, ec);
        return s;
      }
    }
    std::string tmp = dir + "/" + kDataTmpLink;
    ::unlink(tmp.c_str());
    if (::symlink(ts.c_str(), tmp.c_str()) != 0 ||
        ::rename(tmp.c_str(), (dir + "/" + kDataLink).c_str()) != 0) {
      Status s = Status::Internal("switching " + dir + "/..data: " + std::strerror(errno));
      fs::remove_all(dir + "/" + ts, ec);
      return s;
    }
    current = ts;
  }
  // The user-visible names: one symlink per top-level name into ..data.
  for (const auto& top : tops) {
    std::string path = dir + "/" + top;
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0) {
      if (S_ISLNK(st.st_mode)) continue;
      fs::remove_all(path, ec);
    }
    if (::symlink((std::string(kDataLink) + "/" + top).c_str(), path.c_str()) != 0) {
      return Status::Internal("linking " + path + ": " + std::strerror(errno));
    }
  }
  // Names no longer projected, and timestamped dirs other than the current one.
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string n = e.path().filename().string();
    if (n == kDataLink || n == current) continue;
    if (n.rfind("..", 0) == 0 || tops.count(n) == 0) fs::remove_all(e.path(), ec);
  }
  return Status::Ok();
}

// What prepare() recorded about one pod. Its mutex serializes the setup, refresh and teardown
// of the pod's volumes.
struct PodVolumes {
  struct Volume {
    std::string host_path;
    bool read_only = false;  // API data (configMap, secret, downwardAPI, projected)
  };
  std::mutex mu;
  bool prepared = false;                  // guarded by mu
  bool torn_down = false;                 // guarded by mu
  std::map<std::string, Volume> volumes;  // guarded by mu; by volume name
  std::string service_account_volume;     // guarded by mu; the added kube-api-access volume
};

struct VolumeManager::Impl {
  Impl(client::Client& c, VolumeManagerOptions o) : client(c), options(std::move(o)) {}

  std::string pod_volumes_dir(const std::string& uid) const {
    return options.pods_dir + "/" + uid + "/volumes";
  }
  std::string volume_dir(const std::string& uid, const std::string& plugin,
                         const std::string& name) const {
    return pod_volumes_dir(uid) + "/kubernetes.io~" + plugin + "/" + name;
  }

  std::shared_ptr<PodVolumes> state(const std::string& uid, bool create) {
    std::lock_guard<std::mutex> l(mu);
    auto it = pods.find(uid);
    if (it != pods.end()) return it->second;
    if (!create) return nullptr;
    auto st = std::make_shared<PodVolumes>();
    pods[uid] = st;
    return st;
  }

  // The object, null when it does not exist.
  Result<client::ObjectPtr> lookup(client::Informer* informer, const client::ResourceRef& r,
                                   const std::string& ns, const std::string& name) {
    if (informer != nullptr) {
      if (auto o = informer->get(ns, name)) return o;
    }
    auto got = client.get(r.in(ns), name);
    if (got.ok()) return *got;
    if (got.status().is_not_found()) return client::ObjectPtr();
    return got.status();
  }

  Result<std::string> root_ca() {
    {
      std::lock_guard<std::mutex> l(mu);
      if (!root_ca_pem.empty()) return root_ca_pem;
    }
    client::Request req;
    req.method = "GET";
    req.path = "/cacerts";
    req.accept = "*/*";
    auto reply = client.transport().round_trip(req);
    if (!reply.ok()) return reply.status();
    if (reply->status != 200) {
      return Status::Unavailable("/cacerts answered " + std::to_string(reply->status));
    }
    std::lock_guard<std::mutex> l(mu);
    root_ca_pem = reply->body;
    return root_ca_pem;
  }

  Result<client::ObjectPtr> config_map(const std::string& ns, const std::string& name) {
    auto cm = lookup(options.config_maps, client::resources::kConfigMaps, ns, name);
    if (!cm.ok() || *cm || name != "kube-root-ca.crt") return cm;
    // No root-CA publisher runs: the cluster CA stands in for kube-root-ca.crt.
    auto ca = root_ca();
    if (!ca.ok()) return ca.status();
    return std::make_shared<const json>(json{{"data", {{"ca.crt", *ca}}}});
  }

  Result<client::ObjectPtr> secret(const std::string& ns, const std::string& name) {
    return lookup(options.secrets, client::resources::kSecrets, ns, name);
  }

  Status add_config_map(Payload* out, const json& pod, const json& src, uint32_t default_mode) {
    std::string name = str(src, "name");
    bool optional = flag(src, "optional");
    auto cm = config_map(str(pod["metadata"], "namespace"), name);
    if (!cm.ok()) return cm.status();
    if (!*cm) {
      if (optional) return Status::Ok();
      return Status::NotFound("configmap \"" + name + "\" not found");
    }
    return add_keyed(out, config_map_data(**cm, true), sub(src, "items"), default_mode, optional,
                     false);
  }

  Status add_secret(Payload* out, const json& pod, const json& src, uint32_t default_mode,
                    const char* name_key) {
    std::string name = str(src, name_key);
    bool optional = flag(src, "optional");
    auto s = secret(str(pod["metadata"], "namespace"), name);
    if (!s.ok()) return s.status();
    if (!*s) {
      if (optional) return Status::Ok();
      return Status::NotFound("secret \"" + name + "\" not found");
    }
    return add_keyed(out, secret_data(**s), sub(src, "items"), default_mode, optional, true);
  }

  Status add_downward(Payload* out, const json& pod, const json& items, uint32_t default_mode) {
    if (!items.is_array()) return Status::Ok();
    for (const auto& item : items) {
      std::string value;
      if (item.contains("fieldRef")) {
        auto v = downward_field_value(pod, str(item["fieldRef"], "fieldPath"));
        if (!v.ok()) return v.status();
        value = *v;
      } else if (item.contains("resourceFieldRef")) {
        auto v = resource_field_value(pod, "", item["resourceFieldRef"], options.node_cpu_milli,
                                      options.node_memory_bytes);
        if (!v.ok()) return v.status();
        value = *v;
      } else {
        continue;
      }
      out->push_back({str(item, "path"), {value, mode_of(item, "mode", default_mode)}});
    }
    return Status::Ok();
  }

  // A serviceAccountToken source: the token already in the volume while it is fresh, else a
  // new TokenRequest bound to the pod.
  Status add_token(Payload* out, const json& pod, const json& src, uint32_t default_mode,
                   const std::string& dir, std::optional<TimePoint>* due) {
    std::string path = str(src, "path");
    std::string audience = str(src, "audience");
    int64_t expiration = opt_int(src, "expirationSeconds").value_or(3600);
    const json& m = pod["metadata"];
    auto existing = read_file(dir + "/" + kDataLink + "/" + path);
    if (existing.ok() && !existing->empty()) {
      json claims = jwt_claims(*existing);
      auto refresh_at = token_refresh_time(claims, options.token_refresh_fraction);
      bool same_audience = audience.empty();
      if (!audience.empty()) {
        const json& aud = sub(claims, "aud");
        same_audience =
            (aud.is_string() && aud == audience) ||
            (aud.is_array() && std::find(aud.begin(), aud.end(), audience) != aud.end());
      }
      std::string bound = str(sub(sub(claims, "kubernetes.io"), "pod"), "uid");
      if (refresh_at && now() < *refresh_at && same_audience && bound == str(m, "uid")) {
        out->push_back({path, {*existing, default_mode}});
        if (!*due || *refresh_at < **due) *due = *refresh_at;
        return Status::Ok();
      }
    }
    const json& spec = pod["spec"];
    std::string sa = str(spec, "serviceAccountName");
    if (sa.empty()) sa = str(spec, "serviceAccount");
    if (sa.empty()) sa = "default";
    json req_spec = {{"expirationSeconds", expiration},
                     {"boundObjectRef",
                      {{"apiVersion", "v1"},
                       {"kind", "Pod"},
                       {"name", str(m, "name")},
                       {"uid", str(m, "uid")}}}};
    if (!audience.empty()) req_spec["audiences"] = json::array({audience});
    json body = {
        {"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenRequest"}, {"spec", req_spec}};
    auto r = client.create_subresource(client::resources::kServiceAccounts.in(str(m, "namespace")),
                                       sa, "token", body);
    if (!r.ok()) return Status(r.status().code(), "failed to fetch token: " + r.status().message());
    std::string token = str(sub(**r, "status"), "token");
    if (token.empty()) return Status::Internal("failed to fetch token: the reply has no token");
    auto refresh_at = token_refresh_time(jwt_claims(token), options.token_refresh_fraction);
    if (!refresh_at) {
      refresh_at = now() + std::chrono::seconds(static_cast<int64_t>(
                               static_cast<double>(expiration) * options.token_refresh_fraction));
    }
    if (!*due || *refresh_at < **due) *due = *refresh_at;
    out->push_back({path, {token, default_mode}});
    return Status::Ok();
  }

  Status add_projected(Payload* out, const json& pod, const json& src, const std::string& dir,
                       std::optional<TimePoint>* due) {
    uint32_t mode = mode_of(src, "defaultMode", 0644);
    const json& sources = sub(src, "sources");
    if (!sources.is_array()) return Status::Ok();
    for (const auto& s : sources) {
      Status st;
      if (s.contains("configMap")) {
        st = add_config_map(out, pod, s["configMap"], mode);
      } else if (s.contains("secret")) {
        st = add_secret(out, pod, s["secret"], mode, "name");
      } else if (s.contains("downwardAPI")) {
        st = add_downward(out, pod, sub(s["downwardAPI"], "items"), mode);
      } else if (s.contains("serviceAccountToken")) {
        st = add_token(out, pod, s["serviceAccountToken"], mode, dir, due);
      } else {
        st = Status::Invalid("unsupported projected volume source");
      }
      if (!st.ok()) return st;
    }
    return Status::Ok();
  }

  // The pod's volumes, with the kube-api-access volume when the pod gets one. With
  // `existing_only`, the added volume counts when its directory exists (no API lookups).
  std::vector<json> pod_volumes(const json& pod, bool existing_only, std::string* added) {
    std::vector<json> out;
    const json& spec = pod["spec"];
    const json& vols = sub(spec, "volumes");
    if (vols.is_array()) {
      for (const auto& v : vols) {
        if (v.is_object() && !str(v, "name").empty()) out.push_back(v);
      }
    }
    std::string uid = str(pod["metadata"], "uid");
    std::string name = "kube-api-access-";
    for (char c : uid) {
      if (c != '-' && name.size() < std::string("kube-api-access-").size() + 5) name += c;
    }
    bool add = false;
    if (existing_only) {
      add = fs::exists(volume_dir(uid, "projected", name));
    } else {
      bool needed = false;
      for (const json* c : all_containers(pod)) {
        if (!mounts_path(*c, kServiceAccountMountPath)) needed = true;
      }
      auto automount = opt_flag(spec, "automountServiceAccountToken");
      if (needed && automount.value_or(true)) {
        add = true;
        if (!automount) {
          std::string sa = str(spec, "serviceAccountName");
          if (sa.empty()) sa = str(spec, "serviceAccount");
          if (sa.empty()) sa = "default";
          auto got = client.get(
              client::resources::kServiceAccounts.in(str(pod["metadata"], "namespace")), sa);
          if (got.ok()) {
            add = opt_flag(**got, "automountServiceAccountToken").value_or(true);
          } else if (got.status().is_not_found()) {
            // Kubernetes would not have admitted the pod; it runs without a token.
            SKIFF_LOG(Info) << "service account " << sa << " of pod "
                            << str(pod["metadata"], "name") << " not found; no token mounted";
            add = false;
          }
        }
      }
    }
    if (add) {
      json items = json::array({{{"key", "ca.crt"}, {"path", "ca.crt"}}});
      json ns_item = {{"path", "namespace"},
                      {"fieldRef", {{"apiVersion", "v1"}, {"fieldPath", "metadata.namespace"}}}};
      json sources = json::array();
      sources.push_back(
          {{"serviceAccountToken",
            {{"expirationSeconds", kServiceAccountTokenSeconds}, {"path", "token"}}}});
      sources.push_back({{"configMap", {{"name", "kube-root-ca.crt"}, {"items", items}}}});
      sources.push_back({{"downwardAPI", {{"items", json::array({ns_item})}}}});
      out.push_back({{"name", name}, {"projected", {{"defaultMode", 420}, {"sources", sources}}}});
      *added = name;
    } else {
      added->clear();
    }
    return out;
  }

  // Sets up (or, with !create, only refreshes an existing) volume `v`.
  Status setup_volume(PodVolumes& st, const json& pod, const json& v, bool create,
                      std::optional<TimePoint>* due) {
    const std::string uid = str(pod["metadata"], "uid");
    const std::string name = str(v, "name");
    const auto fs_group = fs_group_of(pod);
    std::error_code ec;
    if (v.contains("emptyDir")) {
      if (!create) return Status::Ok();
      const json& src = v["emptyDir"];
      std::string medium = str(src, "medium");
      if (!medium.empty() && medium != "Memory") {
        return Status::Invalid("emptyDir medium " + medium + " is not supported");
      }
      std::string dir = volume_dir(uid, "empty-dir", name);
      fs::create_directories(dir, ec);
      if (ec) return Status::Internal("creating " + dir + ": " + ec.message());
      if (medium == "Memory") {
        int64_t size = 0;
        if (src.contains("sizeLimit") && !src["sizeLimit"].is_null()) {
          auto q = Quantity::from_json(src["sizeLimit"]);
          if (q.ok()) size = q->value();
        }
        if (size == 0) {
          // The pod's memory limit, when every container has one.
          int64_t total = 0;
          bool all = true;
          for (const auto& c : sub(pod["spec"], "containers")) {
            const json& lim = sub(sub(c, "resources"), "limits");
            auto q = lim.is_object() && lim.contains("memory")
                         ? Quantity::from_json(lim["memory"])
                         : Result<Quantity>(Status::NotFound(""));
            if (!q.ok()) {
              all = false;
              break;
            }
            total += q->value();
          }
          if (all) size = total;
        }
        if (fs::is_empty(dir, ec)) ensure_tmpfs(dir, size, "1777");
      }
      ::chmod(dir.c_str(), fs_group ? 02777 : 0777);
      if (fs_group && ::chown(dir.c_str(), static_cast<uid_t>(-1), *fs_group) != 0) {
        SKIFF_LOG(Warn) << "chown " << dir << ": " << std::strerror(errno);
      }
      st.volumes[name] = {dir, false};
      return Status::Ok();
    }
    if (v.contains("hostPath")) {
      if (!create) return Status::Ok();
      const json& src = v["hostPath"];
      std::string path = str(src, "path");
      std::string type = str(src, "type");
      if (path.empty() || path[0] != '/') {
        return Status::Invalid("hostPath path must be absolute: \"" + path + "\"");
      }
      struct stat sb;
      bool exists = ::stat(path.c_str(), &sb) == 0;
      auto fail = [&](const char* what) {
        return Status::Invalid("hostPath type check failed: " + path + " is not a " + what);
      };
      if (type.empty()) {
        // As containerd does for a missing bind source: a directory is made.
        if (!exists) fs::create_directories(path, ec);
      } else if (type == "DirectoryOrCreate" || type == "Directory") {
        if (!exists && type == "DirectoryOrCreate") {
          fs::create_directories(path, ec);
          if (ec) return Status::Internal("creating " + path + ": " + ec.message());
          ::chmod(path.c_str(), 0755);
        } else if (!exists || !S_ISDIR(sb.st_mode)) {
          return fail("directory");
        }
      } else if (type == "FileOrCreate" || type == "File") {
        if (!exists && type == "FileOrCreate") {
          int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
          if (fd < 0) return Status::Internal("creating " + path + ": " + std::strerror(errno));
          ::close(fd);
        } else if (!exists || !S_ISREG(sb.st_mode)) {
          return fail("file");
        }
      } else if (type == "Socket") {
        if (!exists || !S_ISSOCK(sb.st_mode)) return fail("socket file");
      } else if (type == "CharDevice") {
        if (!exists || !S_ISCHR(sb.st_mode)) return fail("character device");
      } else if (type == "BlockDevice") {
        if (!exists || !S_ISBLK(sb.st_mode)) return fail("block device");
      } else {
        return Status::Invalid(type + " is an invalid volume type");
      }
      st.volumes[name] = {path, false};
      return Status::Ok();
    }
    std::string plugin;
    bool memory = false;
    if (v.contains("configMap")) {
      plugin = "configmap";
    } else if (v.contains("secret")) {
      plugin = "secret";
      memory = true;
    } else if (v.contains("downwardAPI")) {
      plugin = "downward-api";
    } else if (v.contains("projected")) {
      plugin = "projected";
      memory = true;
    } else {
      std::string kind;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (it.key() != "name" && !it->is_null()) kind = it.key();
      }
      return Status::Invalid("volume type " + (kind.empty() ? "(none)" : kind) +
                             " is not supported on this node");
    }
    std::string dir = volume_dir(uid, plugin, name);
    if (!create && !fs::exists(dir)) return Status::Ok();
    Payload payload;
    Status s;
    if (plugin == "configmap") {
      s = add_config_map(&payload, pod, v["configMap"],
                         mode_of(v["configMap"], "defaultMode", 0644));
    } else if (plugin == "secret") {
      s = add_secret(&payload, pod, v["secret"], mode_of(v["secret"], "defaultMode", 0644),
                     "secretName");
    } else if (plugin == "downward-api") {
      s = add_downward(&payload, pod, sub(v["downwardAPI"], "items"),
                       mode_of(v["downwardAPI"], "defaultMode", 0644));
    } else {
      s = add_projected(&payload, pod, v["projected"], dir, due);
    }
    if (!s.ok()) return s;
    // A tmpfs goes only on a new dir: mounted over written content, it would hide that from
    // the containers already bound to it.
    bool fresh = !fs::exists(dir);
    fs::create_directories(dir, ec);
    if (ec) return Status::Internal("creating " + dir + ": " + ec.message());
    if (memory && fresh) ensure_tmpfs(dir, 0, "0755");
    s = write_atomic_volume(dir, payload, fs_group);
    if (!s.ok()) return s;
    st.volumes[name] = {dir, true};
    return Status::Ok();
  }

  // Records a FailedMount event unless the same one was recorded within kEventRepeat.
  void report(const json& pod, const std::string& key, const std::string& message) {
    {
      std::lock_guard<std::mutex> l(mu);
      auto it = reported.find(key);
      TimePoint t = now();
      if (it != reported.end() && it->second.first == message &&
          t - it->second.second < kEventRepeat)
        return;
      reported[key] = {message, t};
    }
    if (options.record_event) options.record_event(pod, "Warning", "FailedMount", message);
  }

  void clear_reported(const std::string& key) {
    std::lock_guard<std::mutex> l(mu);
    reported.erase(key);
  }

  void note_due(const std::optional<TimePoint>& due) {
    if (!due) return;
    std::lock_guard<std::mutex> l(mu);
    if (!next_token_refresh || *due < *next_token_refresh) {
      next_token_refresh = due;
      cv.notify_all();
    }
  }

  void refresher_loop() {
    std::unique_lock<std::mutex> l(mu);
    TimePoint next_resync = now() + options.resync_interval;
    while (running) {
      TimePoint until = next_resync;
      if (next_token_refresh && *next_token_refresh < until) until = *next_token_refresh;
      if (!dirty) cv.wait_for(l, until - now());
      if (!running) break;
      if (!dirty && now() < until) continue;
      // Several changes in a row are handled by one pass.
      if (dirty) cv.wait_for(l, std::chrono::milliseconds(50), [&] { return !running; });
      dirty = false;
      next_token_refresh.reset();
      next_resync = now() + options.resync_interval;
      l.unlock();
      refresh_all();
      l.lock();
    }
  }

  void refresh_all() {
    if (!options.pods) return;
    std::optional<TimePoint> due;
    for (const auto& p : options.pods()) {
      if (!p) continue;
      const json& pod = *p;
      std::string uid = str(sub(pod, "metadata"), "uid");
      std::string phase = str(sub(pod, "status"), "phase");
      if (uid.empty() || phase == "Succeeded" || phase == "Failed") continue;
      if (!fs::exists(pod_volumes_dir(uid))) continue;
      auto st = state(uid, true);
      std::lock_guard<std::mutex> l(st->mu);
      if (st->torn_down) continue;
      std::string added;
      try {
        for (const auto& v : pod_volumes(pod, true, &added)) {
          std::optional<TimePoint> vdue;
          Status s = setup_volume(*st, pod, v, false, &vdue);
          std::string key = uid + "/" + str(v, "name");
          if (!s.ok()) {
            report(
                pod, key,
                "MountVolume.SetUp failed for volume \"" + str(v, "name") + "\" : " + s.message());
          }
          if (vdue && (!due || *vdue < *due)) due = vdue;
        }
      } catch (const std::exception& e) {
        SKIFF_LOG(Warn) << "refreshing the volumes of pod " << uid << ": " << e.what();
      }
    }
    note_due(due);
  }

  client::Client& client;
  const VolumeManagerOptions options;

  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::shared_ptr<PodVolumes>> pods;            // guarded by mu
  std::map<std::string, std::pair<std::string, TimePoint>> reported;  // guarded by mu
  std::string root_ca_pem;                                            // guarded by mu
  bool running = false;                                               // guarded by mu
  bool dirty = false;                                                 // guarded by mu
  std::optional<TimePoint> next_token_refresh;                        // guarded by mu
  std::thread refresher;
};

VolumeManager::VolumeManager(client::Client& client, VolumeManagerOptions options)
    : impl_(std::make_unique<Impl>(client, std::move(options))) {}

VolumeManager::~VolumeManager() { stop(); }

void VolumeManager::start() {
  std::lock_guard<std::mutex> l(impl_->mu);
  if (impl_->running || impl_->refresher.joinable()) return;
  impl_->running = true;
  impl_->refresher = std::thread([this] { impl_->refresher_loop(); });
}

void VolumeManager::stop() {
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    impl_->running = false;
    impl_->cv.notify_all();
  }
  if (impl_->refresher.joinable() && impl_->refresher.get_id() != std::this_thread::get_id()) {
    impl_->refresher.join();
  }
}

void VolumeManager::notify_changed() {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->dirty = true;
  impl_->cv.notify_all();
}

void VolumeManager::refresh_all() { impl_->refresh_all(); }

std::string VolumeManager::volume_dir(const std::string& pod_uid, const std::string& plugin,
                                      const std::string& name) const {
  return impl_->volume_dir(pod_uid, plugin, name);
}

Status VolumeManager::prepare(const json& pod) {
  Impl& m = *impl_;
  const std::string uid = str(sub(pod, "metadata"), "uid");
  if (uid.empty()) return Status::Invalid("pod has no uid");
  auto st = m.state(uid, true);
  std::lock_guard<std::mutex> l(st->mu);
  if (st->torn_down) return Status::Unavailable("the volumes of pod " + uid + " are torn down");
  std::string added;
  std::vector<json> volumes = m.pod_volumes(pod, false, &added);
  Status first = Status::Ok();
  std::optional<TimePoint> due;
  st->volumes.clear();
  for (const auto& v : volumes) {
    const std::string name = str(v, "name");
    Status s;
    try {
      s = m.setup_volume(*st, pod, v, true, &due);
    } catch (const std::exception& e) {
      s = Status::Invalid(e.what());
    }
    const std::string key = uid + "/" + name;
    if (s.ok()) {
      m.clear_reported(key);
      continue;
    }
    std::string message = "MountVolume.SetUp failed for volume \"" + name + "\" : " + s.message();
    m.report(pod, key, message);
    if (first.ok()) first = Status(s.code(), message);
  }
  st->service_account_volume = added;
  st->prepared = first.ok();
  m.note_due(due);
  return first;
}

Result<std::vector<runtime::Mount>> VolumeManager::container_mounts(
    const json& pod, const json& c, const std::vector<std::string>& env) {
  const std::string uid = str(sub(pod, "metadata"), "uid");
  const std::string cname = str(c, "name");
  auto st = impl_->state(uid, false);
  if (!st) return Status::Unavailable("the volumes of the pod are not set up");
  std::lock_guard<std::mutex> l(st->mu);
  if (!st->prepared) return Status::Unavailable("the volumes of the pod are not set up");
  std::vector<runtime::Mount> out;
  const json& mounts = sub(c, "volumeMounts");
  if (mounts.is_array()) {
    for (const auto& vm : mounts) {
      const std::string vname = str(vm, "name");
      auto it = st->volumes.find(vname);
      if (it == st->volumes.end()) {
        return Status::Invalid("cannot find volume \"" + vname + "\" to mount into container \"" +
                               cname + "\"");
      }
      std::string source = it->second.host_path;
      std::string sub_path = str(vm, "subPath");
      if (sub_path.empty() && !str(vm, "subPathExpr").empty()) {
        sub_path = runtime::expand_env_references(str(vm, "subPathExpr"), env);
      }
      if (!sub_path.empty()) {
        Status bad = Status::Invalid("failed to prepare subPath for volumeMount \"" + vname +
                                     "\" of container \"" + cname + "\"");
        if (sub_path[0] == '/') return bad;
        for (size_t start = 0; start <= sub_path.size();) {
          size_t end = sub_path.find('/', start);
          if (end == std::string::npos) end = sub_path.size();
          if (sub_path.compare(start, end - start, "..") == 0 && end - start == 2) return bad;
          start = end + 1;
        }
        std::error_code ec;
        std::string path = source + "/" + sub_path;
        struct stat sb;
        if (::lstat(path.c_str(), &sb) != 0) {
          fs::create_directories(path, ec);
          if (ec) return bad;
          struct stat root;
          if (::stat(source.c_str(), &root) == 0) ::chmod(path.c_str(), root.st_mode & 07777);
        }
        fs::path real = fs::canonical(path, ec);
        fs::path base = fs::canonical(source, ec);
        if (ec) return bad;
        std::string r = real.string(), b = base.string();
        if (r != b && r.rfind(b == "/" ? b : b + "/", 0) != 0) return bad;
        source = r;
      }
      runtime::Mount m;
      m.type = runtime::Mount::Type::kBind;
      m.container_path = str(vm, "mountPath");
      m.host_path = source;
      m.read_only = flag(vm, "readOnly") || it->second.read_only;
      out.push_back(std::move(m));
    }
  }
  if (!st->service_account_volume.empty() && !mounts_path(c, kServiceAccountMountPath)) {
    auto it = st->volumes.find(st->service_account_volume);
    if (it != st->volumes.end()) {
      out.push_back(
          {runtime::Mount::Type::kBind, kServiceAccountMountPath, it->second.host_path, true, 0});
    }
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> VolumeManager::env_from(const json& pod,
                                                                                 const json& c) {
  std::vector<std::pair<std::string, std::string>> out;
  const json& sources = sub(c, "envFrom");
  if (!sources.is_array()) return out;
  const std::string ns = str(sub(pod, "metadata"), "namespace");
  for (const auto& src : sources) {
    std::string prefix = str(src, "prefix");
    StringMap data;
    std::string kind, name;
    if (src.contains("configMapRef")) {
      kind = "configMap";
      name = str(src["configMapRef"], "name");
      auto cm = impl_->config_map(ns, name);
      if (!cm.ok()) return cm.status();
      if (!*cm) {
        if (flag(src["configMapRef"], "optional")) continue;
        return Status::NotFound("configmap \"" + name + "\" not found");
      }
      data = config_map_data(**cm, false);
    } else if (src.contains("secretRef")) {
      kind = "secret";
      name = str(src["secretRef"], "name");
      auto s = impl_->secret(ns, name);
      if (!s.ok()) return s.status();
      if (!*s) {
        if (flag(src["secretRef"], "optional")) continue;
        return Status::NotFound("secret \"" + name + "\" not found");
      }
      data = secret_data(**s);
    } else {
      continue;
    }
    std::vector<std::string> invalid;
    for (const auto& [k, v] : data) {
      std::string key = prefix + k;
      if (!valid_env_name(key)) {
        invalid.push_back(key);
        continue;
      }
      out.push_back({key, v});
    }
    if (!invalid.empty() && impl_->options.record_event) {
      std::string keys;
      for (const auto& k : invalid) keys += (keys.empty() ? "" : ", ") + k;
      impl_->options.record_event(pod, "Warning", "InvalidEnvironmentVariableNames",
                                  "Keys [" + keys + "] from the EnvFrom " + kind + " " + ns + "/" +
                                      name +
                                      " were skipped since they are considered invalid "
                                      "environment variable names.");
    }
  }
  return out;
}

Result<std::optional<std::string>> VolumeManager::env_value(const json& pod, const json& c,
                                                            const json& value_from) {
  const std::string ns = str(sub(pod, "metadata"), "namespace");
  if (value_from.contains("configMapKeyRef")) {
    const json& ref = value_from["configMapKeyRef"];
    std::string name = str(ref, "name"), key = str(ref, "key");
    bool optional = flag(ref, "optional");
    auto cm = impl_->config_map(ns, name);
    if (!cm.ok()) return cm.status();
    if (!*cm) {
      if (optional) return std::optional<std::string>();
      return Status::NotFound("configmap \"" + name + "\" not found");
    }
    StringMap data = config_map_data(**cm, false);
    auto it = data.find(key);
    if (it == data.end()) {
      if (optional) return std::optional<std::string>();
      return Status::NotFound("couldn't find key " + key + " in ConfigMap " + ns + "/" + name);
    }
    return std::optional<std::string>(it->second);
  }
  if (value_from.contains("secretKeyRef")) {
    const json& ref = value_from["secretKeyRef"];
    std::string name = str(ref, "name"), key = str(ref, "key");
    bool optional = flag(ref, "optional");
    auto s = impl_->secret(ns, name);
    if (!s.ok()) return s.status();
    if (!*s) {
      if (optional) return std::optional<std::string>();
      return Status::NotFound("secret \"" + name + "\" not found");
    }
    StringMap data = secret_data(**s);
    auto it = data.find(key);
    if (it == data.end()) {
      if (optional) return std::optional<std::string>();
      return Status::NotFound("couldn't find key " + key + " in Secret " + ns + "/" + name);
    }
    return std::optional<std::string>(it->second);
  }
  if (value_from.contains("resourceFieldRef")) {
    auto v = resource_field_value(pod, str(c, "name"), value_from["resourceFieldRef"],
                                  impl_->options.node_cpu_milli, impl_->options.node_memory_bytes);
    if (!v.ok()) return v.status();
    return std::optional<std::string>(*v);
  }
  if (value_from.contains("fieldRef")) {
    auto v = downward_field_value(pod, str(value_from["fieldRef"], "fieldPath"));
    if (!v.ok()) return v.status();
    return std::optional<std::string>(*v);
  }
  return Status::Invalid("unsupported valueFrom source");
}

void VolumeManager::teardown(const std::string& pod_uid) {
  Impl& m = *impl_;
  if (pod_uid.empty() || pod_uid.find('/') != std::string::npos) return;
  auto st = m.state(pod_uid, true);
  {
    std::lock_guard<std::mutex> l(st->mu);
    st->torn_down = true;
    st->prepared = false;
    st->volumes.clear();
    std::string dir = m.pod_volumes_dir(pod_uid);
    for (const auto& p : mount_points_under(dir)) {
      if (::umount2(p.c_str(), MNT_DETACH) != 0) {
        SKIFF_LOG(Warn) << "unmounting " << p << ": " << std::strerror(errno);
      }
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (ec) SKIFF_LOG(Warn) << "removing " << dir << ": " << ec.message();
  }
  std::lock_guard<std::mutex> l(m.mu);
  m.pods.erase(pod_uid);
  for (auto it = m.reported.begin(); it != m.reported.end();) {
    it = it->first.rfind(pod_uid + "/", 0) == 0 ? m.reported.erase(it) : std::next(it);
  }
}

}  // namespace skiff::agent
