// Loading an optional shared library when it is first needed, rather than with the binary
// (as systemd loads its optional libraries), so that a process that never uses it does not
// carry it, and the libraries it brings, in memory.
//
// Usage:
//   struct Api { decltype(&::lib_open) open; decltype(&::lib_close) close; };
//   Api api;
//   Status s = load_library("libfoo.so.1", {{"lib_open", reinterpret_cast<void**>(&api.open)},
//                                           {"lib_close", reinterpret_cast<void**>(&api.close)}});
#pragma once

#include <initializer_list>

#include "common/status.h"

namespace skiff {

struct LibrarySymbol {
  const char* name;
  void** slot;  // receives the function's address
};

// dlopen()s `soname` (never closed) and resolves every symbol into its slot. Unavailable,
// naming the library and what is wrong, when it cannot be loaded or lacks a symbol (the
// slots are then unspecified).
Status load_library(const char* soname, std::initializer_list<LibrarySymbol> symbols);

}  // namespace skiff
