// What the admin listener shows and changes, backed by the running process.
#pragma once

#include <atomic>

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

  // admin::AdminBackend
  std::string Metrics() override;
  bool Ready() override { return ready_; }
  std::string StatusJson() override;
  std::string ConfigJson() override;
  admin::AdminReply Reload() override;
  admin::AdminReply SetHostDrained(const std::string& upstream, const std::string& address,
                                   bool drained) override;
  admin::AdminReply SetReadOnly(const std::string& upstream,
                                std::optional<bool> read_only) override;

 private:
  RuntimeSnapshotPtr snapshot_;
  ControlPlane& control_plane_;
  SharedState& shared_;
  bool ready_ = false;
};

}  // namespace confgate::server
