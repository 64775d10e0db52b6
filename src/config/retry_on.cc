#include "confgate/config/retry_on.h"

namespace confgate::config {

RetryOn RetryOn::Defaults() {
  RetryOn on;
  on.Add(Condition::kConnectFailure);
  on.Add(Condition::kReset);
  on.Add(Condition::kTimeout);
  for (int status : {502, 503, 504}) {
    on.AddStatus(status);
  }
  return on;
}

}  // namespace confgate::config
