// Helpers shared by the workload kinds (apps and batch): IntOrString renderings and checks,
// the "selector" rules, and zero-valued status fields Go always serializes.
//
// Private to src/api/builtin. Thread-safety: pure functions.
#pragma once

#include <initializer_list>
#include <string>

#include "api/builtin/builtin.h"

namespace skiff::api::builtin {

// %#v of an intstr.IntOrString held as a JSON number or string.
std::string go_intstr(const json* v);
// ValidatePositiveIntOrPercent: an integer >= 0 or a "<digits>%" string.
void validate_int_or_percent(const json* v, const Path& p, FieldErrors& errs);
// getIntOrPercentValue: the integer, or the number before '%'; 0 otherwise.
int64_t int_or_percent_value(const json* v);
// IsNotMoreThan100Percent.
void validate_not_more_than_100_percent(const json* v, const Path& p, FieldErrors& errs);

// The common selector checks of Deployment, ReplicaSet and StatefulSet: Required when absent,
// ValidateLabelSelector, and "empty selector is invalid for <what>".
void validate_required_selector(const json* selector, const Path& p, const char* what,
                                FieldErrors& errs);

// Sets each listed status field to 0 when absent (Go fields without omitempty).
void zero_status_fields(json& obj, std::initializer_list<const char*> fields);

}  // namespace skiff::api::builtin
