#include "api/builtin/quantity.h"

namespace skiff::api::builtin {

std::optional<Quantity> quantity_of(const json* v) {
  if (v == nullptr || v->is_null()) return std::nullopt;
  Result<Quantity> q = Quantity::from_json(*v);
  if (!q.ok()) return std::nullopt;
  return std::move(q).value();
}

std::string quantity_text(const json* v) {
  if (v == nullptr || v->is_null()) return "0";
  if (auto q = quantity_of(v)) return q->to_string();
  return v->is_string() ? v->get<std::string>() : v->dump();
}

}  // namespace skiff::api::builtin
