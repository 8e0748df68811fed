#include "api/builtin/pod.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "api/builtin/pods.h"
#include "common/names.h"
#include "common/strings.h"
#include "common/time.h"

namespace skiff::api::builtin {
namespace {

constexpr int64_t kMaxInt32 = 2147483647;

// Sets obj[key] when it is absent, null or the empty string (Go's `if x == ""`).
void default_string(json& obj, std::string_view key, std::string_view value) {
  if (!obj.is_object()) return;
  const json* v = member(obj, key);
  if (v == nullptr || (v->is_string() && v->get<std::string>().empty())) {
    obj[std::string(key)] = value;
  }
}

// Sets obj[key] when it is absent, null or 0 (Go's `if x == 0` on a non-pointer field).
void default_int(json& obj, std::string_view key, int64_t value) {
  if (!obj.is_object()) return;
  const json* v = member(obj, key);
  if (v == nullptr || as_int(v) == 0) obj[std::string(key)] = value;
}

json* child_object(json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_object()) return nullptr;
  return &*it;
}

json* child_array(json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_array()) return nullptr;
  return &*it;
}

// Whether docker's reference grammar (ParseNormalizedNamed) accepts `image`; the pull policy
// of an image Kubernetes cannot parse defaults to IfNotPresent.
bool parse_image(std::string_view image, std::string* tag, bool* has_digest) {
  tag->clear();
  *has_digest = false;
  if (image.empty()) return false;
  for (char c : image) {
    if (std::isspace(static_cast<unsigned char>(c))) return false;
  }
  std::string_view name = image;
  if (auto at_pos = name.find('@'); at_pos != std::string_view::npos) {
    std::string_view digest = name.substr(at_pos + 1);
    if (digest.find(':') == std::string_view::npos) return false;
    *has_digest = true;
    name = name.substr(0, at_pos);
  }
  size_t last_slash = name.rfind('/');
  size_t colon = name.find(':', last_slash == std::string_view::npos ? 0 : last_slash + 1);
  if (colon != std::string_view::npos) {
    *tag = std::string(name.substr(colon + 1));
    name = name.substr(0, colon);
    if (tag->empty()) return false;
  }
  // The first component is a registry host when it looks like one; the rest must be lowercase.
  std::string_view path = name;
  if (size_t slash = name.find('/'); slash != std::string_view::npos) {
    std::string_view first = name.substr(0, slash);
    if (first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos ||
        first == "localhost") {
      path = name.substr(slash + 1);
    }
  }
  if (path.empty() || path.front() == '/' || path.back() == '/') return false;
  for (char c : path) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == '/';
    if (!ok) return false;
  }
  return true;
}

std::string default_pull_policy(std::string_view image) {
  std::string tag;
  bool has_digest = false;
  if (!parse_image(image, &tag, &has_digest)) return "IfNotPresent";
  if (tag == "latest" || (tag.empty() && !has_digest)) return "Always";
  return "IfNotPresent";
}

void default_http_get(json& handler) {
  if (json* http = child_object(handler, "httpGet")) {
    default_string(*http, "path", "/");
    default_string(*http, "scheme", "HTTP");
  }
}

void default_probe(json& probe) {
  if (!probe.is_object()) return;
  default_int(probe, "timeoutSeconds", 1);
  default_int(probe, "periodSeconds", 10);
  default_int(probe, "successThreshold", 1);
  default_int(probe, "failureThreshold", 3);
  default_http_get(probe);
  if (json* grpc = child_object(probe, "grpc")) set_default(*grpc, "service", "");
}

void default_field_ref(json& holder) {
  if (json* ref = child_object(holder, "fieldRef")) default_string(*ref, "apiVersion", "v1");
}

void default_container(json& c) {
  if (!c.is_object()) return;
  if (!has(c, "imagePullPolicy") || str_at(c, {"imagePullPolicy"}).empty()) {
    c["imagePullPolicy"] = default_pull_policy(str_at(c, {"image"}));
  }
  default_string(c, "terminationMessagePath", "/dev/termination-log");
  default_string(c, "terminationMessagePolicy", "File");
  if (json* ports = child_array(c, "ports")) {
    for (json& port : *ports) default_string(port, "protocol", "TCP");
  }
  for (const char* probe : {"livenessProbe", "readinessProbe", "startupProbe"}) {
    if (json* p = child_object(c, probe)) default_probe(*p);
  }
  if (json* lifecycle = child_object(c, "lifecycle")) {
    for (const char* hook : {"postStart", "preStop"}) {
      if (json* h = child_object(*lifecycle, hook)) default_http_get(*h);
    }
  }
  if (json* env = child_array(c, "env")) {
    for (json& e : *env) {
      if (json* from = child_object(e, "valueFrom")) default_field_ref(*from);
    }
  }
  // ResourceRequirements is a struct, not a pointer: Go always writes it.
  object_member(c, "resources");
}

void default_pvc_spec_in(json& spec) { set_default(spec, "volumeMode", "Filesystem"); }

