#include "confgate/config/reloader.h"

#include <pthread.h>
#include <signal.h>

namespace confgate::config {

const char* ReloadTriggerName(ReloadTrigger trigger) {
  switch (trigger) {
    case ReloadTrigger::kSignal:
      return "SIGHUP";
    case ReloadTrigger::kFileWatch:
      return "file change";
    case ReloadTrigger::kAdmin:
      return "admin";
    case ReloadTrigger::kDnsRefresh:
      return "dns";
  }
  return "unknown";
}

ConfigReloader::ConfigReloader(event::Dispatcher& dispatcher, Load load, Apply apply)
    : dispatcher_(dispatcher),
      load_(std::move(load)),
      apply_(std::move(apply)),
      link_(std::make_shared<Link>(Link{this})) {}

ConfigReloader::~ConfigReloader() {
  link_->owner = nullptr;  // a result still in the dispatcher's queue finds nobody
  if (loader_.joinable()) {
    loader_.join();
  }
}

void ConfigReloader::Reload(ReloadTrigger trigger, Done done) {
  Batch& batch = loading() ? next_ : running_;
  if (!batch.trigger.has_value()) {
    batch.trigger = trigger;  // a folded load is named after its first trigger
  }
  if (done) {
    batch.waiting.push_back(std::move(done));
  }
  if (loading()) {
    queued_ = true;
    return;
  }
  Start(std::move(running_));
}

void ConfigReloader::Start(Batch batch) {
  running_ = std::move(batch);
  ++loads_started_;
  // The loader takes no signals: SIGHUP and SIGTERM stay with the main thread's loop.
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  loader_ = std::thread([this, link = link_] {
    LoadResult loaded = load_();
    dispatcher_.Post([link, loaded = std::move(loaded)]() mutable {
      if (link->owner != nullptr) {
        link->owner->OnLoaded(std::move(loaded));
      }
    });
  });
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

void ConfigReloader::OnLoaded(LoadResult loaded) {
  loader_.join();  // the post was its last step
  Batch finished = std::move(running_);
  running_ = Batch{};
  absl::Status result = apply_(std::move(loaded), *finished.trigger);
  if (queued_) {
    queued_ = false;
    Batch next = std::move(next_);
    next_ = Batch{};
    Start(std::move(next));
  }
  for (Done& done : finished.waiting) {
    done(result);
  }
}

}  // namespace confgate::config
