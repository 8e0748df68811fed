#include "apiserver/responses.h"

#include <nlohmann/json.hpp>

namespace skiff::apiserver {

using nlohmann::json;

std::string status_json(const Status& status, const StatusDetails& details) {
  json j = {{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", json::object()}};
  if (status.ok()) {
    j["status"] = "Success";
    if (!details.name.empty() || !details.kind.empty()) {
      json d = json::object();
      if (!details.name.empty()) d["name"] = details.name;
      if (!details.group.empty()) d["group"] = details.group;
      if (!details.kind.empty()) d["kind"] = details.kind;
      j["details"] = d;
    }
    return j.dump();
  }
  j["status"] = "Failure";
  j["message"] = status.message();
  j["reason"] = reason(status.code());
  json d = json::object();
  if (!details.name.empty()) d["name"] = details.name;
  if (!details.group.empty()) d["group"] = details.group;
  if (!details.kind.empty()) d["kind"] = details.kind;
  if (!status.causes().empty()) {
    json causes = json::array();
    for (const auto& c : status.causes()) {
      json cj = json::object();
      if (!c.reason.empty()) cj["reason"] = c.reason;
      if (!c.message.empty()) cj["message"] = c.message;
      if (!c.field.empty()) cj["field"] = c.field;
      causes.push_back(cj);
    }
    d["causes"] = causes;
  }
  if (!d.empty()) j["details"] = d;
  j["code"] = http_code(status.code());
  return j.dump();
}

std::string status_json(const Status& status) {
  if (status.ok()) {
    // The answer of every successful binding and delete: built once.
    static const std::string kSuccess = status_json(status, StatusDetails{});
    return kSuccess;
  }
  return status_json(status, StatusDetails{});
}

Response status_response(const Status& status) { return status_response(status, StatusDetails{}); }

Response status_response(const Status& status, const StatusDetails& details) {
  Response r;
  r.status = static_cast<unsigned>(http_code(status.code()));
  r.body = status_json(status, details);
  return r;
}

bool wants_table(const std::string& accept) {
  return accept.find("as=Table") != std::string::npos;
}

std::string list_json(const api::ResourceDef& def, const std::vector<ObjectPtr>& items,
                      int64_t revision, const std::string& continue_token) {
  size_t total = 128;
  for (const auto& o : items) total += o->json->size() + 1;
  std::string out;
  out.reserve(total);
  out += "{\"kind\":\"";
  out += def.list_kind;
  out += "\",\"apiVersion\":\"";
  out += def.api_version();
  out += "\",\"metadata\":{\"resourceVersion\":\"";
  out += std::to_string(revision);
  out += "\"";
  if (!continue_token.empty()) {
    out += ",\"continue\":";
    out += json(continue_token).dump();
  }
  out += "},\"items\":[";
  bool first = true;
  for (const auto& o : items) {
    if (!first) out += ',';
    first = false;
    out += *o->json;
  }
  out += "]}";
  return out;
}

json table_for(const api::ResourceDef& def, const std::vector<json>& objects, int64_t revision,
               const std::string& include_object, int64_t now,
               const std::string& continue_token) {
  json t = {{"kind", "Table"}, {"apiVersion", "meta.k8s.io/v1"}};
  t["metadata"] = {{"resourceVersion", std::to_string(revision)}};
  if (!continue_token.empty()) t["metadata"]["continue"] = continue_token;
  // Every registered kind has Table columns (built-ins from their printers or Kubernetes'
  // default Name/Created At, CRDs from additionalPrinterColumns); a kind without them gets
  // its names only.
  bool has_printer = !def.columns.empty() && def.row;
  json cols = json::array();
  if (has_printer) {
    for (const auto& c : def.columns) {
      cols.push_back({{"name", c.name},
                      {"type", c.type},
                      {"format", c.format},
                      {"description", c.description},
                      {"priority", c.priority}});
    }
  } else {
    cols.push_back({{"name", "Name"}, {"type", "string"}, {"format", "name"},
                    {"description", ""}, {"priority", 0}});
  }
  t["columnDefinitions"] = cols;
  json rows = json::array();
  for (const auto& obj : objects) {
    json row;
    if (has_printer) {
      row["cells"] = def.row(obj, now);
    } else {
      row["cells"] = {obj.value("metadata", json::object()).value("name", "")};
    }
    if (include_object == "Object") {
      row["object"] = obj;
    } else if (include_object != "None") {
      row["object"] = {{"kind", "PartialObjectMetadata"},
                       {"apiVersion", "meta.k8s.io/v1"},
                       {"metadata", obj.value("metadata", json::object())}};
    }
    rows.push_back(std::move(row));
  }
  t["rows"] = std::move(rows);
  return t;
}

}  // namespace skiff::apiserver
