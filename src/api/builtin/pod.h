// Pods and the pod templates embedded in workloads: defaulting (SetDefaults_PodSpec,
// SetDefaults_Container, probes, ports, volumes; SetDefaults_Pod and the Priority admission
// defaults for Pods only), validation (ValidatePodSpec, ValidatePodTemplateSpec, the
// ReplicaSet-style template rules and ValidatePodUpdate) and the Pod Table (printPod).
//
// Private to src/api/builtin. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <vector>

#include "api/builtin/builtin.h"

namespace skiff::api::builtin {

// Defaults a PodSpec in place. `is_pod` adds what only Pods get (enableServiceLinks,
// requests copied from limits, host ports under hostNetwork).
void default_pod_spec(json& spec, bool is_pod);
// Defaults a PodTemplateSpec in place (its spec, and metadata.creationTimestamp: null as the
// Go type serializes it).
void default_pod_template(json& tmpl);
// Defaults a Pod in place, including priority 0 / preemptionPolicy PreemptLowerPriority, as
// the Priority admission plugin sets them for pods without a priority class (or with one of
// the two built-in system classes).
void default_pod(json& pod);

// ValidatePodSpec for the spec at `p` (e.g. "spec" or "spec.template.spec").
void validate_pod_spec(const json* spec, const Path& p, bool is_pod, FieldErrors& errs);
// ValidatePodTemplateSpec: labels at <p>.labels, annotations at <p>.annotations, the spec at
// <p>.spec; ephemeral containers are forbidden.
void validate_pod_template_spec(const json* tmpl, const Path& p, FieldErrors& errs);
// ValidatePodTemplateSpecForReplicaSet: the selector must match the template labels, the
// restart policy must be Always and activeDeadlineSeconds is forbidden.
void validate_pod_template_for_replicas(const json* tmpl, const LabelSelector& selector,
                                        const Path& p, FieldErrors& errs);
// The Pod rules (metadata is validated by the caller's wrapper).
void validate_pod(const json& pod, const json* old, FieldErrors& errs);

// The pod's QoS class as Kubernetes computes it: "Guaranteed", "Burstable" or "BestEffort".
std::string pod_qos_class(const json& pod);

std::vector<ColumnDef> pod_columns(const Docs& docs);
std::vector<json> pod_row(const json& pod, int64_t now);

}  // namespace skiff::api::builtin