void default_volume(json& v) {
  if (!v.is_object()) return;
  bool has_source = false;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (it.key() != "name" && !it->is_null()) has_source = true;
  }
  if (!has_source) v["emptyDir"] = json::object();
  if (json* hp = child_object(v, "hostPath")) set_default(*hp, "type", "");
  for (const char* source : {"secret", "configMap", "downwardAPI", "projected"}) {
    if (json* s = child_object(v, source)) set_default(*s, "defaultMode", 420);
  }
  if (json* d = child_object(v, "downwardAPI")) {
    if (json* items = child_array(*d, "items")) {
      for (json& item : *items) default_field_ref(item);
    }
  }
  if (json* p = child_object(v, "projected")) {
    if (json* sources = child_array(*p, "sources")) {
      for (json& s : *sources) {
        if (json* sat = child_object(s, "serviceAccountToken")) {
          set_default(*sat, "expirationSeconds", 3600);
        }
        if (json* d = child_object(s, "downwardAPI")) {
          if (json* items = child_array(*d, "items")) {
            for (json& item : *items) default_field_ref(item);
          }
        }
      }
    }
  }
  if (json* iscsi = child_object(v, "iscsi")) set_default(*iscsi, "iscsiInterface", "default");
  if (json* rbd = child_object(v, "rbd")) {
    set_default(*rbd, "pool", "rbd");
    set_default(*rbd, "user", "admin");
    set_default(*rbd, "keyring", "/etc/ceph/keyring");
  }
  if (json* az = child_object(v, "azureDisk")) {
    set_default(*az, "cachingMode", "ReadWrite");
    set_default(*az, "fsType", "ext4");
    set_default(*az, "readOnly", false);
    set_default(*az, "kind", "Shared");
  }
  if (json* eph = child_object(v, "ephemeral")) {
    if (json* tmpl = child_object(*eph, "volumeClaimTemplate")) {
      if (json* spec = child_object(*tmpl, "spec")) default_pvc_spec_in(*spec);
    }
  }
}

// SetDefaults_Pod: requests default to limits, per container.
void default_requests_from_limits(json* containers) {
  if (containers == nullptr) return;
  for (json& c : *containers) {
    json* resources = child_object(c, "resources");
    if (resources == nullptr) continue;
    json* limits = child_object(*resources, "limits");
    if (limits == nullptr) continue;
    json& requests = object_member(*resources, "requests");
    for (auto it = limits->begin(); it != limits->end(); ++it) {
      if (!requests.contains(it.key())) requests[it.key()] = *it;
    }
  }
}

void default_host_ports(json* containers) {
  if (containers == nullptr) return;
  for (json& c : *containers) {
    if (json* ports = child_array(c, "ports")) {
      for (json& port : *ports) {
        if (int_at(port, {"hostPort"}).value_or(0) == 0 && has(port, "containerPort")) {
          port["hostPort"] = port["containerPort"];
        }
      }
    }
  }
}

}  // namespace

void default_pod_spec(json& spec, bool is_pod) {
  if (!spec.is_object()) return;
  default_string(spec, "dnsPolicy", "ClusterFirst");
  default_string(spec, "restartPolicy", "Always");
  set_default(spec, "securityContext", json::object());
  set_default(spec, "terminationGracePeriodSeconds", 30);
  default_string(spec, "schedulerName", "default-scheduler");
  for (const char* list : {"containers", "initContainers", "ephemeralContainers"}) {
    if (json* cs = child_array(spec, list)) {
      for (json& c : *cs) default_container(c);
    }
  }
  if (json* volumes = child_array(spec, "volumes")) {
    for (json& v : *volumes) default_volume(v);
  }
  if (is_pod) {
    default_requests_from_limits(child_array(spec, "containers"));
    default_requests_from_limits(child_array(spec, "initContainers"));
    set_default(spec, "enableServiceLinks", true);
    if (bool_at(spec, {"hostNetwork"}).value_or(false)) {
      default_host_ports(child_array(spec, "containers"));
      default_host_ports(child_array(spec, "initContainers"));
    }
  }
}

void default_pod_template(json& tmpl) {
  if (!tmpl.is_object()) return;
  json& meta = object_member(tmpl, "metadata");
  if (!meta.contains("creationTimestamp")) meta["creationTimestamp"] = nullptr;
  default_pod_spec(object_member(tmpl, "spec"), false);
}

void default_pod(json& pod) {
  if (!pod.is_object()) return;
  json& spec = object_member(pod, "spec");
  default_pod_spec(spec, true);
  if (!has(spec, "priority")) {
    std::string cls = str_at(spec, {"priorityClassName"});
    std::optional<int64_t> priority;
    if (cls.empty()) {
      priority = 0;
    } else if (cls == "system-node-critical") {
      priority = 2000001000;
    } else if (cls == "system-cluster-critical") {
      priority = 2000000000;
    }
    if (priority) {
      spec["priority"] = *priority;
      set_default(spec, "preemptionPolicy", "PreemptLowerPriority");
    }
  }
  ensure_status(pod);
}

std::string pod_qos_class(const json& pod) {
  // Mirrors qos.ComputePodQOS for the standard cpu and memory resources.
  bool any = false;
  bool guaranteed = true;
  const json* spec = member(pod, "spec");
  for (const char* list : {"containers", "initContainers"}) {
    const json* cs = spec != nullptr ? array_at(*spec, {list}) : nullptr;
    if (cs == nullptr) continue;
    for (const json& c : *cs) {
      const json* requests = object_at(c, {"resources", "requests"});
      const json* limits = object_at(c, {"resources", "limits"});
      for (const char* r : {"cpu", "memory"}) {
        auto req = quantity_of(requests != nullptr ? member(*requests, r) : nullptr);
        auto lim = quantity_of(limits != nullptr ? member(*limits, r) : nullptr);
        if ((req && !req->is_zero()) || (lim && !lim->is_zero())) any = true;
        if (!lim || (req && *req != *lim)) guaranteed = false;
      }
    }
  }
  if (!any) return "BestEffort";
  return guaranteed ? "Guaranteed" : "Burstable";
}

