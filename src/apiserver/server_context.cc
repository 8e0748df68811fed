#include "apiserver/server_context.h"

#include <optional>

#include "common/random.h"
#include "common/time.h"

namespace skiff::apiserver {

asio::awaitable<Result<store::WriteResult>> store_write(store::Store& s, store::WriteOp op) {
  using Outcome = std::optional<Result<store::WriteResult>>;
  auto ex = co_await asio::this_coro::executor;
  Outcome r = co_await asio::async_initiate<decltype(asio::use_awaitable), void(Outcome)>(
      [&s, ex](auto handler, store::WriteOp op) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        s.write(std::move(op), [h, ex](Result<store::WriteResult> r) {
          asio::post(ex, [h, r = Outcome(std::move(r))]() mutable { (*h)(std::move(r)); });
        });
      },
      asio::use_awaitable, std::move(op));
  co_return std::move(*r);
}

std::string now_rfc3339() { return format_rfc3339(skiff::now()); }

int64_t now_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(skiff::now().time_since_epoch()).count();
}

std::string new_uid() { return new_uuid(); }

std::string random_name_suffix() { return generate_name_suffix(); }

}  // namespace skiff::apiserver
