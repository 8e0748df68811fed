// RFC 6902 JSON patch, with the status codes and the few leniencies of the Kubernetes API
// server (which uses evanphx/json-patch v4): a malformed patch is BadRequest, an operation
// that does not apply is Invalid (422), negative indices count from the end, and a "test" of
// null against a missing member succeeds.
#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "api/patch/patch.h"
#include "api/patch/patch_util.h"

namespace skiff::api {
namespace {

using patch_internal::dump_short;
using patch_internal::json;
using patch_internal::type_name;

enum class OpKind { kAdd, kRemove, kReplace, kMove, kCopy, kTest };

struct Operation {
  OpKind kind = OpKind::kAdd;
  std::string name;  // "add", ...
  std::string path;
  std::vector<std::string> path_tokens;
  std::string from;
  std::vector<std::string> from_tokens;
  const json* value = nullptr;  // into the patch document
};

// Splits an RFC 6901 pointer into unescaped reference tokens.
bool parse_pointer(const std::string& pointer, std::vector<std::string>* tokens,
                   std::string* error) {
  tokens->clear();
  if (pointer.empty()) return true;
  if (pointer[0] != '/') {
    *error = "a JSON pointer must be empty or start with \"/\"";
    return false;
  }
  std::string token;
  for (size_t i = 1; i <= pointer.size(); ++i) {
    if (i == pointer.size() || pointer[i] == '/') {
      tokens->push_back(std::move(token));
      token.clear();
      continue;
    }
    char c = pointer[i];
    if (c == '~') {
      if (i + 1 < pointer.size() && pointer[i + 1] == '0') {
        token += '~';
      } else if (i + 1 < pointer.size() && pointer[i + 1] == '1') {
        token += '/';
      } else {
        *error = "\"~\" must be followed by \"0\" or \"1\" in a JSON pointer";
        return false;
      }
      ++i;
      continue;
    }
    token += c;
  }
  return true;
}

std::string op_error(size_t index, std::string_view message) {
  return "json patch operation " + std::to_string(index) + ": " + std::string(message);
}

// Validates the operation list: every structural problem is a BadRequest before anything is
// applied.
Status decode_operations(const json& patch, std::vector<Operation>* ops) {
  if (!patch.is_array()) {
    return Status::BadRequest(std::string("json patch must be a JSON array of operations, got ") +
                              type_name(patch));
  }
  if (patch.size() > kMaxJsonPatchOperations) {
    return Status::TooLarge(
        "Request entity too large: The allowed maximum operations in a JSON patch is " +
        std::to_string(kMaxJsonPatchOperations) + ", got " + std::to_string(patch.size()));
  }
  ops->reserve(patch.size());
  for (size_t i = 0; i < patch.size(); ++i) {
    const json& raw = patch[i];
    if (!raw.is_object()) {
      return Status::BadRequest(
          op_error(i, std::string("must be an object, got ") + type_name(raw)));
    }
    Operation op;
    auto kind = raw.find("op");
    if (kind == raw.end() || !kind->is_string()) {
      return Status::BadRequest(op_error(i, "\"op\" is required and must be a string"));
    }
    op.name = kind->get_ref<const std::string&>();
    if (op.name == "add") {
      op.kind = OpKind::kAdd;
    } else if (op.name == "remove") {
      op.kind = OpKind::kRemove;
    } else if (op.name == "replace") {
      op.kind = OpKind::kReplace;
    } else if (op.name == "move") {
      op.kind = OpKind::kMove;
    } else if (op.name == "copy") {
      op.kind = OpKind::kCopy;
    } else if (op.name == "test") {
      op.kind = OpKind::kTest;
    } else {
      return Status::BadRequest(
          op_error(i, "unknown op " + dump_short(*kind) +
                          " (expected add, remove, replace, move, copy or test)"));
    }
    auto path = raw.find("path");
    if (path == raw.end() || !path->is_string()) {
      return Status::BadRequest(
          op_error(i, op.name + " operation: \"path\" is required and must be a string"));
    }
    op.path = path->get_ref<const std::string&>();
    std::string error;
    if (!parse_pointer(op.path, &op.path_tokens, &error)) {
      return Status::BadRequest(
          op_error(i, op.name + " operation: invalid path \"" + op.path + "\": " + error));
    }
    if (op.kind == OpKind::kMove || op.kind == OpKind::kCopy) {
      auto from = raw.find("from");
      if (from == raw.end() || !from->is_string()) {
        return Status::BadRequest(
            op_error(i, op.name + " operation: \"from\" is required and must be a string"));
      }
      op.from = from->get_ref<const std::string&>();
      if (!parse_pointer(op.from, &op.from_tokens, &error)) {
        return Status::BadRequest(
            op_error(i, op.name + " operation: invalid from \"" + op.from + "\": " + error));
      }
    }
    if (op.kind == OpKind::kAdd || op.kind == OpKind::kReplace || op.kind == OpKind::kTest) {
      auto value = raw.find("value");
      if (value == raw.end()) {
        return Status::BadRequest(op_error(i, op.name + " operation: \"value\" is required"));
      }
      op.value = &*value;
    }
    ops->push_back(std::move(op));
  }
  return Status::Ok();
}

// Parses an array index token. `insert` allows "-" and the index equal to the size (add);
// negative indices count from the end, as evanphx/json-patch does for Kubernetes.
bool parse_index(const std::string& token, size_t size, bool insert, size_t* out) {
  if (insert && token == "-") {
    *out = size;
    return true;
  }
  size_t pos = 0;
  bool negative = false;
  if (!token.empty() && token[0] == '-') {
    negative = true;
    pos = 1;
  }
  if (pos >= token.size() || token.size() - pos > 18) return false;
  int64_t n = 0;
  for (; pos < token.size(); ++pos) {
    if (token[pos] < '0' || token[pos] > '9') return false;
    n = n * 10 + (token[pos] - '0');
  }
  const int64_t limit = static_cast<int64_t>(size) + (insert ? 1 : 0);
  if (negative) {
    if (n == 0 || n > limit) return false;
    n = limit - n;
  }
  if (n >= limit) return false;
  *out = static_cast<size_t>(n);
  return true;
}

// The node at the first `count` tokens, or null with `error` set.
json* resolve(json& doc, const std::vector<std::string>& tokens, size_t count, std::string* error) {
  json* node = &doc;
  for (size_t i = 0; i < count; ++i) {
    const std::string& token = tokens[i];
    if (node->is_object()) {
      auto it = node->find(token);
      if (it == node->end()) {
        *error = "member \"" + token + "\" does not exist";
        return nullptr;
      }
      node = &*it;
    } else if (node->is_array()) {
      size_t index = 0;
      if (!parse_index(token, node->size(), false, &index)) {
        *error = "index \"" + token + "\" is not valid for an array of " +
                 std::to_string(node->size()) + " elements";
        return nullptr;
      }
      node = &(*node)[index];
    } else {
      *error = "cannot descend into a " + std::string(type_name(*node)) + " with \"" + token + "\"";
      return nullptr;
    }
  }
  return node;
}

Status not_applicable(const Operation& op, std::string_view what, const std::string& pointer,
                      const std::string& detail) {
  std::string message = op.name + " operation does not apply: doc is missing " + std::string(what) +
                        ": \"" + pointer + "\"";
  if (!detail.empty()) message += " (" + detail + ")";
  return Status::Invalid(std::move(message));
}

Status add_value(json& doc, const Operation& op, const std::vector<std::string>& tokens,
                 const std::string& pointer, json value) {
  if (tokens.empty()) {
    doc = std::move(value);
    return Status::Ok();
  }
  std::string error;
  json* parent = resolve(doc, tokens, tokens.size() - 1, &error);
  if (parent == nullptr) return not_applicable(op, "path", pointer, error);
  const std::string& last = tokens.back();
  if (parent->is_object()) {
    (*parent)[last] = std::move(value);
    return Status::Ok();
  }
  if (parent->is_array()) {
    size_t index = 0;
    if (!parse_index(last, parent->size(), true, &index)) {
      return Status::Invalid(op.name + " operation does not apply: index \"" + last +
                             "\" is out of range for an array of " +
                             std::to_string(parent->size()) + " elements at \"" + pointer + "\"");
    }
    parent->insert(parent->begin() + static_cast<std::ptrdiff_t>(index), std::move(value));
    return Status::Ok();
  }
  return Status::Invalid(op.name + " operation does not apply: the parent of \"" + pointer +
                         "\" is a " + type_name(*parent) + ", not an object or array");
}

Status remove_value(json& doc, const Operation& op, const std::vector<std::string>& tokens,
                    const std::string& pointer, json* removed) {
  if (tokens.empty()) {
    return Status::Invalid(op.name + " operation does not apply: cannot remove the whole document");
  }
  std::string error;
  json* parent = resolve(doc, tokens, tokens.size() - 1, &error);
  if (parent == nullptr) return not_applicable(op, "path", pointer, error);
  const std::string& last = tokens.back();
  if (parent->is_object()) {
    auto it = parent->find(last);
    if (it == parent->end()) {
      return not_applicable(op, "path", pointer, "member \"" + last + "\" does not exist");
    }
    if (removed != nullptr) *removed = std::move(*it);
    parent->erase(it);
    return Status::Ok();
  }
  if (parent->is_array()) {
    size_t index = 0;
    if (!parse_index(last, parent->size(), false, &index)) {
      return not_applicable(op, "path", pointer,
                            "index \"" + last + "\" is out of range for an array of " +
                                std::to_string(parent->size()) + " elements");
    }
    if (removed != nullptr) *removed = std::move((*parent)[index]);
    parent->erase(parent->begin() + static_cast<std::ptrdiff_t>(index));
    return Status::Ok();
  }
  return not_applicable(op, "path", pointer,
                        std::string("cannot descend into a ") + type_name(*parent));
}

// A member missing from an object when testing against null: Kubernetes' json-patch treats the
// two alike.
bool missing_member_tested_against_null(json& doc, const Operation& op) {
  if (op.path_tokens.empty() || !op.value->is_null()) return false;
  std::string error;
  json* parent = resolve(doc, op.path_tokens, op.path_tokens.size() - 1, &error);
  return parent != nullptr && parent->is_object() && !parent->contains(op.path_tokens.back());
}

Status apply_operation(json& doc, const Operation& op) {
  std::string error;
  switch (op.kind) {
    case OpKind::kAdd:
      return add_value(doc, op, op.path_tokens, op.path, *op.value);
    case OpKind::kRemove:
      return remove_value(doc, op, op.path_tokens, op.path, nullptr);
    case OpKind::kReplace: {
      json* target = resolve(doc, op.path_tokens, op.path_tokens.size(), &error);
      if (target == nullptr) return not_applicable(op, "path", op.path, error);
      *target = *op.value;
      return Status::Ok();
    }
    case OpKind::kMove: {
      if (op.from_tokens == op.path_tokens) {
        if (resolve(doc, op.from_tokens, op.from_tokens.size(), &error) == nullptr) {
          return not_applicable(op, "from path", op.from, error);
        }
        return Status::Ok();
      }
      if (op.path_tokens.size() > op.from_tokens.size() &&
          std::equal(op.from_tokens.begin(), op.from_tokens.end(), op.path_tokens.begin())) {
        return Status::Invalid("move operation does not apply: \"" + op.path + "\" is inside \"" +
                               op.from + "\"");
      }
      if (resolve(doc, op.from_tokens, op.from_tokens.size(), &error) == nullptr) {
        return not_applicable(op, "from path", op.from, error);
      }
      json value;
      if (Status s = remove_value(doc, op, op.from_tokens, op.from, &value); !s.ok()) return s;
      return add_value(doc, op, op.path_tokens, op.path, std::move(value));
    }
    case OpKind::kCopy: {
      json* source = resolve(doc, op.from_tokens, op.from_tokens.size(), &error);
      if (source == nullptr) return not_applicable(op, "from path", op.from, error);
      json value = *source;
      return add_value(doc, op, op.path_tokens, op.path, std::move(value));
    }
    case OpKind::kTest: {
      json* target = resolve(doc, op.path_tokens, op.path_tokens.size(), &error);
      if (target == nullptr) {
        if (missing_member_tested_against_null(doc, op)) return Status::Ok();
        return not_applicable(op, "path", op.path, error);
      }
      if (*target == *op.value) return Status::Ok();
      return Status::Invalid("testing value " + op.path + " failed: test failed (found " +
                             dump_short(*target) + ", expected " + dump_short(*op.value) + ")");
    }
  }
  return Status::Internal("unhandled json patch operation");
}

}  // namespace

Result<json> apply_json_patch(const json& target, const json& patch) {
  std::vector<Operation> ops;
  if (Status s = decode_operations(patch, &ops); !s.ok()) return s;
  if (Status s = patch_internal::check_depth(patch, "patch"); !s.ok()) return s;
  if (Status s = patch_internal::check_depth(target, "object"); !s.ok()) return s;
  json doc = target;
  for (const Operation& op : ops) {
    if (Status s = apply_operation(doc, op); !s.ok()) return s;
  }
  return doc;
}

}  // namespace skiff::api