namespace {

const std::set<std::string>& volume_source_keys() {
  static const std::set<std::string> v{"hostPath",
                                       "emptyDir",
                                       "gcePersistentDisk",
                                       "awsElasticBlockStore",
                                       "gitRepo",
                                       "secret",
                                       "nfs",
                                       "iscsi",
                                       "glusterfs",
                                       "persistentVolumeClaim",
                                       "rbd",
                                       "flexVolume",
                                       "cinder",
                                       "cephfs",
                                       "flocker",
                                       "downwardAPI",
                                       "fc",
                                       "azureFile",
                                       "configMap",
                                       "vsphereVolume",
                                       "quobyte",
                                       "azureDisk",
                                       "photonPersistentDisk",
                                       "projected",
                                       "portworxVolume",
                                       "scaleIO",
                                       "storageos",
                                       "csi",
                                       "ephemeral",
                                       "image"};
  return v;
}

std::set<std::string> validate_volumes(const json* volumes, const Path& p, FieldErrors& errs) {
  std::set<std::string> names;
  if (volumes == nullptr || !volumes->is_array()) return names;
  for (size_t i = 0; i < volumes->size(); ++i) {
    const json& v = (*volumes)[i];
    Path vp = p.index(i);
    std::vector<std::string> sources;
    if (v.is_object()) {
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!it->is_null() && volume_source_keys().count(it.key())) sources.push_back(it.key());
      }
    }
    if (sources.empty()) {
      errs.required(vp, "must specify a volume type");
    } else {
      for (size_t s = 1; s < sources.size(); ++s) {
        errs.forbidden(vp.child(sources[s]), "may not specify more than 1 volume type");
      }
    }
    std::string name = str_at(v, {"name"});
    if (name.empty()) {
      errs.required(vp.child("name"));
    } else {
      validate_dns1123_label(name, vp.child("name"), errs);
    }
    if (names.count(name)) errs.duplicate(vp.child("name"), go_quote(name));
    names.insert(name);
  }
  return names;
}

void validate_container_ports(const json* ports, const Path& p, FieldErrors& errs) {
  if (ports == nullptr || !ports->is_array()) return;
  std::set<std::string> names;
  for (size_t i = 0; i < ports->size(); ++i) {
    const json& port = (*ports)[i];
    Path pp = p.index(i);
    std::string name = str_at(port, {"name"});
    if (!name.empty()) {
      std::vector<std::string> problems = is_valid_port_name(name);
      if (!problems.empty()) {
        for (const std::string& msg : problems) errs.invalid(pp.child("name"), go_quote(name), msg);
      } else if (names.count(name)) {
        errs.duplicate(pp.child("name"), go_quote(name));
      } else {
        names.insert(name);
      }
    }
    int64_t container_port = int_at(port, {"containerPort"}).value_or(0);
    if (container_port == 0) {
      errs.required(pp.child("containerPort"));
    } else {
      for (const std::string& msg : is_valid_port_num(container_port)) {
        errs.invalid(pp.child("containerPort"), go_int(container_port), msg);
      }
    }
    int64_t host_port = int_at(port, {"hostPort"}).value_or(0);
    if (host_port != 0) {
      for (const std::string& msg : is_valid_port_num(host_port)) {
        errs.invalid(pp.child("hostPort"), go_int(host_port), msg);
      }
    }
    std::string protocol = str_at(port, {"protocol"});
    if (protocol.empty()) {
      errs.required(pp.child("protocol"));
    } else if (protocol != "TCP" && protocol != "UDP" && protocol != "SCTP") {
      errs.not_supported(pp.child("protocol"), go_quote(protocol), {"SCTP", "TCP", "UDP"});
    }
  }
}

void validate_resources(const json* resources, const Path& p, FieldErrors& errs) {
  if (resources == nullptr || !resources->is_object()) return;
  const json* limits = object_at(*resources, {"limits"});
  const json* requests = object_at(*resources, {"requests"});
  for (const std::string& name : sorted_keys(limits)) {
    auto q = quantity_of(&(*limits)[name]);
    if (q && q->sign() < 0) {
      errs.invalid(p.child("limits").key(name), go_value(&(*limits)[name]),
                   "must be greater than or equal to 0");
    }
  }
  for (const std::string& name : sorted_keys(requests)) {
    const json& req = (*requests)[name];
    auto q = quantity_of(&req);
    if (q && q->sign() < 0) {
      errs.invalid(p.child("requests").key(name), go_value(&req),
                   "must be greater than or equal to 0");
    }
    const json* lim = limits != nullptr ? member(*limits, name) : nullptr;
    auto l = quantity_of(lim);
    if (!q || !l) continue;
    bool overcommit = name == "cpu" || name == "memory" || name == "ephemeral-storage" ||
                      name.find('/') != std::string::npos;
    overcommit = overcommit && name.rfind("hugepages-", 0) != 0;
    std::string req_text = q->to_string();
    std::string lim_text = l->to_string();
    if (*q != *l && !overcommit) {
      errs.invalid(p.child("requests"), go_quote(req_text),
                   "must be equal to " + name + " limit of " + lim_text);
    } else if (*q > *l) {
      errs.invalid(p.child("requests"), go_quote(req_text),
                   "must be less than or equal to " + name + " limit of " + lim_text);
    }
  }
}

