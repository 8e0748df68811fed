#include "common/fields.h"
#include "common/labels.h"
#include "apiserver/strategy.h"

namespace skiff::apiserver {

Result<Matcher> make_matcher(const api::ResourceDef& def, const std::string& label_selector,
                             const std::string& field_selector) {
  auto labels = LabelSelector::parse(label_selector);
  if (!labels.ok()) {
    return Status::BadRequest(labels.status().message());
  }
  auto fields = FieldSelector::parse(field_selector);
  if (!fields.ok()) return Status::BadRequest(fields.status().message());
  if (labels->empty() && fields->empty()) return Matcher();
  std::vector<std::string> supported = {"metadata.name", "metadata.namespace"};
  for (const auto& f : selectable_fields(def.group, def.resource)) supported.push_back(f);
  if (Status s = fields->check_supported(supported); !s.ok()) {
    return Status::BadRequest("Unable to find \"" + def.resource + "\" that match label selector \"" +
                              label_selector + "\", field selector \"" + field_selector +
                              "\": " + s.message());
  }
  LabelSelector ls = std::move(labels.value());
  FieldSelector fs = std::move(fields.value());
  return Matcher([ls, fs](const CachedObject& o) {
    if (!ls.empty()) {
      bool ok = ls.matches_lookup([&o](std::string_view key) -> std::optional<std::string_view> {
        const std::string* v = o.label(key);
        if (v == nullptr) return std::nullopt;
        return std::string_view(*v);
      });
      if (!ok) return false;
    }
    if (!fs.empty()) {
      bool ok = fs.matches([&o](std::string_view path) -> std::optional<std::string> {
        const std::string* v = o.field(path);
        if (v == nullptr) return std::nullopt;
        return *v;
      });
      if (!ok) return false;
    }
    return true;
  });
}

}  // namespace skiff::apiserver
