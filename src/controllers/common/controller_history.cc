#include "controllers/common/controller_history.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "controllers/common/object_meta.h"
#include "controllers/common/pod_template_hash.h"

namespace skiff::controllers::common {
namespace {

// hash/fnv New32: FNV-1, multiply before xor.
uint32_t fnv32(std::string_view data, uint32_t hash = 2166136261u) {
  for (unsigned char c : data) {
    hash *= 16777619u;
    hash ^= c;
  }
  return hash;
}

// RetryOnConflict's default: a handful of attempts.
constexpr int kConflictRetries = 5;

}  // namespace

json template_patch(const json& owner) {
  const json* tmpl = find_path(owner, {"spec", "template"});
  json t = tmpl != nullptr && tmpl->is_object() ? *tmpl : json::object();
  t["$patch"] = "replace";
  return json{{"spec", json{{"template", std::move(t)}}}};
}

std::string hash_controller_revision(const json& data, std::optional<int32_t> collision_count) {
  uint32_t h = fnv32(data.dump());
  if (collision_count) h = fnv32(std::to_string(*collision_count), h);
  return safe_encode_string(std::to_string(h));
}

std::string controller_revision_name(std::string_view prefix, std::string_view hash) {
  std::string out(prefix.substr(0, 223));
  out += "-";
  out += hash;
  return out;
}

json new_controller_revision(const json& owner, const OwnerReference& ref, const Labels& labels,
                             const json& data, int64_t revision,
                             std::optional<int32_t> collision_count) {
  std::string hash = hash_controller_revision(data, collision_count);
  json label_map = json::object();
  for (const auto& [k, v] : labels) label_map[k] = v;
  label_map[std::string(kControllerRevisionHashLabel)] = hash;
  json meta = {{"name", controller_revision_name(name_of(owner), hash)},
               {"namespace", namespace_of(owner)},
               {"labels", std::move(label_map)},
               {"ownerReferences", json::array({ref.to_json()})}};
  const json* annotations = find_path(owner, {"metadata", "annotations"});
  if (annotations != nullptr && annotations->is_object() && !annotations->empty()) {
    meta["annotations"] = *annotations;
  }
  return json{{"apiVersion", "apps/v1"},
              {"kind", "ControllerRevision"},
              {"metadata", std::move(meta)},
              {"data", data},
              {"revision", revision}};
}

int64_t revision_number(const json& revision) { return int_at(revision, {"revision"}); }

void sort_controller_revisions(std::vector<client::ObjectPtr>& revisions) {
  std::stable_sort(revisions.begin(), revisions.end(),
                   [](const client::ObjectPtr& a, const client::ObjectPtr& b) {
                     int64_t ra = revision_number(*a);
                     int64_t rb = revision_number(*b);
                     if (ra != rb) return ra < rb;
                     return created_before(*a, *b);
                   });
}

bool equal_revision(const json& a, const json& b) {
  std::string key(kControllerRevisionHashLabel);
  auto ha = labels_of(a);
  auto hb = labels_of(b);
  auto ia = ha.find(key);
  auto ib = hb.find(key);
  if (ia != ha.end() && ib != hb.end() && ia->second != ib->second) return false;
  const json* da = find_path(a, {"data"});
  const json* db = find_path(b, {"data"});
  if (da == nullptr || db == nullptr) return da == db;
  return semantic_normalize(*da) == semantic_normalize(*db);
}

Result<client::ObjectPtr> create_controller_revision(client::Client& client, const json& owner,
                                                     json revision, int32_t* collision_count) {
  const client::ResourceRef ref =
      client::resources::kControllerRevisions.in(namespace_of(owner));
  const json data = revision.value("data", json::object());
  // A bounded number of names: each collision moves to the next; a real loop would need
  // 2^32 revisions.
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string hash = hash_controller_revision(data, *collision_count);
    revision["metadata"]["name"] = controller_revision_name(name_of(owner), hash);
    revision["metadata"]["labels"][std::string(kControllerRevisionHashLabel)] = hash;
    auto created = client.create(ref, revision);
    if (created.ok()) return created;
    if (created.status().code() != StatusCode::kAlreadyExists) return created.status();
    auto existing = client.get(ref, name_of(revision));
    if (!existing.ok()) return existing.status();
    const json* existing_data = find_path(**existing, {"data"});
    if (existing_data != nullptr &&
        semantic_normalize(*existing_data) == semantic_normalize(data)) {
      return existing;
    }
    ++*collision_count;
  }
  return Status::Internal("no free ControllerRevision name for " + key_of(owner));
}

Result<client::ObjectPtr> set_revision_number(client::Client& client, const json& revision,
                                              int64_t number) {
  const client::ResourceRef ref =
      client::resources::kControllerRevisions.in(namespace_of(revision));
  json obj = revision;
  Status last;
  for (int attempt = 0; attempt < kConflictRetries; ++attempt) {
    if (revision_number(obj) == number) return std::make_shared<const json>(obj);
    obj["revision"] = number;
    auto updated = client.update(ref, obj);
    if (updated.ok()) return updated;
    last = updated.status();
    if (last.code() != StatusCode::kConflict) return last;
    auto fresh = client.get(ref, name_of(revision));
    if (!fresh.ok()) return fresh.status();
    obj = **fresh;
  }
  return last;
}

}  // namespace skiff::controllers::common
