#include "controllers/job/ttl_after_finished_controller.h"

#include "common/log.h"
#include "controllers/common/job_status.h"
#include "controllers/common/object_meta.h"

namespace skiff::controllers::job {
namespace {

namespace cc = ::skiff::controllers::common;
using client::ObjectPtr;
using nlohmann::json;

}  // namespace

std::optional<std::chrono::nanoseconds> ttl_time_left(const json& job, TimePoint now) {
  const json* ttl = cc::find_path(job, {"spec", "ttlSecondsAfterFinished"});
  if (ttl == nullptr || !ttl->is_number_integer() || cc::being_deleted(job)) return std::nullopt;
  auto finished = cc::job_finish_time(job);
  if (!finished) return std::nullopt;
  TimePoint expire_at = *finished + std::chrono::seconds(ttl->get<int64_t>());
  return std::chrono::duration_cast<std::chrono::nanoseconds>(expire_at - now);
}

struct TtlAfterFinishedController::Impl {
  explicit Impl(ControllerContext& c) : ctx(c) {}

  void enqueue(const json& job) {
    // Only finished Jobs with a TTL have anything to wait for.
    if (cc::find_path(job, {"spec", "ttlSecondsAfterFinished"}) == nullptr) return;
    if (!cc::is_job_finished(job) || cc::being_deleted(job)) return;
    queue->add(cc::key_of(job));
  }

  // processTTL: true when the TTL has expired; otherwise the Job is queued for when it will.
  bool expired(const json& job, const std::string& key) {
    auto left = ttl_time_left(job, ctx.clock.now());
    if (!left) return false;
    if (*left <= std::chrono::nanoseconds(0)) return true;
    queue->add_after(key, std::chrono::ceil<std::chrono::milliseconds>(*left));
    return false;
  }

  Status sync(const std::string& key) {
    std::string ns;
    std::string name;
    client::split_key(key, &ns, &name);
    ObjectPtr cached = job_informer->get(ns, name);
    if (!cached || !expired(*cached, key)) return Status::Ok();
    client::ResourceRef jobs = client::resources::kJobs.in(ns);
    auto fresh = ctx.client.get(jobs, name);
    if (!fresh.ok()) return fresh.status().is_not_found() ? Status::Ok() : fresh.status();
    if (!expired(**fresh, key)) return Status::Ok();
    client::DeleteOptions o;
    o.propagation_policy = "Background";
    o.precondition_uid = cc::uid_of(**fresh);
    auto removed = ctx.client.remove(jobs, name, o);
    if (!removed.ok() && !removed.status().is_not_found()) {
      // A failed uid precondition means another Job took the name: nothing to do.
      if (removed.status().code() == StatusCode::kConflict) return Status::Ok();
      return removed.status();
    }
    SKIFF_LOG(Info) << "ttl-after-finished: deleted job " << key;
    return Status::Ok();
  }

  // Constant after setup().
  ControllerContext& ctx;
  WorkQueue* queue = nullptr;
  client::Informer* job_informer = nullptr;
};

TtlAfterFinishedController::TtlAfterFinishedController(ControllerContext& ctx)
    : impl_(std::make_unique<Impl>(ctx)) {}

TtlAfterFinishedController::~TtlAfterFinishedController() = default;

void TtlAfterFinishedController::setup(WorkQueue& queue) {
  Impl& m = *impl_;
  m.queue = &queue;
  m.job_informer = &m.ctx.informers.informer(client::resources::kJobs);
  m.job_informer->add_handlers(client::InformerHandlers{
      [&m](const ObjectPtr& job) { m.enqueue(*job); },
      [&m](const ObjectPtr&, const ObjectPtr& job) { m.enqueue(*job); }, nullptr});
}

Status TtlAfterFinishedController::reconcile(const std::string& key) { return impl_->sync(key); }

}  // namespace skiff::controllers::job

SKIFF_REGISTER_CONTROLLER(ttl_after_finished, [](skiff::controllers::ControllerContext& ctx) {
  return std::make_unique<skiff::controllers::job::TtlAfterFinishedController>(ctx);
});
