// make_builtin_registry() lives alone in this file so that code which builds the registry
// from another schema (tests, tools) does not need the embedded built-in schema linked in.
#include "api/builtin/builtin.h"
#include "api/registry.h"
#include "api/schema.h"

namespace skiff::api {

std::unique_ptr<Registry> make_builtin_registry() {
  return builtin::build_builtin_registry(&builtin_schema());
}

}  // namespace skiff::api
