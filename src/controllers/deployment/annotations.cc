#include "controllers/deployment/annotations.h"

#include <string>
#include <vector>

#include "controllers/common/object_meta.h"
#include "controllers/deployment/rollout.h"

namespace skiff::controllers::deployment {
namespace {

namespace cc = ::skiff::controllers::common;

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    if (pos == std::string::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

std::string string_annotation(const json& obj, std::string_view key) {
  return cc::annotation(obj, key).value_or("");
}

}  // namespace

json& annotations_of(json& obj) {
  json& meta = obj["metadata"];
  if (!meta.is_object()) meta = json::object();
  json& annotations = meta["annotations"];
  if (!annotations.is_object()) annotations = json::object();
  return annotations;
}

bool skip_copy_annotation(std::string_view key) {
  return key == kLastAppliedConfigAnnotation || key == kRevisionAnnotation ||
         key == kRevisionHistoryAnnotation || key == kDesiredReplicasAnnotation ||
         key == kMaxReplicasAnnotation || key == kDeprecatedRollbackToAnnotation;
}

bool set_replicas_annotations(json& rs, int32_t desired, int32_t max) {
  bool updated = false;
  json& annotations = annotations_of(rs);
  std::string desired_text = std::to_string(desired);
  std::string max_text = std::to_string(max);
  if (string_annotation(rs, kDesiredReplicasAnnotation) != desired_text) {
    annotations[std::string(kDesiredReplicasAnnotation)] = desired_text;
    updated = true;
  }
  if (string_annotation(rs, kMaxReplicasAnnotation) != max_text) {
    annotations[std::string(kMaxReplicasAnnotation)] = max_text;
    updated = true;
  }
  return updated;
}

bool replicas_annotations_need_update(const json& rs, int32_t desired, int32_t max) {
  auto d = cc::annotation(rs, kDesiredReplicasAnnotation);
  auto m = cc::annotation(rs, kMaxReplicasAnnotation);
  return !d || *d != std::to_string(desired) || !m || *m != std::to_string(max);
}

bool set_new_replica_set_annotations(const json& deployment, json& rs,
                                     std::string_view new_revision, bool exists, int32_t desired,
                                     int32_t max, size_t max_history_chars) {
  bool changed = false;
  json& annotations = annotations_of(rs);
  // The Deployment's own annotations travel with the template they were set on.
  if (const json* from = cc::find_path(deployment, {"metadata", "annotations"});
      from != nullptr && from->is_object()) {
    for (auto it = from->begin(); it != from->end(); ++it) {
      if (skip_copy_annotation(it.key()) || !it.value().is_string()) continue;
      auto cur = annotations.find(it.key());
      if (cur != annotations.end() && *cur == it.value()) continue;
      annotations[it.key()] = it.value();
      changed = true;
    }
  }

  auto old_revision = cc::annotation(rs, kRevisionAnnotation);
  int64_t old_value = 0;
  if (old_revision && !old_revision->empty()) {
    auto parsed = cc::parse_int64(*old_revision);
    if (!parsed) return false;  // an unparsable revision is left alone
    old_value = *parsed;
  }
  auto new_value = cc::parse_int64(new_revision);
  if (!new_value) return false;
  if (old_value < *new_value) {
    annotations[std::string(kRevisionAnnotation)] = std::string(new_revision);
    changed = true;
  }
  // A ReplicaSet that had a revision and gets a newer one is being rolled back to: keep
  // the revisions it had in revision-history.
  if (old_revision && old_value < *new_value) {
    std::string history = string_annotation(rs, kRevisionHistoryAnnotation);
    std::vector<std::string> old_revisions = split(history, ',');
    if (old_revisions.front().empty()) {
      annotations[std::string(kRevisionHistoryAnnotation)] = *old_revision;
    } else {
      size_t total = history.size() + old_revision->size() + 1;
      size_t start = 0;
      while (total > max_history_chars && start < old_revisions.size()) {
        total -= old_revisions[start].size() + 1;
        ++start;
      }
      if (total <= max_history_chars) {
        std::string joined;
        for (size_t i = start; i < old_revisions.size(); ++i) joined += old_revisions[i] + ",";
        joined += *old_revision;
        annotations[std::string(kRevisionHistoryAnnotation)] = joined;
      }
    }
  }
  if (!exists && set_replicas_annotations(rs, desired, max)) changed = true;
  return changed;
}

void set_deployment_annotations_to(json& deployment, const json& rs) {
  json kept = json::object();
  if (const json* current = cc::find_path(deployment, {"metadata", "annotations"});
      current != nullptr && current->is_object()) {
    for (auto it = current->begin(); it != current->end(); ++it) {
      if (skip_copy_annotation(it.key())) kept[it.key()] = it.value();
    }
  }
  if (const json* from = cc::find_path(rs, {"metadata", "annotations"});
      from != nullptr && from->is_object()) {
    for (auto it = from->begin(); it != from->end(); ++it) {
      if (!skip_copy_annotation(it.key())) kept[it.key()] = it.value();
    }
  }
  annotations_of(deployment) = std::move(kept);
}

}  // namespace skiff::controllers::deployment