void validate_container_common(const json& c, const std::set<std::string>& volumes, const Path& p,
                               FieldErrors& errs) {
  std::string name = str_at(c, {"name"});
  if (name.empty()) {
    errs.required(p.child("name"));
  } else {
    validate_dns1123_label(name, p.child("name"), errs);
  }
  if (str_at(c, {"image"}).empty()) errs.required(p.child("image"));
  std::string tmp = str_at(c, {"terminationMessagePolicy"});
  if (tmp.empty()) {
    errs.required(p.child("terminationMessagePolicy"));
  } else if (tmp != "File" && tmp != "FallbackToLogsOnError") {
    errs.not_supported(p.child("terminationMessagePolicy"), go_quote(tmp),
                       {"File", "FallbackToLogsOnError"});
  }
  validate_container_ports(member(c, "ports"), p.child("ports"), errs);
  if (const json* env = array_at(c, {"env"})) {
    for (size_t i = 0; i < env->size(); ++i) {
      if (str_at((*env)[i], {"name"}).empty()) errs.required(p.child("env").index(i).child("name"));
    }
  }
  if (const json* mounts = array_at(c, {"volumeMounts"})) {
    std::set<std::string> mount_paths;
    for (size_t i = 0; i < mounts->size(); ++i) {
      const json& m = (*mounts)[i];
      Path mp = p.child("volumeMounts").index(i);
      std::string mname = str_at(m, {"name"});
      if (mname.empty()) errs.required(mp.child("name"));
      if (!volumes.count(mname)) errs.not_found(mp.child("name"), go_quote(mname));
      std::string path = str_at(m, {"mountPath"});
      if (path.empty()) errs.required(mp.child("mountPath"));
      if (mount_paths.count(path))
        errs.invalid(mp.child("mountPath"), go_quote(path), "must be unique");
      mount_paths.insert(path);
    }
  }
  std::string pull = str_at(c, {"imagePullPolicy"});
  if (pull.empty()) {
    errs.required(p.child("imagePullPolicy"));
  } else if (pull != "Always" && pull != "IfNotPresent" && pull != "Never") {
    errs.not_supported(p.child("imagePullPolicy"), go_quote(pull),
                       {"Always", "IfNotPresent", "Never"});
  }
  validate_resources(member(c, "resources"), p.child("resources"), errs);
}

void validate_tolerations(const json* tolerations, const Path& p, FieldErrors& errs) {
  if (tolerations == nullptr || !tolerations->is_array()) return;
  for (size_t i = 0; i < tolerations->size(); ++i) {
    const json& t = (*tolerations)[i];
    Path tp = p.index(i);
    std::string key = str_at(t, {"key"});
    std::string op = str_at(t, {"operator"});
    std::string effect = str_at(t, {"effect"});
    std::string value = str_at(t, {"value"});
    if (!key.empty()) validate_qualified_name(key, tp.child("key"), errs);
    if (key.empty() && op != "Exists") {
      errs.invalid(tp.child("operator"), go_quote(op),
                   "operator must be Exists when `key` is empty, which means \"match all values "
                   "and all keys\"");
    }
    if (has(t, "tolerationSeconds") && effect != "NoExecute") {
      errs.invalid(tp.child("effect"), go_quote(effect),
                   "effect must be 'NoExecute' when `tolerationSeconds` is set");
    }
    if (op.empty() || op == "Equal") {
      for (const std::string& msg : is_valid_label_value(value)) {
        errs.invalid(tp.child("operator"), go_quote(value), msg);
      }
    } else if (op == "Exists") {
      if (!value.empty()) {
        errs.invalid(tp.child("operator"), t.dump(),
                     "value must be empty when `operator` is 'Exists'");
      }
    } else {
      errs.not_supported(tp.child("operator"), go_quote(op), {"Equal", "Exists"});
    }
    if (!effect.empty() && effect != "NoSchedule" && effect != "PreferNoSchedule" &&
        effect != "NoExecute") {
      errs.not_supported(tp.child("effect"), go_quote(effect),
                         {"NoSchedule", "PreferNoSchedule", "NoExecute"});
    }
  }
}

}  // namespace

