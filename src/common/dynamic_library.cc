#include "common/dynamic_library.h"

#include <dlfcn.h>

#include <string>

namespace skiff {

Status load_library(const char* soname, std::initializer_list<LibrarySymbol> symbols) {
  void* h = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    const char* e = ::dlerror();
    return Status::Unavailable(std::string("cannot load ") + soname + ": " +
                               (e ? e : "unknown error"));
  }
  for (const LibrarySymbol& s : symbols) {
    *s.slot = ::dlsym(h, s.name);
    if (*s.slot == nullptr) {
      return Status::Unavailable(std::string(soname) + " lacks " + s.name);
    }
  }
  return Status::Ok();
}

}  // namespace skiff
