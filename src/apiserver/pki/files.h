// Private to apiserver/pki: the file operations credentials need. Files are replaced
// atomically (temporary file in the same directory, fsync, rename, fsync of the directory),
// and created with their final mode, so a crash leaves either the old or the new content and
// a private file is never readable by others, not even for a moment.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace skiff::apiserver::pki {

// Largest credential file read; anything bigger is not one of ours.
inline constexpr size_t kMaxCredentialFileSize = 1 << 20;

// The directory part of a path: "a/b" -> "a", "b" -> ".", "/b" -> "/".
std::string parent_directory(const std::string& path);

// Creates `path` and missing parents with `mode`. An existing directory keeps its mode, except
// that with tighten=true a mode wider than `mode` is narrowed to it. Returns Internal when a
// component exists but is not a directory, or on any system error.
Status ensure_directory(const std::string& path, mode_t mode, bool tighten);

// Replaces `path` with `data`, mode exactly `mode`. Returns Internal on any system error.
Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode);

// Reads a whole file. Returns nullopt (with OK status) when it does not exist. When
// private_mode is set and the file is readable by group or others, narrows it to 0600 first.
// Returns Internal on other system errors or when the file exceeds kMaxCredentialFileSize.
Result<std::optional<std::string>> read_file(const std::string& path, bool private_mode);

}  // namespace skiff::apiserver::pki
