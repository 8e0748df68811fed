// resource.Quantity values of JSON fields, through common/quantity.h.
//
// Private to src/api/builtin. Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>

#include "api/builtin/json_util.h"
#include "common/quantity.h"

namespace skiff::api::builtin {

// The quantity a JSON value holds (string or number); nullopt when absent or malformed.
std::optional<Quantity> quantity_of(const json* v);
// Quantity.String() of a value: its canonical form, "0" when absent, the raw text when malformed.
std::string quantity_text(const json* v);

}  // namespace skiff::api::builtin
