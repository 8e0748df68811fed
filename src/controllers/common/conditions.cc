#include "controllers/common/conditions.h"

#include <utility>

#include "controllers/common/object_meta.h"

namespace skiff::controllers::common {

const json* find_condition(const json& status, std::string_view type) {
  const json* conditions = find_path(status, {"conditions"});
  if (conditions == nullptr || !conditions->is_array()) return nullptr;
  for (const json& c : *conditions) {
    if (string_at(c, {"type"}) == type) return &c;
  }
  return nullptr;
}

json new_condition(std::string_view type, std::string_view status, std::string_view reason,
                   std::string_view message, TimePoint now, bool with_update_time) {
  std::string ts = format_time(now);
  json c = {{"type", type}, {"status", status}, {"lastTransitionTime", ts}};
  if (with_update_time) c["lastUpdateTime"] = ts;
  if (!reason.empty()) c["reason"] = reason;
  if (!message.empty()) c["message"] = message;
  return c;
}

bool set_condition(json& status, json condition) {
  if (!status.is_object()) status = json::object();
  std::string type = string_at(condition, {"type"});
  const json* current = find_condition(status, type);
  if (current != nullptr) {
    if (string_at(*current, {"status"}) == string_at(condition, {"status"})) {
      if (string_at(*current, {"reason"}) == string_at(condition, {"reason"})) return false;
      if (const json* t = find_path(*current, {"lastTransitionTime"})) {
        condition["lastTransitionTime"] = *t;
      }
    }
  }
  remove_condition(status, type);
  json& conditions = status["conditions"];
  if (!conditions.is_array()) conditions = json::array();
  conditions.push_back(std::move(condition));
  return true;
}

bool remove_condition(json& status, std::string_view type) {
  if (!status.is_object()) return false;
  auto it = status.find("conditions");
  if (it == status.end() || !it->is_array()) return false;
  json kept = json::array();
  bool removed = false;
  for (json& c : *it) {
    if (string_at(c, {"type"}) == type) {
      removed = true;
    } else {
      kept.push_back(std::move(c));
    }
  }
  if (kept.empty()) {
    status.erase(it);
  } else {
    *it = std::move(kept);
  }
  return removed;
}

}  // namespace skiff::controllers::common
