#include "api/schema/builtin.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <tuple>

#include "api/schema/embedded_data.h"
#include "api/schema/proto_parser.h"

namespace skiff::api {
namespace {

struct Builtin {
  Schema schema;
  std::vector<BuiltinKind> kinds;
  // (group, version, kind) -> type
  std::map<std::tuple<std::string, std::string, std::string>, const TypeDef*, std::less<>> index;
};

const Builtin& builtin() {
  // A function-local static: initialized once, thread-safe, and the only parse of the
  // embedded buffers (parsing rewrites them in place).
  static const Builtin* const kBuiltin = [] {
    auto b = std::make_unique<Builtin>();
    std::vector<SchemaSource> sources;
    for (const schema_data::File& f : schema_data::files()) {
      sources.push_back({f.name, f.data, f.size});
    }
    std::vector<SchemaKind> kinds;
    Status s = parse_schema_sources(sources, b->schema, kinds);
    if (!s.ok()) {
      // The data files are part of the source tree and the unit tests parse them; a failure
      // here means a broken build, not bad input.
      std::fprintf(stderr, "skiff: built-in schema data is invalid: %s\n", s.message().c_str());
      std::abort();
    }
    for (SchemaKind& k : kinds) {
      b->index.emplace(std::make_tuple(k.group, k.version, k.kind), k.type);
      b->kinds.push_back({std::move(k.group), std::move(k.version), std::move(k.kind), k.type});
    }
    return b.release();  // lives for the process, like the embedded data it points into
  }();
  return *kBuiltin;
}

bool registered_in_every_group(std::string_view kind) {
  return kind == "DeleteOptions" || kind == "Status" || kind == "CreateOptions" ||
         kind == "UpdateOptions" || kind == "PatchOptions" || kind == "GetOptions" ||
         kind == "ListOptions" || kind == "WatchEvent";
}

}  // namespace

const Schema& builtin_schema() { return builtin().schema; }

const std::vector<BuiltinKind>& builtin_kinds() { return builtin().kinds; }

const TypeDef* builtin_kind_type(std::string_view group, std::string_view version,
                                 std::string_view kind) {
  const Builtin& b = builtin();
  auto it = b.index.find(std::make_tuple(std::string(group), std::string(version),
                                         std::string(kind)));
  if (it != b.index.end()) return it->second;
  if (version == "v1" && registered_in_every_group(kind)) {
    return b.schema.type("io.k8s.apimachinery.pkg.apis.meta.v1." + std::string(kind));
  }
  return nullptr;
}

const TypeDef* builtin_type(std::string_view openapi_name) {
  return builtin().schema.type(openapi_name);
}

}  // namespace skiff::api