void validate_pod_spec(const json* spec_ptr, const Path& p, bool is_pod, FieldErrors& errs) {
  static const json kEmpty = json::object();
  const json& spec = spec_ptr != nullptr && spec_ptr->is_object() ? *spec_ptr : kEmpty;
  if (!has(spec, "terminationGracePeriodSeconds")) {
    errs.required(p.child("terminationGracePeriodSeconds"));
  }
  std::set<std::string> volumes =
      validate_volumes(member(spec, "volumes"), p.child("volumes"), errs);

  const json* containers = array_at(spec, {"containers"});
  std::set<std::string> names;
  if (containers == nullptr || containers->empty()) {
    errs.required(p.child("containers"));
  } else {
    for (size_t i = 0; i < containers->size(); ++i) {
      const json& c = (*containers)[i];
      Path cp = p.child("containers").index(i);
      validate_container_common(c, volumes, cp, errs);
      std::string name = str_at(c, {"name"});
      if (names.count(name)) {
        errs.duplicate(cp.child("name"), go_quote(name));
      } else {
        names.insert(name);
      }
      if (has(c, "restartPolicy")) {
        errs.forbidden(cp.child("restartPolicy"), "may not be set for non-init containers");
      }
    }
  }
  if (const json* inits = array_at(spec, {"initContainers"})) {
    for (size_t i = 0; i < inits->size(); ++i) {
      const json& c = (*inits)[i];
      Path cp = p.child("initContainers").index(i);
      validate_container_common(c, volumes, cp, errs);
      std::string restart = str_at(c, {"restartPolicy"});
      if (has(c, "restartPolicy") && restart != "Always") {
        errs.not_supported(cp.child("restartPolicy"), go_quote(restart), {"Always"});
      }
      std::string name = str_at(c, {"name"});
      if (names.count(name)) {
        errs.duplicate(cp.child("name"), go_quote(name));
      } else if (!name.empty()) {
        names.insert(name);
      }
      if (restart != "Always") {
        for (const char* f : {"lifecycle", "livenessProbe", "readinessProbe", "startupProbe"}) {
          if (has(c, f)) {
            errs.forbidden(cp.child(f),
                           "may not be set for init containers without restartPolicy=Always");
          }
        }
      }
    }
  }
  // validatePodHostNetworkDeps: with the host's network a port is the host's port. A Pod has
  // had hostPort defaulted to containerPort; a template may leave it 0.
  if (bool_at(spec, {"hostNetwork"}).value_or(false) && containers != nullptr) {
    for (size_t i = 0; i < containers->size(); ++i) {
      const json* ports = array_at((*containers)[i], {"ports"});
      for (size_t k = 0; ports != nullptr && k < ports->size(); ++k) {
        int64_t host_port = int_at((*ports)[k], {"hostPort"}).value_or(0);
        int64_t container_port = int_at((*ports)[k], {"containerPort"}).value_or(0);
        if ((is_pod || host_port != 0) && host_port != container_port) {
          errs.invalid(p.child("containers").index(i).child("ports").index(k).child("hostPort"),
                       go_int(host_port), "must match `containerPort` when `hostNetwork` is true");
        }
      }
    }
  }
  std::string restart = str_at(spec, {"restartPolicy"});
  if (restart.empty()) {
    errs.required(p.child("restartPolicy"));
  } else if (restart != "Always" && restart != "OnFailure" && restart != "Never") {
    errs.not_supported(p.child("restartPolicy"), go_quote(restart),
                       {"Always", "OnFailure", "Never"});
  }
  std::string dns = str_at(spec, {"dnsPolicy"});
  if (dns.empty()) {
    errs.required(p.child("dnsPolicy"));
  } else if (dns != "ClusterFirstWithHostNet" && dns != "ClusterFirst" && dns != "Default" &&
             dns != "None") {
    errs.not_supported(p.child("dnsPolicy"), go_quote(dns),
                       {"ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"});
  }
  validate_labels(member(spec, "nodeSelector"), p.child("nodeSelector"), errs);
  if (dns == "None" && !has(spec, "dnsConfig")) {
    errs.required(p.child("dnsConfig"), "must provide `dnsConfig` when `dnsPolicy` is None");
  }
  std::string sa = str_at(spec, {"serviceAccountName"});
  if (!sa.empty()) {
    for (const std::string& msg : name_problems(NameRule::kDNS1123Subdomain, sa, false)) {
      errs.invalid(p.child("serviceAccountName"), go_quote(sa), msg);
    }
  }
  std::string node = str_at(spec, {"nodeName"});
  if (!node.empty()) {
    for (const std::string& msg : name_problems(NameRule::kDNS1123Subdomain, node, false)) {
      errs.invalid(p.child("nodeName"), go_quote(node), msg);
    }
  }
  if (auto ads = int_at(spec, {"activeDeadlineSeconds"})) {
    if (*ads < 1 || *ads > kMaxInt32) {
      errs.invalid(p.child("activeDeadlineSeconds"), go_int(*ads),
                   "must be between 1 and 2147483647, inclusive");
    }
  }
  for (const char* f : {"hostname", "subdomain"}) {
    std::string v = str_at(spec, {f});
    if (!v.empty()) validate_dns1123_label(v, p.child(f), errs);
  }
  validate_tolerations(member(spec, "tolerations"), p.child("tolerations"), errs);
  std::string pc = str_at(spec, {"priorityClassName"});
  if (!pc.empty()) {
    for (const std::string& msg : name_problems(NameRule::kDNS1123Subdomain, pc, false)) {
      errs.invalid(p.child("priorityClassName"), go_quote(pc), msg);
    }
  }
  if (has(spec, "preemptionPolicy")) {
    std::string pp = str_at(spec, {"preemptionPolicy"});
    if (pp.empty()) {
      errs.required(p.child("preemptionPolicy"));
    } else if (pp != "PreemptLowerPriority" && pp != "Never") {
      errs.not_supported(p.child("preemptionPolicy"), go_quote(pp),
                         {"PreemptLowerPriority", "Never"});
    }
  }
}

void validate_pod_template_spec(const json* tmpl, const Path& p, FieldErrors& errs) {
  static const json kEmpty = json::object();
  const json& t = tmpl != nullptr && tmpl->is_object() ? *tmpl : kEmpty;
  validate_labels(at(t, {"metadata", "labels"}), p.child("labels"), errs);
  validate_annotations(at(t, {"metadata", "annotations"}), p.child("annotations"), errs);
  validate_pod_spec(member(t, "spec"), p.child("spec"), false, errs);
  if (size_of(at(t, {"spec", "ephemeralContainers"})) > 0) {
    errs.forbidden(p.child("spec").child("ephemeralContainers"),
                   "ephemeral containers not allowed in pod template");
  }
}

