// The schema data files (src/api/schema/data/*.proto) compiled into the binary.
//
// The arrays are writable on purpose: the schema parser rewrites each comment block in place
// into its description text and keeps string_views into it. Only builtin_schema() may parse
// them, exactly once.
#pragma once

#include <cstddef>
#include <span>

namespace skiff::api::schema_data {

struct File {
  const char* name;  // file name, e.g. "core_v1.proto"
  char* data;        // the file's bytes, not NUL-terminated for the parser's purposes
  size_t size;
};

// Every data file, sorted by name. Defined in the source CMake generates from the data files.
std::span<const File> files();

}  // namespace skiff::api::schema_data
