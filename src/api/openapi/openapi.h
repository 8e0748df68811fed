// OpenAPI v3 documents for the served group-versions, as kubectl 1.32 reads them.
//
// GET /openapi/v3 answers openapi_v3_index(); GET /openapi/v3/<api/v1|apis/g/v>?hash=H answers
// the group-version's document. What kubectl needs from them:
//   - apply / create -f / replace / edit (query_param_verifier_v3): in the group-version's
//     document, a PATCH operation carrying `x-kubernetes-group-version-kind: {group, version,
//     kind}` and a query parameter named fieldValidation (and dryRun for --dry-run=server).
//     Every PATCH operation of a kind, subresources included, carries both, because kubectl
//     stops at the first one it meets and Go map order is random.
//   - apply (patcher.go): the PATCH requestBody lists application/json-patch+json,
//     application/merge-patch+json and application/apply-patch+yaml but NOT
//     application/strategic-merge-patch+json. Were SMP listed, kubectl would compute strategic
//     merge patches from these schemas instead of its compiled-in types; without the SMP entry
//     it uses the compiled-in patch metadata for built-in kinds and merge patches for CRDs.
//   - explain (explain/v2 templates): an operation on the resource's collection or item path
//     with the GVK extension, and a components.schemas entry whose
//     `x-kubernetes-group-version-kind` list holds the same {group, version, kind}; fields are
//     walked through properties, items, additionalProperties, $ref and single-element allOf.
//
// Schemas are named by TypeDef::name (io.k8s.api.apps.v1.Deployment). Object fields refer to
// their type through `allOf: [{$ref}]` (with the field's description beside it) as Kubernetes
// does; CRD types nested in a CRD schema (named "<parent>.<field>") are inlined instead, as
// Kubernetes publishes CRD schemas. Quantity, IntOrString, Time, MicroTime and RawExtension
// are the upstream component schemas. The operations' list kinds, ListMeta, Status,
// DeleteOptions and subresource kinds (Scale) come from the built-in schema when it is linked
// in and defines them; otherwise minimal equivalents are generated (always for CRD lists).
//
// Thread-safety: the free functions are pure (they read a registry snapshot);
// OpenApiV3Cache is thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/registry.h"
#include "common/status.h"

namespace skiff::api {

// The key of a group-version in the index and in URLs: "api/v1", "apis/apps/v1".
std::string openapi_v3_path(std::string_view group, std::string_view version);
// The inverse; a leading '/' is allowed. nullopt for anything else ("apis/apps", "api").
std::optional<GroupVersion> parse_openapi_v3_path(std::string_view path);

// Uppercase hex SHA-512 of a serialized document, as Kubernetes computes the ?hash= value.
std::string openapi_v3_hash(std::string_view serialized_document);

// The index: {"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=<H>"},
// "apis/apps/v1": {...}, ...}} with one entry for every served group-version (CRDs included).
// H is openapi_v3_hash of the serialized document, so it changes exactly when the document
// does. Builds every document; servers should use OpenApiV3Cache instead.
nlohmann::json openapi_v3_index(const Registry& registry);

// The OpenAPI 3.0 document of one group-version; NotFound when it is not served.
Result<nlohmann::json> openapi_v3_document(const Registry& registry, std::string_view group,
                                           std::string_view version);

// Serialized index and documents of one registry, rebuilt when Registry::generation()
// changes, so that requests are answered from bytes built once ("serialize once, serve
// bytes"). A rebuild only rebuilds the group-versions whose resources changed. Thread-safe;
// returned snapshots stay valid after a rebuild.
class OpenApiV3Cache {
 public:
  struct Document {
    std::string body;  // serialized JSON document
    std::string hash;  // openapi_v3_hash(body): the ?hash= value and a strong ETag
  };

  // REQUIRES: registry outlives the cache.
  explicit OpenApiV3Cache(const Registry& registry);
  ~OpenApiV3Cache();
  OpenApiV3Cache(const OpenApiV3Cache&) = delete;
  OpenApiV3Cache& operator=(const OpenApiV3Cache&) = delete;

  // The serialized index (GET /openapi/v3).
  std::shared_ptr<const std::string> index();
  // One document; NotFound when the group-version is not served.
  Result<std::shared_ptr<const Document>> document(std::string_view group,
                                                   std::string_view version);
  // One document by its index key ("api/v1", "apis/apps/v1"); NotFound otherwise.
  Result<std::shared_ptr<const Document>> document(std::string_view path);

 private:
  struct Entry {
    std::shared_ptr<const Document> document;
    // The resources the document was built from: a rebuild reuses the document when the
    // group-version still has exactly these (CRD changes leave the other documents alone).
    // A subresource kind of another group-version (autoscaling/v1 Scale) is not tracked;
    // those are built-in kinds, which do not change.
    std::vector<std::shared_ptr<const ResourceDef>> defs;
  };
  struct Snapshot {
    uint64_t generation = 0;
    std::map<std::string, Entry, std::less<>> documents;  // by path ("apis/apps/v1")
    std::shared_ptr<const std::string> index;
  };
  std::shared_ptr<const Snapshot> current();

  const Registry& registry_;  // constant after construction
  std::mutex build_mu_;       // held while building, so one thread builds a generation
  std::mutex mu_;
  std::shared_ptr<const Snapshot> snapshot_;  // guarded by mu_
};

}  // namespace skiff::api
