// RFC 7386 JSON merge patch.
#include <nlohmann/json.hpp>

#include "api/patch/patch.h"
#include "api/patch/patch_util.h"

namespace skiff::api {
namespace {

using patch_internal::json;

// RFC 7386 section 2, in place. Recursion follows the patch, whose depth the caller checked.
void merge_into(json& target, const json& patch) {
  if (!patch.is_object()) {
    target = patch;
    return;
  }
  if (!target.is_object()) target = json::object();
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (it.value().is_null()) {
      target.erase(it.key());
    } else {
      merge_into(target[it.key()], it.value());
    }
  }
}

}  // namespace

Result<json> apply_merge_patch(const json& target, const json& patch) {
  // Kubernetes (evanphx/json-patch MergePatch) rejects a patch that is not an object.
  if (!patch.is_object()) {
    return Status::BadRequest(std::string("merge patch must be a JSON object, got ") +
                              patch_internal::type_name(patch));
  }
  if (Status s = patch_internal::check_depth(patch, "patch"); !s.ok()) return s;
  json result = target;
  merge_into(result, patch);
  return result;
}

}  // namespace skiff::api