void validate_pod_template_for_replicas(const json* tmpl, const LabelSelector& selector,
                                        const Path& p, FieldErrors& errs) {
  if (tmpl == nullptr || !tmpl->is_object()) {
    errs.required(p);
    return;
  }
  // labels.Nothing() is not Empty(), so a missing selector reports the mismatch as well.
  if (!selector.empty()) {
    const json* labels = at(*tmpl, {"metadata", "labels"});
    if (!selector.matches_json(labels != nullptr ? *labels : json())) {
      errs.invalid(p.child("metadata").child("labels"), go_string_map(labels),
                   "`selector` does not match template `labels`");
    }
  }
  validate_pod_template_spec(tmpl, p, errs);
  std::string restart = str_at(*tmpl, {"spec", "restartPolicy"});
  if (restart != "Always") {
    errs.not_supported(p.child("spec").child("restartPolicy"), go_quote(restart), {"Always"});
  }
  if (at(*tmpl, {"spec", "activeDeadlineSeconds"}) != nullptr) {
    errs.forbidden(p.child("spec").child("activeDeadlineSeconds"),
                   "activeDeadlineSeconds in ReplicaSet is not Supported");
  }
}

namespace {

// Drops nulls and empty arrays, which Kubernetes' semantic equality does not distinguish
// from absent fields.
json normalized(const json& v) {
  if (v.is_object()) {
    json out = json::object();
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (it->is_null() || (it->is_array() && it->empty())) continue;
      out[it.key()] = normalized(*it);
    }
    return out;
  }
  if (v.is_array()) {
    json out = json::array();
    for (const json& e : v) out.push_back(normalized(e));
    return out;
  }
  return v;
}

void diff_lines(const json& a, const json& b, const std::string& path, std::string& out) {
  if (a == b) return;
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (auto it = a.begin(); it != a.end(); ++it) keys.insert(it.key());
    for (auto it = b.begin(); it != b.end(); ++it) keys.insert(it.key());
    for (const std::string& k : keys) {
      json av = a.contains(k) ? a[k] : json();
      json bv = b.contains(k) ? b[k] : json();
      diff_lines(av, bv, path + "." + k, out);
    }
    return;
  }
  if (a.is_array() && b.is_array() && a.size() == b.size()) {
    for (size_t i = 0; i < a.size(); ++i) {
      diff_lines(a[i], b[i], path + "[" + std::to_string(i) + "]", out);
    }
    return;
  }
  out += "  - " + path + ": " + (a.is_null() ? "<unset>" : a.dump()) + "\n";
  out += "  + " + path + ": " + (b.is_null() ? "<unset>" : b.dump()) + "\n";
}

// ValidateContainerUpdates; returns true when validation must stop.
bool validate_container_updates(const json* now, const json* before, const Path& p,
                                FieldErrors& errs) {
  if (size_of(now) != size_of(before)) {
    errs.forbidden(p, "pod updates may not add or remove containers");
    return true;
  }
  for (size_t i = 0; now != nullptr && i < now->size(); ++i) {
    std::string image = str_at((*now)[i], {"image"});
    if (image.empty()) errs.required(p.index(i).child("image"));
    if (trim_space(image).size() != image.size()) {
      errs.invalid(p.index(i).child("image"), go_quote(image),
                   "must not have leading or trailing whitespace");
    }
  }
  return false;
}

void validate_image_whitespace(const json* containers, const Path& p, FieldErrors& errs) {
  if (containers == nullptr || !containers->is_array()) return;
  for (size_t i = 0; i < containers->size(); ++i) {
    std::string image = str_at((*containers)[i], {"image"});
    if (image.empty()) continue;
    if (trim_space(image).size() != image.size()) {
      errs.invalid(p.index(i).child("image"), go_quote(image),
                   "must not have leading or trailing whitespace");
    }
  }
}

}  // namespace

