#include "agent/images/image_gc.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "agent/images/reference.h"
#include "agent/images/store.h"

namespace skiff::agent::images {

Result<FilesystemStats> filesystem_stats(const std::string& path) {
  struct statvfs s;
  if (::statvfs(path.c_str(), &s) != 0) {
    return Status::Internal("statvfs " + path + ": " + std::strerror(errno));
  }
  FilesystemStats out;
  const auto frsize = static_cast<int64_t>(s.f_frsize);
  out.capacity_bytes = static_cast<int64_t>(s.f_blocks) * frsize;
  out.available_bytes = static_cast<int64_t>(s.f_bavail) * frsize;
  out.inodes = static_cast<int64_t>(s.f_files);
  out.inodes_free = static_cast<int64_t>(s.f_ffree);
  return out;
}

ImageGcManager::ImageGcManager(ImageStore& store, ImageGcPolicy policy, FilesystemStatsFn stats,
                               std::function<TimePoint()> clock)
    : store_(store),
      policy_(policy),
      stats_(stats ? std::move(stats) : FilesystemStatsFn(filesystem_stats)),
      clock_(clock ? std::move(clock) : std::function<TimePoint()>([] { return now(); })) {}

ImageGcManager::~ImageGcManager() = default;

Result<std::set<std::string>> ImageGcManager::resolve(const std::set<std::string>& in_use) const {
  std::set<std::string> ids;
  if (in_use.empty()) return ids;
  auto images = store_.list();
  if (!images.ok()) return images.status();
  std::set<std::string> known;
  std::map<std::string, std::string> by_name;  // repo tags and repo digests
  for (const auto& img : *images) {
    known.insert(img.id);
    for (const auto& t : img.repo_tags) by_name[t] = img.id;
    for (const auto& d : img.repo_digests) by_name[d] = img.id;
  }
  for (const auto& entry : in_use) {
    if (known.count(entry)) {
      ids.insert(entry);
      continue;
    }
    if (known.count("sha256:" + entry)) {
      ids.insert("sha256:" + entry);
      continue;
    }
    auto ref = parse_reference(entry);
    if (!ref.ok()) continue;
    auto it = by_name.find(ref->digest.empty() ? ref->tagged() : ref->digested());
    if (it != by_name.end()) ids.insert(it->second);
  }
  return ids;
}

Status ImageGcManager::detect_at(const std::set<std::string>& in_use_ids, TimePoint now) {
  auto images = store_.list();
  if (!images.ok()) return images.status();
  std::set<std::string> present;
  for (const auto& img : *images) {
    present.insert(img.id);
    Record& r = records_.try_emplace(img.id, Record{now, std::nullopt}).first->second;
    if (in_use_ids.count(img.id)) r.last_used = now;
  }
  // Images removed by others (`skiff image rm`) are forgotten.
  for (auto it = records_.begin(); it != records_.end();) {
    it = present.count(it->first) ? std::next(it) : records_.erase(it);
  }
  return Status::Ok();
}

Status ImageGcManager::detect(const std::set<std::string>& in_use) {
  auto ids = resolve(in_use);
  if (!ids.ok()) return ids.status();
  return detect_at(*ids, clock_());
}

std::optional<TimePoint> ImageGcManager::last_used(const std::string& image_id) const {
  auto it = records_.find(image_id);
  if (it == records_.end()) return std::nullopt;
  return it->second.last_used;
}

Result<ImageGcReport> ImageGcManager::garbage_collect(const std::set<std::string>& in_use) {
  const TimePoint now = clock_();
  auto resolved = resolve(in_use);
  if (!resolved.ok()) return resolved.status();
  const std::set<std::string>& in_use_ids = *resolved;
  Status s = detect_at(in_use_ids, now);
  if (!s.ok()) return s;

  ImageGcReport report;
  auto stats = stats_(store_.root());
  if (!stats.ok()) return stats.status();
  const int64_t capacity = stats->capacity_bytes;
  const int64_t available = stats->available_bytes;
  if (capacity <= 0) {
    return Status::Internal("invalid capacity " + std::to_string(capacity) +
                            " on image filesystem");
  }
  // The kubelet's arithmetic, integer percent of the space used.
  report.usage_percent = 100 - static_cast<int>(available * 100 / capacity);
  if (report.usage_percent < policy_.high_threshold_percent) return report;
  report.triggered = true;
  report.bytes_to_free = capacity * (100 - policy_.low_threshold_percent) / 100 - available;

  auto add = [&report](const GcResult& g) {
    report.freed_bytes += g.freed_bytes;
    report.removed_blobs += g.removed_blobs;
    report.removed_layers += g.removed_layers;
  };
  // What earlier removals (or crashes) left unreferenced goes first: it costs no image.
  auto swept = store_.gc();
  if (!swept.ok()) return swept.status();
  add(*swept);

  // Eviction order: never used first, then least recently used, then first detected.
  struct Candidate {
    std::string id;
    std::optional<TimePoint> last_used;
    TimePoint first_detected;
  };
  std::vector<Candidate> candidates;
  for (const auto& [id, r] : records_) {
    if (in_use_ids.count(id)) continue;
    if (now - r.first_detected < policy_.min_age) continue;
    if (r.last_used && now - *r.last_used < policy_.min_age) continue;
    candidates.push_back({id, r.last_used, r.first_detected});
  }
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    if (a.last_used != b.last_used) return a.last_used < b.last_used;  // nullopt first
    if (a.first_detected != b.first_detected) return a.first_detected < b.first_detected;
    return a.id < b.id;
  });
  auto used = [&in_use_ids](const std::string& id) { return in_use_ids.count(id) > 0; };
  for (const auto& c : candidates) {
    if (report.freed_bytes >= report.bytes_to_free) break;
    s = store_.remove(c.id, used);
    if (s.is_not_found()) {
      records_.erase(c.id);
      continue;
    }
    if (!s.ok()) return s;
    records_.erase(c.id);
    report.removed_images.push_back(c.id);
    auto g = store_.gc();
    if (!g.ok()) return g.status();
    add(*g);
  }
  if (report.freed_bytes < report.bytes_to_free) {
    report.free_space_failure =
        "Failed to garbage collect required amount of images. Attempted to free " +
        std::to_string(report.bytes_to_free) + " bytes, but only found " +
        std::to_string(report.freed_bytes) + " bytes eligible to free.";
  }
  return report;
}

}  // namespace skiff::agent::images
