// The config loader and validator on arbitrary text: every problem becomes an error, never a
// crash or an escaping exception.
#include <cstddef>
#include <cstdint>
#include <string>

#include "confgate/config/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  confgate::config::LoadResult result = confgate::config::LoadConfigFromString(text, "fuzz");
  for (const confgate::config::ConfigError& error : result.errors) {
    if (error.ToString().empty()) {
      __builtin_trap();  // an error always says something
    }
  }
  return 0;
}
