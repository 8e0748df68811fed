// Pod volumes on the node, as the kubelet's volume manager sets them up: emptyDir (a directory
// under the pod dir, or a tmpfs for medium Memory), hostPath (with the type checks), configMap,
// secret, downwardAPI and projected volumes written with the kubelet's atomic-writer layout, and
// the service account token volume. Also the environment a container takes from ConfigMaps and
// Secrets (env[].valueFrom and envFrom).
//
// Layout under <pods_dir>/<pod uid>/volumes/, as the kubelet names it:
//   kubernetes.io~empty-dir/<volume>     a directory (mode 0777), or a tmpfs mounted there
//   kubernetes.io~configmap/<volume>     atomic-writer dirs (see below), on disk
//   kubernetes.io~secret/<volume>        atomic-writer dirs on a tmpfs
//   kubernetes.io~downward-api/<volume>  atomic-writer dirs, on disk
//   kubernetes.io~projected/<volume>     atomic-writer dirs on a tmpfs
// An atomic-writer dir holds the files in a timestamped directory `..2024_05_01_10_00_00.123`,
// a symlink `..data` to it, and one symlink per top-level name (`key -> ..data/key`). An update
// writes a new timestamped directory and renames a new `..data` symlink over the old one, so a
// container that reads through the symlinks sees the old or the new content, never a mix.
//
// ConfigMap, Secret, downward API and token contents are refreshed by a background thread when
// a ConfigMap or Secret changes (notify_changed), every resync interval, and when a token
// reaches 80% of its lifetime. Only volumes already set up are refreshed; teardown() stops it.
//
// When the pod does not say automountServiceAccountToken: false (nor its ServiceAccount), and
// has no volume of its own mounted there, every container gets the kube-api-access volume
// Kubernetes' ServiceAccount admission adds: token (a TokenRequest bound to the pod), ca.crt
// and namespace at /var/run/secrets/kubernetes.io/serviceaccount.
//
// Thread-safety: every method may be called from any thread; calls for one pod are serialized.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/runtime/oci_spec.h"
#include "common/status.h"

namespace skiff::client {
class Client;
class Informer;
}  // namespace skiff::client

namespace skiff::agent {

inline constexpr char kServiceAccountMountPath[] = "/var/run/secrets/kubernetes.io/serviceaccount";

struct VolumeManagerOptions {
  std::string pods_dir;  // REQUIRED: pod dirs are <pods_dir>/<pod uid>
  // The node's allocatable CPU and memory: what resourceFieldRef reports for a limit not set.
  int64_t node_cpu_milli = 0;
  int64_t node_memory_bytes = 0;
  // ConfigMaps and Secrets are read from these informers when given (and from the API when
  // the informer does not have the object, so that a just-created one is found).
  client::Informer* config_maps = nullptr;
  client::Informer* secrets = nullptr;
  // The node's pods, for the refresh; empty: nothing is refreshed in the background.
  std::function<std::vector<std::shared_ptr<const nlohmann::json>>()> pods;
  // Records an event about a pod (FailedMount, InvalidEnvironmentVariableNames).
  std::function<void(const nlohmann::json& pod, const std::string& type, const std::string& reason,
                     const std::string& message)>
      record_event;
  // How often the contents of every volume are compared with their sources anyway.
  std::chrono::milliseconds resync_interval{std::chrono::seconds(60)};
  // A token is requested again once this fraction of its lifetime has passed.
  double token_refresh_fraction = 0.8;
};

class VolumeManager {
 public:
  // `client` must outlive the manager.
  VolumeManager(client::Client& client, VolumeManagerOptions options);
  ~VolumeManager();  // stop()
  VolumeManager(const VolumeManager&) = delete;
  VolumeManager& operator=(const VolumeManager&) = delete;

  // Starts and stops the background refresh. Both idempotent.
  void start();
  void stop();

  // Sets up every volume of `pod` (idempotent; contents are brought up to date). OK when all
  // are ready; otherwise every volume that can be set up is, a FailedMount Warning event is
  // recorded per failing volume (again only when the message changes or after a minute), and
  // the first failure is returned with the kubelet's message:
  //   MountVolume.SetUp failed for volume "cfg" : configmap "x" not found
  Status prepare(const nlohmann::json& pod);

  // The mounts of container `c` of `pod` for the runtime: each volumeMount (subPath,
  // subPathExpr expanded from `env`, readOnly; API-data volumes always read-only) and the
  // service account volume. Unavailable when prepare() has not succeeded for the pod;
  // Invalid for a bad subPath or an unknown volume, with the kubelet's message.
  Result<std::vector<runtime::Mount>> container_mounts(const nlohmann::json& pod,
                                                       const nlohmann::json& c,
                                                       const std::vector<std::string>& env);

  // The variables of c.envFrom (ConfigMaps and Secrets, with the prefix), in order. Keys that
  // are no valid variable names are skipped with an InvalidEnvironmentVariableNames event.
  // NotFound `configmap "x" not found` / `secret "x" not found` unless optional.
  Result<std::vector<std::pair<std::string, std::string>>> env_from(const nlohmann::json& pod,
                                                                    const nlohmann::json& c);
  // The value of env[].valueFrom for configMapKeyRef, secretKeyRef and resourceFieldRef;
  // nullopt when an optional source or key is missing (the variable is left out). NotFound as
  // for env_from, or `couldn't find key k in ConfigMap ns/x`; Invalid for other sources.
  Result<std::optional<std::string>> env_value(const nlohmann::json& pod, const nlohmann::json& c,
                                               const nlohmann::json& value_from);

  // Wakes the background refresh (a ConfigMap or Secret changed).
  void notify_changed();
  // Brings the contents of every set-up volume of the node's pods up to date now.
  void refresh_all();

  // Unmounts and removes the pod's volumes, also those an earlier process left behind.
  // Host paths are never touched.
  void teardown(const std::string& pod_uid);

  // <pods_dir>/<uid>/volumes/kubernetes.io~<plugin>/<name>.
  std::string volume_dir(const std::string& pod_uid, const std::string& plugin,
                         const std::string& name) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The value of a downward API fieldRef: metadata.name, .namespace, .uid, .labels,
// .annotations, metadata.labels['k'], metadata.annotations['k'] (maps as sorted `k="v"`
// lines). Invalid for other paths.
Result<std::string> downward_field_value(const nlohmann::json& pod, const std::string& path);
// The value of a resourceFieldRef (limits.cpu, requests.memory, ...) of container
// `container_name`, divided by the divisor and rounded up; limits not set are the node's.
Result<std::string> resource_field_value(const nlohmann::json& pod,
                                         const std::string& container_name,
                                         const nlohmann::json& ref, int64_t node_cpu_milli,
                                         int64_t node_memory_bytes);

// One file of an atomic-writer volume.
struct VolumeFile {
  std::string data;
  uint32_t mode = 0644;
};
// Writes `files` (relative paths) into `dir` with the atomic-writer layout; nothing is written
// when the current content (data and modes) is the same. `fs_group` set: files belong to that
// group and are group-readable. Invalid for an absolute path or one with a ".." component.
Status write_atomic_volume(const std::string& dir,
                           const std::vector<std::pair<std::string, VolumeFile>>& files,
                           std::optional<uint32_t> fs_group);

}  // namespace skiff::agent