void validate_pod(const json& pod, const json* old, FieldErrors& errs) {
  const Path spec_path("spec");
  validate_pod_spec(member(pod, "spec"), spec_path, true, errs);
  validate_image_whitespace(at(pod, {"spec", "containers"}), spec_path.child("containers"), errs);
  validate_image_whitespace(at(pod, {"spec", "initContainers"}), spec_path.child("initContainers"),
                            errs);
  if (old == nullptr) {
    if (size_of(at(pod, {"spec", "ephemeralContainers"})) > 0) {
      errs.forbidden(spec_path.child("ephemeralContainers"), "cannot be set on create");
    }
    return;
  }
  static const json kEmpty = json::object();
  const json* new_spec_ptr = object_at(pod, {"spec"});
  const json* old_spec_ptr = object_at(*old, {"spec"});
  const json& new_spec = new_spec_ptr != nullptr ? *new_spec_ptr : kEmpty;
  const json& old_spec = old_spec_ptr != nullptr ? *old_spec_ptr : kEmpty;

  if (validate_container_updates(member(new_spec, "containers"), member(old_spec, "containers"),
                                 spec_path.child("containers"), errs)) {
    return;
  }
  if (validate_container_updates(member(new_spec, "initContainers"),
                                 member(old_spec, "initContainers"),
                                 spec_path.child("initContainers"), errs)) {
    return;
  }
  auto new_ads = int_at(new_spec, {"activeDeadlineSeconds"});
  auto old_ads = int_at(old_spec, {"activeDeadlineSeconds"});
  if (new_ads) {
    if (*new_ads < 0 || *new_ads > kMaxInt32) {
      errs.invalid(spec_path.child("activeDeadlineSeconds"), go_int(*new_ads),
                   "must be between 0 and 2147483647, inclusive");
      return;
    }
    if (old_ads && *old_ads < *new_ads) {
      errs.invalid(spec_path.child("activeDeadlineSeconds"), go_int(*new_ads),
                   "must be less than or equal to previous value");
      return;
    }
  } else if (old_ads) {
    errs.invalid(spec_path.child("activeDeadlineSeconds"), "null",
                 "must not update from a positive integer to nil value");
  }
  // Only additions to tolerations (tolerationSeconds of existing ones may change).
  if (const json* old_tols = array_at(old_spec, {"tolerations"})) {
    const json* new_tols = array_at(new_spec, {"tolerations"});
    for (const json& ot : *old_tols) {
      bool found = false;
      for (size_t i = 0; new_tols != nullptr && i < new_tols->size() && !found; ++i) {
        json a = normalized(ot);
        json b = normalized((*new_tols)[i]);
        a.erase("tolerationSeconds");
        b.erase("tolerationSeconds");
        found = a == b;
      }
      if (!found) {
        errs.forbidden(spec_path.child("tolerations"),
                       "existing toleration can not be modified except its tolerationSeconds");
        break;
      }
    }
  }
  json before = normalized(old_spec);
  json munged = normalized(new_spec);
  if (munged == before) return;
  for (const char* list : {"containers", "initContainers"}) {
    if (munged.contains(list) && before.contains(list) && munged[list].is_array() &&
        before[list].is_array() && munged[list].size() == before[list].size()) {
      for (size_t i = 0; i < munged[list].size(); ++i) {
        if (!munged[list][i].is_object()) continue;
        if (before[list][i].is_object() && before[list][i].contains("image")) {
          munged[list][i]["image"] = before[list][i]["image"];
        } else {
          munged[list][i].erase("image");
        }
      }
    }
  }
  for (const char* f : {"activeDeadlineSeconds", "schedulingGates", "tolerations"}) {
    if (before.contains(f)) {
      munged[f] = before[f];
    } else {
      munged.erase(f);
    }
  }
  auto old_grace = int_at(old_spec, {"terminationGracePeriodSeconds"});
  if (old_grace && *old_grace < 0 && int_at(new_spec, {"terminationGracePeriodSeconds"}) == 1) {
    munged["terminationGracePeriodSeconds"] = *old_grace;
  }
  if (munged != before) {
    std::string diff;
    diff_lines(before, munged, "spec", diff);
    errs.forbidden(spec_path,
                   "pod updates may not change fields other than `spec.containers[*].image`,"
                   "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec."
                   "tolerations` (only additions to existing tolerations),`spec."
                   "terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously "
                   "negative)\n" +
                       diff);
  }
}

