// What the admin listener shows and changes, backed by the running process.
#pragma once

#include <atomic>
#include <functional>

#include "confgate/admin/admin_server.h"
#include "confgate/server/runtime.h"
#include "server/control_plane.h"
#include "server/worker.h"

namespace confgate::server {

class ProcessAdminBackend final : public admin::AdminBackend {
 public:
  ProcessAdminBackend(RuntimeSnapshotPtr snapshot, ControlPlane& control_plane, SharedState& shared)
      : snapshot_(std::move(snapshot)), control_plane_(control_plane), shared_(shared) {}

  void set_ready(bool ready) { ready_ = ready; }
  // Starts a reload; the callback gets its result (later, on the main thread).
  using ReloadFn = std::function<void(std::function<void(absl::Status)>)>;
  void set_reload(ReloadFn reload) { reload_ = std::move(reload); }
  void SetSnapshot(RuntimeSnapshotPtr snapshot) { snapshot_ = std::move(snapshot); }
  void CountReload(bool succeeded) { ++(succeeded ? reloads_succeeded_ : reloads_failed_); }

  // admin::AdminBackend
  std::string Metrics() override;
  bool Ready() override { return ready_; }
  std::string StatusJson() override;
  std::string ConfigJson() override;
  void Reload(admin::AdminResponder respond) override;
  admin::AdminReply SetHostDrained(const std::string& upstream, const std::string& address,
                                   bool drained) override;
  admin::AdminReply SetReadOnly(const std::string& upstream,
                                std::optional<bool> read_only) override;

 private:
  RuntimeSnapshotPtr snapshot_;
  ControlPlane& control_plane_;
  SharedState& shared_;
  bool ready_ = false;
  ReloadFn reload_;
  uint64_t reloads_succeeded_ = 0;
  uint64_t reloads_failed_ = 0;
};

}  // namespace confgate::server
