#include "api/schema.h"

namespace skiff::api {

const FieldDef* TypeDef::field(std::string_view json_name) const {
  auto it = by_name_.find(json_name);
  return it == by_name_.end() ? nullptr : it->second;
}

const FieldDef* TypeDef::field_by_number(int number) const {
  auto it = by_number_.find(number);
  return it == by_number_.end() ? nullptr : it->second;
}

namespace {
// Adds the JSON-visible names of `t` (flattening inline fields, which may nest) to `out`.
void index_names(const TypeDef& t, std::map<std::string, const FieldDef*, std::less<>>& out,
                 int depth) {
  if (depth > 8) return;  // inline chains are shallow; this bounds a malformed cycle
  for (const FieldDef& f : t.fields) {
    if (f.inline_fields && f.type != nullptr) {
      index_names(*f.type, out, depth + 1);
    } else {
      out.emplace(f.name, &f);
    }
  }
}
}  // namespace

void TypeDef::finalize() {
  by_name_.clear();
  by_number_.clear();
  index_names(*this, by_name_, 0);
  for (const FieldDef& f : fields) {
    if (f.number > 0) by_number_.emplace(f.number, &f);
  }
}

Schema::Schema() = default;
Schema::~Schema() = default;

const TypeDef* Schema::type(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

TypeDef* Schema::add(std::unique_ptr<TypeDef> type) {
  TypeDef* raw = type.get();
  by_name_[raw->name] = raw;
  types_.push_back(std::move(type));
  return raw;
}

}  // namespace skiff::api