std::vector<ColumnDef> pod_columns(const Docs& docs) {
  return {
      name_column(),
      column("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
      column("Status", "string", "The aggregate status of the containers in this pod."),
      column("Restarts", "string",
             "The number of times the containers in this pod have been restarted and when the "
             "last container in this pod has restarted."),
      age_column(),
      column("IP", "string", docs.field("io.k8s.api.core.v1.PodStatus", "podIP"), 1),
      column("Node", "string", docs.field("io.k8s.api.core.v1.PodSpec", "nodeName"), 1),
      column("Nominated Node", "string",
             docs.field("io.k8s.api.core.v1.PodStatus", "nominatedNodeName"), 1),
      column("Readiness Gates", "string",
             docs.field("io.k8s.api.core.v1.PodSpec", "readinessGates"), 1),
  };
}

namespace {

bool condition_true(const json& pod, std::string_view type) {
  const json* conds = at(pod, {"status", "conditions"});
  if (conds == nullptr || !conds->is_array()) return false;
  for (const json& c : *conds) {
    if (str_at(c, {"type"}) == type) return str_at(c, {"status"}) == "True";
  }
  return false;
}

bool has_pod_ready_condition(const json& pod) {
  const json* conds = at(pod, {"status", "conditions"});
  if (conds == nullptr || !conds->is_array()) return false;
  for (const json& c : *conds) {
    if (str_at(c, {"type"}) == "Ready" && str_at(c, {"status"}) == "True") return true;
  }
  return false;
}

// The later of `*latest` and the container's lastState.terminated.finishedAt.
void note_last_restart(const json& status, int64_t* latest) {
  const json* finished = at(status, {"lastState", "terminated", "finishedAt"});
  if (finished == nullptr || !finished->is_string()) return;
  if (Result<Timestamp> t = parse_rfc3339_timestamp(finished->get<std::string>()); t.ok()) {
    if (t->seconds > *latest) *latest = t->seconds;
  }
}

std::string terminated_reason(const json& terminated, const std::string& prefix) {
  std::string reason = str_at(terminated, {"reason"});
  if (!reason.empty()) return prefix + reason;
  int64_t signal = int_at(terminated, {"signal"}).value_or(0);
  if (signal != 0) return prefix + "Signal:" + std::to_string(signal);
  return prefix + "ExitCode:" + std::to_string(int_at(terminated, {"exitCode"}).value_or(0));
}

}  // namespace

std::vector<json> pod_row(const json& pod, int64_t now) {
  constexpr int64_t kNoRestart = INT64_MIN;
  int64_t restarts = 0;
  int64_t restartable_init_restarts = 0;
  const json* containers = at(pod, {"spec", "containers"});
  const json* init_specs = at(pod, {"spec", "initContainers"});
  int64_t total = static_cast<int64_t>(size_of(containers));
  int64_t ready = 0;
  int64_t last_restart = kNoRestart;
  int64_t last_restartable_init_restart = kNoRestart;

  std::string phase = str_at(pod, {"status", "phase"});
  std::string reason = phase;
  if (!str_at(pod, {"status", "reason"}).empty()) reason = str_at(pod, {"status", "reason"});
  if (const json* conds = array_at(pod, {"status", "conditions"})) {
    for (const json& c : *conds) {
      if (str_at(c, {"type"}) == "PodScheduled" && str_at(c, {"reason"}) == "SchedulingGated") {
        reason = "SchedulingGated";
      }
    }
  }

  std::set<std::string> restartable_inits;
  size_t init_count = size_of(init_specs);
  if (init_specs != nullptr && init_specs->is_array()) {
    for (const json& c : *init_specs) {
      if (str_at(c, {"restartPolicy"}) == "Always") {
        restartable_inits.insert(str_at(c, {"name"}));
        ++total;
      }
    }
  }

  bool initializing = false;
  if (const json* inits = array_at(pod, {"status", "initContainerStatuses"})) {
    for (size_t i = 0; i < inits->size(); ++i) {
      const json& cs = (*inits)[i];
      int64_t count = int_at(cs, {"restartCount"}).value_or(0);
      restarts += count;
      note_last_restart(cs, &last_restart);
      bool restartable = restartable_inits.count(str_at(cs, {"name"})) > 0;
      if (restartable) {
        restartable_init_restarts += count;
        note_last_restart(cs, &last_restartable_init_restart);
      }
      const json* terminated = at(cs, {"state", "terminated"});
      const json* waiting = at(cs, {"state", "waiting"});
      if (terminated != nullptr && int_at(*terminated, {"exitCode"}).value_or(0) == 0) continue;
      if (restartable && bool_at(cs, {"started"}).value_or(false)) {
        if (bool_at(cs, {"ready"}).value_or(false)) ++ready;
        continue;
      }
      if (terminated != nullptr) {
        reason = terminated_reason(*terminated, "Init:");
      } else if (waiting != nullptr && !str_at(*waiting, {"reason"}).empty() &&
                 str_at(*waiting, {"reason"}) != "PodInitializing") {
        reason = "Init:" + str_at(*waiting, {"reason"});
      } else {
        reason = "Init:" + std::to_string(i) + "/" + std::to_string(init_count);
      }
      initializing = true;
      break;
    }
  }

  if (!initializing || condition_true(pod, "Initialized")) {
    restarts = restartable_init_restarts;
    last_restart = last_restartable_init_restart;
    bool has_running = false;
    if (const json* statuses = array_at(pod, {"status", "containerStatuses"})) {
      for (size_t k = statuses->size(); k > 0; --k) {
        const json& cs = (*statuses)[k - 1];
        restarts += int_at(cs, {"restartCount"}).value_or(0);
        note_last_restart(cs, &last_restart);
        const json* waiting = at(cs, {"state", "waiting"});
        const json* terminated = at(cs, {"state", "terminated"});
        if (waiting != nullptr && !str_at(*waiting, {"reason"}).empty()) {
          reason = str_at(*waiting, {"reason"});
        } else if (terminated != nullptr) {
          reason = terminated_reason(*terminated, "");
        } else if (bool_at(cs, {"ready"}).value_or(false) &&
                   at(cs, {"state", "running"}) != nullptr) {
          has_running = true;
          ++ready;
        }
      }
    }
    if (reason == "Completed" && has_running) {
      reason = has_pod_ready_condition(pod) ? "Running" : "NotReady";
    }
  }

  bool deleting = at(pod, {"metadata", "deletionTimestamp"}) != nullptr;
  if (deleting && str_at(pod, {"status", "reason"}) == "NodeLost") {
    reason = "Unknown";
  } else if (deleting && phase != "Succeeded" && phase != "Failed") {
    reason = "Terminating";
  }

  std::string restarts_cell = std::to_string(restarts);
  if (restarts != 0 && last_restart != kNoRestart) {
    restarts_cell += " (" + human_duration_seconds(now - last_restart) + " ago)";
  }

  std::string pod_ip = "<none>";
  if (const json* ips = array_at(pod, {"status", "podIPs"}); ips != nullptr && !ips->empty()) {
    std::string ip = str_at((*ips)[0], {"ip"});
    if (!ip.empty()) pod_ip = ip;
  }
  std::string node = str_at(pod, {"spec", "nodeName"}, "<none>");
  if (node.empty()) node = "<none>";
  std::string nominated = str_at(pod, {"status", "nominatedNodeName"});
  if (nominated.empty()) nominated = "<none>";
  std::string gates = "<none>";
  if (const json* rg = array_at(pod, {"spec", "readinessGates"}); rg != nullptr && !rg->empty()) {
    int64_t true_conditions = 0;
    const json* conds = array_at(pod, {"status", "conditions"});
    for (const json& g : *rg) {
      std::string type = str_at(g, {"conditionType"});
      if (conds == nullptr) continue;
      for (const json& c : *conds) {
        if (str_at(c, {"type"}) == type) {
          if (str_at(c, {"status"}) == "True") ++true_conditions;
          break;
        }
      }
    }
    gates = std::to_string(true_conditions) + "/" + std::to_string(rg->size());
  }

  return {str_at(pod, {"metadata", "name"}),
          std::to_string(ready) + "/" + std::to_string(total),
          reason,
          restarts_cell,
          age_cell(pod, now),
          pod_ip,
          node,
          nominated,
          gates};
}

}  // namespace skiff::api::builtin

namespace skiff::api {
std::string pod_qos_class(const nlohmann::json& pod) { return builtin::pod_qos_class(pod); }
}  // namespace skiff::api
