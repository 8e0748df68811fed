// The batch group, version v1.
#include "api/builtin/builtin.h"
#include "api/builtin/cron.h"
#include "api/builtin/pod.h"
#include "api/builtin/workloads.h"
#include "common/strings.h"
#include "common/time.h"

namespace skiff::api::builtin {
namespace {

constexpr const char* kBatchTypes = "io.k8s.api.batch.v1";
constexpr const char* kControllerUidLabel = "batch.kubernetes.io/controller-uid";
constexpr const char* kLegacyControllerUidLabel = "controller-uid";
constexpr const char* kJobNameLabel = "batch.kubernetes.io/job-name";
constexpr const char* kLegacyJobNameLabel = "job-name";
constexpr int64_t kMaxInt32 = 2147483647;

std::string batch_type(std::string_view kind) {
  return std::string(kBatchTypes) + "." + std::string(kind);
}

// SetDefaults_Job's JobSpec part, shared with CronJob job templates only where Kubernetes
// shares it (templates get pod defaults, not these).
void default_job_spec(json& spec) {
  if (!has(spec, "completions") && !has(spec, "parallelism")) {
    spec["completions"] = 1;
    spec["parallelism"] = 1;
  }
  set_default(spec, "parallelism", 1);
  if (!has(spec, "backoffLimit")) {
    spec["backoffLimit"] = has(spec, "backoffLimitPerIndex") ? kMaxInt32 : 6;
  }
  set_default(spec, "completionMode", "NonIndexed");
  set_default(spec, "suspend", false);
  if (spec.contains("podFailurePolicy") && spec["podFailurePolicy"].is_object()) {
    json& pfp = spec["podFailurePolicy"];
    if (pfp.contains("rules") && pfp["rules"].is_array()) {
      for (json& rule : pfp["rules"]) {
        if (!rule.is_object() || !rule.contains("onPodConditions") ||
            !rule["onPodConditions"].is_array()) {
          continue;
        }
        for (json& pattern : rule["onPodConditions"]) {
          if (pattern.is_object() && str_at(pattern, {"status"}).empty())
            pattern["status"] = "True";
        }
      }
    }
  }
  if (!has(spec, "podReplacementPolicy")) {
    spec["podReplacementPolicy"] = has(spec, "podFailurePolicy") ? "Failed" : "TerminatingOrFailed";
  }
  set_default(spec, "manualSelector", false);
}

// ---------------------------------------------------------------------------------------------
// Jobs

void default_job(json& job) {
  if (!job.is_object()) return;
  json& spec = object_member(job, "spec");
  default_job_spec(spec);
  json& tmpl = object_member(spec, "template");
  default_pod_template(tmpl);
  // The Job strategy's generateSelector: pods are selected by the job's uid.
  std::string uid = str_at(job, {"metadata", "uid"});
  if (!bool_at(spec, {"manualSelector"}).value_or(false) && !uid.empty()) {
    json& labels = object_member(object_member(tmpl, "metadata"), "labels");
    std::string name = str_at(job, {"metadata", "name"});
    set_default(labels, kLegacyJobNameLabel, name);
    set_default(labels, kJobNameLabel, name);
    set_default(labels, kLegacyControllerUidLabel, uid);
    set_default(labels, kControllerUidLabel, uid);
    json& match = object_member(object_member(spec, "selector"), "matchLabels");
    set_default(match, kControllerUidLabel, uid);
  }
  // SetDefaults_Job copies the pod template's labels onto a Job that has none.
  const json* tmpl_labels = at(tmpl, {"metadata", "labels"});
  if (tmpl_labels != nullptr && tmpl_labels->is_object() &&
      size_of(at(job, {"metadata", "labels"})) == 0) {
    json copy = *tmpl_labels;
    object_member(job, "metadata")["labels"] = std::move(copy);
  }
  ensure_status(job);
}

// validateJobSpec: the rules a Job and a CronJob's job template share.
void validate_job_spec_common(const json& spec, const Path& p, FieldErrors& errs) {
  for (const char* f : {"parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
                        "ttlSecondsAfterFinished", "backoffLimitPerIndex", "maxFailedIndexes"}) {
    if (auto v = int_at(spec, {f})) validate_nonnegative(*v, p.child(f), errs);
  }
  if (has(spec, "completionMode")) {
    std::string mode = str_at(spec, {"completionMode"});
    if (mode != "NonIndexed" && mode != "Indexed") {
      errs.not_supported(p.child("completionMode"), go_quote(mode), {"NonIndexed", "Indexed"});
    }
    if (mode == "Indexed" && !has(spec, "completions")) {
      errs.required(p.child("completions"), "when completion mode is Indexed");
    }
  }
  if (has(spec, "podReplacementPolicy")) {
    std::string prp = str_at(spec, {"podReplacementPolicy"});
    if (has(spec, "podFailurePolicy")) {
      if (prp != "Failed")
        errs.not_supported(p.child("podReplacementPolicy"), go_quote(prp), {"Failed"});
    } else if (prp != "TerminatingOrFailed" && prp != "Failed") {
      errs.not_supported(p.child("podReplacementPolicy"), go_quote(prp),
                         {"TerminatingOrFailed", "Failed"});
    }
  }
  validate_pod_template_spec(member(spec, "template"), p.child("template"), errs);
  std::string restart = str_at(spec, {"template", "spec", "restartPolicy"});
  Path rp = p.child("template").child("spec").child("restartPolicy");
  if (restart == "Always" || restart.empty()) {
    errs.required(rp, "valid values: \"OnFailure\", \"Never\"");
  } else if (restart != "OnFailure" && restart != "Never") {
    errs.not_supported(rp, go_quote(restart), {"OnFailure", "Never"});
  } else if (has(spec, "podFailurePolicy") && restart != "Never") {
    errs.invalid(rp, go_quote(restart),
                 "only \"Never\" is supported when podFailurePolicy is specified");
  }
}

void validate_job(const json& job, const json* old, FieldErrors& errs) {
  static const json kEmpty = json::object();
  const json* spec_ptr = object_at(job, {"spec"});
  const json& spec = spec_ptr != nullptr ? *spec_ptr : kEmpty;
  const Path p("spec");
  // validateGeneratedSelector.
  std::string uid = str_at(job, {"metadata", "uid"});
  if (!bool_at(spec, {"manualSelector"}).value_or(false) && !uid.empty()) {
    const json* label = at(spec, {"template", "metadata", "labels", kControllerUidLabel});
    if (label != nullptr && as_string(label) != uid) {
      errs.invalid(p.child("template").child("metadata").child("labels").key(kControllerUidLabel),
                   go_value(label), "must be '" + uid + "'");
    }
    const json* sel = at(spec, {"selector", "matchLabels", kControllerUidLabel});
    if (sel != nullptr && as_string(sel) != uid) {
      errs.invalid(p.child("selector").child("matchLabels").key(kControllerUidLabel), go_value(sel),
                   "must be '" + uid + "'");
    }
  }
  validate_job_spec_common(spec, p, errs);
  const json* selector = member(spec, "selector");
  if (selector == nullptr) {
    errs.required(p.child("selector"));
  } else {
    validate_label_selector(selector, p.child("selector"), errs);
  }
  std::optional<LabelSelector> sel = selector_of(selector);
  const json* labels = at(spec, {"template", "metadata", "labels"});
  if (sel && !sel->matches_json(labels != nullptr ? *labels : json())) {
    errs.invalid(p.child("template").child("metadata").child("labels"), go_string_map(labels),
                 "`selector` does not match template `labels`");
  }
  if (old == nullptr) return;

  const json* old_spec = object_at(*old, {"spec"});
  const json& before = old_spec != nullptr ? *old_spec : kEmpty;
  // validateCompletions: immutable, except that an Indexed Job may change completions in
  // tandem with parallelism.
  const json* completions = member(spec, "completions");
  if (!json_equal(completions, member(before, "completions"))) {
    if (str_at(spec, {"completionMode"}) != "Indexed") {
      errs.invalid(p.child("completions"), go_value(completions), "field is immutable");
    } else if (completions != nullptr && as_int(completions) != int_at(spec, {"parallelism"})) {
      errs.invalid(p.child("completions"), go_value(completions),
                   "can only be modified in tandem with spec.parallelism");
    }
  }
  validate_immutable(selector, member(before, "selector"), p.child("selector"),
                     go_label_selector(selector), errs);
  // The pod template is immutable; a suspended Job that never started may still change its
  // scheduling directives (node affinity, node selector, tolerations, labels, annotations and
  // scheduling gates).
  json now_tmpl = member(spec, "template") != nullptr ? spec["template"] : json::object();
  json old_tmpl = member(before, "template") != nullptr ? before["template"] : json::object();
  bool mutable_scheduling =
      bool_at(before, {"suspend"}).value_or(false) && at(*old, {"status", "startTime"}) == nullptr;
  if (mutable_scheduling) {
    for (json* t : {&now_tmpl, &old_tmpl}) {
      if (t->contains("metadata") && (*t)["metadata"].is_object()) {
        (*t)["metadata"].erase("labels");
        (*t)["metadata"].erase("annotations");
      }
      if (t->contains("spec") && (*t)["spec"].is_object()) {
        json& s = (*t)["spec"];
        s.erase("nodeSelector");
        s.erase("tolerations");
        s.erase("schedulingGates");
        if (s.contains("affinity") && s["affinity"].is_object()) {
          s["affinity"].erase("nodeAffinity");
          if (s["affinity"].empty()) s.erase("affinity");
        }
      }
    }
  }
  if (now_tmpl != old_tmpl) {
    errs.invalid(p.child("template"),
                 member(spec, "template") != nullptr ? spec["template"].dump() : "null",
                 "field is immutable");
  }
  for (const char* f : {"completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy",
                        "successPolicy"}) {
    const json* v = member(spec, f);
    validate_immutable(v, member(before, f), p.child(f), go_value(v), errs);
  }
}

bool job_condition(const json& job, std::string_view type) {
  if (const json* conds = array_at(job, {"status", "conditions"})) {
    for (const json& c : *conds) {
      if (str_at(c, {"type"}) == type) return str_at(c, {"status"}) == "True";
    }
  }
  return false;
}

std::vector<json> job_row(const json& job, int64_t now) {
  int64_t succeeded = int_at(job, {"status", "succeeded"}).value_or(0);
  std::string completions;
  if (auto c = int_at(job, {"spec", "completions"})) {
    completions = std::to_string(succeeded) + "/" + std::to_string(*c);
  } else {
    int64_t parallelism = int_at(job, {"spec", "parallelism"}).value_or(0);
    completions = std::to_string(succeeded) + "/1";
    if (parallelism > 1) completions += " of " + std::to_string(parallelism);
  }
  std::string duration;
  Result<Timestamp> start = parse_rfc3339_timestamp(str_at(job, {"status", "startTime"}));
  Result<Timestamp> done = parse_rfc3339_timestamp(str_at(job, {"status", "completionTime"}));
  if (start.ok()) {
    duration = human_duration_seconds((done.ok() ? done->seconds : now) - start->seconds);
  }
  std::string status = "Running";
  if (job_condition(job, "Complete")) {
    status = "Complete";
  } else if (job_condition(job, "Failed")) {
    status = "Failed";
  } else if (at(job, {"metadata", "deletionTimestamp"}) != nullptr) {
    status = "Terminating";
  } else if (job_condition(job, "Suspended")) {
    status = "Suspended";
  } else if (job_condition(job, "FailureTarget")) {
    status = "FailureTarget";
  }
  auto [names, images] = container_cells(at(job, {"spec", "template", "spec", "containers"}));
  return {str_at(job, {"metadata", "name"}),
          status,
          completions,
          duration,
          age_cell(job, now),
          names,
          images,
          format_label_selector(at(job, {"spec", "selector"}))};
}

// ---------------------------------------------------------------------------------------------
// CronJobs

void default_cron_job(json& cj) {
  if (!cj.is_object()) return;
  json& spec = object_member(cj, "spec");
  if (str_at(spec, {"concurrencyPolicy"}).empty()) spec["concurrencyPolicy"] = "Allow";
  set_default(spec, "suspend", false);
  set_default(spec, "successfulJobsHistoryLimit", 3);
  set_default(spec, "failedJobsHistoryLimit", 1);
  json& jt = object_member(spec, "jobTemplate");
  json& jt_meta = object_member(jt, "metadata");
  if (!jt_meta.contains("creationTimestamp")) jt_meta["creationTimestamp"] = nullptr;
  default_pod_template(object_member(object_member(jt, "spec"), "template"));
  ensure_status(cj);
}

void validate_cron_job(const json& cj, const json* old, FieldErrors& errs) {
  const Path p("spec");
  std::string schedule = str_at(cj, {"spec", "schedule"});
  const json* tz = at(cj, {"spec", "timeZone"});
  if (schedule.empty()) {
    errs.required(p.child("schedule"));
  } else {
    bool allow_tz =
        old != nullptr && str_at(*old, {"spec", "schedule"}).find("TZ") != std::string::npos;
    if (auto err = cron_schedule_error(schedule))
      errs.invalid(p.child("schedule"), go_quote(schedule), *err);
    bool has_tz = schedule.find("TZ") != std::string::npos;
    if (allow_tz && has_tz && tz != nullptr) {
      errs.invalid(p.child("schedule"), go_quote(schedule),
                   "cannot use both timeZone field and TZ or CRON_TZ in schedule");
    } else if (!allow_tz && has_tz) {
      errs.invalid(p.child("schedule"), go_quote(schedule),
                   "cannot use TZ or CRON_TZ in schedule, use timeZone field instead");
    }
  }
  if (auto sds = int_at(cj, {"spec", "startingDeadlineSeconds"})) {
    validate_nonnegative(*sds, p.child("startingDeadlineSeconds"), errs);
  }
  if (old == nullptr || !json_equal(tz, at(*old, {"spec", "timeZone"}))) {
    if (tz != nullptr) {
      std::string zone = as_string(tz);
      std::string lower = ascii_lower(zone);
      if (zone.empty()) {
        errs.invalid(p.child("timeZone"), go_quote(zone),
                     "timeZone must be nil or non-empty string");
      } else if (lower == "local") {
        errs.invalid(p.child("timeZone"), go_quote(zone),
                     "timeZone must be an explicit time zone as defined in "
                     "https://www.iana.org/time-zones");
      } else if (auto err = time_zone_error(zone)) {
        errs.invalid(p.child("timeZone"), go_quote(zone), *err);
      }
    }
  }
  std::string policy = str_at(cj, {"spec", "concurrencyPolicy"});
  if (policy.empty()) {
    errs.required(p.child("concurrencyPolicy"));
  } else if (policy != "Allow" && policy != "Forbid" && policy != "Replace") {
    errs.not_supported(p.child("concurrencyPolicy"), go_quote(policy),
                       {"Allow", "Forbid", "Replace"});
  }
  static const json kEmpty = json::object();
  const json* jt_spec = at(cj, {"spec", "jobTemplate", "spec"});
  const Path jp = p.child("jobTemplate").child("spec");
  validate_job_spec_common(jt_spec != nullptr && jt_spec->is_object() ? *jt_spec : kEmpty, jp,
                           errs);
  if (jt_spec != nullptr) {
    if (const json* sel = member(*jt_spec, "selector")) {
      errs.invalid(jp.child("selector"), go_label_selector(sel),
                   "`selector` will be auto-generated");
    }
    if (bool_at(*jt_spec, {"manualSelector"}).value_or(false)) {
      errs.not_supported(jp.child("manualSelector"), "true", {"nil", "false"});
    }
  }
  for (const char* f : {"successfulJobsHistoryLimit", "failedJobsHistoryLimit"}) {
    if (auto v = int_at(cj, {"spec", f})) validate_nonnegative(*v, p.child(f), errs);
  }
  std::string name = str_at(cj, {"metadata", "name"});
  if (old == nullptr && name.size() > 52) {
    errs.invalid(Path("metadata").child("name"), go_quote(name),
                 "must be no more than 52 characters");
  }
}

std::vector<json> cron_job_row(const json& cj, int64_t now) {
  std::string last = "<none>";
  if (const json* t = at(cj, {"status", "lastScheduleTime"})) last = since(t, now);
  std::string tz = str_at(cj, {"spec", "timeZone"}, "<none>");
  if (at(cj, {"spec", "timeZone"}) == nullptr) tz = "<none>";
  std::string suspend = "<unset>";
  if (auto s = bool_at(cj, {"spec", "suspend"})) suspend = *s ? "True" : "False";
  auto [names, images] =
      container_cells(at(cj, {"spec", "jobTemplate", "spec", "template", "spec", "containers"}));
  return {str_at(cj, {"metadata", "name"}),
          str_at(cj, {"spec", "schedule"}),
          tz,
          suspend,
          static_cast<int64_t>(size_of(array_at(cj, {"status", "active"}))),
          last,
          age_cell(cj, now),
          names,
          images,
          format_label_selector(at(cj, {"spec", "jobTemplate", "spec", "selector"}))};
}

}  // namespace

void add_batch_resources(Registry& registry, const Docs& docs) {
  const std::string t = kBatchTypes;
  const std::string g = "batch";
  const ColumnDef containers_col =
      column("Containers", "string", "Names of each container in the template.", 1);
  const ColumnDef images_col =
      column("Images", "string", "Images referenced by each container in the template.", 1);
  const ColumnDef selector_col =
      column("Selector", "string", docs.field(batch_type("JobSpec"), "selector"), 1);

  auto cj = new_resource(docs, t, g, "CronJob", "cronjobs", Scope::kNamespaced);
  cj->short_names = {"cj"};
  cj->categories = {"all"};
  cj->subresources = {status_subresource(g, "CronJob")};
  cj->has_status_subresource = true;
  cj->columns = {
      name_column(),
      column("Schedule", "string", docs.field(batch_type("CronJobSpec"), "schedule")),
      column("Timezone", "string", docs.field(batch_type("CronJobSpec"), "timeZone")),
      column("Suspend", "boolean", docs.field(batch_type("CronJobSpec"), "suspend")),
      column("Active", "integer", docs.field(batch_type("CronJobStatus"), "active")),
      column("Last Schedule", "string",
             docs.field(batch_type("CronJobStatus"), "lastScheduleTime")),
      age_column(),
      containers_col,
      images_col,
      selector_col,
  };
  cj->row = cron_job_row;
  cj->defaults = default_cron_job;
  cj->validate = make_validator("CronJob", g, true, NameRule::kDNS1123Subdomain, validate_cron_job);
  registry.add(cj);

  auto job = new_resource(docs, t, g, "Job", "jobs", Scope::kNamespaced);
  job->categories = {"all"};
  job->subresources = {status_subresource(g, "Job")};
  job->has_status_subresource = true;
  job->columns = {
      name_column(),
      column("Status", "string", "Status of the job."),
      column("Completions", "string", docs.field(batch_type("JobStatus"), "succeeded")),
      column("Duration", "string", "Time required to complete the job."),
      age_column(),
      containers_col,
      images_col,
      selector_col,
  };
  job->row = job_row;
  job->defaults = default_job;
  job->validate = make_validator("Job", g, true, NameRule::kDNS1123Subdomain, validate_job);
  registry.add(job);
}

}  // namespace skiff::api::builtin
